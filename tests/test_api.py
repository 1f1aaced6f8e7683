"""The REST contract on a live server (uvicorn on 127.0.0.1): status codes and bodies of every dialect for auth,
unknown ids and routes, bad payloads, failed and cancelled jobs, the rate limit, uploads, files and SSRF.

The job runner here is the fake one (tests/api_support.py): these tests are about the HTTP contract and the queue;
tests/test_api_clients.py runs real swaps through the official SDKs.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import requests
from api_support import FakeRunner, FakeRuntime, file_server, live_server
from media_factory import ClipSpec, hanks_photo, row_layout, t1_patches, write_clip

from faceswap.config import Settings
from faceswap.jobs import JobService
from faceswap.server import create_app, exposure_warnings

KEY, OTHER_KEY = "test-key-1", "test-key-2"
OO_MODEL = "openoctopus/video-face-swap"


@dataclass
class Server:
    base: str
    service: JobService
    runner: FakeRunner
    settings: Settings


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import cv2

    folder = tmp_path_factory.mktemp("api-media")
    clip = write_clip(folder / "clip.mp4", t1_patches(100)[:2], row_layout(2, 100, 320, 240),
                      ClipSpec(width=320, height=240, fps=10, frames=8))
    face = folder / "face.jpg"
    cv2.imwrite(str(face), hanks_photo())
    return {"video": clip, "face": face}


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    stack = contextlib.ExitStack()
    count = 0

    def start(runner: FakeRunner | None = None, **changes: object) -> Server:
        nonlocal count
        count += 1
        settings = Settings(data_dir=tmp_path / f"data{count}", models_dir=tmp_path / "models",
                            api_keys=frozenset({KEY, OTHER_KEY}), rate_limit_per_minute=1000,
                            fetch_timeout_s=10).with_(**changes)
        runner = runner or FakeRunner(frames=3)
        runner.settings = settings
        app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings), runner=runner)
        base = stack.enter_context(live_server(app))
        return Server(base, app.state.service, runner, settings)

    with stack:
        yield start


def data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def oo_create(server: Server, media: dict[str, Path], key: str = KEY, **extra: object) -> requests.Response:
    body = {"model": OO_MODEL, "prompt": "swap", "input": {
        "video": data_uri(media["video"], "video/mp4"), "face_image": data_uri(media["face"], "image/jpeg"),
        "target_index": 0, **extra}}
    return requests.post(f"{server.base}/v1/videos/generations", json=body, headers=auth(key), timeout=60)


def seed_poll(base: str, task_id: str, key: str = KEY, timeout_s: float = 60, interval_s: float = 0.2) -> dict:
    """The OpenOctopus seed's own polling loop (Python version), with a shorter interval."""
    started = time.time()
    while time.time() - started < timeout_s:
        resp = requests.get(f"{base}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        task = resp.json()
        if resp.status_code >= 400:
            raise RuntimeError(task.get("error", {}).get("message", "task query failed"))
        status = task.get("status")
        if status in ("queued", "processing"):
            time.sleep(interval_s)
            continue
        if status == "succeeded":
            return task
        raise RuntimeError(task.get("error_message", "task failed"))
    raise TimeoutError(task_id)


def wait_finished(server: Server, job_id: str) -> None:
    assert server.service.wait(job_id, timeout=30).finished


# -- OpenOctopus ---------------------------------------------------------------------------------------------------

def test_openoctopus_create_poll_and_download(start, media) -> None:
    server = start()
    resp = oo_create(server, media)
    assert resp.status_code == 200
    created = resp.json()
    assert set(created) == {"id", "status", "model"} and created["status"] == "queued" and created["model"] == OO_MODEL
    task = seed_poll(server.base, created["id"])
    assert task["capability"] == "video_generation" and task["error"] is None
    assert set(task["queue"]) == {"enabled", "position", "size", "concurrency", "upstreamQueueSupported",
                                  "upstreamCancelSupported"}
    assert task["queue"]["position"] is None and task["queue"]["concurrency"] == 1
    datetime.fromisoformat(task["created_at"].replace("Z", "+00:00"))
    payload = task["output_payload"]
    assert payload["format"] == "openoctopus.video.output.v1"
    asset = payload["assets"][0]
    assert asset["type"] == "video" and asset["mimeType"] == "video/mp4"
    assert asset["url"].startswith(server.base + "/v1/files/")
    download = requests.get(asset["url"], timeout=30)  # no key: the id is the capability
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    assert download.content == media["video"].read_bytes()


def test_openoctopus_sync_mode_and_base64_output(start, media) -> None:
    server = start()
    resp = oo_create(server, media, enable_sync_mode=True, enable_base64_output=True)
    assert resp.status_code == 200
    task = resp.json()
    assert task["status"] == "succeeded" and task["output_payload"] is not None
    url = task["output_payload"]["assets"][0]["url"]
    prefix = "data:video/mp4;base64,"
    assert url.startswith(prefix) and base64.b64decode(url[len(prefix):]) == media["video"].read_bytes()


def test_openoctopus_failed_and_cancelled_tasks(start, media) -> None:
    server = start(FakeRunner(frames=2, fail_code="target_face_not_found"))
    task_id = oo_create(server, media).json()["id"]
    wait_finished(server, task_id)
    resp = requests.get(f"{server.base}/v1/tasks/{task_id}", headers=auth(), timeout=30)
    assert resp.status_code == 200
    task = resp.json()
    assert task["status"] == "failed" and task["output_payload"] is None
    assert task["error"]["code"] == "target_face_not_found" and task["error"]["retryable"] is False
    assert isinstance(task["error_message"], str) and task["error_message"]
    with pytest.raises(RuntimeError, match="fake runner failed"):
        seed_poll(server.base, task_id)

    slow = start(FakeRunner(frames=300, delay_s=0.02))
    running = oo_create(slow, media).json()["id"]
    queued = oo_create(slow, media).json()["id"]
    assert slow.runner.started.wait(10)
    for task_id in (queued, running):
        resp = requests.post(f"{slow.base}/v1/tasks/{task_id}/cancel", headers=auth(), timeout=30)
        assert resp.status_code == 200
        body = resp.json()
        assert body["status"] == "cancelled" and body["error"]["code"] == "task_cancelled"
        assert body["error_message"] and body["queue"]["position"] is None
    wait_finished(slow, running)
    again = requests.post(f"{slow.base}/v1/tasks/{running}/cancel", headers=auth(), timeout=30).json()
    assert again["status"] == "cancelled", "a finished task comes back unchanged"
    with pytest.raises(RuntimeError, match="cancelled"):
        seed_poll(slow.base, running)


def test_openoctopus_bad_payloads(start, media) -> None:
    server = start()
    url = f"{server.base}/v1/videos/generations"
    cases = [
        ({"model": OO_MODEL, "input": {"face_image": "data:,x"}}, 400, "input.video"),
        ({"model": OO_MODEL, "input": {"video": "https://example.com/v.mp4", "face_image": "https://example.com/f",
                                       "target_index": 11}}, 400, "input.target_index"),
        ({"model": OO_MODEL, "input": {"video": "/etc/passwd", "face_image": "https://example.com/f.jpg"}}, 400,
         "paths on the server are not accepted"),
        ({"model": "other/model", "input": {"video": "https://example.com/v.mp4", "face_image": "x"}}, 404,
         "other/model"),
        ({"input": {}}, 400, "model"),
    ]
    for body, status, needle in cases:
        resp = requests.post(url, json=body, headers=auth(), timeout=30)
        assert resp.status_code == status, (body, resp.text)
        error = resp.json()["error"]
        assert set(error) == {"code", "message", "retryable"} and needle in error["message"]
        assert error["code"] == ("model_not_available" if status == 404 else "invalid_request")
    resp = requests.post(url, data="{not json", headers={**auth(), "Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
    resp = requests.post(url, data="video=x", headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"},
                         timeout=30)
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "unsupported_media"


# -- Segmind -------------------------------------------------------------------------------------------------------

def segmind_body(media: dict[str, Path], **extra: object) -> dict:
    return {"source_img": data_uri(media["face"], "image/jpeg"), "video_input": data_uri(media["video"], "video/mp4"),
            "face_restore": False, "input_faces_index": "0", "source_faces_index": "0", "frame_load_cap": 0,
            "detect_gender_input": "no", "detect_gender_source": "no", "base_64": False, **extra}


def test_segmind_async_flow_and_failures(start, media) -> None:
    server = start()
    headers = {"x-api-key": KEY}
    resp = requests.post(f"{server.base}/v2/videofaceswap", json=segmind_body(media), headers=headers, timeout=30)
    assert resp.status_code == 200
    submitted = resp.json()
    assert submitted["status"] == "QUEUED"
    assert submitted["status_url"] == f"{server.base}/v2/requests/{submitted['request_id']}/status"
    assert submitted["response_url"] == f"{server.base}/v2/requests/{submitted['request_id']}"
    wait_finished(server, submitted["request_id"])
    status = requests.get(submitted["status_url"], headers=headers, timeout=30)
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    result = requests.get(submitted["response_url"], headers=headers, timeout=30).json()
    assert result["status"] == "COMPLETED" and "metrics" in result
    assert requests.get(result["output"], timeout=30).content == media["video"].read_bytes()

    failing = start(FakeRunner(frames=2, fail_code="target_face_not_found"))
    submitted = requests.post(f"{failing.base}/v2/videofaceswap", json=segmind_body(media), headers=headers,
                              timeout=30).json()
    wait_finished(failing, submitted["request_id"])
    for url in (submitted["status_url"], submitted["response_url"]):
        resp = requests.get(url, headers=headers, timeout=30)
        assert resp.status_code == 422
        body = resp.json()
        assert body["status"] == "FAILED" and body["request_id"] == submitted["request_id"]
        assert isinstance(body["error"], str) and body["error"]
    sync = requests.post(f"{failing.base}/v1/videofaceswap", json=segmind_body(media), headers=headers, timeout=60)
    assert sync.status_code == 422 and isinstance(sync.json()["error"], str)


def test_segmind_reads_a_cancelled_job_as_failed(start, media) -> None:
    server = start(FakeRunner(frames=300, delay_s=0.02))
    submitted = requests.post(f"{server.base}/v2/videofaceswap", json=segmind_body(media), headers=auth(),
                              timeout=30).json()
    assert requests.get(submitted["status_url"], headers=auth(), timeout=30).json()["status"] in (
        "QUEUED", "PROCESSING")
    server.service.cancel(submitted["request_id"])
    resp = requests.get(submitted["status_url"], headers=auth(), timeout=30)
    assert resp.status_code == 422 and resp.json()["status"] == "FAILED" and "cancelled" in resp.json()["error"]


def test_segmind_sync_answers_bytes_or_base64(start, media) -> None:
    server = start()
    resp = requests.post(f"{server.base}/v1/videofaceswap", json=segmind_body(media), headers=auth(), timeout=60)
    assert resp.status_code == 200 and resp.headers["content-type"] == "video/mp4"
    assert resp.content == media["video"].read_bytes()
    resp = requests.post(f"{server.base}/v1/videofaceswap", json=segmind_body(media, base_64=True), headers=auth(),
                         timeout=60)
    body = resp.json()
    assert body["status"] == "COMPLETED" and base64.b64decode(body["output"]) == media["video"].read_bytes()
    submitted = requests.post(f"{server.base}/v2/videofaceswap", json=segmind_body(media, base_64=True),
                              headers=auth(), timeout=30).json()
    wait_finished(server, submitted["request_id"])
    output = requests.get(submitted["response_url"], headers=auth(), timeout=30).json()["output"]
    assert base64.b64decode(output) == media["video"].read_bytes(), "v2 base64 output is bare base64"


def test_segmind_fields_map_onto_options(start, media) -> None:
    server = start()
    body = segmind_body(media, input_faces_index="1, 0", source_faces_index="0,0", face_restore=True,
                        codeformer_weight=0.5, face_restore_visibility=0.7, frame_load_cap=5,
                        detect_gender_input="female", detect_gender_source="male")
    body["source_img"] = base64.b64encode(media["face"].read_bytes()).decode()  # bare base64 is accepted
    resp = requests.post(f"{server.base}/v2/videofaceswap", json=body, headers=auth(), timeout=30)
    assert resp.status_code == 400 and "source_faces_index" in resp.json()["error"], "duplicate indices refused"
    body["source_faces_index"] = "0,1"
    resp = requests.post(f"{server.base}/v2/videofaceswap", json=body, headers=auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    options = server.service.get(resp.json()["request_id"]).options
    assert options.target_faces == [1, 0] and options.source_faces == [0, 1] and options.order == "left_to_right"
    assert (options.restore, options.codeformer_weight, options.restore_visibility) == ("codeformer", 0.5, 0.7)
    assert (options.frame_cap, options.target_gender, options.source_gender) == (5, "female", "male")
    assert Path(options.face).read_bytes() == media["face"].read_bytes()
    for field, value in (("frame_load_cap", 501), ("detect_gender_input", "yes"), ("codeformer_weight", 2)):
        resp = requests.post(f"{server.base}/v2/videofaceswap", json=segmind_body(media, **{field: value}),
                             headers=auth(), timeout=30)
        assert resp.status_code == 400 and field in resp.json()["error"], resp.text


# -- WaveSpeed -----------------------------------------------------------------------------------------------------

def test_wavespeed_upload_submit_and_result(start, media) -> None:
    server = start()
    ticket = requests.post(f"{server.base}/api/v3/media/uploads", headers=auth(), timeout=30, json={
        "filename": "clip.mp4", "size": media["video"].stat().st_size}).json()
    assert ticket["code"] == 200
    upload = ticket["data"]["upload"]
    assert upload["method"] == "PUT" and upload["url"].startswith(server.base)
    assert upload["headers"]["Content-Type"] == "video/mp4"
    assert requests.get(ticket["data"]["download_url"], timeout=30).status_code == 404, "not readable before PUT"
    put = requests.put(upload["url"], data=media["video"].read_bytes(), headers=upload["headers"], timeout=30)
    assert 200 <= put.status_code < 300
    assert requests.put(upload["url"], data=b"again", timeout=30).status_code == 404, "the link works once"
    assert requests.get(ticket["data"]["download_url"], timeout=30).content == media["video"].read_bytes()

    resp = requests.post(f"{server.base}/api/v3/wavespeed-ai/video-face-swap", headers=auth(), timeout=30, json={
        "video": ticket["data"]["download_url"], "face_image": data_uri(media["face"], "image/jpeg")})
    assert resp.status_code == 200
    body = resp.json()
    assert body["code"] == 200 and body["message"] == "success"
    data = body["data"]
    assert data["status"] == "created" and data["outputs"] == [] and data["model"] == "wavespeed-ai/video-face-swap"
    assert data["urls"]["get"] == f"{server.base}/api/v3/predictions/{data['id']}/result"
    wait_finished(server, data["id"])
    result = requests.get(data["urls"]["get"], headers=auth(), timeout=30).json()
    assert result["code"] == 200 and result["data"]["status"] == "completed" and result["data"]["error"] == ""
    assert requests.get(result["data"]["outputs"][0], timeout=30).content == media["video"].read_bytes()
    assert server.runner.calls[-1] == str(server.service.file_path(ticket["data"]["download_url"].rsplit("/", 1)[1])), \
        "our own file URL is read from the store, not fetched"


def test_wavespeed_failed_cancelled_and_sync(start, media) -> None:
    server = start(FakeRunner(frames=2, fail_code="source_face_not_found"))
    body = {"video": data_uri(media["video"], "video/mp4"), "face_image": data_uri(media["face"], "image/jpeg")}
    url = f"{server.base}/api/v3/wavespeed-ai/video-face-swap"
    resp = requests.post(url, json={**body, "enable_sync_mode": True}, headers=auth(), timeout=60)
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["status"] == "failed" and isinstance(data["error"], str) and data["error"]

    slow = start(FakeRunner(frames=300, delay_s=0.02))
    task_id = requests.post(f"{slow.base}/api/v3/wavespeed-ai/video-face-swap", json=body, headers=auth(),
                            timeout=30).json()["data"]["id"]
    slow.service.cancel(task_id)
    result = requests.get(f"{slow.base}/api/v3/predictions/{task_id}/result", headers=auth(), timeout=30)
    assert result.status_code == 200 and result.json()["data"]["status"] == "cancelled"

    ok = start()
    resp = requests.post(f"{ok.base}/api/v3/wavespeed-ai/video-face-swap",
                         json={**body, "enable_sync_mode": True, "enable_base64_output": True}, headers=auth(),
                         timeout=60)
    data = resp.json()["data"]
    assert data["status"] == "completed"
    assert base64.b64decode(data["outputs"][0].split(",", 1)[1]) == media["video"].read_bytes()


def test_wavespeed_upload_rules(start) -> None:
    server = start(max_upload_bytes=1000)
    url = f"{server.base}/api/v3/media/uploads"
    big = requests.post(url, json={"filename": "x.mp4", "size": 5000}, headers=auth(), timeout=30)
    assert big.status_code == 413 and big.json()["code"] == 413 and big.json()["data"] is None
    ticket = requests.post(url, json={"filename": "x.mp4", "size": 10}, headers=auth(), timeout=30).json()["data"]
    wrong = ticket["upload"]["url"].rsplit("=", 1)[0] + "=not-the-token"
    assert requests.put(wrong, data=b"0123456789", timeout=30).status_code == 401
    short = requests.put(ticket["upload"]["url"], data=b"0123", timeout=30)
    assert short.status_code == 400 and "10" in short.json()["message"]
    ticket = requests.post(url, json={"filename": "x.mp4", "size": 4}, headers=auth(), timeout=30).json()["data"]
    long = requests.put(ticket["upload"]["url"], data=b"0123456789", timeout=30)
    assert long.status_code == 400
    assert requests.get(ticket["download_url"], timeout=30).status_code == 404


# -- shared rules --------------------------------------------------------------------------------------------------

ROUTES = [  # (method, path, dialect)
    ("POST", "/v1/videos/generations", "openoctopus"), ("GET", "/v1/tasks/{id}", "openoctopus"),
    ("POST", "/v1/tasks/{id}/cancel", "openoctopus"), ("POST", "/v2/videofaceswap", "segmind"),
    ("GET", "/v2/requests/{id}/status", "segmind"), ("GET", "/v2/requests/{id}", "segmind"),
    ("POST", "/v1/videofaceswap", "segmind"), ("POST", "/api/v3/wavespeed-ai/video-face-swap", "wavespeed"),
    ("GET", "/api/v3/predictions/{id}/result", "wavespeed"), ("POST", "/api/v3/media/uploads", "wavespeed"),
]


def error_of(resp: requests.Response, dialect: str) -> tuple[str | None, str]:
    """(code, message) from an error body, checking it has exactly the dialect's shape."""
    body = resp.json()
    if dialect == "segmind":
        assert set(body) == {"error"} and isinstance(body["error"], str)
        return None, body["error"]
    if dialect == "wavespeed":
        assert set(body) == {"code", "message", "data"} and body["code"] == resp.status_code and body["data"] is None
        return None, body["message"]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "retryable"}
    return body["error"]["code"], body["error"]["message"]


@pytest.mark.parametrize(("method", "path", "dialect"), ROUTES)
def test_keys_are_required_and_checked(start, method: str, path: str, dialect: str) -> None:
    server = start()
    url = server.base + path.replace("{id}", "0123")
    missing = requests.request(method, url, json={}, timeout=30)
    assert missing.status_code == 401
    code, message = error_of(missing, dialect)
    assert code in (None, "unauthorized") and "API key" in message
    wrong = requests.request(method, url, json={}, headers={"x-api-key": "nope"}, timeout=30)
    assert wrong.status_code == 401
    code, message = error_of(wrong, dialect)
    assert code in (None, "invalid_api_key") and "invalid" in message


@pytest.mark.parametrize(("method", "path", "dialect"), [route for route in ROUTES if "{id}" in route[1]])
def test_unknown_ids_are_404_in_the_dialect(start, method: str, path: str, dialect: str) -> None:
    server = start()
    resp = requests.request(method, server.base + path.replace("{id}", "no-such-task"), headers=auth(), timeout=30)
    assert resp.status_code == 404
    code, message = error_of(resp, dialect)
    assert code in (None, "task_not_found") and "no-such-task" in message


@pytest.mark.parametrize(("method", "path", "dialect", "status"), [
    ("GET", "/v1/nothing", "openoctopus", 404), ("POST", "/v2/othermodel", "segmind", 404),
    ("POST", "/api/v3/other-vendor/other-model", "wavespeed", 404), ("DELETE", "/v1/tasks/abc", "openoctopus", 405),
    ("GET", "/v2/videofaceswap", "segmind", 405), ("GET", "/api/v3/media/uploads", "wavespeed", 405),
])
def test_unknown_routes_answer_in_the_dialect(start, method: str, path: str, dialect: str, status: int) -> None:
    server = start()
    resp = requests.request(method, server.base + path, headers=auth(), timeout=30)
    assert resp.status_code == status
    error_of(resp, dialect)


def test_another_keys_tasks_are_invisible(start, media) -> None:
    server = start()
    task_id = oo_create(server, media).json()["id"]
    assert requests.get(f"{server.base}/v1/tasks/{task_id}", headers=auth(OTHER_KEY), timeout=30).status_code == 404
    assert requests.get(f"{server.base}/v1/tasks/{task_id}", headers={"x-api-key": KEY}, timeout=30).status_code == 200


def test_open_routes_need_no_key(start, media) -> None:
    server = start()
    assert requests.get(server.base + "/", timeout=30).json()["status"] == "ok"
    assert requests.get(server.base + "/health", timeout=30).status_code == 200
    assert requests.get(server.base + "/openapi.json", timeout=30).status_code == 200
    missing = requests.get(server.base + "/v1/files/" + "a" * 32, timeout=30)
    assert missing.status_code == 404 and error_of(missing, "openoctopus")[0] == "file_not_found"


def test_only_creation_is_rate_limited(start, media) -> None:
    server = start(rate_limit_per_minute=2)
    first = oo_create(server, media).json()["id"]
    assert oo_create(server, media).status_code == 200
    limited = oo_create(server, media)
    assert limited.status_code == 429 and error_of(limited, "openoctopus")[0] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    seg = requests.post(f"{server.base}/v2/videofaceswap", json={"source_img": "x", "video_input": "y"},
                        headers=auth(), timeout=30)
    assert seg.status_code == 429 and error_of(seg, "segmind")[1]
    assert oo_create(server, media, key=OTHER_KEY).status_code == 200, "the limit is per key"
    for _ in range(20):
        assert requests.get(f"{server.base}/v1/tasks/{first}", headers=auth(), timeout=30).status_code == 200


def test_oversized_bodies_are_413(start) -> None:
    server = start(max_upload_bytes=10_000)
    blob = "A" * 2_000_000
    for path, dialect in (("/v1/videos/generations", "openoctopus"), ("/v2/videofaceswap", "segmind"),
                          ("/api/v3/wavespeed-ai/video-face-swap", "wavespeed")):
        resp = requests.post(server.base + path, json={"video": blob}, headers=auth(), timeout=30)
        assert resp.status_code == 413
        error_of(resp, dialect)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while the body streams in
        yield b'{"video": "'
        for _ in range(40):
            yield b"A" * 50_000
        yield b'"}'

    resp = requests.post(server.base + "/v2/videofaceswap", data=chunks(),
                         headers={**auth(), "Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 413 and "larger" in error_of(resp, "segmind")[1]


def test_inline_media_over_the_limit_is_413(start, media) -> None:
    server = start(max_upload_bytes=20_000)
    resp = oo_create(server, media)
    assert resp.status_code == 413 and error_of(resp, "openoctopus")[0] == "media_too_large"


SSRF_PROBES = ["http://127.0.0.1:9/x.mp4", "http://localhost/x.mp4", "http://10.0.0.1/x.mp4",
               "http://169.254.169.254/latest/meta-data/", "http://[::1]/x.mp4", "http://[::ffff:127.0.0.1]/x"]


@pytest.mark.parametrize("probe", SSRF_PROBES)
def test_ssrf_probes_are_refused_at_once(start, media, probe: str) -> None:
    server = start()
    resp = requests.post(f"{server.base}/v1/videos/generations", headers=auth(), timeout=30, json={
        "model": OO_MODEL, "input": {"video": probe, "face_image": data_uri(media["face"], "image/jpeg")}})
    assert resp.status_code == 400
    code, message = error_of(resp, "openoctopus")
    assert code == "invalid_request" and "not allowed" in message
    assert server.runner.calls == []


def test_names_resolving_inside_are_refused_by_the_worker(start, media, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "169.254.169.254" if host == "metadata.example" else host, *a, **k))
    server = start()
    resp = requests.post(f"{server.base}/v1/videos/generations", headers=auth(), timeout=30, json={
        "model": OO_MODEL, "input": {"video": "http://metadata.example/latest/",
                                     "face_image": data_uri(media["face"], "image/jpeg")}})
    assert resp.status_code == 200, "a host name is resolved by the worker, not the request"
    task_id = resp.json()["id"]
    wait_finished(server, task_id)
    task = requests.get(f"{server.base}/v1/tasks/{task_id}", headers=auth(), timeout=30).json()
    assert task["status"] == "failed" and task["error"]["code"] == "invalid_request"
    assert "link-local" in task["error_message"]


def test_a_redirect_to_loopback_from_an_allowlisted_server_is_refused(start, media, tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "clip.mp4").write_bytes(media["video"].read_bytes())
    (tmp_path / "www" / "face.jpg").write_bytes(media["face"].read_bytes())
    server = start(url_allowlist=("localhost",))
    with file_server(tmp_path / "www", redirects={"/sneaky.mp4": f"{server.base}/health"}) as files:
        port = files.rsplit(":", 1)[1]
        fine = requests.post(f"{server.base}/api/v3/wavespeed-ai/video-face-swap", headers=auth(), timeout=60, json={
            "video": f"http://localhost:{port}/clip.mp4", "face_image": f"http://localhost:{port}/face.jpg",
            "enable_sync_mode": True}).json()["data"]
        assert fine["status"] == "completed", fine
        sneaky = requests.post(f"{server.base}/api/v3/wavespeed-ai/video-face-swap", headers=auth(), timeout=60,
                               json={"video": f"http://localhost:{port}/sneaky.mp4",
                                     "face_image": f"http://localhost:{port}/face.jpg",
                                     "enable_sync_mode": True}).json()["data"]
    assert sneaky["status"] == "failed" and "not allowed" in sneaky["error"] and "loopback" in sneaky["error"]


def test_start_up_warnings_when_exposed() -> None:
    settings = Settings(data_dir=Path("/tmp/unused"), models_dir=Path("/tmp/unused"))
    assert exposure_warnings("127.0.0.1", settings) == []
    assert exposure_warnings("::1", settings) == []
    warnings = exposure_warnings("0.0.0.0", settings)
    assert len(warnings) == 2 and "FACESWAP_API_KEYS" in warnings[0] and "FACESWAP_UI_AUTH" in warnings[1]
    keyed = settings.with_(api_keys=frozenset({"k"}), ui_auth=("u", "p"))
    assert exposure_warnings("0.0.0.0", keyed) == []


def test_a_crash_is_a_500_without_a_trace(start, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start()

    def explode(job_id: str) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(server.service, "get", explode)
    for path, dialect in (("/v1/tasks/x", "openoctopus"), ("/v2/requests/x", "segmind"),
                          ("/api/v3/predictions/x/result", "wavespeed")):
        resp = requests.get(server.base + path, headers=auth(), timeout=30)
        assert resp.status_code == 500
        code, _ = error_of(resp, dialect)
        assert code in (None, "internal_error") and "hunter2" not in resp.text and "Traceback" not in resp.text


def test_urls_use_the_public_base_url(start, media) -> None:
    server = start(public_base_url="https://faces.example.com/studio")
    body = requests.post(f"{server.base}/v2/videofaceswap", json=segmind_body(media), headers=auth(),
                         timeout=30).json()
    assert body["status_url"].startswith("https://faces.example.com/studio/v2/requests/")
    ticket = requests.post(f"{server.base}/api/v3/media/uploads", json={"filename": "v.mp4", "size": 3},
                           headers=auth(), timeout=30).json()["data"]
    assert ticket["download_url"].startswith("https://faces.example.com/studio/v1/files/")
    file_id = ticket["download_url"].rsplit("/", 1)[1]
    requests.put(f"{server.base}/api/v3/media/uploads/{file_id}?{ticket['upload']['url'].split('?', 1)[1]}",
                 data=b"abc", timeout=30)
    resp = requests.post(f"{server.base}/api/v3/wavespeed-ai/video-face-swap", headers=auth(), timeout=30, json={
        "video": ticket["download_url"], "face_image": data_uri(media["face"], "image/jpeg")})
    assert resp.status_code == 200, "a link on the public URL is our own file, read from the store"
    assert server.service.get(resp.json()["data"]["id"]).options.video == str(server.service.file_path(file_id))


def test_a_sync_caller_who_hangs_up_cancels_the_job(start, media) -> None:
    server = start(FakeRunner(frames=500, delay_s=0.02))
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{server.base}/v1/videofaceswap", json=segmind_body(media), headers=auth(), timeout=1.0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        jobs = [server.service.get(job_id) for job_id in _job_ids(server)]
        if jobs and all(job.status == "cancelled" for job in jobs):
            break
        time.sleep(0.1)
    assert jobs and all(job.status == "cancelled" for job in jobs)


def _job_ids(server: Server) -> list[str]:
    with server.service.store._lock:
        return [row[0] for row in server.service.store._db.execute("SELECT id FROM jobs")]
