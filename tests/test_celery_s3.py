"""The celery backend with its files in S3: the app and a `faceswap worker` process share a Redis JobStore and
FACESWAP_BLOBS=s3://... on moto's S3 server, and nothing else (each has its own data dir). A REST job with a real
clip runs on the worker, which can only have read its inputs from the bucket, and the app serves the output from
the bucket."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from api_helpers import data_uri
from api_support import live_server
from celery_support import celery_settings, flush, worker_processes
from media_factory import probe, read_frames
from redis_support import redis_url  # noqa: F401  (a fixture)
from s3_support import S3Endpoint, s3_endpoint  # noqa: F401  (a fixture)
from test_api_s3 import FRAMES, _region_change, media  # noqa: F401  (a fixture)

from faceswap.config import Settings
from faceswap.server import create_app

KEY = "celery-s3-key"


def _cached(data_dir: Path) -> dict[str, bytes]:
    """The blobs a host downloaded from (or stored into) the bucket: its local copies, by blob id."""
    root = data_dir / "s3-cache" / "blobs"
    return {copy.parent.name: copy.read_bytes() for copy in root.glob("*/data*")} if root.exists() else {}


@pytest.mark.slow  # a worker process that loads the classic engine, and a real swap
def test_a_celery_worker_reads_inputs_from_s3_and_the_app_serves_its_output_from_there(
        s3_endpoint: S3Endpoint, redis_url: str, media: dict[str, Path], tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESWAP_S3_ENDPOINT_URL", s3_endpoint.url)  # the worker inherits it with the credentials
    flush(redis_url)
    bucket = s3_endpoint.new_bucket()
    shared = Settings(data_dir=tmp_path / "app", models_dir=tmp_path / "models", api_keys=frozenset({KEY}),
                      allow_model_download=False, rate_limit_per_minute=1000, blobs=f"s3://{bucket}/jobs")
    app_settings = celery_settings(shared, redis_url)
    worker_settings = app_settings.with_(data_dir=tmp_path / "worker")
    clip, face = media["video"].read_bytes(), media["face"].read_bytes()
    app = create_app(app_settings, with_ui=False)
    headers = {"Authorization": f"Bearer {KEY}"}
    with worker_processes(worker_settings, tmp_path, names=("s3w",)) as (worker,), live_server(app) as base:
        resp = requests.post(f"{base}/api/v3/wavespeed-ai/video-face-swap", headers=headers, timeout=60, json={
            "video": data_uri(media["video"], "video/mp4"), "face_image": data_uri(media["face"], "image/jpeg"),
            "target_index": 0, "engine": "classic"})
        assert resp.status_code == 200, resp.text
        job_id = resp.json()["data"]["id"]
        job = app.state.service.wait(job_id, timeout=240)
        assert job.status == "succeeded", (job, worker.text()[-3000:])
        assert f"job {job_id}: attempt 1" in worker.text(), "the worker process ran it"
        result = requests.get(f"{base}/api/v3/predictions/{job_id}/result", headers=headers, timeout=30).json()
        output_id = result["data"]["outputs"][0].rsplit("/", 1)[1]
        assert f"jobs/{output_id}/data" in s3_endpoint.keys(bucket), "the worker stored the output in the bucket"
        assert output_id not in _cached(app_settings.data_dir), "the app has no copy of it yet"
        output = requests.get(result["data"]["outputs"][0], timeout=60)
        assert output.status_code == 200 and output.headers["content-type"] == "video/mp4"

    worker_copies = _cached(worker_settings.data_dir)
    assert {clip, face} <= set(worker_copies.values()), "the worker downloaded both inputs from the bucket"
    assert not (worker_settings.data_dir / "files").exists() and not (app_settings.data_dir / "files").exists()
    assert _cached(app_settings.data_dir)[output_id] == output.content, "served from the bucket through the cache"

    made = tmp_path / "out.mp4"
    made.write_bytes(output.content)
    assert probe(made).frames == FRAMES
    before, after = read_frames(media["video"]), read_frames(made)
    changes = [(_region_change(a, b, 1), _region_change(a, b, 0)) for a, b in zip(before, after, strict=True)]
    assert min(swapped for swapped, _ in changes) > 8 and max(kept for _, kept in changes) < 5, changes
