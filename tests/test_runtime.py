"""Runtime: engine choice, honest fallback notices, one load per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models.registry import REGISTRY
from faceswap.runtime import Runtime


def runtime(tmp_path: Path) -> Runtime:
    return Runtime(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", allow_model_download=False))


def test_auto_falls_back_to_classic_and_says_why(tmp_path):
    rt = runtime(tmp_path)
    engine = rt.engine("auto")
    assert engine.name == "classic"
    (notice,) = engine.notices
    assert "classic engine ran" in notice and "models download neural" in notice
    assert len(notice) < 200 and str(tmp_path) not in notice, "one short line, no host path"
    assert rt.engine("classic").notices == []  # asked for by name: nothing to explain
    assert rt.engine("classic").analyzer is engine.analyzer  # loaded once


def test_auto_names_a_damaged_model_file(tmp_path):
    rt = runtime(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    for name in ("det_10g", "w600k_r50", "genderage", "inswapper_128"):
        spec = REGISTRY[name]
        with open(models / spec.filename, "wb") as handle:  # the right size, the wrong bytes
            handle.truncate(spec.size)
    (notice,) = rt.engine("auto").notices
    assert "det_10g.onnx" in notice and len(notice) < 200 and str(tmp_path) not in notice


def test_neural_by_name_fails_fast_with_the_fix(tmp_path):
    with pytest.raises(FaceSwapError) as caught:
        runtime(tmp_path).engine("neural")
    assert caught.value.code == "model_not_available"
    assert "python -m faceswap models download" in caught.value.message
