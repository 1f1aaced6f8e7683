"""The GPU side of the neural runtime, run on the CPU provider: precision choice and float16 at the boundary, IO
binding, faces batched into one swapper call, TensorRT's provider options. Same code path as on CUDA; only the
device of the bound values differs (`cpu` here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from gpu_twins import build_inswapper_batched, half_io_copy
from twins import build_codeformer, build_gfpgan, build_inswapper, known_faces

from faceswap.config import Settings
from faceswap.engines.neural import load_swapper
from faceswap.engines.neural.inswapper import Inswapper
from faceswap.faces.types import Face
from faceswap.models.runner import ModelRunner, resolve_io_binding, resolve_precision, value_device
from faceswap.models.sessions import SessionFactory, provider_arguments
from faceswap.restore import load_restorer
from faceswap.swap.session import CropFaceStep, SwapParams

CUDA, TRT, CPU = "CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpu-runtime")
    paths = {"batched": build_inswapper_batched(root / "batched" / "inswapper_128.onnx").path,
             "fixed": build_inswapper(root / "fixed" / "inswapper_128.onnx", keep_target=0.5).path,
             "gfpgan": build_gfpgan(root / "GFPGANv1.4.onnx"), "codeformer": build_codeformer(root / "codeformer.onnx")}
    paths["half_io"] = half_io_copy(paths["batched"], root / "half" / "inswapper_128.onnx", keep_emap=True)
    return paths


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, list[Face]]:
    """t1's six people with their measured key points, each with an identity vector of its own."""
    known = known_faces()[:6]
    rng = np.random.default_rng(1)
    return known[0].photo, [Face(bbox=np.array(face.box, np.float32), score=0.9, kps=face.kps,
                                 embedding=rng.standard_normal(512).astype(np.float32)) for face in known]


class Counting:
    """A runner that records the batch size of every call it passes on."""

    def __init__(self, runner: ModelRunner) -> None:
        self.runner = runner
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    def run(self, names: Any, feeds: dict[str, Any]) -> list[np.ndarray]:
        self.batches.append(int(feeds["target"].shape[0]))
        return self.runner.run(names, feeds)


def swapper(path: Path, *, io_binding: bool = False) -> tuple[Inswapper, Counting]:
    runner = Counting(ModelRunner(onnxruntime.InferenceSession(str(path), providers=[CPU]), io_binding=io_binding))
    adapter = load_swapper("inswapper_128", path, runner, embedder=lambda image, face: face)
    assert isinstance(adapter, Inswapper)
    return adapter, runner


def swap_faces(adapter: Inswapper, image: np.ndarray, faces: list[Face], params: SwapParams | None = None,
               *, batch: bool = True) -> np.ndarray:
    params = params or SwapParams()
    sources = [adapter.prepare_source(image, face) for face in faces[::-1]]  # each face gets another's identity
    step = CropFaceStep(adapter, params)
    out = image.copy()
    if batch:
        return step.swap_all(out, list(zip(faces, sources, strict=True)))
    for face, source in zip(faces, sources, strict=True):
        out = step(out, face, source)
    return out


