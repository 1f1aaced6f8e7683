"""Schemathesis fuzzes every operation in /openapi.json against a live server and finds no 5xx.

The run is bounded (examples per operation, a fixed seed, a subprocess time limit). The fake runner does the jobs:
this is about the HTTP layer never crashing, whatever the body."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import FakeRunner, FakeRuntime, live_server

from faceswap.config import Settings
from faceswap.server import create_app

KEY = "schema-key"


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    pytest.importorskip("schemathesis")
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is installed but its command is missing"
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", api_keys=frozenset({KEY}),
                        rate_limit_per_minute=0, max_upload_bytes=2_000_000, fetch_timeout_s=2)
    app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings), runner=FakeRunner(frames=1,
                                                                                               settings=settings))
    with live_server(app) as base:
        result = subprocess.run(
            [cli, "run", f"{base}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "15",
             "--seed", "1", "--workers", "2", "--request-timeout", "30", "-H", f"Authorization: Bearer {KEY}",
             "--phases", "examples,coverage,fuzzing", "--no-shrink", "--warnings", "off"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "operations" in result.stdout.lower() or "passed" in result.stdout.lower()
