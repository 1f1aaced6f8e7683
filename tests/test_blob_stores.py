"""The BlobStore contract, run against both stores: the local directory one and the S3 one on a real S3 endpoint
(moto's server on loopback, tests/s3_support.py). Each case is the behaviour the job core and the REST API rely on:
bytes round trip (a real video file), the size limit refusing without leaving anything, the upload ticket flow,
info, local paths (cached for S3), delete, retention with `keep`, and unknown ids answering `file_not_found`."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from media_factory import ClipSpec, probe, row_layout, t1_patches, write_clip
from s3_support import S3Endpoint, s3_endpoint  # noqa: F401 (fixture)

from faceswap.errors import FaceSwapError
from faceswap.jobs.blobs import DirBlobStore
from faceswap.jobs.interfaces import BlobStore
from faceswap.jobs.s3_blobs import S3BlobStore

LIMIT = 1_000_000


@dataclass
class Kit:
    kind: str
    store: BlobStore
    stored: Callable[[], set[str]]
    """The blob ids the backing storage holds right now (folders, or ids under the bucket prefix), pending included."""
    clock: list[float]
    """Seconds added to the store's clock (both stores take `clock`), to age blobs for retention."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("blob-media") / "clip.mp4", t1_patches(80)[:2],
                      row_layout(2, 80, 240, 160), ClipSpec(width=240, height=160, fps=10, frames=6))


