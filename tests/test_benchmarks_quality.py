"""Smoke test of `benchmarks.quality` (benchmarks are not tests: this proves the script runs on tiny cost twins
and prints its per-stage table, with the swap model called t² times per face and the twins routed as the real
files would be)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnxruntime
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import quality  # noqa: E402
from faceswap.models.signature import Signature  # noqa: E402


@pytest.mark.slow  # tiny twins, but 20 inswapper calls and a 512 parser pass: several seconds on 2 shared cores
def test_the_quality_benchmark_prints_each_stage_at_each_boost(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert quality.main(["--scale", "0.02", "--out", str(tmp_path), "--repeats", "1", "--boost", "native",
                         "512"]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    header = next(line for line in lines if line.startswith("stage (ms per face)"))
    assert [cell.strip() for cell in header.split("  ") if cell.strip()] == [
        "stage (ms per face)", "native (128 px)", "512 (512 px)"]
    rows = {line.split("  ")[0]: line for line in lines}
    for stage in quality.STAGES:
        assert stage in rows, stage
    assert "(1 calls)" in rows["swap (inswapper)"] and "(16 calls)" in rows["swap (inswapper)"]
    assert "total, all four masks (area by 1k3d68)" in rows

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["scale"] == 0.02 and set(manifest["files"]) == set(quality.FILES)
    kinds = {}
    for name, filename in quality.FILES.items():
        session = onnxruntime.InferenceSession(str(tmp_path / filename), providers=["CPUExecutionProvider"])
        kinds[name] = Signature.from_session(session).kind()
    assert kinds == {"inswapper_128": "swapper", "xseg_1": "occluder", "bisenet_resnet_18": "parser",
                     "1k3d68": "landmarker"}
