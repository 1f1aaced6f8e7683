"""Schemathesis fuzzes every operation in /openapi.json against a live server with `--checks all`, no check left
out: no 5xx, no status code, content type or error shape the document does not list, 405 with Allow for methods a
route lacks, schema-invalid data refused and schema-valid data accepted (`faceswap.api.fields` keeps the schemas to
what the server accepts).

One operation has a wider list of accepted answers for `positive_data_acceptance`: the sync `POST /v1/videofaceswap`
runs the job inside the request and answers with the job's own error, so a well-formed request whose media cannot be
fetched or read (the URL's host does not resolve here) is answered 400/413/415/422 as documented. The run is bounded
(examples per operation, a fixed seed, a subprocess time limit). A fake runner does the jobs, with the real
pipeline's output contract (MP4 or GIF, unreadable input refused): this is about the HTTP layer."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from api_support import FakeRunner, FakeRuntime, live_server

from faceswap.api.fields import MEDIA_PATTERN
from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media.fetch import precheck_url
from faceswap.media.inputs import decode_inline, sniff_suffix
from faceswap.report import SwapResult
from faceswap.server import create_app

KEY = "schema-key"
CONFIG = """
[[operations]]
include-path = "/v1/videofaceswap"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "409", "429", "5xx",
                                                     "400", "413", "415", "422"]
"""


class ContractRunner(FakeRunner):
    """The fake runner, answering what the real pipeline would for the bytes it got: MP4 for a video, GIF for a
    GIF, `unsupported_media` for anything else (the fake copies its input, which fuzzed data URIs make arbitrary)."""

    def __call__(self, *args: Any, **kwargs: Any) -> SwapResult:
        result = super().__call__(*args, **kwargs)
        kind = sniff_suffix(result.output.read_bytes()[:64])
        if kind not in (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif"):
            result.output.unlink()
            raise FaceSwapError("unsupported_media")
        target = result.output.with_suffix(".gif" if kind == ".gif" else ".mp4")
        result.output.rename(target)
        return SwapResult(target, result.report)


@pytest.mark.slow
def test_schemathesis_finds_no_undocumented_answers(tmp_path: Path) -> None:
    pytest.importorskip("schemathesis")
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is installed but its command is missing"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", api_keys=frozenset({KEY}),
                        rate_limit_per_minute=0, max_upload_bytes=2_000_000, fetch_timeout_s=2)
    app = create_app(settings, with_ui=False, runtime=FakeRuntime(settings),
                     runner=ContractRunner(frames=1, settings=settings))
    with live_server(app) as base:
        result = subprocess.run(
            [cli, "--config-file", str(config), "run", f"{base}/openapi.json", "--checks", "all",
             "--max-examples", "10", "--seed", "1", "--workers", "2", "--request-timeout", "30",
             "-H", f"Authorization: Bearer {KEY}", "--phases", "examples,coverage,fuzzing", "--no-shrink",
             "--warnings", "off"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "15 passed" in result.stdout, "every operation was tested"


DOCUMENTED = ["https://a.example/v.mp4", "HTTP://media.example:8080/x?y=1#z", "http://a_b.example.", "http://foo/",
              "data:video/mp4;base64,AAAAGGZ0eXBtcDQy", "QUJD" * 16]
REFUSED = ["http://localhost/", "http://X.LocalHost./v", "http://a.123/", "http://0.aa*/", "http://u@a.example/",
           "http://a.example:65536/", "data:video/mp4;base64,", "QUJD" * 15, "ftp://a.example/", ""]


@pytest.mark.parametrize("value", DOCUMENTED)
def test_what_the_media_pattern_documents_the_server_accepts(value: str, tmp_path: Path) -> None:
    assert re.search(MEDIA_PATTERN, value)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    if value.lower().startswith("http"):
        precheck_url(value, settings, field="video")
    else:
        assert decode_inline(value, settings, field="video") is not None


@pytest.mark.parametrize("value", REFUSED)
def test_what_the_server_refuses_the_media_pattern_leaves_out(value: str, tmp_path: Path) -> None:
    assert not re.search(MEDIA_PATTERN, value)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    try:
        if value.lower().startswith(("http:", "https:")):
            precheck_url(value, settings, field="video")
            refused = False
        else:
            refused = decode_inline(value, settings, field="video") is None
    except FaceSwapError:
        refused = True
    assert refused, f"{value!r} is accepted by the server"