@pytest.fixture(params=["dir", "s3"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    if request.param == "dir":
        store = DirBlobStore(tmp_path / "files", max_bytes=LIMIT, clock=clock)
        yield Kit("dir", store, lambda: {folder.name for folder in (tmp_path / "files").iterdir()}, offset)
        return
    endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
    bucket = endpoint.new_bucket()
    store = S3BlobStore.from_url(f"s3://{bucket}/media/", max_bytes=LIMIT, cache_dir=tmp_path / "cache",
                                 environ={"FACESWAP_S3_ENDPOINT_URL": endpoint.url}, clock=clock)

    def stored() -> set[str]:
        keys = endpoint.keys(bucket)
        assert all(key.startswith("media/") for key in keys), keys
        return {key.split("/")[1] for key in keys}

    yield Kit("s3", store, stored, offset)


@contextlib.contextmanager
def _code(code: str) -> Iterator[None]:
    """Expects a catalog error with exactly this code."""
    with pytest.raises(FaceSwapError) as caught:
        yield
    assert caught.value.code == code, (caught.value.code, caught.value.message)


def test_a_real_video_round_trips_from_a_file_a_stream_and_bytes(kit: Kit, clip: Path) -> None:
    assert isinstance(kit.store, BlobStore)
    data = clip.read_bytes()
    from_file = kit.store.put(clip, filename="../my clip.mp4")
    from_stream = kit.store.put(io.BytesIO(data), filename="stream.mp4", content_type="video/mp4")
    from_bytes = kit.store.put(data, filename="bytes.bin", content_type="video/mp4")
    assert len({from_file.id, from_stream.id, from_bytes.id}) == 3
    for info in (from_file, from_stream, from_bytes):
        assert info.size == len(data) and not info.pending
        again = kit.store.info(info.id)
        assert (again.id, again.filename, again.content_type, again.size) == \
               (info.id, info.filename, info.content_type, info.size)
        assert abs(again.created_at - info.created_at) < 1e-3
        local = kit.store.path(info.id)
        assert local.read_bytes() == data
    assert from_file.filename == "my clip.mp4" and from_file.content_type == "video/mp4"
    assert kit.store.path(from_file.id).suffix == ".mp4", "the media layer reads the suffix as a hint"
    seen = probe(kit.store.path(from_stream.id))
    assert seen.frames == 6 and (seen.width, seen.height) == (240, 160)
    assert clip.is_file(), "a copy leaves the source"
    assert kit.stored() == {from_file.id, from_stream.id, from_bytes.id}


def test_moving_a_file_in_takes_it_away(kit: Kit, clip: Path, tmp_path: Path) -> None:
    made = tmp_path / "out.mp4"
    made.write_bytes(clip.read_bytes())
    info = kit.store.put(made, filename="faceswap-out.mp4", move=True, limit=False)
    assert not made.exists()
    assert kit.store.path(info.id).read_bytes() == clip.read_bytes()


def test_the_size_limit_refuses_and_leaves_nothing(kit: Kit, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (LIMIT + 1))
    for data in (b"\0" * (LIMIT + 1), big, io.BytesIO(b"\0" * (LIMIT + 1))):
        with _code("media_too_large"):
            kit.store.put(data, filename="big.mp4")
    with _code("media_too_large"):
        kit.store.reserve(filename="big.mp4", size=LIMIT + 1, content_type=None)
    assert kit.stored() == set()
    assert big.is_file(), "a refused file is not taken"
    trusted = kit.store.put(big, filename="result.mp4", limit=False)
    assert kit.store.info(trusted.id).size == LIMIT + 1, "the server's own results pass any size"


def test_upload_ticket_flow(kit: Kit, clip: Path) -> None:
    data = clip.read_bytes()
    ticket, token = kit.store.reserve(filename="clip.mp4", size=len(data), content_type=None)
    assert ticket.pending and ticket.expected_size == len(data) and ticket.content_type == "video/mp4"
    assert token not in repr(ticket), "only the token's hash is kept"
    with _code("file_not_found"):
        kit.store.info(ticket.id)  # not readable before its bytes arrived
    with _code("unauthorized"):
        kit.store.open_upload(ticket.id, "not-the-token")
    opened, target = kit.store.open_upload(ticket.id, token)
    assert opened.id == ticket.id
    with _code("file_not_found"):
        kit.store.open_upload(ticket.id, token)  # the token is spent
    target.write_bytes(data)
    filled = kit.store.finish_upload(ticket.id, len(data))
    assert (filled.size, filled.pending, filled.filename) == (len(data), False, "clip.mp4")
    assert kit.store.info(ticket.id).size == len(data)
    assert kit.store.path(ticket.id).read_bytes() == data
    with _code("file_not_found"):
        kit.store.finish_upload(ticket.id, len(data))

    short, short_token = kit.store.reserve(filename="v.mp4", size=10, content_type="video/mp4")
    kit.store.open_upload(short.id, short_token)[1].write_bytes(b"123")
    with _code("invalid_request"):
        kit.store.finish_upload(short.id, 3)
    broken, broken_token = kit.store.reserve(filename="v.mp4", size=10, content_type="video/mp4")
    kit.store.open_upload(broken.id, broken_token)[1].write_bytes(b"12")
    kit.store.delete(broken.id)  # what the API does when the PUT breaks off
    assert kit.stored() == {ticket.id}, "a refused or broken upload leaves nothing"


def test_path_is_a_reusable_local_copy_until_delete(kit: Kit, clip: Path) -> None:
    info = kit.store.put(clip.read_bytes(), filename="clip.mp4")
    first = kit.store.path(info.id)
    before = first.stat()
    second = kit.store.path(info.id)
    assert second == first and second.stat().st_ino == before.st_ino, "the same copy, not a new one"
    kit.store.delete(info.id)
    assert not first.exists(), "delete removes the local copy too"
    for call in (kit.store.info, kit.store.path):
        with _code("file_not_found"):
            call(info.id)
    assert kit.stored() == set()
    kit.store.delete(info.id)  # deleting twice is fine


def test_sweep_counts_from_the_blob_time_and_honours_keep(kit: Kit) -> None:
    kept = kit.store.put(b"input of a queued job", filename="in.mp4")
    old = kit.store.put(b"an old output", filename="out.mp4")
    ticket, _ = kit.store.reserve(filename="never-filled.mp4", size=5, content_type=None)
    old_path = kit.store.path(old.id)
    assert kit.store.sweep(60, keep=()) == 0, "nothing is older than retention yet"
    kit.clock[0] = 30
    assert kit.store.sweep(60, keep=()) == 0, "half the retention later, still nothing"
    kit.clock[0] = 120
    assert kit.store.sweep(60, keep={kept.id}) == 2
    assert kit.stored() == {kept.id}
    assert kit.store.info(kept.id).size == len(b"input of a queued job")
    for blob_id in (old.id, ticket.id):
        with _code("file_not_found"):
            kit.store.info(blob_id)
    assert not old_path.exists(), "the swept blob's local copy went with it"
    assert kit.store.sweep(60, keep=set()) == 1, "once the job is gone its input expires too"
    assert kit.stored() == set()


@pytest.mark.parametrize("blob_id", ["A" * 32, "../../etc/passwd", "", "a/b" + "c" * 29])
def test_unknown_ids_are_file_not_found(kit: Kit, blob_id: str) -> None:
    for call in (kit.store.info, kit.store.path, lambda i: kit.store.open_upload(i, "token"),
                 lambda i: kit.store.finish_upload(i, 1)):
        with _code("file_not_found"):
            call(blob_id)
    kit.store.delete(blob_id)
    assert kit.stored() == set()
