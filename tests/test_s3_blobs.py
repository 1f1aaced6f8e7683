"""What only the S3 store has (the shared contract is tests/test_blob_stores.py): multipart transfers and their
abort, the bucket layout, the per-host cache of local copies, several hosts on one bucket (tokens spent once, a
blob deleted elsewhere), and failures of the endpoint. All against moto's S3 server on loopback."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from api_support import free_socket
from s3_support import S3Endpoint, s3_endpoint  # noqa: F401  (a fixture)

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.jobs.backends import build_blobs
from faceswap.jobs.s3_blobs import S3BlobStore

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> S3Endpoint:
    return request.getfixturevalue("s3_endpoint")


def _store(endpoint: S3Endpoint, bucket: str, cache: Path, **options: object) -> S3BlobStore:
    options = {"max_bytes": 64 * MiB, "part_bytes": PART, **options}
    return S3BlobStore(endpoint.client(), bucket, "blobs", cache_dir=cache, **options)  # type: ignore[arg-type]


def _count_downloads(store: S3BlobStore) -> Callable[[], int]:
    """How many GetObject requests the store's client has sent so far (boto3's own event hooks)."""
    calls = [0]

    def seen(**_: object) -> None:
        calls[0] += 1

    store._s3.meta.events.register("before-call.s3.GetObject", seen)
    return lambda: calls[0]


def test_large_streams_go_in_parts_and_a_refused_one_is_aborted(s3: S3Endpoint, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = _store(s3, bucket, tmp_path / "cache", max_bytes=7 * MiB)
    data = os.urandom(6 * MiB)
    info = store.put(io.BufferedReader(io.BytesIO(data)), filename="big.mp4")
    head = s3.client().head_object(Bucket=bucket, Key=f"blobs/{info.id}/data")
    assert head["ETag"].strip('"').endswith("-2"), "two parts of at most 5 MiB"
    assert head["ContentLength"] == len(data) == info.size
    assert store.path(info.id).read_bytes() == data

    with pytest.raises(FaceSwapError) as caught:
        store.put(io.BytesIO(os.urandom(12 * MiB)), filename="too-big.mp4")  # refused in its second part
    assert caught.value.code == "media_too_large"
    assert s3.keys(bucket) == [f"blobs/{info.id}/data"], "the refused stream's parts are gone"
    assert s3.open_multipart_uploads(bucket) == []


def test_bucket_layout_and_metadata(s3: S3Endpoint, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = _store(s3, bucket, tmp_path / "cache")
    client = s3.client()
    info = store.put(b"GIF89a", filename="face.gif")
    head = client.head_object(Bucket=bucket, Key=f"blobs/{info.id}/data")
    assert head["ContentType"] == "image/gif"
    assert head["Metadata"] == {"filename": "face.gif", "created": repr(info.created_at)}
    ticket, token = store.reserve(filename="clip.mp4", size=3, content_type=None)
    assert s3.keys(bucket) == sorted([f"blobs/{info.id}/data", f"blobs/{ticket.id}/ticket.json"])
    store.open_upload(ticket.id, token)[1].write_bytes(b"abc")
    store.finish_upload(ticket.id, 3)
    assert f"blobs/{ticket.id}/ticket.json" not in s3.keys(bucket), "a filled ticket is removed"
    assert client.get_object(Bucket=bucket, Key=f"blobs/{ticket.id}/data")["Body"].read() == b"abc"


def test_local_copies_are_downloaded_once_and_bounded(s3: S3Endpoint, clip_bytes: bytes,
                                                      tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    made_here = _store(s3, bucket, tmp_path / "host-a")
    output = tmp_path / "out.mp4"
    output.write_bytes(clip_bytes)
    info = made_here.put(output, filename="out.mp4", move=True, limit=False)
    downloads_here = _count_downloads(made_here)
    assert made_here.path(info.id).read_bytes() == clip_bytes
    assert downloads_here() == 0, "an output stored from this host is already in its cache"

    size = len(clip_bytes)
    elsewhere = _store(s3, bucket, tmp_path / "host-b", cache_bytes=int(size * 1.5), cache_grace_s=0)
    downloads = _count_downloads(elsewhere)
    first = elsewhere.path(info.id)
    assert elsewhere.path(info.id) == first and first.read_bytes() == clip_bytes
    assert downloads() == 1, "downloaded once, then reused"
    other = elsewhere.put(clip_bytes, filename="b.mp4")
    elsewhere.path(other.id)
    assert not first.exists(), "the bound evicts the least recently used copy"
    assert elsewhere.path(info.id).read_bytes() == clip_bytes and downloads() == 3

    made_here.delete(info.id)
    with pytest.raises(FaceSwapError) as caught:
        elsewhere.path(info.id)
    assert caught.value.code == "file_not_found", "a copy is never served for a blob deleted on another host"
    assert elsewhere.sweep(3600) == 0 and not first.exists(), "and the stale copy goes at the next sweep"


def test_a_token_is_spent_once_across_hosts(s3: S3Endpoint, tmp_path: Path) -> None:
    """Two PUTs of one upload link reach two hosts at once: both read the unspent ticket, host A spends it first,
    and host B's write, conditional on the ticket it read, is refused. (The interleaving is forced with a hook on
    B's client: moto checks If-Match and writes in two steps, so a threaded race against it is not deterministic.)"""
    bucket = s3.new_bucket()
    host_a, host_b = (_store(s3, bucket, tmp_path / f"host-{n}") for n in "ab")
    ticket, token = host_a.reserve(filename="clip.mp4", size=3, content_type=None)
    spent_by_a: list[Path] = []

    def a_goes_first(params: dict, **_: object) -> None:
        if params.get("Key", "").endswith("/ticket.json") and not spent_by_a:
            spent_by_a.append(host_a.open_upload(ticket.id, token)[1])

    host_b._s3.meta.events.register("before-parameter-build.s3.PutObject", a_goes_first)
    with pytest.raises(FaceSwapError) as caught:
        host_b.open_upload(ticket.id, token)
    assert caught.value.code == "file_not_found" and spent_by_a, "B read the ticket before A spent it"
    spent_by_a[0].write_bytes(b"abc")
    assert host_a.finish_upload(ticket.id, 3).size == 3
    assert host_b.path(ticket.id).read_bytes() == b"abc", "and B serves what A received"


