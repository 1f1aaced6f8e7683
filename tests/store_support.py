"""Stores for the contract tests: a settable clock and a factory of JobStores of one kind (SQLite, or Redis on a
real redis-server) whose stores share the same jobs, as processes would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faceswap.jobs.interfaces import JobStore
from faceswap.jobs.store import SqliteJobStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., JobStore]]:
    """The body of a `make_store` fixture parametrised over ("sqlite", "redis"): a factory of JobStores of that kind;
    every store it makes shares the same jobs (like processes would). The module needs the `redis_url` fixture
    (redis_support) in scope."""
    made: list[JobStore] = []
    prefix = f"test-{uuid.uuid4().hex}:"

    def make(clock=time.time) -> JobStore:
        if request.param == "sqlite":
            store = SqliteJobStore(tmp_path / "jobs.sqlite3", clock=clock)
        else:
            from faceswap.jobs.redis_store import RedisJobStore

            store = RedisJobStore(request.getfixturevalue("redis_url"), prefix=prefix, clock=clock)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
