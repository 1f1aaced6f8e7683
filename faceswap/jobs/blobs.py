"""DirBlobStore: inputs and outputs by id, in a local directory (the embedded `BlobStore`; an S3-compatible store
can take its place).

Ids carry 192 random bits and are the capability for `/v1/files/{id}`; they are checked against a strict pattern
before they touch the file system, so no path ever comes from a client. Each blob is a directory holding the data
(named `data` plus a sanitised suffix, which the media layer uses as a hint) and `meta.json`.

An upload ticket (WaveSpeed's two-step upload) reserves an id with a single-use token and the announced size; the
blob becomes readable only after exactly that many bytes arrived (`open_upload`, then `finish_upload`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import mimetypes
import re
import secrets
import shutil
import threading
import time
from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

from faceswap.errors import FaceSwapError
from faceswap.jobs.interfaces import FILE_ID, BlobInfo

__all__ = ["FILE_ID", "BlobInfo", "DirBlobStore", "check_size", "data_name", "guess_content_type", "safe_filename",
           "sha256_hex", "token_matches"]

log = logging.getLogger(__name__)

_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
_CHUNK = 1024 * 1024


def safe_filename(name: str | None, default: str = "file") -> str:
    """A display name only (Content-Disposition); never used as a path."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[:120]
    return cleaned or default


def guess_content_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


