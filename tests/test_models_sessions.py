"""SessionFactory: provider choice, honest fallback notices, the two-onnxruntime trap, per-instance caching."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from twins import build_genderage

from faceswap.errors import FaceSwapError
from faceswap.models.sessions import (
    SessionFactory,
    distribution_notices,
    full_provider_name,
    installed_onnxruntime_distributions,
    short_provider_name,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_genderage(tmp_path_factory.mktemp("sessions") / "genderage.onnx")


def test_provider_names() -> None:
    assert full_provider_name("cuda") == "CUDAExecutionProvider"
    assert full_provider_name("TensorRT") == "TensorrtExecutionProvider"
    assert full_provider_name("cpuexecutionprovider") == "CPUExecutionProvider"
    assert short_provider_name("CUDAExecutionProvider") == "cuda"


def test_best_available_order_without_a_request() -> None:
    available = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "AzureExecutionProvider"]
    factory = SessionFactory((), available=available, distributions=["onnxruntime-gpu"])
    assert factory.providers == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert factory.notices == []
    cpu_only = SessionFactory((), available=["AzureExecutionProvider", "CPUExecutionProvider"],
                              distributions=["onnxruntime"])
    assert cpu_only.providers == ("CPUExecutionProvider",)


def test_a_requested_gpu_that_is_missing_is_said_plainly(caplog: pytest.LogCaptureFixture) -> None:
    factory = SessionFactory(("cuda",), available=["CPUExecutionProvider"], distributions=["onnxruntime"])
    assert factory.providers == ("CPUExecutionProvider",)
    (notice,) = factory.notices
    assert "CUDAExecutionProvider" in notice and "CPU" in notice
    assert any("CUDAExecutionProvider" in record.getMessage() for record in caplog.records)


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available provider")
def test_a_gpu_provider_that_does_not_load_is_reported(model: Path) -> None:
    # Pretend this onnxruntime offers CUDA: the session really runs on CPU, and the factory must notice.
    factory = SessionFactory(("cuda",), available=["CUDAExecutionProvider", "CPUExecutionProvider"],
                             distributions=["onnxruntime-gpu"])
    session = factory.session(model)
    assert factory.provider_for(session) == "cpu"
    assert any("did not load for genderage.onnx" in notice for notice in factory.notices)
    assert factory.provider_report()["sessions"] == {"genderage.onnx": ["CPUExecutionProvider"]}


def test_both_onnxruntime_packages_installed_gives_the_fix() -> None:
    notices = distribution_notices(["onnxruntime", "onnxruntime-gpu"], ["CPUExecutionProvider"])
    assert any("pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in n for n in notices)
    assert any("CUDA provider is not available" in n for n in notices)
    assert distribution_notices(["onnxruntime"], ["CPUExecutionProvider"]) == []
    factory = SessionFactory((), available=["CPUExecutionProvider"], distributions=["onnxruntime", "onnxruntime-gpu"])
    assert any("Several onnxruntime packages" in n for n in factory.notices)
    assert "onnxruntime" in installed_onnxruntime_distributions()  # this environment's real install


def test_sessions_are_cached_per_factory_and_thread_safe(model: Path) -> None:
    factory = SessionFactory(("cpu",))
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(factory.session(model))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(s) for s in seen}) == 1
    assert factory.session(str(model)) is seen[0]
    assert SessionFactory(("cpu",)).session(model) is not seen[0]  # instance state, not module state


def test_a_file_that_is_not_onnx_is_a_catalog_error(tmp_path: Path) -> None:
    junk = tmp_path / "w600k_r50.onnx"
    junk.write_bytes(b"<html>not a model</html>")
    with pytest.raises(FaceSwapError) as info:
        SessionFactory(("cpu",)).session(junk)
    assert info.value.code == "model_not_available" and "w600k_r50.onnx" in info.value.message


def test_preload_builds_the_largest_file_first_and_caches_every_session(tmp_path: Path) -> None:
    from twins import build_recognizer

    small = build_genderage(tmp_path / "genderage.onnx")
    large = build_recognizer(tmp_path / "w600k_r50.onnx")
    assert large.stat().st_size > small.stat().st_size
    factory = SessionFactory(("cpu",))
    built: list[str] = []
    create = factory._create

    def recording(path: str, device_id: int) -> object:
        built.append(Path(path).name)
        return create(path, device_id)

    factory._create = recording  # type: ignore[method-assign]
    factory.preload([small, large])
    assert built == ["w600k_r50.onnx", "genderage.onnx"]
    session = factory.session(large)  # cached: not built again
    assert built == ["w600k_r50.onnx", "genderage.onnx"]
    assert session.get_inputs()[0].shape[1:] == [3, 112, 112]
