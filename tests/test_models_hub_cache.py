"""Model files already in the Hugging Face Hub cache (as Spaces' `preload_from_hub` leaves them) are found, verified
and used in place, never downloaded again; files that fail verification are refused, unless the user knowingly
allows them (FACESWAP_ALLOW_UNVERIFIED_MODELS=1). No network: the cache is filled by huggingface_hub itself from a
local stand-in for the Hub, or written by hand in the same layout."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from test_models import FakeHub, copying_downloader
from twins import build_genderage, build_gfpgan, twin_specs

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models import store as store_module
from faceswap.models.registry import ModelSpec
from faceswap.models.store import ModelStore
from faceswap.runtime import Runtime

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def twin_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("hub-twins")
    return {"genderage": build_genderage(source / "genderage.onnx"),
            "gfpgan_1.4": build_gfpgan(source / "GFPGANv1.4.onnx")}


@pytest.fixture(scope="module")
def specs(twin_files: dict[str, Path]) -> dict[str, ModelSpec]:
    return twin_specs(twin_files)


@pytest.fixture(scope="module")
def preloaded_cache(tmp_path_factory: pytest.TempPathFactory, twin_files: dict[str, Path],
                    specs: dict[str, ModelSpec]) -> Path:
    """A Hub cache filled by `huggingface_hub.hf_hub_download` itself (from a local stand-in for the Hub), the way
    `preload_from_hub` fills a Space's: blobs, snapshot links and refs/main."""
    import huggingface_hub
    from huggingface_hub import constants

    cache = tmp_path_factory.mktemp("hf-home") / "hub"
    spec = specs["gfpgan_1.4"]
    hub = FakeHub(twin_files["gfpgan_1.4"].read_bytes())
    saved = {name: os.environ.pop(name, None) for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
    offline = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False  # conftest forces it on; this hub is local
    try:
        huggingface_hub.hf_hub_download(spec.repo_id, spec.repo_path, repo_type=spec.repo_type, cache_dir=cache,
                                        endpoint=hub.url)
    finally:
        constants.HF_HUB_OFFLINE = offline
        os.environ.update({name: value for name, value in saved.items() if value is not None})
        hub.close()
    return cache


def cache_listing(cache: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(cache)): (path.lstat().st_size, path.lstat().st_mtime_ns)
            for path in cache.rglob("*")}


def write_cached_file(cache: Path, spec: ModelSpec, data: bytes, *, main: bool = True) -> Path:
    """huggingface_hub's cache layout by hand: models--owner--name (datasets--...) / snapshots/<revision>/<path>,
    and refs/main naming the revision (left out for a revision pinned by commit)."""
    repo = cache / f"{spec.repo_type}s--{spec.repo_id.replace('/', '--')}"
    target = repo / "snapshots" / REVISION / spec.repo_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    if main:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(REVISION)
    return target


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_a_preloaded_file_is_used_in_place_and_never_downloaded(
        tmp_path: Path, preloaded_cache: Path, twin_files: dict[str, Path], specs: dict[str, ModelSpec],
        monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    repo = preloaded_cache / "datasets--Gourieff--ReActor"
    (cached,) = (repo / "snapshots").glob("*/models/facerestore_models/GFPGANv1.4.onnx")
    assert cached.is_symlink() and (repo / "refs" / "main").read_text() == cached.parent.parent.parent.name
    location = str(preloaded_cache if variable == "HF_HUB_CACHE" else preloaded_cache.parent)
    settings = Settings.from_env({"FACESWAP_DATA_DIR": str(tmp_path / "data"),
                                  "FACESWAP_MODELS_DIR": str(tmp_path / "models"), variable: location})
    assert settings.hub_cache_dir == preloaded_cache and settings.allow_model_download
    before = cache_listing(preloaded_cache)
    calls: list[str] = []
    hashed: list[Path] = []
    real_digests = store_module.file_digests
    monkeypatch.setattr(store_module, "file_digests", lambda path: hashed.append(path) or real_digests(path))

    store = ModelStore(settings, specs=specs, downloader=copying_downloader(twin_files, calls))
    assert store.present(["gfpgan_1.4"]) and not store.present(["genderage"])
    assert store.path("gfpgan_1.4") == cached
    path = store.ensure(["gfpgan_1.4"], download=True)["gfpgan_1.4"]
    assert path == cached and calls == []  # used where it is, not fetched
    assert hashed == [cached]  # verified like any other file
    assert not store.local_path("gfpgan_1.4").exists()  # not copied into the models dir
    assert cache_listing(preloaded_cache) == before  # nothing written into the cache

    again = ModelStore(settings, specs=specs, downloader=copying_downloader(twin_files, calls))
    assert again.download(["gfpgan_1.4"]) == {"gfpgan_1.4": cached} and calls == []
    assert hashed == [cached]  # the verification was remembered (in the models dir)
    (result,) = again.verify(["gfpgan_1.4"])
    assert result.status == "ok" and result.path == cached
    restorer = Runtime(settings, models=again).restorer("gfpgan")  # and the model loads from there
    assert restorer.name == "gfpgan"

    # A file not in the cache is still downloaded into the models dir.
    assert store.ensure(["genderage"], download=True)["genderage"] == store.local_path("genderage")
    assert calls == ["genderage"]


def test_a_revision_pinned_without_refs_main_is_found(tmp_path: Path, twin_files: dict[str, Path],
                                                     specs: dict[str, ModelSpec]) -> None:
    cache = tmp_path / "hub"
    cached = write_cached_file(cache, specs["genderage"], twin_files["genderage"].read_bytes(), main=False)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", hub_cache_dir=cache,
                        allow_model_download=False)
    assert ModelStore(settings, specs=specs).ensure(["genderage"], download=False) == {"genderage": cached}


