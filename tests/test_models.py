"""Model registry, store (presence, download, verification) and the `models` CLI. No network: downloads go to
an injected downloader or to a closed local port."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
from twins import build_genderage, build_gfpgan, twin_specs

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models import store as store_module
from faceswap.models.cli import run_models
from faceswap.models.registry import GROUPS, REGISTRY, resolve_names
from faceswap.models.store import ModelStore, file_digests


def settings_for(tmp_path: Path, *, download: bool = True) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", allow_model_download=download)


@pytest.fixture(scope="module")
def twin_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small real ONNX files standing in for registry entries (the source of 'downloads')."""
    source = tmp_path_factory.mktemp("twin-source")
    return {"genderage": build_genderage(source / "genderage.onnx"),
            "gfpgan_1.4": build_gfpgan(source / "GFPGANv1.4.onnx")}


def copying_downloader(files: dict[str, Path], calls: list[str], *, corrupt: bool = False):
    def download(spec, staging: Path) -> Path:
        calls.append(spec.name)
        target = staging / "nested" / spec.filename
        target.parent.mkdir(parents=True)
        shutil.copyfile(files[spec.name], target)
        if corrupt:
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 0xFF
            target.write_bytes(bytes(data))
        return target

    return download


# ------------------------------------------------------------------------------------------------ registry
def test_registry_pins_the_published_files() -> None:
    assert {name for name, spec in REGISTRY.items() if not spec.optional} == {
        "det_10g", "w600k_r50", "genderage", "inswapper_128", "gfpgan_1.4", "codeformer"}
    assert {name for name, spec in REGISTRY.items() if spec.optional} == {
        "inswapper_128_fp16", "hyperswap_1a_256", "hyperswap_1b_256", "hyperswap_1c_256",  # swappers to opt into
        "ghost_1_256", "ghost_2_256", "ghost_3_256", "simswap_256", "simswap_unofficial_512",
        "hififace_unofficial_256", "blendswap_256", "uniface_256",
        "crossface_simswap", "crossface_ghost", "crossface_hififace",  # their embedding converters
        "xseg_1", "xseg_2", "xseg_3", "bisenet_resnet_18", "bisenet_resnet_34", "1k3d68",  # and mask models
        "gpen_bfr_256", "gpen_bfr_512", "gpen_bfr_1024", "gpen_bfr_2048", "restoreformer_plus_plus"}  # restorers
    assert REGISTRY["1k3d68"].sha256 == "df5c06b8a0c12e422b2ed8947b8869faa4105387f199c477af038aa01f9a45cc"
    assert REGISTRY["1k3d68"].size == 143_607_619 and REGISTRY["1k3d68"].role == "landmarker"
    assert REGISTRY["blendswap_256"].crc32 == "6a424cf7" and REGISTRY["crossface_ghost"].crc32 == "6cabb296"
    assert REGISTRY["ghost_2_256"].url.endswith("facefusion/models-3.0.0/resolve/main/ghost_2_256.onnx")
    assert REGISTRY["crossface_hififace"].url.endswith("facefusion/models-3.4.0/resolve/main/crossface_hififace.onnx")
    commercial = [spec.name for spec in REGISTRY.values() if "commercial use allowed" in spec.licence]
    assert commercial == ["ghost_1_256", "ghost_2_256", "ghost_3_256"]  # the one Apache-2.0 swapper
    assert REGISTRY["simswap_unofficial_512"].checksum_note == "unchecked (nothing published)"
    assert REGISTRY["xseg_1"].crc32 == "f207afe3" and REGISTRY["bisenet_resnet_18"].crc32 == "6cafc877"
    assert "GPL-3.0" in REGISTRY["xseg_3"].licence and "MIT" in REGISTRY["bisenet_resnet_34"].licence
    inswapper = REGISTRY["inswapper_128"]
    assert inswapper.sha256 == "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"  # the original
    assert inswapper.size == 554_253_681 and inswapper.repo_id == "hacksider/deep-live-cam"
    assert REGISTRY["det_10g"].url.endswith("public-data/insightface/resolve/main/models/buffalo_l/det_10g.onnx")
    assert "datasets/Gourieff/ReActor" in REGISTRY["gfpgan_1.4"].url
    for spec in REGISTRY.values():
        assert spec.sha256 is None or (len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0)
        assert spec.licence
    codeformer = REGISTRY["codeformer"]
    assert codeformer.sha256 is None and codeformer.crc32 == "1456f3ab"
    assert "CRC32 only" in codeformer.checksum_note