def test_an_unreachable_store_is_service_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with free_socket() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there once closed
    store = S3BlobStore(boto3.client("s3", endpoint_url=url), "faceswap-gone", "", max_bytes=MiB,
                        cache_dir=tmp_path / "cache")
    for call in (lambda: store.put(b"x", filename="a.jpg"), lambda: store.info("A" * 32)):
        with pytest.raises(FaceSwapError) as caught:
            call()
        assert caught.value.code == "service_unavailable" and caught.value.entry.retryable
        assert "127.0.0.1" not in caught.value.message
    with pytest.raises(ValueError, match="faceswap-gone"):
        S3BlobStore.from_url("s3://faceswap-gone/x", max_bytes=MiB, cache_dir=tmp_path / "c2",
                             environ={"FACESWAP_S3_ENDPOINT_URL": url})


def test_settings_pick_the_store(s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    monkeypatch.setenv("FACESWAP_S3_ENDPOINT_URL", s3.url)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    store = build_blobs(settings.with_(blobs=f"s3://{bucket}/deploy/one"))
    assert isinstance(store, S3BlobStore) and store.prefix == "deploy/one/"
    info = store.put(b"abc", filename="a.txt")
    assert s3.keys(bucket) == [f"deploy/one/{info.id}/data"]
    assert store._cache.root.is_relative_to(settings.data_dir)
    for wrong, needle in (("s3://", "s3://bucket/prefix"), ("ftp://x/y", "s3://bucket/prefix")):
        with pytest.raises(ValueError, match=needle):
            build_blobs(settings.with_(blobs=wrong))


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from media_factory import ClipSpec, row_layout, t1_patches, write_clip

    path = write_clip(tmp_path_factory.mktemp("s3-media") / "clip.mp4", t1_patches(80)[:2],
                      row_layout(2, 80, 240, 160), ClipSpec(width=240, height=160, fps=10, frames=6))
    return path.read_bytes()
