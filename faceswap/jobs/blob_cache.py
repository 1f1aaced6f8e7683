"""A bounded local cache of remote blobs (S3BlobStore.path): each blob downloaded once per host and reused.

A blob's bytes never change (every put is a new id), so a cached copy is valid for as long as the blob exists;
the store checks that before it hands out a cached path. The cache is bounded in bytes and evicts the least
recently used copies, except those used within `grace_s`: a job opens its inputs right after `path()` returns,
so a copy just handed out is never pulled from under it. The bound is therefore soft while many copies are in use.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from faceswap.jobs.blobs import data_name
from faceswap.jobs.interfaces import FILE_ID

log = logging.getLogger(__name__)


class BlobCache:
    """Copies under `root/<id>/data<suffix>`; the file's mtime is its last use."""

    def __init__(self, root: Path, *, max_bytes: int, grace_s: float = 600.0, clock: Callable[[], float] = time.time
                 ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self._clock = clock
        self._guard = threading.Lock()
        self._filling: dict[str, threading.Lock] = {}
        root.mkdir(parents=True, exist_ok=True)

    def get(self, blob_id: str, filename: str, size: int, fill: Callable[[Path], None]) -> Path:
        """The cached copy of `blob_id`, made with `fill(temp_path)` on a miss; `size` checks a copy is whole."""
        target = self.root / blob_id / data_name(filename)
        with self._fill_lock(blob_id):
            if _size(target) == size:
                os.utime(target)
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
            try:
                fill(temp)
                temp.replace(target)  # atomic: a reader (another worker on this host) sees the whole copy or none
            finally:
                temp.unlink(missing_ok=True)
        self.trim(protect=blob_id)
        return target

    def adopt(self, blob_id: str, filename: str, source: Path) -> None:
        """Take a local file that now holds a stored blob's bytes (an output, an upload's spool) as its copy."""
        target = self.root / blob_id / data_name(filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), target)
        os.utime(target)
        self.trim(protect=blob_id)

    def drop(self, blob_id: str) -> None:
        if FILE_ID.match(blob_id):
            shutil.rmtree(self.root / blob_id, ignore_errors=True)

    def ids(self) -> set[str]:
        return {entry.name for entry in self.root.iterdir() if FILE_ID.match(entry.name)}

    def forget_except(self, live: Collection[str]) -> None:
        """Drop the copies of blobs that no longer exist in the store (deleted or swept by another host)."""
        for blob_id in self.ids() - set(live):
            if self._idle(self.root / blob_id):
                self.drop(blob_id)

    def trim(self, *, protect: str = "") -> None:
        """Evict least recently used copies until the cache fits `max_bytes` (copies in use stay)."""
        entries = []
        for folder in self.root.iterdir():
            if FILE_ID.match(folder.name):
                files = [file for file in folder.iterdir() if file.is_file()]
                entries.append((max((_mtime(file) for file in files), default=0.0),
                                sum(_size(file) or 0 for file in files), folder))
        total = sum(size for _, size, _ in entries)
        for _, size, folder in sorted(entries):
            if total <= self.max_bytes:
                return
            if folder.name == protect or not self._idle(folder):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
        if total > self.max_bytes:
            log.warning("blob cache holds %.1f MB in use, over its %.1f MB bound", total / 1e6, self.max_bytes / 1e6)

    def _idle(self, folder: Path) -> bool:
        try:
            used = max((_mtime(file) for file in folder.iterdir()), default=0.0)
        except OSError:
            return True
        return self._clock() - used > self.grace_s

    @contextmanager
    def _fill_lock(self, blob_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._filling.setdefault(blob_id, threading.Lock())
        try:
            with lock:
                yield
        finally:
            with self._guard:
                if not lock.locked():
                    self._filling.pop(blob_id, None)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
