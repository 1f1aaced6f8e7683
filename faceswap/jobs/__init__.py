"""The job core: one queue shared by every door, written against three protocols (interfaces.py) — JobStore,
BlobStore, Executor — with SQLite, a local directory and worker threads as the embedded defaults."""

from faceswap.jobs.service import Job, JobService

__all__ = ["Job", "JobService"]
