"""S3BlobStore: inputs and outputs by id in an S3 bucket (or a MinIO-compatible store), for workers on many hosts.

`FACESWAP_BLOBS=s3://bucket/prefix` picks it; boto3 finds credentials and region the usual way (AWS_* variables,
profiles, instance roles); `FACESWAP_S3_ENDPOINT_URL` points it at another S3-compatible endpoint. Layout, under
the prefix:

- `<id>/data`: the bytes, with the blob's content type and its metadata (`filename`, `created` in epoch seconds)
  on the object itself, so a blob exists exactly when its data object does;
- `<id>/ticket.json`: a pending upload ticket (the BlobInfo, with the token's hash), removed once filled.

Uploads through a ticket still stream into a local spool file (`open_upload` returns it, like the dir store),
which `finish_upload` sends to the bucket. Presigned PUTs were the alternative; they do not fit: the ticket's URL
is this server's (WaveSpeed clients PUT to the host that gave it), the API counts each key's open uploads while
their bytes stream, and refuses a body longer than announced as it arrives; a presigned URL would hand all three
to the bucket. The token is spent with a conditional write (If-Match on the ticket's ETag), so two PUTs racing on
different hosts cannot both fill one blob.

`path()` downloads a blob once into a bounded local cache (blob_cache.py) and reuses the copy while the blob
exists; outputs and filled uploads enter the cache as they are stored, so the host that made them never downloads.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from faceswap.errors import FaceSwapError
from faceswap.jobs.blob_cache import BlobCache
from faceswap.jobs.blobs import check_size, data_name, guess_content_type, safe_filename, sha256_hex, token_matches
from faceswap.jobs.interfaces import FILE_ID, BlobInfo

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_RACE_LOST = ("412", "PreconditionFailed", "409", "ConditionalRequestConflict")


def _gone() -> FaceSwapError:
    return FaceSwapError("file_not_found", "The requested file is not available (unknown id, or it expired).")


def _ticket_gone() -> FaceSwapError:
    return FaceSwapError("file_not_found", "This upload link is unknown, expired or already used.")


class S3BlobStore:
    """The distributed BlobStore: one bucket (and prefix) shared by every API host and worker."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, max_bytes: int, cache_dir: Path,
                 cache_bytes: int = 4096 * MiB, cache_grace_s: float = 600.0, part_bytes: int = 8 * MiB,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_bytes = max_bytes
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._s3 = client
        self._clock = clock
        self._cache = BlobCache(cache_dir / "blobs", max_bytes=cache_bytes, grace_s=cache_grace_s)
        self._spool = cache_dir / "uploads"
        self._spool.mkdir(parents=True, exist_ok=True)
        # Multipart from `part_bytes` on, so no single request carries a large file and a failed one is aborted.
        self._transfer = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes,
                                        max_concurrency=4)

    @classmethod
    def from_url(cls, url: str, *, max_bytes: int, cache_dir: Path, environ: Mapping[str, str] | None = None,
                 **options: Any) -> S3BlobStore:
        """`s3://bucket/prefix`, with FACESWAP_S3_ENDPOINT_URL and FACESWAP_S3_CACHE_MB read from the environment;
        `options` go to the constructor (part size, clock)."""
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"FACESWAP_BLOBS={url!r} is not an S3 location; write s3://bucket/prefix")
        endpoint = env.get("FACESWAP_S3_ENDPOINT_URL", "").strip() or None
        try:
            cache_bytes = int(float(env.get("FACESWAP_S3_CACHE_MB", "").strip() or 4096) * MiB)
        except ValueError as exc:
            raise ValueError(f"FACESWAP_S3_CACHE_MB={env['FACESWAP_S3_CACHE_MB']!r} is not a number") from exc
        client = boto3.client("s3", endpoint_url=endpoint)
        try:
            client.head_bucket(Bucket=parts.netloc)
        except (ClientError, BotoCoreError) as exc:
            raise ValueError(f"FACESWAP_BLOBS={url!r}: the bucket cannot be reached ({exc})") from exc
        return cls(client, parts.netloc, parts.path, max_bytes=max_bytes, cache_dir=cache_dir,
                   **{"cache_bytes": cache_bytes, **options})

    # -- writing -------------------------------------------------------------------------------------------------

    def put(self, data: bytes | Path | BinaryIO, *, filename: str, content_type: str | None = None,
            move: bool = False, limit: bool = True) -> BlobInfo:
        """Store bytes, a file (copied, or moved into the local cache when `move`) or a stream, which is sent in
        parts as it is read and refused with `media_too_large` the moment it passes the limit (`limit=False`: no
        limit, for results the server made itself). Nothing is left in the bucket when it fails."""
        filename = safe_filename(filename)
        info = BlobInfo(_new_id(), filename, content_type or guess_content_type(filename), 0, self._clock())
        try:
            if isinstance(data, Path):
                size = data.stat().st_size
                if limit:
                    check_size(size, self.max_bytes)
                with self._errors():
                    self._s3.upload_file(str(data), self.bucket, self._data_key(info.id),
                                         ExtraArgs=self._object_args(info), Config=self._transfer)
            else:
                stream = _Counting(io.BytesIO(data) if isinstance(data, bytes) else data,
                                   self.max_bytes if limit else None)
                with self._errors():
                    self._s3.upload_fileobj(stream, self.bucket, self._data_key(info.id),
                                            ExtraArgs=self._object_args(info), Config=self._transfer)
                size = stream.count
            info = BlobInfo(info.id, filename, info.content_type, size, info.created_at)
            if isinstance(data, Path) and move:
                self._cache.adopt(info.id, filename, data)
        except BaseException:
            self._discard(info.id)
            raise
        return info

    def reserve(self, *, filename: str, size: int, content_type: str | None) -> tuple[BlobInfo, str]:
        """An upload ticket: a pending blob (its ticket object) and the single-use token `open_upload` wants."""
        check_size(size, self.max_bytes)
        filename = safe_filename(filename)
        token = secrets.token_urlsafe(24)
        info = BlobInfo(_new_id(), filename, content_type or guess_content_type(filename), 0, self._clock(),
                        pending=True, expected_size=size, token_sha256=sha256_hex(token))
        with self._errors():
            self._s3.put_object(Bucket=self.bucket, Key=self._ticket_key(info.id), Body=_ticket_json(info),
                                ContentType="application/json")
        return info, token

    def open_upload(self, blob_id: str, token: str) -> tuple[BlobInfo, Path]:
        """Spend the ticket's token (once, across hosts); returns the ticket and a local spool file to write into."""
        info, etag = self._ticket(blob_id)
        if info is None or not info.pending or info.token_sha256 is None:
            raise _ticket_gone()
        if not token_matches(info.token_sha256, token):
            raise FaceSwapError("unauthorized", "This upload link's token is not valid.")
        spent = BlobInfo(**{**asdict(info), "token_sha256": None})
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self._ticket_key(blob_id), Body=_ticket_json(spent),
                                ContentType="application/json", IfMatch=etag)
        except ClientError as exc:
            if _code(exc) in _RACE_LOST:
                raise _ticket_gone() from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        folder = self._spool / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        return info, folder / data_name(info.filename)

    def finish_upload(self, blob_id: str, written: int) -> BlobInfo:
        """Publish a spooled upload of exactly the announced size; anything else deletes the ticket."""
        info, _ = self._ticket(blob_id)
        if info is None or not info.pending:
            raise _ticket_gone()
        spool = self._spool / blob_id / data_name(info.filename)
        if written != info.expected_size or not spool.is_file() or spool.stat().st_size != written:
            self.delete(blob_id)
            raise FaceSwapError("invalid_request", f"The upload sent {written} bytes but its ticket announced "
                                f"{info.expected_size}; request a new upload link and send exactly the file's bytes.")
        filled = BlobInfo(blob_id, info.filename, info.content_type, written, info.created_at)
        try:
            with self._errors():
                self._s3.upload_file(str(spool), self.bucket, self._data_key(blob_id),
                                     ExtraArgs=self._object_args(filled), Config=self._transfer)
                self._s3.delete_object(Bucket=self.bucket, Key=self._ticket_key(blob_id))
            self._cache.adopt(blob_id, filled.filename, spool)
        except BaseException:
            self._discard(blob_id)
            raise
        shutil.rmtree(self._spool / blob_id, ignore_errors=True)
        return filled

    # -- reading -------------------------------------------------------------------------------------------------

    def info(self, blob_id: str) -> BlobInfo:
        if not FILE_ID.match(blob_id or ""):
            raise _gone()
        with self._errors(missing=_gone):
            head = self._s3.head_object(Bucket=self.bucket, Key=self._data_key(blob_id))
        meta = head.get("Metadata") or {}
        try:
            created = float(meta["created"])
        except (KeyError, ValueError):
            created = head["LastModified"].timestamp()
        return BlobInfo(blob_id, meta.get("filename") or "file", head.get("ContentType") or "application/octet-stream",
                        int(head["ContentLength"]), created)

    def path(self, blob_id: str) -> Path:
        """A local copy (downloaded once per host, then reused); the blob is checked to still exist each time."""
        info = self.info(blob_id)

        def download(target: Path) -> None:
            with self._errors(missing=_gone):
                self._s3.download_file(self.bucket, self._data_key(blob_id), str(target), Config=self._transfer)

        return self._cache.get(blob_id, info.filename, info.size, download)

    # -- removing ------------------------------------------------------------------------------------------------

    def delete(self, blob_id: str) -> None:
        if FILE_ID.match(blob_id or ""):
            self._remove(blob_id)

    def sweep(self, retention_s: float, *, keep: Collection[str] = ()) -> int:
        """Delete blobs (and unfilled tickets) whose newest object is more than `retention_s` old, except those in
        `keep`, and drop this host's copies of blobs that are gone. (A failed put aborts its multipart upload; the
        parts of a process killed mid-upload are for the bucket's AbortIncompleteMultipartUpload rule.)"""
        cutoff = self._clock() - retention_s
        newest: dict[str, float] = {}
        keys: dict[str, list[str]] = {}
        with self._errors():
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", ()):
                    blob_id = item["Key"][len(self.prefix):].split("/", 1)[0]
                    if FILE_ID.match(blob_id):
                        newest[blob_id] = max(newest.get(blob_id, 0.0), _epoch(item["LastModified"]))
                        keys.setdefault(blob_id, []).append(item["Key"])
            expired = [blob_id for blob_id, moment in newest.items() if moment < cutoff and blob_id not in keep]
            doomed = [key for blob_id in expired for key in keys[blob_id]]
            for start in range(0, len(doomed), 1000):
                self._s3.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in doomed[start:start + 1000]], "Quiet": True})
        for blob_id in expired:
            self._drop_local(blob_id)
        self._cache.forget_except(set(newest) - set(expired))
        return len(expired)

    # -- internals -----------------------------------------------------------------------------------------------

    def _data_key(self, blob_id: str) -> str:
        return f"{self.prefix}{blob_id}/data"

    def _ticket_key(self, blob_id: str) -> str:
        return f"{self.prefix}{blob_id}/ticket.json"

    @staticmethod
    def _object_args(info: BlobInfo) -> dict[str, Any]:
        # safe_filename keeps names to ASCII letters, digits and ._ -, so they are valid S3 metadata values.
        return {"ContentType": info.content_type,
                "Metadata": {"filename": info.filename, "created": repr(info.created_at)}}

    def _ticket(self, blob_id: str) -> tuple[BlobInfo | None, str | None]:
        if not FILE_ID.match(blob_id or ""):
            raise _ticket_gone()
        try:
            with self._errors(missing=_ticket_gone):
                got = self._s3.get_object(Bucket=self.bucket, Key=self._ticket_key(blob_id))
                body = got["Body"].read()
        except FaceSwapError as exc:
            if exc.code == "file_not_found":
                return None, None
            raise
        try:
            return BlobInfo(**json.loads(body)), got["ETag"]
        except (ValueError, TypeError):
            return None, None

    def _remove(self, blob_id: str) -> None:
        try:
            with self._errors():
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [
                    {"Key": self._data_key(blob_id)}, {"Key": self._ticket_key(blob_id)}], "Quiet": True})
        finally:
            self._drop_local(blob_id)

    def _discard(self, blob_id: str) -> None:
        """Clean up after a failed write without hiding its error (the store may be what failed)."""
        try:
            self._remove(blob_id)
        except FaceSwapError:
            log.warning("could not remove the partial blob %s; retention will", blob_id)

    def _drop_local(self, blob_id: str) -> None:
        self._cache.drop(blob_id)
        shutil.rmtree(self._spool / blob_id, ignore_errors=True)

    @contextmanager
    def _errors(self, missing: Callable[[], FaceSwapError] | None = None) -> Iterator[None]:
        """S3 failures as catalog errors: a missing object as `missing()`, anything else as service_unavailable
        (the details, which may name the endpoint, go to the log only)."""
        try:
            yield
        except ClientError as exc:
            if missing is not None and _code(exc) in _NOT_FOUND:
                raise missing() from exc
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc


class _Counting(io.RawIOBase):
    """A read-only view of a stream that counts what passes and refuses to pass more than `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.count += len(chunk)
        if self._limit is not None:
            check_size(self.count, self._limit)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def _new_id() -> str:
    while True:
        blob_id = secrets.token_urlsafe(24)  # 32 characters, 192 random bits, as the dir store's
        if blob_id[0].isalnum():
            return blob_id


def _ticket_json(info: BlobInfo) -> bytes:
    return json.dumps(asdict(info)).encode()


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(exc: Exception) -> FaceSwapError:
    log.error("S3 blob store request failed: %s", exc)
    return FaceSwapError("service_unavailable", "The file store is temporarily unavailable. Please retry later.")
