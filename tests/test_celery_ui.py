"""The gradio_client tests (tests/test_ui_app.py), all of them, again with the celery backend: the app queues into
Redis and a Celery worker (a thread here, running the real pipeline with the classic engine) takes the jobs;
progress, results, cancels and errors must reach the client as in the embedded mode. One redis-server, app and
worker for the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import test_ui_app
from celery_support import flush, suite_of, worker_thread
from redis_support import redis_url  # noqa: F401  (a fixture)
from test_ui_app import LiveApp, client, media, serve_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow  # real swaps through a live app and gradio_client, as in test_ui_app

globals().update(suite_of(test_ui_app))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LiveApp]:  # noqa: F811
    flush(redis_url)
    with (serve_app(tmp_path_factory.mktemp("ui-app"), backend="celery", redis_url=redis_url) as app,
          worker_thread(app.settings, app.app.state.runtime, None)):
        yield app
