"""The job core: one queue (SQLite store + worker threads) and a file store, shared by every door."""

from faceswap.jobs.service import Job, JobService

__all__ = ["Job", "JobService"]
