"""Request bodies are settled before they are read: no key → 401 without buffering the body (server memory measured
on a live server subprocess), per-route limits → 413 in each dialect's shape, unknown methods → 405 with Allow."""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from api_helpers import KEY, auth, error_of, server_factory
from api_support import free_socket

TESTS = Path(__file__).parent
MB = 1024 * 1024


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    with server_factory(tmp_path) as factory:
        yield factory


def _rss(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


@pytest.fixture
def live_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = (sock := free_socket()).getsockname()[1]
    sock.close()
    env = {**os.environ, "FACESWAP_DATA_DIR": str(tmp_path / "data"), "FACESWAP_MODELS_DIR": str(tmp_path / "m"),
           "FACESWAP_API_KEYS": KEY, "FACESWAP_MAX_INLINE_MB": "8", "PORT": str(port), "FAKE_FRAMES": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", "import api_support; api_support.serve_fake_from_env()"],
                               env=env, cwd=TESTS, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                if requests.get(base + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(15)


def _post_raw(port: int, path: str, size: int, headers: dict[str, str]) -> tuple[int, int, float]:
    """POST `size` bytes of JSON-looking body, stopping as soon as the server answers; returns (status, bytes
    sent, seconds until the answer)."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "".join(f"{name}: {value}\r\n" for name, value in {
        "Host": f"127.0.0.1:{port}", "Content-Type": "application/json", "Content-Length": str(size),
        **headers}.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())
    chunk, sent = b"A" * (256 * 1024), 0
    select.select([sock], [], [], 2.0)  # a server that decides on the headers answers now, like to Expect: 100
    try:
        while sent < size and not select.select([sock], [], [], 0)[0]:
            part = chunk[: size - sent]
            sock.sendall(part)
            sent += len(part)
        select.select([sock], [], [], 30)
        answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        answer = b""
    finally:
        sock.close()
    took = time.monotonic() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, sent, took


def test_a_large_body_without_a_key_is_refused_before_it_is_read(live_process: tuple[str, int]) -> None:
    base, pid = live_process
    port = int(base.rsplit(":", 1)[1])
    size = 131 * MB
    before = _rss(pid)
    results: list[tuple[int, int, float]] = []
    threads = [threading.Thread(target=lambda: results.append(
        _post_raw(port, "/v1/videos/generations", size, {}))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = _rss(pid)
    grew = after["VmHWM"] - before["VmRSS"]
    print(f"4 x {size / MB:.0f} MB without a key: peak RSS {before['VmRSS'] / MB:.1f} -> {after['VmHWM'] / MB:.1f} MB "
          f"(+{grew / MB:.1f} MB); answers {[(s, round(b / MB, 1), round(t, 2)) for s, b, t in results]}")
    assert [status for status, _, _ in results] == [401] * 4
    assert all(sent < 16 * MB for _, sent, _ in results), "the server answered before taking the body"
    assert grew < 20 * MB, f"server memory grew by {grew / MB:.0f} MB for bodies it refused"


def test_memory_for_the_largest_allowed_body_is_bounded(live_process: tuple[str, int]) -> None:
    base, pid = live_process
    payload = base64.b64encode(os.urandom(8 * MB)).decode()  # FACESWAP_MAX_INLINE_MB=8: the largest allowed
    body = json.dumps({"model": "openoctopus/video-face-swap",
                       "input": {"video": f"data:video/mp4;base64,{payload}",
                                 "face_image": f"data:image/jpeg;base64,{payload}"}}).encode()
    before = _rss(pid)
    response = requests.post(base + "/v1/videos/generations", data=body, timeout=60,
                             headers={**auth(), "Content-Type": "application/json"})
    after = _rss(pid)
    grew = after["VmHWM"] - before["VmRSS"]
    print(f"one {len(body) / MB:.1f} MB body with a key: peak RSS {before['VmRSS'] / MB:.1f} -> "
          f"{after['VmHWM'] / MB:.1f} MB (+{grew / MB:.1f} MB), answer {response.status_code}")
    assert response.status_code in (200, 400, 415), response.text[:300]
    assert grew < 8 * len(body), f"{grew / MB:.0f} MB for a {len(body) / MB:.0f} MB body"
    too_big = body + b" " * (12 * MB)
    status, sent, _ = _post_raw(int(base.rsplit(":", 1)[1]), "/v1/videos/generations", len(too_big),
                                {"Authorization": f"Bearer {KEY}"})
    assert status == 413 and sent < 16 * MB, "over the route's limit: refused on Content-Length"


DIALECTS = (("/v1/videos/generations", "openoctopus"), ("/v2/videofaceswap", "segmind"),
            ("/api/v3/wavespeed-ai/video-face-swap", "wavespeed"))


@pytest.mark.parametrize(("path", "dialect"), DIALECTS)
def test_a_keyed_body_over_the_json_limit_is_413_in_the_dialects_shape(start, path: str, dialect: str) -> None:
    server = start(max_inline_bytes=100_000)
    resp = requests.post(server.base + path, data=b'{"video": "' + b"A" * 400_000 + b'"}', timeout=30,
                         headers={**auth(), "Content-Type": "application/json"})
    assert resp.status_code == 413
    code, message = error_of(resp, dialect)
    assert "larger than" in message and code in ("media_too_large", None)


def test_small_routes_take_small_bodies_and_inline_data_has_its_own_limit(start) -> None:
    server = start(max_inline_bytes=100_000)
    cancel = requests.post(f"{server.base}/v1/tasks/{'a' * 32}/cancel", data=b"{" + b" " * 100_000 + b"}",
                           headers={**auth(), "Content-Type": "application/json"}, timeout=30)
    assert cancel.status_code == 413, "a route without media takes 64 KiB"
    ticket = requests.post(f"{server.base}/api/v3/media/uploads", json={"filename": "x" * 70_000, "size": 1},
                           headers=auth(), timeout=30)
    assert ticket.status_code == 413 and ticket.json()["code"] == 413
    inline = base64.b64encode(b"\0" * 150_000).decode()
    resp = requests.post(f"{server.base}/v1/videos/generations", headers=auth(), timeout=30, json={
        "model": "openoctopus/video-face-swap", "input": {"video": inline, "face_image": inline[:1000]}})
    assert resp.status_code == 413
    code, message = error_of(resp, "openoctopus")
    assert code == "media_too_large" and "inline data" in message and "0.1 MB" in message


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_unknown_methods_are_405_with_allow(start, method: str) -> None:
    server = start()
    resp = requests.request(method, f"{server.base}/v1/tasks/{'a' * 32}", headers=auth(), timeout=30)
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET"
    assert error_of(resp, "openoctopus")[0] == "invalid_request"
    seg = requests.request(method, f"{server.base}/v2/videofaceswap", timeout=30)
    assert seg.status_code == 405 and seg.headers["Allow"] == "POST" and "not allowed" in error_of(seg, "segmind")[1]


def test_openapi_lists_the_real_status_codes_in_each_dialects_shape(start) -> None:
    document = requests.get(start().base + "/openapi.json", timeout=30).json()
    create = document["paths"]["/v1/videos/generations"]["post"]["responses"]
    assert {"200", "400", "401", "404", "413", "415", "429"} <= set(create) and "422" not in create
    assert create["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenOctopusError")
    segmind = document["paths"]["/v2/requests/{request_id}/status"]["get"]["responses"]
    assert {"401", "404", "422"} <= set(segmind)
    upload = document["paths"]["/api/v3/media/uploads"]["post"]["responses"]
    assert upload["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/WaveSpeedError")
    assert "Retry-After" in upload["429"]["headers"]
