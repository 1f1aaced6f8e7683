"""The studio's newer parts in Debian's Chromium at 1366×900 (Playwright, no browser download):

- the neural models download only when a person asks: loading the page, Find faces, Preview and Swap fetch
  nothing; "Get the neural models" shows the licences, and accepting them downloads the files through the model
  store from a Hub on loopback that serves twins, after which the page says the neural engine is in use;
- the Advanced panel (closed at first) offers the installed swappers and masks: a person picks the ghost twin
  and the occlusion mask and swaps, and the run's report names them;
- thumbnail captions show whole.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import cv2
import pytest
from api_support import serve_handler
from media_factory import astronaut_face_photo, t1_patches, write_clip
from playwright.sync_api import Browser, Page, expect
from test_browser_ui import CHROMIUM, HUMAN_PAUSE_MS, SERVER_WAIT_MS, browser  # noqa: F401 (a fixture)
from test_ui_advanced import SWAPPER_TWIN, serve_twin_app
from test_ui_app import CLIP, LAYOUT, PATCH, LiveApp, serve_app
from twins import build_twin_set, twin_specs

from faceswap.config import Settings
from faceswap.engines.neural import NEURAL_MODELS
from faceswap.models import store as store_module
from faceswap.models.store import ModelStore
from faceswap.runtime import Runtime

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="BROWSER TEST NOT RUN: /usr/bin/chromium is missing; install it "
                       "with `apt-get install -y chromium` to drive the UI in a real browser"),
]

STATUS = "#job-status input, #job-status textarea"


class TwinHub:
    """The Hub's `resolve` endpoint on 127.0.0.1 (HEAD and GET, as huggingface_hub asks), serving each twin file
    under its registry file name, and noting every request."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _headers(self) -> bytes | None:
                hub.requests.append((self.command, self.path))
                data = hub.files.get(self.path.rsplit("/", 1)[-1])
                if data is None:
                    self.send_error(404)
                    return None
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                return data

            def do_HEAD(self) -> None:
                self._headers()

            def do_GET(self) -> None:
                data = self._headers()
                if data is not None:
                    self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._serving = ExitStack()
        self.url = self._serving.enter_context(serve_handler(Handler))

    def fetched(self) -> set[str]:
        return {path.rsplit("/", 1)[-1] for method, path in self.requests if method == "GET"}

    def close(self) -> None:
        self._serving.close()


@pytest.fixture
def tab(browser: Browser) -> Iterator[Page]:  # noqa: F811  (the fixture imported above)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("studio-media")
    face = root / "astronaut.png"
    cv2.imwrite(str(face), astronaut_face_photo())
    return {"clip": write_clip(root / "three.mp4", t1_patches(PATCH)[:3], LAYOUT, CLIP), "face": face}


@pytest.fixture
def connected_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveApp, TwinHub]]:
    """A server that may download (no HF_HUB_OFFLINE), with no model files, whose Hub is a TwinHub."""
    from huggingface_hub import constants

    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest forces it on; this Hub is local
    twins = build_twin_set(tmp_path / "hub-files")
    neural = {name: twins.paths[name] for name in NEURAL_MODELS}
    hub = TwinHub({path.name: path.read_bytes() for path in neural.values()})
    monkeypatch.setattr(store_module, "hub_endpoint", lambda: hub.url)

    def runtime(settings: Settings) -> Runtime:
        return Runtime(settings, models=ModelStore(settings, specs=twin_specs(neural)))

    try:
        with serve_app(tmp_path / "app", runtime=runtime, environ={"HF_HUB_OFFLINE": ""}) as live:
            assert live.settings.allow_model_download and not live.settings.auto_download
            yield live, hub
    finally:
        hub.close()


@pytest.fixture(scope="module")
def twin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with serve_twin_app(tmp_path_factory.mktemp("studio-twins")) as (live, _):
        yield live


def open_with_media(page: Page, live: LiveApp, media: dict[str, Path]) -> None:
    page.goto(live.url)
    page.locator("#video-input input[type=file]").set_input_files(str(media["clip"]))
    page.locator("#face-input input[type=file]").set_input_files(str(media["face"]))
    expect(page.locator("#video-input")).to_contain_text(media["clip"].stem)
    expect(page.locator("#face-input img")).to_be_visible()


def find_faces_and_pick_the_third(page: Page) -> None:
    page.get_by_role("button", name="Find faces", exact=True).click()
    expect(page.locator("#target-gallery button.thumbnail-item")).to_have_count(3, timeout=SERVER_WAIT_MS)
    expect(page.locator("#source-gallery button.thumbnail-item")).to_have_count(1, timeout=SERVER_WAIT_MS)
    page.wait_for_timeout(HUMAN_PAUSE_MS)
    page.locator("#target-gallery button.thumbnail-item").nth(2).click()
    expect(page.locator("#target-picked")).to_contain_text("Replacing Person 3.", timeout=SERVER_WAIT_MS)
    page.wait_for_timeout(HUMAN_PAUSE_MS)


