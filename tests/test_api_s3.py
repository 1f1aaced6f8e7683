"""The REST API with its files in S3 (FACESWAP_BLOBS=s3://bucket/prefix, moto's S3 server on loopback): a real swap
with the classic engine through the WaveSpeed dialect, end to end. The clip goes up through an upload ticket (spooled,
then sent to the bucket), the face as a data URI; the worker reads both through the store, the output goes to the
bucket and comes back through the API as a real video with the chosen face swapped; retention then empties the
bucket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from api_helpers import auth, data_uri, oo_create, server_factory
from api_support import FakeRuntime, live_server
from media_factory import T1_FACE_BOXES, ClipSpec, face_patch, hanks_photo, probe, read_frames, t1_photo, write_clip
from s3_support import S3Endpoint, s3_endpoint  # noqa: F401  (a fixture)

from faceswap.config import Settings
from faceswap.jobs import JobService
from faceswap.jobs.interfaces import blob_id_of
from faceswap.jobs.s3_blobs import S3BlobStore
from faceswap.server import create_app

KEY = "s3-key"
FRAMES = 8
SLOTS = ((20, 70, 90), (160, 50, 140))
"""(x, y, size) of a small face on the left and a large one on the right: target_index 0 (largest) is the right."""


def layout(index: int) -> list[tuple[int, int, int]]:
    return [(slot, x, y) for slot, (x, y, _) in enumerate(SLOTS)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("s3-api-media")
    photo = t1_photo()
    patches = [face_patch(photo, T1_FACE_BOXES[0], SLOTS[0][2]), face_patch(photo, T1_FACE_BOXES[3], SLOTS[1][2])]
    clip = write_clip(folder / "clip.mp4", patches, layout, ClipSpec(width=320, height=240, fps=10, frames=FRAMES))
    face = folder / "face.jpg"
    cv2.imwrite(str(face), hanks_photo())
    return {"video": clip, "face": face}


@pytest.fixture
def endpoint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    s3: S3Endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch.setenv("FACESWAP_S3_ENDPOINT_URL", s3.url)
    return s3


@pytest.fixture
def settings(endpoint: S3Endpoint, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", api_keys=frozenset({KEY}),
                   allow_model_download=False, rate_limit_per_minute=1000,
                   blobs=f"s3://{endpoint.new_bucket()}/faceswap")


def _bucket(settings: Settings) -> str:
    return settings.blobs.removeprefix("s3://").split("/", 1)[0]


def _region_change(before: np.ndarray, after: np.ndarray, slot: int) -> float:
    x, y, size = SLOTS[slot]
    inset = size // 4
    box = (slice(y + inset, y + size - inset), slice(x + inset, x + size - inset))
    return float(np.abs(before[box].astype(np.int16) - after[box].astype(np.int16)).mean())


@pytest.mark.slow  # a real classic swap, ~10 s on two busy cores
def test_a_swap_with_files_in_s3_end_to_end(endpoint: S3Endpoint, settings: Settings, media: dict[str, Path],
                                            tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    bucket = _bucket(settings)
    clip = media["video"].read_bytes()
    app = create_app(settings, with_ui=False)
    assert isinstance(app.state.service.blobs, S3BlobStore)
    with live_server(app) as base:
        # 1. the clip through an upload ticket
        ticket = requests.post(f"{base}/api/v3/media/uploads", headers=auth, timeout=30,
                               json={"filename": "clip.mp4", "size": len(clip)}).json()["data"]
        assert requests.get(ticket["download_url"], timeout=30).status_code == 404, "not readable before PUT"
        put = requests.put(ticket["upload"]["url"], data=clip, headers=ticket["upload"]["headers"], timeout=60)
        assert put.status_code == 200, put.text
        upload_id = ticket["download_url"].rsplit("/", 1)[1]
        assert endpoint.keys(bucket) == [f"faceswap/{upload_id}/data"], "the filled upload is in the bucket"
        assert requests.get(ticket["download_url"], timeout=30).content == clip

        # 2. the swap: the worker reads the clip and the face through the store, the output goes to the bucket
        resp = requests.post(f"{base}/api/v3/wavespeed-ai/video-face-swap", headers=auth, timeout=60, json={
            "video": ticket["download_url"], "face_image": data_uri(media["face"], "image/jpeg"),
            "target_index": 0, "engine": "classic"})
        assert resp.status_code == 200, resp.text
        job_id = resp.json()["data"]["id"]
        assert app.state.service.wait(job_id, timeout=240).status == "succeeded"
        result = requests.get(f"{base}/api/v3/predictions/{job_id}/result", headers=auth, timeout=30).json()["data"]
        assert result["status"] == "completed", result
        output = requests.get(result["outputs"][0], timeout=60)
        assert output.status_code == 200 and output.headers["content-type"] == "video/mp4"

    # 3. a real video with the largest face swapped and the other one kept
    made = tmp_path / "out.mp4"
    made.write_bytes(output.content)
    facts = probe(made)
    assert facts.frames == FRAMES and (facts.width, facts.height) == (320, 240)
    before, after = read_frames(media["video"]), read_frames(made)
    changes = [(_region_change(a, b, 1), _region_change(a, b, 0)) for a, b in zip(before, after, strict=True)]
    assert min(swapped for swapped, _ in changes) > 8 and max(kept for _, kept in changes) < 5, changes

    # 4. the bucket holds the clip, the face's stored copy and the output; retention removes all three
    output_id = result["outputs"][0].rsplit("/", 1)[1]
    ids = {key.split("/")[1] for key in endpoint.keys(bucket)}
    assert len(ids) == 3 and {upload_id, output_id} < ids
    assert all(key.endswith("/data") for key in endpoint.keys(bucket)), "no ticket or part left over"
    later = settings.with_(retention_s=0.0)  # the same deployment restarted with no retention left for this job
    service = JobService(FakeRuntime(later), later)
    time.sleep(0.05)
    try:
        assert service.sweep() == (1, 2), "the job with its output, then its two inputs"
    finally:
        service.close()
    assert endpoint.keys(bucket) == []
    assert list((settings.data_dir / "s3-cache" / "blobs").iterdir()) == [], "and this host's local copies"


def test_the_rest_contract_on_s3_with_the_fake_runner(endpoint: S3Endpoint, media: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """The fast half (the fake runner copies the clip): inputs reach the worker as local copies of bucket objects,
    the output is served from the bucket, and refused uploads leave nothing there."""
    bucket = endpoint.new_bucket()
    with server_factory(tmp_path) as start:
        server = start(blobs=f"s3://{bucket}/api", max_upload_bytes=1_000_000)
        resp = oo_create(server, media, enable_sync_mode=True)
        task = resp.json()
        assert resp.status_code == 200 and task["status"] == "succeeded", task
        url = task["output_payload"]["assets"][0]["url"]
        assert requests.get(url, timeout=30).content == media["video"].read_bytes()
        worker_saw = server.runner.calls[-1]
        assert blob_id_of(worker_saw) is None, "the worker got a local path, not the reference"
        assert Path(worker_saw).is_relative_to(server.settings.data_dir / "s3-cache"), "a copy of the bucket object"
        output_id = url.rsplit("/", 1)[1]
        assert f"api/{output_id}/data" in endpoint.keys(bucket)
        stored = endpoint.keys(bucket)

        uploads = f"{server.base}/api/v3/media/uploads"
        ticket = requests.post(uploads, json={"filename": "x.mp4", "size": 4}, headers=auth(), timeout=30).json()
        long = requests.put(ticket["data"]["upload"]["url"], data=b"0123456789", timeout=30)
        assert long.status_code == 400
        big = requests.post(uploads, json={"filename": "x.mp4", "size": 2_000_000}, headers=auth(), timeout=30)
        assert big.status_code == 413
        assert endpoint.keys(bucket) == stored, "refused uploads leave nothing in the bucket"
