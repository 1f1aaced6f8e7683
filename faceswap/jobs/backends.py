"""The job core's parts, chosen by configuration: FACESWAP_BACKEND picks the JobStore and Executor, FACESWAP_BLOBS
the BlobStore. `embedded` (SQLite + worker threads) and `dir` (the data dir's `files/`) are what this build has;
the distributed ones (`celery` over Redis, `s3://bucket/prefix`) plug into the same protocols (interfaces.py).
"""

from __future__ import annotations

from faceswap.config import Settings
from faceswap.jobs.blobs import DirBlobStore
from faceswap.jobs.executor import ThreadExecutor
from faceswap.jobs.interfaces import BlobStore, Executor, JobStore
from faceswap.jobs.store import SqliteJobStore

BACKENDS = ("embedded",)
BLOB_STORES = ("dir",)


def build_store(settings: Settings) -> JobStore:
    _check_backend(settings)
    return SqliteJobStore(settings.data_dir / "jobs.sqlite3")


def build_executor(settings: Settings) -> Executor:
    _check_backend(settings)
    return ThreadExecutor(settings.workers)


def build_blobs(settings: Settings) -> BlobStore:
    if settings.blobs.startswith("s3://"):
        from faceswap.jobs.s3_blobs import S3BlobStore  # boto3 is imported only by deployments that use it

        return S3BlobStore.from_url(settings.blobs, max_bytes=settings.max_upload_bytes,
                                    cache_dir=settings.data_dir / "s3-cache")
    if settings.blobs != "dir":
        raise ValueError(f"FACESWAP_BLOBS={settings.blobs!r} is not available in this build; use one of: "
                         f"{', '.join(BLOB_STORES)}, s3://bucket/prefix")
    return DirBlobStore(settings.data_dir / "files", max_bytes=settings.max_upload_bytes)


def _check_backend(settings: Settings) -> None:
    if settings.backend not in BACKENDS:
        raise ValueError(f"FACESWAP_BACKEND={settings.backend!r} is not available in this build; use one of: "
                         f"{', '.join(BACKENDS)}")