def test_the_models_dir_comes_first_and_a_cache_is_searched_only_when_set(
        tmp_path: Path, twin_files: dict[str, Path], specs: dict[str, ModelSpec]) -> None:
    cache = tmp_path / "hub"
    write_cached_file(cache, specs["genderage"], twin_files["genderage"].read_bytes())
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", hub_cache_dir=cache,
                        allow_model_download=False)
    store = ModelStore(settings, specs=specs)
    store.directory.mkdir()
    shutil.copyfile(twin_files["genderage"], store.local_path("genderage"))
    assert store.ensure(["genderage"], download=False)["genderage"] == store.local_path("genderage")

    elsewhere = ModelStore(settings.with_(models_dir=tmp_path / "empty", hub_cache_dir=None), specs=specs)
    with pytest.raises(FaceSwapError) as info:
        elsewhere.ensure(["genderage"], download=False)
    assert info.value.code == "model_not_available" and "Hugging Face cache" not in info.value.message


def test_a_cached_copy_that_is_not_the_registry_file_is_refused_then_replaced_by_a_download(
        tmp_path: Path, twin_files: dict[str, Path], specs: dict[str, ModelSpec]) -> None:
    cache = tmp_path / "hub"
    wrong = write_cached_file(cache, specs["genderage"], twin_files["gfpgan_1.4"].read_bytes())
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", hub_cache_dir=cache)
    calls: list[str] = []
    store = ModelStore(settings.with_(allow_model_download=False), specs=specs,
                       downloader=copying_downloader(twin_files, calls))
    assert not store.present(["genderage"])  # the size is wrong
    with pytest.raises(FaceSwapError) as info:
        store.ensure(["genderage"], download=False)
    message = info.value.message
    assert info.value.code == "model_not_available" and str(tmp_path) not in message and "Hugging Face cache" in message
    assert "different build" in message and "FACESWAP_ALLOW_UNVERIFIED_MODELS=1" in message
    assert "python -m faceswap models download genderage" in message

    online = ModelStore(settings, specs=specs, downloader=copying_downloader(twin_files, calls))
    path = online.ensure(["genderage"], download=True)["genderage"]
    assert calls == ["genderage"] and path == online.local_path("genderage")
    assert path.read_bytes() == twin_files["genderage"].read_bytes()
    assert wrong.read_bytes() == twin_files["gfpgan_1.4"].read_bytes()  # the cache is left alone


def test_an_unverified_file_is_used_only_when_the_user_allows_it(
        tmp_path: Path, twin_files: dict[str, Path], specs: dict[str, ModelSpec],
        caplog: pytest.LogCaptureFixture) -> None:
    # Another build with the same interface: a genderage twin that answers a different age (other bytes, same I/O).
    other_build = build_genderage(tmp_path / "other" / "genderage.onnx", age=61)
    environ = {"FACESWAP_DATA_DIR": str(tmp_path / "data"), "FACESWAP_MODELS_DIR": str(tmp_path / "models"),
               "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    strict = ModelStore(Settings.from_env(environ), specs=specs)
    strict.directory.mkdir()
    shutil.copyfile(other_build, strict.local_path("genderage"))
    with pytest.raises(FaceSwapError) as info:
        strict.ensure(["genderage"], download=False)
    assert info.value.code == "model_not_available" and "sha256" in info.value.message
    assert strict.notices(["genderage"]) == []

    for word in ("1", "true"):
        settings = Settings.from_env({**environ, "FACESWAP_ALLOW_UNVERIFIED_MODELS": word})
        assert settings.allow_unverified_models
        lenient = ModelStore(settings, specs=specs)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="faceswap.models.store"):
            assert lenient.ensure(["genderage"], download=True) == {"genderage": lenient.local_path("genderage")}
        assert any("unverified" in record.getMessage() and record.levelno == logging.WARNING
                   for record in caplog.records)
        (notice,) = lenient.notices(["genderage", "gfpgan_1.4"])
        assert "genderage.onnx" in notice and "FACESWAP_ALLOW_UNVERIFIED_MODELS" in notice
        assert lenient.present(["genderage"])
    assert not Settings.from_env({**environ, "FACESWAP_ALLOW_UNVERIFIED_MODELS": "0"}).allow_unverified_models
    (result,) = lenient.verify(["genderage"])  # `models verify` still tells the truth
    assert result.status == "checksum_mismatch" and not result.ok


def test_hub_cache_dir_is_resolved_as_huggingface_hub_does(tmp_path: Path) -> None:
    from faceswap.config import hub_cache_dir

    assert hub_cache_dir({"HF_HUB_CACHE": str(tmp_path / "c"), "HF_HOME": str(tmp_path / "h")}) == tmp_path / "c"
    assert hub_cache_dir({"HUGGINGFACE_HUB_CACHE": str(tmp_path / "old")}) == tmp_path / "old"
    assert hub_cache_dir({"HF_HOME": str(tmp_path / "h")}) == tmp_path / "h" / "hub"
    assert hub_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "huggingface" / "hub"
    assert hub_cache_dir({}) == Path.home() / ".cache" / "huggingface" / "hub"
