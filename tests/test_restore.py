"""Face restoration with GFPGAN and CodeFormer twins: the face region changes by the visibility given, CodeFormer
receives the weight given, nothing outside the face's region is written, and wrong files are refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import media_factory as mf
import numpy as np
import pytest
from twins import build_codeformer, build_gfpgan, known_faces

from faceswap.errors import FaceSwapError
from faceswap.faces.align import FFHQ_512, estimate_similarity, transform_points
from faceswap.faces.paste import crop_region
from faceswap.faces.types import Face
from faceswap.models.sessions import SessionFactory
from faceswap.restore import RESTORER_MODELS, load_restorer

SIZE = 512


@pytest.fixture(scope="module")
def restorers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("restorers")
    return {variant: {"gfpgan_1.4": build_gfpgan(root / variant / "GFPGANv1.4.onnx", variant=variant),
                      "codeformer": build_codeformer(root / variant / "codeformer.onnx", variant=variant)}
            for variant in ("real", "alt")}


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, Face]:
    """A 640x480 frame with the astronaut's face, and a Face that has only what restoration needs (kps)."""
    face = next(f for f in known_faces() if f.name == "astronaut")
    frame = mf.background(640, 480)
    frame[100:380, 200:470] = face.photo
    kps = (face.kps + np.array([200, 100])).astype(np.float32)
    box = np.array([face.box[0] + 200, face.box[1] + 100, face.box[2] + 200, face.box[3] + 100], np.float32)
    return frame, Face(bbox=box, score=0.9, kps=kps)


def face_centre(face: Face) -> tuple[slice, slice]:
    x, y = face.kps[2].astype(int)  # the nose: deep inside the mask, where it is fully 1
    return slice(y - 6, y + 6), slice(x - 6, x + 6)


def region_outside(frame: np.ndarray, face: Face) -> np.ndarray:
    matrix = estimate_similarity(face.kps, FFHQ_512)
    x1, y1, x2, y2 = crop_region(frame.shape, (SIZE, SIZE), matrix)
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    return outside


@pytest.mark.parametrize("variant", ["real", "alt"])
def test_restoration_changes_the_face_by_the_visibility(restorers: dict[str, dict[str, Path]],
                                                        scene: tuple[np.ndarray, Face], variant: str) -> None:
    restorer = load_restorer("gfpgan", restorers[variant], SessionFactory(("cpu",)))
    assert restorer.name == "gfpgan"
    frame, face = scene
    rows, cols = face_centre(face)
    original = frame[rows, cols].astype(float)
    inverted = 255 - original  # what the GFPGAN twin returns for the face
    outside = region_outside(frame, face)
    for visibility in (0.1, 0.5, 1.0):
        out = restorer.restore(frame.copy(), face, visibility=visibility, codeformer_weight=0.5)
        expected = original + visibility * (inverted - original)
        assert np.abs(out[rows, cols].astype(float) - expected).mean() < 3, visibility
        assert np.array_equal(out[outside], frame[outside])
    assert np.array_equal(frame, scene[0])  # restore wrote into the copies only


@pytest.mark.parametrize("variant", ["real", "alt"])
def test_codeformer_receives_the_weight(restorers: dict[str, dict[str, Path]], scene: tuple[np.ndarray, Face],
                                        variant: str) -> None:
    restorer = load_restorer("codeformer", restorers[variant], SessionFactory(("cpu",)))
    frame, face = scene
    rows, cols = face_centre(face)
    outside = region_outside(frame, face)
    for weight in (0.0, 0.3, 0.95):
        out = restorer.restore(frame.copy(), face, visibility=1.0, codeformer_weight=weight)
        assert np.abs(out[rows, cols].astype(float) - 255 * weight).max() <= 1, weight  # flat grey of level w
        assert np.array_equal(out[outside], frame[outside])


def test_restoration_follows_the_face_not_the_frame(restorers: dict[str, dict[str, Path]],
                                                    scene: tuple[np.ndarray, Face]) -> None:
    # A rotated face: the restored crop goes back through the same rotation, centred on the face.
    frame, face = scene
    centre = tuple(float(v) for v in face.kps[2])
    rotation = cv2.getRotationMatrix2D(centre, 25, 1.0)
    turned = cv2.warpAffine(frame, rotation, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    turned_face = Face(bbox=face.bbox, score=face.score, kps=transform_points(face.kps, rotation))
    restorer = load_restorer("codeformer", restorers["real"], SessionFactory(("cpu",)))
    out = restorer.restore(turned.copy(), turned_face, visibility=1.0, codeformer_weight=1.0)
    for point in turned_face.kps:
        x, y = point.astype(int)
        assert np.all(out[y, x] >= 250)  # every key point sits inside the restored (white) area
    assert np.array_equal(out[region_outside(turned, turned_face)], turned[region_outside(turned, turned_face)])


def test_wrong_restorer_files_are_refused(restorers: dict[str, dict[str, Path]]) -> None:
    files = restorers["real"]
    assert RESTORER_MODELS == {"gfpgan": ("gfpgan_1.4",), "codeformer": ("codeformer",)}
    with pytest.raises(FaceSwapError) as info:
        load_restorer("gfpgan", {"gfpgan_1.4": files["codeformer"]}, SessionFactory(("cpu",)))
    assert info.value.code == "model_not_available" and "fidelity weight" in info.value.message
    with pytest.raises(FaceSwapError) as info:
        load_restorer("codeformer", {"codeformer": files["gfpgan_1.4"]}, SessionFactory(("cpu",)))
    assert "codeformer.onnx" not in info.value.message and "GFPGANv1.4.onnx" in info.value.message
    with pytest.raises(FaceSwapError) as info:
        load_restorer("gpen", files, SessionFactory(("cpu",)))
    assert info.value.code == "invalid_request"


def test_restoration_works_on_faces_found_by_the_classic_engine(restorers: dict[str, dict[str, Path]],
                                                                 scene: tuple[np.ndarray, Face]) -> None:
    from faceswap.engines.classic import load_classic_engine

    frame = scene[0]
    (face,) = load_classic_engine().analyzer.detect(frame, None)
    restorer = load_restorer("codeformer", restorers["real"], SessionFactory(("cpu",)))
    out = restorer.restore(frame.copy(), face, visibility=1.0, codeformer_weight=1.0)
    rows, cols = face_centre(face)
    assert np.all(out[rows, cols] >= 250)
    assert np.array_equal(out[region_outside(frame, face)], frame[region_outside(frame, face)])
