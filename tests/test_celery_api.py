"""The whole REST suite (tests/test_api.py) again with the celery backend: the app queues into Redis, a Celery
worker (a thread here, with the test's fake runner) runs the jobs, and every answer must be the same. Each app that
a test starts gets its own worker thread (the tests give each app its own runner and data dir), all on this module's
redis-server. tests/test_celery.py runs real swaps on worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import test_api
from api_helpers import make_media, server_factory
from celery_support import suite_of
from redis_support import redis_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow  # a second copy of the REST suite: the full run only

globals().update(suite_of(test_api))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("api-media"))


@pytest.fixture
def start(tmp_path: Path, redis_url: str) -> Iterator:  # noqa: F811
    with server_factory(tmp_path, redis_url=redis_url) as factory:
        yield factory
