"""A subset of the REST tests (tests/test_api.py) again with the celery backend: the app queues into Redis, a
Celery worker (a thread here, with the same fake runner) runs the jobs, and every answer must be the same.
tests/test_celery.py runs real swaps on worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import make_media, server_factory
from redis_support import redis_url  # noqa: F401  (a fixture)
from test_api import (  # noqa: F401  (collected again here, with this module's `start`)
    test_openoctopus_create_poll_and_download,
    test_openoctopus_failed_and_cancelled_tasks,
    test_segmind_async_flow_and_failures,
    test_wavespeed_upload_submit_and_result,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("api-media"))


@pytest.fixture
def start(tmp_path: Path, redis_url: str) -> Iterator:  # noqa: F811
    with server_factory(tmp_path, redis_url=redis_url) as factory:
        yield factory
