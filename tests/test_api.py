"""The three REST dialects on a live server (uvicorn on 127.0.0.1): each flow end to end, sync modes, base64
output, failed and cancelled jobs, field mapping and bad payloads, uploads.

The job runner here is the fake one (tests/api_support.py): these tests are about the HTTP contract and the queue;
tests/test_api_clients.py runs real swaps through the official SDKs, tests/test_api_rules.py checks the rules shared
by every dialect (keys, unknown ids and routes, limits, SSRF).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
from api_helpers import (
    KEY,
    OO_MODEL,
    auth,
    data_uri,
    make_media,
    oo_create,
    seed_poll,
    segmind_body,
    server_factory,
    wait_finished,
)
from api_support import FakeRunner

from faceswap.jobs.interfaces import blob_id_of


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("api-media"))


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    with server_factory(tmp_path) as factory:
        yield factory


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


def test_segmind_face_restore_left_out_follows_the_installed_models(start, media, tmp_path) -> None:
    server = start()
    body = segmind_body(media)
    del body["face_restore"]
    resp = requests.post(f"{server.base}/v2/videofaceswap", json=body, headers=auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    assert server.service.get(resp.json()["request_id"]).options.restore == "none"  # no CodeFormer installed
    models = server.service.runtime.models
    models.directory.mkdir(parents=True, exist_ok=True)
    models.path("codeformer").write_bytes(b"stand-in")  # present (not verified: only presence decides the default)
    resp = requests.post(f"{server.base}/v2/videofaceswap", json=body, headers=auth(), timeout=30)
    assert server.service.get(resp.json()["request_id"]).options.restore == "codeformer"


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
    assert server.service.blobs.path(blob_id_of(options.face)).read_bytes() == media["face"].read_bytes()
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
