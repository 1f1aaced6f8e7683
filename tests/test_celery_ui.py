"""A subset of the gradio_client tests (tests/test_ui_app.py) again with the celery backend: the app queues into
Redis and a Celery worker (a thread here, running the real pipeline with the classic engine) takes the jobs;
progress, results and cancels must reach the client as in the embedded mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery_support import flush, worker_thread
from redis_support import redis_url  # noqa: F401  (a fixture)
from test_ui_app import (  # noqa: F401  (collected again here, with this module's `live`)
    LiveApp,
    client,
    media,
    serve_app,
    test_swap_cancelled_while_queued_and_while_running_leaves_nothing_behind,
    test_swap_job_reports_progress_and_returns_the_video_with_the_chosen_face_changed,
)

pytestmark = pytest.mark.slow  # real swaps through a live app and gradio_client, as in test_ui_app


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LiveApp]:  # noqa: F811
    flush(redis_url)
    with (serve_app(tmp_path_factory.mktemp("ui-app"), backend="celery", redis_url=redis_url) as app,
          worker_thread(app.settings, app.app.state.runtime, None)):
        yield app
