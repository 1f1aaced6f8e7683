"""The Live tab in Debian's Chromium with a fake camera: the camera plays a clip made from a real photo (Tom Hanks,
moving a little), the face photo is the astronaut. Pressing Start shows the astronaut's face on the camera picture
within 5 s (judged on screenshots with dlib's face descriptor), the stream keeps going for 30 s without the server's
memory growing, a second visitor over FACESWAP_LIVE_MAX=1 is refused with a message, the last seconds save as a
playable MP4, and Stop stops the picture and frees the place.

Needs `apt-get install -y chromium`; skips, loudly, only when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from media_factory import astronaut_face_photo, background, hanks_photo
from playwright.sync_api import Browser, Page, expect, sync_playwright

from faceswap.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 60_000
"""For the tab's warm-up (the engine loads once) on a loaded machine."""
RUN_S = 30
"""Seconds of streaming during which the server's memory is watched."""
MEMORY_GROWTH_LIMIT = 40 * 1024 * 1024

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="BROWSER TEST NOT RUN: /usr/bin/chromium is missing; install it "
                       "with `apt-get install -y chromium` to drive the UI in a real browser"),
]


def write_camera_clip(path: Path, frames: int = 30) -> Path:
    """A Y4M clip (what Chromium's fake camera plays, in a loop): Hanks' face sliding a few pixels to and fro."""
    face = cv2.resize(hanks_photo(), (240, 240), interpolation=cv2.INTER_CUBIC)
    scene = background(640, 480)
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("wrapped_avframe", rate=15)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            image = scene.copy()
            dx = round(8 * np.sin(2 * np.pi * i / frames))
            image[120:360, 200 + dx:440 + dx] = face
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """The real app on 127.0.0.1, offline, with room for one live session."""
    from faceswap.server import create_app

    settings = Settings.from_env({"FACESWAP_DATA_DIR": str(root / "data"), "FACESWAP_MODELS_DIR": str(root / "m"),
                                  "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1", "FACESWAP_LIVE_MAX": "1"})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def rss_bytes() -> int:
    """This process's resident memory (the server runs in it, on a thread)."""
    fields = Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
    return int(fields[0]) * 1024


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("live-media")
    face = root / "astronaut.png"
    cv2.imwrite(str(face), astronaut_face_photo())
    return {"clip": write_camera_clip(root / "camera.y4m"), "face": face}


@pytest.fixture(scope="module")
def browser(media: dict[str, Path]) -> Iterator[Browser]:
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={media['clip']}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield browser
        browser.close()


def open_live_tab(browser: Browser, url: str, face: Path) -> Page:
    page = browser.new_context(permissions=["camera"], viewport={"width": 1280, "height": 1000}).new_page()
    page.goto(url)
    page.get_by_role("tab", name="Live").click()
    expect(page.locator("#live-status")).to_contain_text("Ready (classic engine)", timeout=WAIT_MS)
    page.locator("#live-face input[type=file]").set_input_files(str(face))
    expect(page.locator("#live-face img")).to_be_visible(timeout=WAIT_MS)
    return page


def frames_so_far(page: Page) -> int:
    match = re.search(r"(\d+) frames", page.locator("#live-stats").inner_text())
    return int(match.group(1)) if match else 0


def screenshot(page: Page, selector: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(page.locator(selector).screenshot(), np.uint8), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def analyzer() -> Any:
    """dlib's face detector and 128-d descriptor (the classic engine's analyzer), loaded before any memory is
    measured."""
    from faceswap.engines.classic import load_classic_engine

    return load_classic_engine().analyzer


def descriptor(analyzer: Any, image: np.ndarray) -> np.ndarray:
    """The descriptor of the largest face on `image`."""
    faces = analyzer.detect(image, None)
    assert faces, "no face found on the screenshot"
    return np.asarray(analyzer.embed(image, max(faces, key=lambda face: face.width)).embedding)


def test_live_swaps_the_camera_for_30_s_refuses_a_second_visitor_saves_and_stops(
        browser: Browser, media: dict[str, Path], analyzer: Any, tmp_path: Path) -> None:
    with serve(tmp_path) as url:
        page = open_live_tab(browser, url, media["face"])
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#live-camera button", has_text="Record").click()
        expect(page.locator("#live-stats")).to_contain_text("Not running", timeout=WAIT_MS)  # frames arrive

        pressed = time.monotonic()
        page.locator("#live-start").click()
        expect(page.locator("#live-stats")).to_contain_text("1/1 face(s) swapped", timeout=5_000)
        expect(page.locator("#live-output img")).to_be_visible(timeout=1_000)
        shown_after = time.monotonic() - pressed
        assert shown_after < 5, shown_after

        swapped, camera = screenshot(page, "#live-output img"), screenshot(page, "#live-camera video")
        source = descriptor(analyzer, astronaut_face_photo())
        hanks = descriptor(analyzer, cv2.resize(hanks_photo(), (240, 240), interpolation=cv2.INTER_CUBIC))
        out, cam = descriptor(analyzer, swapped), descriptor(analyzer, camera)
        assert np.linalg.norm(cam - hanks) < 0.3  # the camera shows Hanks ...
        assert np.linalg.norm(out - source) < np.linalg.norm(out - hanks) - 0.1  # ... the page shows the astronaut

        second = open_live_tab(browser, url, media["face"])
        second.locator("#live-start").click()
        expect(second.locator("#live-status")).to_contain_text("Live is full", timeout=WAIT_MS)

        # Both visitors are in; from here on nothing new is loaded, so the memory should stay flat.
        running_since, counts, memory = time.monotonic(), [frames_so_far(page)], [rss_bytes()]
        while time.monotonic() - running_since < RUN_S:
            time.sleep(RUN_S / 3)
            counts.append(frames_so_far(page))
            memory.append(rss_bytes())
        assert all(later > earlier for earlier, later in itertools.pairwise(counts)), counts
        assert "1/1 face(s) swapped" in page.locator("#live-stats").inner_text()
        growth = memory[-1] - memory[0]
        assert growth < MEMORY_GROWTH_LIMIT, f"server memory grew {growth / 2**20:.0f} MiB in {RUN_S} s: {memory}"

        page.locator("#live-save").click()
        link = page.locator("#live-recording a").first
        expect(link).to_be_visible(timeout=WAIT_MS)
        recording = tmp_path / "recording.mp4"
        recording.write_bytes(httpx.get(link.get_attribute("href") or "", timeout=30).content)
        with av.open(str(recording)) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 10

        page.locator("#live-stop").click()
        expect(page.locator("#live-status")).to_contain_text("Stopped", timeout=WAIT_MS)
        expect(page.locator("#live-stats")).to_contain_text("Not running", timeout=WAIT_MS)  # frames still come
        last_picture = page.locator("#live-output img").get_attribute("src")
        time.sleep(2)
        assert page.locator("#live-output img").get_attribute("src") == last_picture  # none is swapped
        second.locator("#live-start").click()  # the place is free again
        expect(second.locator("#live-status")).to_contain_text("Running", timeout=WAIT_MS)
        second.locator("#live-stop").click()
        expect(second.locator("#live-status")).to_contain_text("Stopped", timeout=WAIT_MS)