class DirBlobStore:
    """The embedded BlobStore: one folder per blob under `root`."""

    def __init__(self, root: Path, *, max_bytes: int, clock=time.time) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    # -- writing -------------------------------------------------------------------------------------------------

    def put(self, data: bytes | Path | BinaryIO, *, filename: str, content_type: str | None = None,
            move: bool = False, limit: bool = True) -> BlobInfo:
        """Store bytes, a file (copied, or moved when `move`) or a stream; returns the new blob's info.

        `limit=False` skips the upload size limit (for results the server made itself).
        """
        filename = safe_filename(filename)
        blob_id, folder = self._new_folder()
        target = folder / data_name(filename)
        try:
            if isinstance(data, bytes):
                if limit:
                    self._check_size(len(data))
                target.write_bytes(data)
            elif isinstance(data, Path):
                if limit:
                    self._check_size(data.stat().st_size)
                if move:
                    shutil.move(str(data), target)
                else:
                    shutil.copyfile(data, target)
            else:
                self._copy_stream(data, target)
            info = BlobInfo(blob_id, filename, content_type or guess_content_type(filename), target.stat().st_size,
                            self._clock())
            self._write_meta(folder, info)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return info

    def reserve(self, *, filename: str, size: int, content_type: str | None) -> tuple[BlobInfo, str]:
        """An upload ticket: a pending blob and the single-use token that `fill` must present."""
        self._check_size(size)
        filename = safe_filename(filename)
        token = secrets.token_urlsafe(24)
        blob_id, folder = self._new_folder()
        info = BlobInfo(blob_id, filename, content_type or guess_content_type(filename), 0, self._clock(),
                        pending=True, expected_size=size, token_sha256=sha256_hex(token))
        self._write_meta(folder, info)
        return info, token

    def open_upload(self, blob_id: str, token: str) -> tuple[BlobInfo, Path]:
        """Spend a reserved upload's single-use token; returns the ticket and the file to write the bytes to.

        The caller streams the body into that file (at most `expected_size` bytes), then calls `finish_upload`
        with the count, or `delete` when the transfer broke.
        """
        folder = self._folder(blob_id)
        with self._lock:
            info = self._read_meta(folder)
            if info is None or not info.pending or info.token_sha256 is None:
                raise FaceSwapError("file_not_found", "This upload link is unknown, expired or already used.")
            if not token_matches(info.token_sha256, token):
                raise FaceSwapError("unauthorized", "This upload link's token is not valid.")
            # Spend the token before the transfer, so two concurrent PUTs cannot both fill the blob.
            self._write_meta(folder, BlobInfo(**{**asdict(info), "token_sha256": None}))
        return info, folder / data_name(info.filename)

    def finish_upload(self, blob_id: str, written: int) -> BlobInfo:
        folder = self._folder(blob_id)
        info = self._read_meta(folder)
        if info is None or not info.pending:
            raise FaceSwapError("file_not_found", "This upload link is unknown, expired or already used.")
        if written != info.expected_size:
            self.delete(blob_id)
            raise FaceSwapError("invalid_request", f"The upload sent {written} bytes but its ticket announced "
                                f"{info.expected_size}; request a new upload link and send exactly the file's bytes.")
        filled = BlobInfo(blob_id, info.filename, info.content_type, written, info.created_at)
        self._write_meta(folder, filled)
        return filled

    # -- reading -------------------------------------------------------------------------------------------------

    def info(self, blob_id: str) -> BlobInfo:
        info = self._read_meta(self._folder(blob_id))
        if info is None or info.pending:
            raise FaceSwapError("file_not_found", "The requested file is not available (unknown id, or it expired).")
        return info

    def path(self, blob_id: str) -> Path:
        info = self.info(blob_id)
        path = self._folder(blob_id) / data_name(info.filename)
        if not path.is_file():
            raise FaceSwapError("file_not_found", "The requested file is not available (unknown id, or it expired).")
        return path

    # -- removing ------------------------------------------------------------------------------------------------

    def delete(self, blob_id: str) -> None:
        if FILE_ID.match(blob_id):
            shutil.rmtree(self.root / blob_id, ignore_errors=True)

    def sweep(self, retention_s: float, *, keep: Collection[str] = ()) -> int:
        """Delete blobs created more than `retention_s` ago (and pending uploads never filled in that time), except
        those in `keep` (the inputs and outputs of jobs still held)."""
        cutoff = self._clock() - retention_s
        removed = 0
        for folder in self.root.iterdir():
            if not FILE_ID.match(folder.name) or folder.name in keep:
                continue
            info = self._read_meta(folder)
            created = info.created_at if info is not None else _mtime(folder)
            if created < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    # -- internals -----------------------------------------------------------------------------------------------

    def _new_folder(self) -> tuple[str, Path]:
        while True:
            blob_id = secrets.token_urlsafe(24)  # 32 characters, 192 random bits
            if not blob_id[0].isalnum():  # keep ids from starting with '-' (some shells and CLIs trip on it)
                continue
            folder = self.root / blob_id
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return blob_id, folder

    def _folder(self, blob_id: str) -> Path:
        if not FILE_ID.match(blob_id or ""):
            raise FaceSwapError("file_not_found", "The requested file is not available (unknown id, or it expired).")
        return self.root / blob_id

    def _check_size(self, size: int) -> None:
        check_size(size, self.max_bytes)

    def _copy_stream(self, stream: BinaryIO, target: Path) -> None:
        written = 0
        with target.open("wb") as out:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                written += len(chunk)
                self._check_size(written)
                out.write(chunk)

    def _write_meta(self, folder: Path, info: BlobInfo) -> None:
        temp = folder / "meta.json.tmp"
        temp.write_text(json.dumps(asdict(info)))
        temp.replace(folder / "meta.json")

    @staticmethod
    def _read_meta(folder: Path) -> BlobInfo | None:
        try:
            return BlobInfo(**json.loads((folder / "meta.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None


def data_name(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    return "data" + (suffix if _SUFFIX.match(suffix) else "")


def check_size(size: int, max_bytes: int) -> None:
    """The upload size limit, shared by every BlobStore."""
    if size > max_bytes:
        raise FaceSwapError("media_too_large", f"The file is {size / 1e6:.1f} MB; this server accepts at most "
                            f"{max_bytes / 1e6:.1f} MB.")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token_matches(token_sha256: str, token: str) -> bool:
    return hmac.compare_digest(token_sha256, sha256_hex(token))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
