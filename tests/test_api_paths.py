"""No client-facing text carries a host path: every response body and header of a representative set of REST
requests (errors of each kind, a failed and a finished job, its report) and the model errors and notices that reach
reports are scanned for the data dir, the models dir, the home dir, the temp dir and site-packages."""

from __future__ import annotations

import base64
import site
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from api_helpers import OO_MODEL, auth, data_uri, make_media, server_factory

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.runtime import Runtime


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    with server_factory(tmp_path) as factory:
        yield factory


def host_paths(tmp_path: Path) -> list[str]:
    paths = {str(tmp_path), str(Path.home()), tempfile.gettempdir().rstrip("/") + "/", "/root/", "site-packages",
             *site.getsitepackages()}
    return sorted(path for path in paths if path and path != "/")


def leaks(text: str, tmp_path: Path) -> list[str]:
    return [path for path in host_paths(tmp_path) if path in text]


def test_no_rest_response_names_a_host_path(start, tmp_path: Path) -> None:
    server = start()
    (tmp_path / "media").mkdir()
    media = make_media(tmp_path / "media")
    face, video = data_uri(media["face"], "image/jpeg"), data_uri(media["video"], "video/mp4")
    base = server.base
    responses: list[requests.Response] = []

    def create(video_ref: str, **headers: str) -> requests.Response:
        resp = requests.post(f"{base}/v1/videos/generations", headers={**auth(), **headers}, timeout=30, json={
            "model": OO_MODEL, "input": {"video": video_ref, "face_image": face}})
        responses.append(resp)
        return resp

    for ref in (str(media["video"]), "/etc/passwd", "file:///etc/passwd", "~/.ssh/id_rsa", "http://127.0.0.1/x"):
        assert create(ref).status_code == 400
    create(base64.b64encode(b"\0" * 100).decode())  # accepted here, refused by the worker
    failing = create("http://no-such-host.invalid/clip.mp4")
    finished = create(video)
    for resp in (failing, finished):
        task_id = resp.json()["id"]
        server.service.wait(task_id, timeout=30)
        responses.append(requests.get(f"{base}/v1/tasks/{task_id}", headers=auth(), timeout=30))
        responses.append(requests.get(f"{base}/v2/requests/{task_id}", headers=auth(), timeout=30))
        responses.append(requests.get(f"{base}/api/v3/predictions/{task_id}/result", headers=auth(), timeout=30))
    assert responses[-1].json()["data"]["status"] == "completed"
    assert any(r.json().get("status") == "failed" for r in responses if r.request.method == "GET"
               and "/v1/tasks/" in r.url)
    responses += [
        requests.get(f"{base}/v1/tasks/{'a' * 32}", headers=auth(), timeout=30),
        requests.get(f"{base}/v1/files/{'a' * 32}", timeout=30),
        requests.get(f"{base}/v1/files/..%2F..%2Fetc%2Fpasswd", timeout=30),
        requests.post(f"{base}/v2/videofaceswap", json={}, timeout=30),
        requests.post(f"{base}/v2/videofaceswap", data="x", headers={**auth(), "Content-Type": "text/plain"},
                      timeout=30),
        requests.request("TRACE", f"{base}/api/v3/media/uploads", timeout=30),
        requests.post(f"{base}/api/v3/media/uploads", json={"filename": "/etc/passwd", "size": 10**12},
                      headers=auth(), timeout=30),
        requests.get(f"{base}/openapi.json", timeout=30),
    ]
    found = {resp.url: leaks(resp.text + str(dict(resp.headers)), tmp_path) for resp in responses}
    assert not any(found.values()), {url: paths for url, paths in found.items() if paths}
    assert len(responses) >= 20


def test_model_errors_and_notices_name_no_host_path(tmp_path: Path) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models",
                               hub_cache_dir=tmp_path / "hub", allow_model_download=False))
    texts = []
    for attempt in (lambda: runtime.engine("neural"), lambda: runtime.restorer("gfpgan"),
                    lambda: runtime.restorer("codeformer"),
                    lambda: runtime.models.download(["det_10g"])):
        with pytest.raises(FaceSwapError) as caught:
            attempt()
        texts.append(caught.value.message)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "det_10g.onnx").write_bytes(b"not a model")
    with pytest.raises(FaceSwapError) as caught:
        runtime.models.ensure(["det_10g"], download=False)
    texts.append(caught.value.message)
    assert all(not leaks(text, tmp_path) for text in texts), texts
    assert all(len(text) < 400 for text in texts), [len(text) for text in texts]