def test_resolve_names_accepts_names_files_and_groups() -> None:
    assert resolve_names(["neural"]) == GROUPS["neural"]
    assert resolve_names(["inswapper_128.onnx", "codeformer", "inswapper_128"]) == ("inswapper_128", "codeformer")
    assert resolve_names([]) == tuple(name for name, spec in REGISTRY.items() if not spec.optional)
    with pytest.raises(FaceSwapError) as info:
        resolve_names(["inswapper"])
    assert info.value.code == "invalid_request" and "inswapper_128" in info.value.message


# ------------------------------------------------------------------------------------------------ store
def test_missing_files_without_download_name_the_fix(tmp_path: Path) -> None:
    store = ModelStore(settings_for(tmp_path))
    assert not store.present(["det_10g", "inswapper_128"])
    with pytest.raises(FaceSwapError) as info:
        store.ensure(["det_10g", "inswapper_128"], download=False)
    error = info.value
    assert error.code == "model_not_available"
    assert "det_10g.onnx" in error.message and "inswapper_128.onnx" in error.message
    assert str(tmp_path) not in error.message and "FACESWAP_MODELS_DIR" in error.message, "no host path"
    assert "python -m faceswap models download det_10g inswapper_128" in error.message


def test_offline_setting_refuses_downloads_at_once(tmp_path: Path, twin_files: dict[str, Path]) -> None:
    calls: list[str] = []
    store = ModelStore(settings_for(tmp_path, download=False), downloader=copying_downloader(twin_files, calls))
    with pytest.raises(FaceSwapError) as info:
        store.ensure(["genderage"], download=True)
    assert calls == []
    assert "HF_HUB_OFFLINE" in info.value.message and "models download genderage" in info.value.message