# ------------------------------------------------------------------------------------------------ batching
def test_a_frames_faces_go_through_one_call_when_the_batch_is_free(files: dict[str, Path],
                                                                   faces: tuple[np.ndarray, list[Face]]) -> None:
    image, six = faces
    batched, calls = swapper(files["batched"])
    assert batched.batches
    together = swap_faces(batched, image, six)
    assert calls.batches == [6]  # six faces, one model call
    one_by_one = swap_faces(batched, image, six, batch=False)
    assert calls.batches == [6, 1, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(together, one_by_one)
    assert np.abs(together.astype(int) - image.astype(int)).max() > 50  # the faces really changed

    fixed, fixed_calls = swapper(files["fixed"])  # the release file's [1,3,128,128]: one call per face
    assert not fixed.batches
    np.testing.assert_array_equal(swap_faces(fixed, image, six), together)
    assert fixed_calls.batches == [1] * 6


def test_overlapping_faces_run_one_after_the_other(files: dict[str, Path],
                                                   faces: tuple[np.ndarray, list[Face]]) -> None:
    image, six = faces
    shifted = Face(bbox=six[2].bbox + 12, score=0.9, kps=six[2].kps + 12, embedding=six[0].embedding)
    batched, calls = swapper(files["batched"])
    out = swap_faces(batched, image, [six[2], shifted])
    assert calls.batches == [1, 1]  # the second crop must see the first face pasted
    np.testing.assert_array_equal(out, swap_faces(batched, image, [six[2], shifted], batch=False))


def test_pixel_boost_phases_share_one_call(files: dict[str, Path], faces: tuple[np.ndarray, list[Face]]) -> None:
    image, six = faces
    params = SwapParams(pixel_boost=256)
    batched, calls = swapper(files["batched"])
    fixed, fixed_calls = swapper(files["fixed"])
    np.testing.assert_array_equal(swap_faces(batched, image, six[:2], params),
                                  swap_faces(fixed, image, six[:2], params))
    assert calls.batches == [8] and fixed_calls.batches == [1] * 8  # 2 faces x 4 phases


# ------------------------------------------------------------------------------------------------ IO binding
@pytest.mark.parametrize("name", ["batched", "gfpgan", "codeformer"])
def test_io_binding_gives_what_run_gives(files: dict[str, Path], name: str) -> None:
    session = onnxruntime.InferenceSession(str(files[name]), providers=[CPU])
    rng = np.random.default_rng(3)
    feeds: dict[str, np.ndarray] = {}
    for arg in session.get_inputs():
        shape = [2 if not isinstance(dim, int) else dim for dim in arg.shape]
        feeds[arg.name] = (np.array([0.4]) if arg.type == "tensor(double)"
                           else rng.random(shape, dtype=np.float32))
    plain = ModelRunner(session).run(None, feeds)
    bound = ModelRunner(session, io_binding=True).run(None, feeds)
    assert len(plain) == len(bound) == len(session.get_outputs())
    for a, b in zip(plain, bound, strict=True):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_a_bound_swapper_keeps_the_source_resident_and_swaps_the_same(files: dict[str, Path],
                                                                       faces: tuple[np.ndarray, list[Face]]) -> None:
    image, six = faces
    bound, _ = swapper(files["batched"], io_binding=True)
    plain, _ = swapper(files["batched"])
    source = bound.prepare_source(image, six[0])
    assert isinstance(source.resident, onnxruntime.OrtValue) and source.resident.device_name() == "cpu"
    assert plain.prepare_source(image, six[0]).resident is None
    np.testing.assert_array_equal(swap_faces(bound, image, six), swap_faces(plain, image, six))
    np.testing.assert_array_equal(swap_faces(bound, image, six[:1]), swap_faces(plain, image, six[:1]))


def test_io_binding_and_value_device_follow_the_provider() -> None:
    assert resolve_io_binding("auto", (CUDA, CPU)) and resolve_io_binding("auto", (TRT, CUDA, CPU))
    assert not resolve_io_binding("auto", (CPU,)) and resolve_io_binding("on", (CPU,))
    assert not resolve_io_binding("off", (CUDA, CPU))
    assert (value_device((CUDA, CPU)), value_device((CPU,))) == ("cuda", "cpu")
    with pytest.raises(ValueError, match="io_binding"):
        resolve_io_binding("yes", (CPU,))
    assert SessionFactory(("cpu",), io_binding="on").io_binding
    assert not SessionFactory(("cpu",)).io_binding


# ------------------------------------------------------------------------------------------------ precision
def test_precision_is_fp16_on_cuda_and_tensorrt_fp32_on_cpu_unless_forced() -> None:
    assert resolve_precision("auto", (CUDA, CPU)) == resolve_precision("auto", (TRT, CUDA, CPU)) == "fp16"
    assert resolve_precision("auto", (CPU,)) == "fp32"
    assert resolve_precision("fp32", (CUDA, CPU)) == "fp32" and resolve_precision("fp16", (CPU,)) == "fp16"
    gpu = SessionFactory((), available=[CUDA, CPU], distributions=["onnxruntime-gpu"])
    assert (gpu.precision, gpu.io_binding, gpu.value_device) == ("fp16", True, "cuda")
    lost = SessionFactory(("cuda",), available=[CPU], distributions=["onnxruntime"])  # CUDA asked, absent
    assert (lost.providers, lost.precision, lost.io_binding) == ((CPU,), "fp32", False)
    env = {"FACESWAP_DATA_DIR": "/d", "FACESWAP_MODELS_DIR": "/m"}
    assert Settings.from_env({**env, "FACESWAP_PRECISION": "FP16"}).precision == "fp16"
    with pytest.raises(ValueError, match="FACESWAP_PRECISION"):
        Settings.from_env({**env, "FACESWAP_PRECISION": "half"})


def test_a_float16_io_file_runs_through_the_same_adapter(files: dict[str, Path],
                                                         faces: tuple[np.ndarray, list[Face]]) -> None:
    image, six = faces
    half, calls = swapper(files["half_io"])
    assert [arg.type for arg in half.session.get_inputs()] == ["tensor(float16)"] * 2
    assert half.session.precision == "fp16" and half.batches
    full, _ = swapper(files["batched"])
    out, expected = swap_faces(half, image, six), swap_faces(full, image, six)
    assert out.dtype == np.uint8 and calls.batches == [6]
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 2  # fp16 rounding only


def test_a_half_precision_restorer_is_a_converted_copy(files: dict[str, Path], tmp_path: Path,
                                                       faces: tuple[np.ndarray, list[Face]]) -> None:
    image, six = faces
    paths = {"codeformer": tmp_path / "codeformer.onnx"}
    paths["codeformer"].write_bytes(files["codeformer"].read_bytes())
    half = load_restorer("codeformer", paths, SessionFactory(("cpu",), precision="fp16"))
    full = load_restorer("codeformer", paths, SessionFactory(("cpu",)))
    assert (half.session.precision, full.session.precision) == ("fp16", "fp32")
    (copy,) = (tmp_path / ".fp16").glob("*.onnx")
    assert copy.stem.startswith("codeformer-") and not list((tmp_path / ".fp16").glob("*.part"))
    float16 = {init.data_type for init in onnx.load(str(copy)).graph.initializer}
    assert 10 in float16  # TensorProto.FLOAT16: the weights really are half precision
    out = half.restore(image.copy(), six[1], visibility=1.0, codeformer_weight=0.3)
    expected = full.restore(image.copy(), six[1], visibility=1.0, codeformer_weight=0.3)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 2
    stamp = copy.stat().st_mtime_ns
    load_restorer("codeformer", paths, SessionFactory(("cpu",), precision="fp16"))
    assert copy.stat().st_mtime_ns == stamp  # converted once, then taken from the cache


# ------------------------------------------------------------------------------------------------ providers
def test_tensorrt_provider_options_carry_the_engine_cache_and_fp16() -> None:
    providers = (TRT, CUDA, CPU)
    assert provider_arguments(providers, "/models/inswapper_128.onnx", device_id=1, trt_cache=Path("/cache"),
                              fp16=True) == [
        (TRT, {"trt_engine_cache_enable": True, "trt_engine_cache_path": "/cache", "trt_timing_cache_enable": True,
               "trt_timing_cache_path": "/cache", "trt_fp16_enable": True, "device_id": 1}),
        (CUDA, {"device_id": 1}), CPU]
    (trt, _, _) = provider_arguments(providers, "/models/inswapper_128.onnx")
    assert trt[1]["trt_engine_cache_path"] == "/models/.trt-cache" and trt[1]["trt_fp16_enable"] is False


def test_tensorrt_falls_back_cleanly_when_this_onnxruntime_lacks_it() -> None:
    factory = SessionFactory(("tensorrt", "cuda"), available=[CUDA, CPU], distributions=["onnxruntime-gpu"],
                             trt_cache=Path("/cache"))
    assert factory.providers == (CUDA, CPU) and factory.precision == "fp16"
    (notice,) = factory.notices
    assert TRT in notice and "running on CUDAExecutionProvider" in notice
    assert factory._provider_arguments("/m/x.onnx") == [(CUDA, {"device_id": 0}), CPU]
    with_trt = SessionFactory(("tensorrt", "cuda"), available=[TRT, CUDA, CPU], distributions=["onnxruntime-gpu"],
                              trt_cache=Path("/cache"))
    assert with_trt._provider_arguments("/m/x.onnx")[0][1]["trt_engine_cache_path"] == "/cache"
    env = {"FACESWAP_DATA_DIR": "/d", "FACESWAP_MODELS_DIR": "/m", "FACESWAP_PROVIDERS": "tensorrt,cuda",
           "FACESWAP_TRT_CACHE": "/engines", "FACESWAP_IO_BINDING": "off"}
    settings = Settings.from_env(env)
    assert (settings.providers, settings.trt_cache_dir, settings.io_binding) == (
        ("tensorrt", "cuda"), Path("/engines"), "off")


# ------------------------------------------------------------------------------------------------ runtime and report
@pytest.fixture(scope="module")
def twin_set(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from swapper_twins import build_inswapper_fp16
    from twins import build_twin_set, twin_specs

    twins = build_twin_set(tmp_path_factory.mktemp("gpu-twin-set"))
    sibling = twins.directory / "inswapper_128_fp16.onnx"
    build_inswapper_fp16(sibling)
    return twins, twin_specs({**twins.paths, "inswapper_128_fp16": sibling})


def runtime_for(twin_set: Any, tmp_path: Path, *, without_sibling: bool = False, **settings: Any) -> Any:
    from faceswap.models.store import ModelStore
    from faceswap.runtime import Runtime

    twins, specs = twin_set
    directory = twins.directory
    if without_sibling:  # the same twins, in a models dir without the fp16 export
        directory = tmp_path / "models"
        directory.mkdir(parents=True)
        for path in twins.paths.values():
            (directory / path.name).symlink_to(path)
    config = Settings(data_dir=tmp_path / "data", models_dir=directory, allow_model_download=False, **settings)
    return Runtime(config, models=ModelStore(config, specs=specs))


def test_half_precision_swaps_with_the_published_fp16_export(twin_set: Any, tmp_path: Path) -> None:
    cpu = runtime_for(twin_set, tmp_path / "auto").engine("neural")
    assert cpu.inference == {"swapper": "inswapper_128", "swapper_precision": "fp32", "io_binding": False,
                             "batched_faces": False}
    half = runtime_for(twin_set, tmp_path / "half", precision="fp16", io_binding="on").engine("neural")
    assert half.inference == {"swapper": "inswapper_128_fp16", "swapper_precision": "fp16", "io_binding": True,
                              "batched_faces": False}
    assert not (twin_set[0].directory / ".fp16").exists()  # a published export is never converted again
    converted = runtime_for(twin_set, tmp_path / "none", without_sibling=True, precision="fp16").engine("neural")
    assert converted.inference["swapper"] == "inswapper_128" and converted.inference["swapper_precision"] == "fp16"
    assert [p.name.split("-")[0] for p in (tmp_path / "none" / "models" / ".fp16").iterdir()] == ["inswapper_128"]


def test_the_report_says_which_precision_ran(twin_set: Any, tmp_path: Path) -> None:
    import cv2
    import media_factory as mf

    from faceswap import pipeline
    from faceswap.options import SwapOptions

    clip = mf.write_clip(tmp_path / "clip.mp4", mf.t1_patches(180), mf.row_layout(1, 180, 640, 360),
                         mf.ClipSpec(width=640, height=360, frames=3, audio=False))
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), mf.astronaut_face_photo())
    runtime = runtime_for(twin_set, tmp_path, precision="fp16", io_binding="on")
    options = SwapOptions.parse(video=str(clip), face=str(face), engine="neural", restore="gfpgan")
    report = pipeline.run(options, runtime, tmp_path / "out.mp4").report
    assert report.frames_swapped == 3
    assert report.inference == {"swapper": "inswapper_128_fp16", "swapper_precision": "fp16", "io_binding": True,
                                "batched_faces": False, "restorer_precision": "fp16"}
    assert report.to_dict()["inference"]["restorer_precision"] == "fp16"
