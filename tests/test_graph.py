"""faceswap.models.graph reads node names and the last initializer by walking the wire format; it must agree with
a full `onnx.load` on every twin (both variants), find external-data emaps, and refuse broken files plainly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from twins import build_genderage, build_inswapper, build_recognizer

from faceswap.errors import FaceSwapError
from faceswap.models import graph


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("graph")
    built = {}
    for variant in ("real", "alt"):
        built[f"inswapper-{variant}"] = build_inswapper(folder / f"inswapper-{variant}.onnx", variant=variant).path
        built[f"w600k-{variant}"] = build_recognizer(folder / f"w600k-{variant}.onnx", variant=variant)
        built[f"genderage-{variant}"] = build_genderage(folder / f"genderage-{variant}.onnx", variant=variant)
    return built


def insightface_rule(path: Path, *, allow_bn_data: bool) -> bool:
    """insightface's own test, on the fully loaded graph."""
    names = [node.name for node in onnx.load(str(path)).graph.node[:8]]
    if allow_bn_data and "bn_data" in names[:3]:
        return True
    return (any(n.startswith(("Sub", "_minus")) for n in names) and any(n.startswith(("Mul", "_mul")) for n in names))


def test_normalisation_flag_matches_a_full_load(files: dict[str, Path]) -> None:
    seen = set()
    for name, path in files.items():
        for allow in (False, True):
            flag = graph.normalises_internally(path, allow_bn_data=allow)
            assert flag == insightface_rule(path, allow_bn_data=allow), name
            seen.add(flag)
    assert seen == {True, False}  # the twins cover both answers


def test_emap_matches_a_full_load(files: dict[str, Path]) -> None:
    for variant in ("real", "alt"):
        path = files[f"inswapper-{variant}"]
        expected = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[-1])
        emap = graph.last_initializer(path, shape=(512, 512))
        assert emap.dtype == np.float32 and emap.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(emap, expected)


def test_emap_stored_as_external_data(files: dict[str, Path], tmp_path: Path) -> None:
    model = onnx.load(str(files["inswapper-real"]))
    expected = numpy_helper.to_array(model.graph.initializer[-1])
    target = tmp_path / "inswapper_128.onnx"
    onnx.save(model, str(target), save_as_external_data=True, location="weights.bin", size_threshold=1024)
    assert target.stat().st_size < 100_000  # the weights really moved out
    np.testing.assert_array_equal(graph.last_initializer(target, shape=(512, 512)), expected)


def test_wrong_shape_and_broken_files_are_catalog_errors(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FaceSwapError) as wrong:
        graph.last_initializer(files["w600k-real"], shape=(512, 512))
    assert wrong.value.code == "model_not_available" and "expected the (512, 512) emap" in wrong.value.message

    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(files["inswapper-real"].read_bytes()[:5000])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    text = tmp_path / "text.onnx"
    text.write_text("this is not a model\n" * 50)
    for broken in (truncated, empty, text, tmp_path / "missing.onnx"):
        with pytest.raises(FaceSwapError) as error:
            graph.last_initializer(broken, shape=(512, 512))
        assert error.value.code == "model_not_available", broken.name
        assert str(tmp_path) not in error.value.message  # no host path in client-facing text