def closed_port() -> int:
    """A local port nobody listens on: a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy_env")
def test_unreachable_hub_fails_fast_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setattr(store_module, "hub_endpoint", lambda: f"http://127.0.0.1:{port}")
    store = ModelStore(settings_for(tmp_path))
    started = time.monotonic()
    with pytest.raises(FaceSwapError) as info:
        store.ensure(["genderage"], download=True)
    assert time.monotonic() - started < store_module.PROBE_TIMEOUT_S + 1
    message = info.value.message
    assert info.value.code == "model_not_available"
    assert "cannot reach the Hugging Face Hub" in message and "offline" in message
    assert str(tmp_path) not in message and "python -m faceswap models download genderage" in message
    assert not list((tmp_path / "models").iterdir())  # no staging folder left behind


@pytest.mark.usefixtures("no_proxy_env")
def test_the_probe_goes_through_a_configured_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "")
    started = time.monotonic()
    with pytest.raises(FaceSwapError) as info:
        store_module.probe_endpoint("https://huggingface.co")
    assert time.monotonic() - started < store_module.PROBE_TIMEOUT_S
    assert f"through the proxy 127.0.0.1:{port}" in info.value.message


def test_download_once_verify_and_never_again(tmp_path: Path, twin_files: dict[str, Path]) -> None:
    calls: list[str] = []
    specs = twin_specs(twin_files)
    store = ModelStore(settings_for(tmp_path), specs=specs, downloader=copying_downloader(twin_files, calls))
    paths = store.ensure(["genderage", "gfpgan_1.4"], download=True)
    assert calls == ["genderage", "gfpgan_1.4"]
    assert paths["genderage"] == tmp_path / "models" / "genderage.onnx"
    assert paths["genderage"].read_bytes() == twin_files["genderage"].read_bytes()
    assert store.present(["genderage", "gfpgan_1.4"])
    again = ModelStore(settings_for(tmp_path), specs=specs, downloader=copying_downloader(twin_files, calls))
    assert again.ensure(["genderage", "gfpgan_1.4"], download=True) == paths
    assert calls == ["genderage", "gfpgan_1.4"]
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".download")]
    assert leftovers == []


class FakeHub:
    """A local stand-in for the Hub's `resolve` endpoint (HEAD + GET), serving fixed bytes for every path."""

    def __init__(self, payload: bytes) -> None:
        import contextlib
        import hashlib
        import http.server

        from api_support import serve_handler

        self.payload = payload
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _headers(self) -> None:
                hub.requests.append((self.command, self.path))
                self.send_response(200)
                self.send_header("Content-Length", str(len(hub.payload)))
                self.send_header("ETag", f'"{hashlib.sha256(hub.payload).hexdigest()}"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()

            def do_HEAD(self) -> None:
                self._headers()

            def do_GET(self) -> None:
                self._headers()
                self.wfile.write(hub.payload)

            def log_message(self, *args: object) -> None:
                pass

        self._serving = contextlib.ExitStack()
        self.url = self._serving.enter_context(serve_handler(Handler))

    def close(self) -> None:
        self._serving.close()


@pytest.mark.usefixtures("no_proxy_env")
def test_the_default_downloader_fetches_through_huggingface_hub(tmp_path: Path, twin_files: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest forces it on; this hub is local
    hub = FakeHub(twin_files["gfpgan_1.4"].read_bytes())
    try:
        monkeypatch.setattr(store_module, "hub_endpoint", lambda: hub.url)
        store = ModelStore(settings_for(tmp_path), specs=twin_specs(twin_files))
        path = store.ensure(["gfpgan_1.4"], download=True)["gfpgan_1.4"]
        assert path.read_bytes() == twin_files["gfpgan_1.4"].read_bytes()
        assert ("GET", "/datasets/Gourieff/ReActor/resolve/main/models/facerestore_models/GFPGANv1.4.onnx") \
            in hub.requests
        served = len(hub.requests)
        store.ensure(["gfpgan_1.4"], download=True)
        assert len(hub.requests) == served  # a good file is never fetched again
        hub.payload = b"not the model " * 10
        with pytest.raises(FaceSwapError) as info:
            store.ensure(["genderage"], download=True)
        assert "damaged or not the expected file" in info.value.message
        assert not store.path("genderage").exists()
        assert sorted(p.name for p in store.directory.iterdir()) == [".GFPGANv1.4.onnx.verified", "GFPGANv1.4.onnx"]
    finally:
        hub.close()


def test_a_damaged_download_is_not_installed(tmp_path: Path, twin_files: dict[str, Path]) -> None:
    calls: list[str] = []
    store = ModelStore(settings_for(tmp_path), specs=twin_specs(twin_files),
                       downloader=copying_downloader(twin_files, calls, corrupt=True))
    with pytest.raises(FaceSwapError) as info:
        store.ensure(["genderage"], download=True)
    assert "sha256" in info.value.message and "Nothing was installed" in info.value.message
    assert not (tmp_path / "models" / "genderage.onnx").exists()


def test_verify_detects_a_corrupted_file_by_its_hash(tmp_path: Path, twin_files: dict[str, Path]) -> None:
    store = ModelStore(settings_for(tmp_path), specs=twin_specs(twin_files))
    target = store.path("genderage")
    target.parent.mkdir(parents=True)
    shutil.copyfile(twin_files["genderage"], target)
    (result,) = store.verify(["genderage"])
    assert result.status == "ok" and result.ok
    data = bytearray(target.read_bytes())
    data[-3] ^= 0x01  # same size, one bit flipped
    target.write_bytes(bytes(data))
    assert store.present(["genderage"])  # the size still matches...
    (result,) = store.verify(["genderage"])
    assert result.status == "checksum_mismatch" and not result.ok  # ...the hash does not
    assert result.sha256 == file_digests(target)[0] != store.spec("genderage").sha256
    with pytest.raises(FaceSwapError) as info:
        store.ensure(["genderage"], download=False)
    assert "damaged" in info.value.message and "models download genderage" in info.value.message


def test_crc32_only_and_unchecked_entries_say_so(tmp_path: Path, twin_files: dict[str, Path]) -> None:
    path = twin_files["gfpgan_1.4"]
    _, crc = file_digests(path)
    base = REGISTRY["gfpgan_1.4"]
    specs = {"by_crc": replace(base, name="by_crc", filename=path.name, size=None, sha256=None, crc32=crc),
             "bad_crc": replace(base, name="bad_crc", filename=path.name, size=None, sha256=None, crc32="00000000"),
             "nothing": replace(base, name="nothing", filename=path.name, size=None, sha256=None, crc32=None)}
    store = ModelStore(Settings(data_dir=tmp_path, models_dir=path.parent), specs=specs)
    by_crc, bad_crc, nothing = store.verify(["by_crc", "bad_crc", "nothing"])
    assert by_crc.ok and "no sha256 is published" in by_crc.message
    assert bad_crc.status == "checksum_mismatch" and "CRC32" in bad_crc.message
    assert nothing.status == "unchecked" and nothing.ok and "cannot be verified" in nothing.message


def test_a_verified_file_is_not_hashed_again_until_it_changes(tmp_path: Path, twin_files: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = ModelStore(settings_for(tmp_path), specs=twin_specs(twin_files))
    target = store.path("genderage")
    target.parent.mkdir(parents=True)
    shutil.copyfile(twin_files["genderage"], target)
    hashed: list[Path] = []
    real_digests = store_module.file_digests
    monkeypatch.setattr(store_module, "file_digests", lambda path: hashed.append(path) or real_digests(path))
    store.ensure(["genderage"], download=False)
    store.ensure(["genderage"], download=False)
    assert hashed == [target]
    time.sleep(0.01)
    target.touch()  # a new mtime: the file may have been replaced, so it is checked again
    store.ensure(["genderage"], download=False)
    assert hashed == [target, target]


# ------------------------------------------------------------------------------------------------ CLI
def args(action: str, *names: str, as_json: bool = True) -> argparse.Namespace:
    return argparse.Namespace(models_action=action, names=list(names), json=as_json, force=False)


def test_cli_verify_reports_a_bad_file_and_exits_1(tmp_path: Path, twin_files: dict[str, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelStore(settings_for(tmp_path), specs=twin_specs(twin_files))
    store.directory.mkdir(parents=True)
    shutil.copyfile(twin_files["genderage"], store.path("genderage"))
    shutil.copyfile(twin_files["genderage"], store.path("gfpgan_1.4"))  # wrong file under GFPGAN's name
    assert run_models(args("verify", "genderage"), store=store) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert run_models(args("verify", "genderage", "gfpgan_1.4"), store=store) == 1
    report = json.loads(capsys.readouterr().out)
    assert [m["status"] for m in report["models"]] == ["ok", "size_mismatch"]
    assert run_models(args("verify", "restorers", as_json=False), store=store) == 1
    captured = capsys.readouterr()
    assert "codeformer" in captured.out and "missing" in captured.out
    assert "python -m faceswap models download gfpgan_1.4 codeformer" in captured.err


def test_cli_list_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelStore(settings_for(tmp_path, download=False))
    assert run_models(args("list"), store=store) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listing["models"]] == list(REGISTRY)
    ghost = next(m for m in listing["models"] if m["name"] == "ghost_1_256")
    assert "Apache-2.0" in json.dumps(ghost) and "commercial use allowed" in json.dumps(ghost)
    assert not any(m["present"] for m in listing["models"])
    assert "CPUExecutionProvider" in listing["onnxruntime"]["available"]
    assert run_models(args("download", "nope"), store=store) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_request"
    assert run_models(args("download", "neural"), store=store) == 2  # offline: the caller must fetch the files
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "model_not_available" and "HF_HUB_OFFLINE" in error["message"]


def test_cli_is_wired_into_python_m_faceswap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from faceswap.cli import main

    monkeypatch.setenv("FACESWAP_MODELS_DIR", str(tmp_path / "m"))
    assert main(["models", "verify", "genderage", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["models"][0]["status"] == "missing"
    assert report["directory"] == str(tmp_path / "m")