def assert_captions_whole(page: Page) -> None:
    """Every thumbnail caption fits its label: nothing cut to "Person 3 (…"."""
    captions = page.locator("#target-gallery .caption-label, #source-gallery .caption-label")
    assert captions.count() >= 4
    sizes = captions.evaluate_all("labels => labels.map(l => [l.textContent, l.scrollWidth, l.clientWidth])")
    assert all(scroll <= client for _, scroll, client in sizes), sizes
    assert "Person 3 ✓" in [text for text, _, _ in sizes], sizes


def swap_and_wait(page: Page, engine: str) -> None:
    page.get_by_role("button", name="Swap", exact=True).click()
    expect(page.locator(STATUS)).to_have_value(
        f"Done: swapped {CLIP.frames} of {CLIP.frames} frames with the {engine} engine.", timeout=180_000)


def latest_report(live: LiveApp) -> dict[str, object]:
    with closing(sqlite3.connect(live.settings.data_dir / "jobs.sqlite3")) as db:
        (job_id,) = db.execute("SELECT id FROM jobs ORDER BY seq DESC").fetchone()
    report = live.service.get(job_id).report
    assert report is not None
    return report


def test_models_download_only_when_the_person_accepts_the_licences(
        tab: Page, connected_app: tuple[LiveApp, TwinHub], media: dict[str, Path]) -> None:
    page, (live, hub) = tab, connected_app
    open_with_media(page, live, media)
    expect(page.locator("#engine-line")).to_contain_text("Engine: classic")
    find_faces_and_pick_the_third(page)
    assert_captions_whole(page)
    page.get_by_role("button", name="Preview frame", exact=True).click()
    expect(page.locator("#preview-image img")).to_be_visible(timeout=SERVER_WAIT_MS)
    swap_and_wait(page, "classic")
    assert hub.requests == [], "loading the page, Find faces, Preview and Swap fetched nothing"

    page.get_by_role("button", name="Get the neural models", exact=True).click()
    licences = page.locator("#models-licence")
    expect(licences).to_contain_text("Read their licences before you download")
    for name in NEURAL_MODELS:
        expect(licences).to_contain_text(live.app.state.runtime.models.spec(name).filename)
    expect(licences).to_contain_text("non-commercial research use only")
    assert hub.requests == [], "showing the offer fetched nothing"

    page.get_by_role("button", name="I accept these licences: download", exact=True).click()
    expect(page.locator("#engine-line")).to_contain_text("Engine: neural", timeout=120_000)
    expect(page.locator("#get-models")).to_be_hidden()
    expect(page.locator("#models-panel")).to_be_hidden()
    models = live.app.state.runtime.models
    assert hub.fetched() == {models.spec(name).filename for name in NEURAL_MODELS}
    assert models.present(NEURAL_MODELS)
    assert all(models.local_path(name).read_bytes() == hub.files[models.spec(name).filename]
               for name in NEURAL_MODELS)
    page.get_by_text("Advanced (neural engine)").click()
    expect(page.locator("#swapper input")).to_be_enabled()  # the panel follows the models now here


def test_advanced_panel_picks_a_swapper_and_the_occlusion_mask(
        tab: Page, twin_app: LiveApp, media: dict[str, Path]) -> None:
    page = tab
    open_with_media(page, twin_app, media)
    expect(page.locator("#engine-line")).to_contain_text("Engine: neural")
    expect(page.locator("#swapper")).to_be_hidden()  # closed at first: the page stays calm
    find_faces_and_pick_the_third(page)
    assert_captions_whole(page)

    page.get_by_text("Advanced (neural engine)").click()
    note = page.locator("#advanced-note")
    expect(note).to_contain_text("Swappers not installed here: inswapper_128_fp16, hyperswap_1a_256")
    expect(page.locator("#pixel-boost")).to_contain_text("boost 512 = 16 swapper calls per face")
    page.locator("#swapper input").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(2)
    offered = [text.split("\n")[-1] for text in options.all_inner_texts()]  # the chosen one has a tick first
    assert offered == ["inswapper_128 (128 px)", f"{SWAPPER_TWIN} (256 px)"]
    options.filter(has_text=SWAPPER_TWIN).click()
    boost = page.locator("#pixel-boost")
    expect(boost).not_to_contain_text("384")  # 384 is no whole multiple of 256
    expect(boost).to_contain_text("boost 512 = 4 swapper calls per face")
    page.locator("#mask").get_by_label("occlusion").check()
    page.wait_for_timeout(HUMAN_PAUSE_MS)

    swap_and_wait(page, "neural")
    quality = latest_report(twin_app)["quality"]
    assert isinstance(quality, dict)
    assert (quality["swapper"], quality["mask"], quality["pixel_boost"]) == (SWAPPER_TWIN, ["box", "occlusion"],
                                                                            "native")

    page.locator("#options").get_by_text("Options", exact=True).click()
    page.get_by_label("classic", exact=True).check()  # the classic engine honours none of this: said, not failed later
    expect(note).to_contain_text(re.compile("Not available with the classic engine"))
    expect(page.locator("#swapper input")).to_be_disabled()
    expect(page.locator("#mask").get_by_label("occlusion")).not_to_be_checked()
