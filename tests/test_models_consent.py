"""Models download only when a person asks: `models download`, the UI's button (`ModelStore.download_for_user`) or
FACESWAP_AUTO_DOWNLOAD=1. With a Hub that answers (a local stand-in for its endpoint), nothing a job does fetches a
file on its own, and `auto` says in one short line that the classic engine ran."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_models import FakeHub, twin_files  # noqa: F401  (twin_files is a fixture)
from twins import twin_specs

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models import store as store_module
from faceswap.models.cli import run_models
from faceswap.models.store import ModelStore
from faceswap.runtime import Runtime


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, twin_files: dict[str, Path]) -> Iterator[FakeHub]:  # noqa: F811
    from huggingface_hub import constants

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest forces it on; this hub is local
    fake = FakeHub(twin_files["gfpgan_1.4"].read_bytes())
    monkeypatch.setattr(store_module, "hub_endpoint", lambda: fake.url)
    try:
        yield fake
    finally:
        fake.close()


def connected(tmp_path: Path, **changes: object) -> Settings:
    """A machine that could download (no HF_HUB_OFFLINE)."""
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", allow_model_download=True,
                    hub_cache_dir=None).with_(**changes)


@pytest.mark.slow  # loads the classic engine (several seconds on a busy machine)
def test_auto_without_models_runs_classic_and_says_so_in_one_line(tmp_path: Path, hub: FakeHub) -> None:
    engine = Runtime(connected(tmp_path)).engine("auto")
    assert engine.name == "classic"
    (notice,) = engine.notices
    assert len(notice) < 200 and str(tmp_path) not in notice and "http" not in notice
    assert "classic engine" in notice and "models download neural" in notice
    assert hub.requests == [], "nothing was fetched"


def test_jobs_never_download_without_consent(tmp_path: Path, hub: FakeHub) -> None:
    runtime = Runtime(connected(tmp_path))
    with pytest.raises(FaceSwapError) as caught:
        runtime.engine("neural")
    assert caught.value.code == "model_not_available" and str(tmp_path) not in caught.value.message
    for kind in ("gfpgan", "codeformer"):
        with pytest.raises(FaceSwapError):
            runtime.restorer(kind)
    assert hub.requests == [], "nothing was fetched"
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_auto_download_is_an_explicit_setting(tmp_path: Path, hub: FakeHub,
                                             twin_files: dict[str, Path]) -> None:  # noqa: F811
    assert Settings.from_env({}).auto_download is False
    assert Settings.from_env({"FACESWAP_AUTO_DOWNLOAD": "1"}).auto_download is True
    specs = twin_specs(twin_files)
    offline = connected(tmp_path / "off", auto_download=True, allow_model_download=False)
    with pytest.raises(FaceSwapError):
        Runtime(offline, models=ModelStore(offline, specs=specs)).restorer("gfpgan")
    assert hub.requests == [], "HF_HUB_OFFLINE still wins"
    asked = connected(tmp_path, auto_download=True)
    runtime = Runtime(asked, models=ModelStore(asked, specs=specs))
    assert runtime.restorer("gfpgan") is not None
    assert any(path.endswith("GFPGANv1.4.onnx") for _, path in hub.requests), "the setting lets jobs download"


def test_the_ui_button_downloads_on_request(tmp_path: Path, hub: FakeHub,
                                            twin_files: dict[str, Path]) -> None:  # noqa: F811
    store = ModelStore(connected(tmp_path), specs=twin_specs(twin_files))
    (offer,) = store.offer(["gfpgan_1.4"])
    assert offer.filename == "GFPGANv1.4.onnx" and "CC BY-NC-SA" in offer.licence and not offer.present
    line = store.download_for_user(["gfpgan_1.4"])
    assert line.startswith("Downloaded 1 model file") and len(line) < 200
    assert store.present(["gfpgan_1.4"]) and len(hub.requests) > 0
    assert store.download_for_user(["gfpgan_1.4"]) == "The models are already downloaded."


def test_models_download_shows_each_licence(tmp_path: Path, hub: FakeHub, twin_files: dict[str, Path],  # noqa: F811
                                            capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelStore(connected(tmp_path), specs=twin_specs(twin_files))
    args = argparse.Namespace(models_action="download", names=["gfpgan_1.4"], json=False, force=False)
    assert run_models(args, store=store) == 0
    err = capsys.readouterr().err
    assert "GFPGANv1.4.onnx" in err and "licence: GFPGAN" in err and "CC BY-NC-SA 4.0" in err


def test_the_pages_download_button_says_plainly_when_the_hub_cannot_be_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI's "Get the neural models" on a machine that cannot reach the Hub: one plain sentence, no host path,
    nothing installed (the browser test covers the download that completes)."""
    import gradio as gr
    from huggingface_hub import constants
    from test_models import closed_port

    from faceswap.ui.models_offer import DOWNLOAD_FAILED, ModelsOffer

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(store_module, "hub_endpoint", lambda: f"http://127.0.0.1:{closed_port()}")
    runtime = Runtime(connected(tmp_path))
    with pytest.raises(gr.Error) as caught:
        ModelsOffer(runtime).download(progress=lambda *args, **kwargs: None)
    assert caught.value.message == DOWNLOAD_FAILED and str(tmp_path) not in DOWNLOAD_FAILED
    assert not list((tmp_path / "models").glob("*.onnx"))
