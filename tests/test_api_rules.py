"""Rules every REST dialect shares, on a live server: API keys, unknown ids and routes in the dialect of the path,
per-key visibility, open capability routes, the creation-only rate limit, 413/415 limits, SSRF refusals (at once for
literals, by the worker for names, and on redirects), crashes without traces, the public base URL, sync hang-ups and
start-up warnings."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from api_helpers import (
    KEY,
    OO_MODEL,
    OTHER_KEY,
    Server,
    auth,
    data_uri,
    error_of,
    make_media,
    oo_create,
    segmind_body,
    server_factory,
    wait_finished,
)
from api_support import FakeRunner, file_server

from faceswap.config import Settings
from faceswap.jobs.interfaces import blob_ref
from faceswap.server import exposure_warnings


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("rules-media"))


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    with server_factory(tmp_path) as factory:
        yield factory


# -- shared rules --------------------------------------------------------------------------------------------------

ROUTES = [  # (method, path, dialect)
    ("POST", "/v1/videos/generations", "openoctopus"), ("GET", "/v1/tasks/{id}", "openoctopus"),
    ("POST", "/v1/tasks/{id}/cancel", "openoctopus"), ("POST", "/v2/videofaceswap", "segmind"),
    ("GET", "/v2/requests/{id}/status", "segmind"), ("GET", "/v2/requests/{id}", "segmind"),
    ("POST", "/v1/videofaceswap", "segmind"), ("POST", "/api/v3/wavespeed-ai/video-face-swap", "wavespeed"),
    ("GET", "/api/v3/predictions/{id}/result", "wavespeed"), ("POST", "/api/v3/media/uploads", "wavespeed"),
]


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
    assert server.service.get(resp.json()["data"]["id"]).options.video == blob_ref(file_id)


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
