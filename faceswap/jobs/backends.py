"""The job core's parts, chosen by configuration: FACESWAP_BACKEND picks the JobStore and Executor, FACESWAP_BLOBS
the BlobStore. `embedded` is SQLite + worker threads; `celery` is the Redis JobStore at FACESWAP_REDIS_URL + Celery
workers (`faceswap worker`) fed over the same Redis. `dir` is the data dir's `files/` (shared by every process of a
celery deployment through a common volume). They all plug into the same protocols (interfaces.py).
"""

from __future__ import annotations

from faceswap.config import Settings
from faceswap.jobs.blobs import DirBlobStore
from faceswap.jobs.executor import ThreadExecutor
from faceswap.jobs.interfaces import BlobStore, Executor, JobStore
from faceswap.jobs.store import SqliteJobStore

BACKENDS = ("embedded", "celery")
BLOB_STORES = ("dir",)


def build_store(settings: Settings) -> JobStore:
    _check_backend(settings)
    if settings.backend == "celery":
        url = _redis_url(settings)
        from faceswap.jobs.redis_store import RedisJobStore

        return RedisJobStore(url)
    return SqliteJobStore(settings.data_dir / "jobs.sqlite3")


def build_executor(settings: Settings) -> Executor:
    _check_backend(settings)
    if settings.backend == "celery":
        _redis_url(settings)
        from faceswap.jobs.celery_executor import CeleryExecutor

        return CeleryExecutor(settings)
    return ThreadExecutor(settings.workers, stale_after_s=settings.lease_stale_s)


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


def _distributed() -> None:
    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise ValueError("FACESWAP_BACKEND=celery needs Celery and Redis: pip install 'faceswap[distributed]'") from exc


def _redis_url(settings: Settings) -> str:
    _distributed()
    if not settings.redis_url:
        raise ValueError("FACESWAP_BACKEND=celery needs FACESWAP_REDIS_URL (e.g. redis://localhost:6379/0)")
    return settings.redis_url
