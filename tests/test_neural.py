"""The neural engine with twins: routing like the real files, parity with insightface, real behaviour on real
faces (detection where the faces are, identities told apart, only the chosen face swapped), for two independent
twin sets that differ in everything MODELS.md allows to differ."""

from __future__ import annotations

import warnings
from pathlib import Path

import media_factory as mf
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from twins import TwinSet, build_genderage, build_twin_set

from faceswap.engines.base import Engine
from faceswap.engines.neural import NEURAL_MODELS, load_neural_engine
from faceswap.errors import FaceSwapError
from faceswap.faces.align import warp_bbox_centered
from faceswap.faces.paste import crop_region
from faceswap.faces.types import Face, iou
from faceswap.models.sessions import SessionFactory

W, H, PATCH = 640, 360, 180


@pytest.fixture(scope="module")
def twin_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TwinSet]:
    return {variant: build_twin_set(tmp_path_factory.mktemp(f"twins-{variant}"), variant=variant)
            for variant in ("real", "alt")}


@pytest.fixture(scope="module")
def engines(twin_sets: dict[str, TwinSet]) -> dict[str, Engine]:
    return {variant: load_neural_engine(twins.paths, SessionFactory(("cpu",))) for variant, twins in twin_sets.items()}


@pytest.fixture(scope="module")
def clip_frames() -> dict[int, np.ndarray]:
    patches = mf.t1_patches(PATCH)
    base = mf.background(W, H)
    return {index: mf.render(patches, LAYOUT, index, W, H, base) for index in (0, 7)}


LAYOUT = mf.row_layout(3, PATCH, W, H)


def expected_boxes(index: int) -> list[np.ndarray]:
    """Where the three faces of frame `index` are: the middle half of each patch (face_patch margin 2)."""
    return [np.array([x + PATCH / 4, y + PATCH / 4, x + 3 * PATCH / 4, y + 3 * PATCH / 4]) for _, x, y in LAYOUT(index)]


def by_position(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda face: face.center[0])


# ------------------------------------------------------------------------------------------------ routing
def test_insightface_routes_the_twins_like_the_real_files(twin_sets: dict[str, TwinSet]) -> None:
    from insightface.model_zoo import get_model

    paths = twin_sets["real"].paths
    routed = {name: get_model(str(path), providers=["CPUExecutionProvider"]) for name, path in paths.items()}
    assert type(routed["det_10g"]).__name__ == "SCRFD" and routed["det_10g"].taskname == "detection"
    assert routed["det_10g"].use_kps and routed["det_10g"].fmc == 3
    assert type(routed["w600k_r50"]).__name__ == "ArcFaceONNX" and routed["w600k_r50"].taskname == "recognition"
    assert (routed["w600k_r50"].input_mean, routed["w600k_r50"].input_std) == (127.5, 127.5)
    assert type(routed["genderage"]).__name__ == "Attribute" and routed["genderage"].taskname == "genderage"
    assert (routed["genderage"].input_mean, routed["genderage"].input_std) == (0.0, 1.0)  # raw pixels, as the real
    assert type(routed["inswapper_128"]).__name__ == "INSwapper"
    assert routed["inswapper_128"].emap.shape == (512, 512)
    # insightface's loose rule takes restorers for ArcFace (MODELS.md §1.2); ours refuses them (below).
    assert type(routed["gfpgan_1.4"]).__name__ == "ArcFaceONNX"
    assert type(routed["codeformer"]).__name__ == "ArcFaceONNX"


def test_results_match_insightface_on_the_same_files(twin_sets: dict[str, TwinSet], engines: dict[str, Engine],
                                                     clip_frames: dict[int, np.ndarray]) -> None:
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo import get_model

    paths, engine, frame = twin_sets["real"].paths, engines["real"], clip_frames[7]
    detector = get_model(str(paths["det_10g"]), providers=["CPUExecutionProvider"])
    boxes, kpss = detector.detect(frame, input_size=(640, 640))
    ours = engine.analyzer.detect(frame)
    assert len(ours) == len(boxes) == 3
    for face, box, kps in zip(ours, boxes, kpss, strict=True):
        assert np.abs(face.bbox - box[:4]).max() < 1e-3 and face.score == pytest.approx(box[4], abs=1e-5)
        assert np.abs(face.kps - kps).max() < 1e-3

    recognizer = get_model(str(paths["w600k_r50"]), providers=["CPUExecutionProvider"])
    attribute = get_model(str(paths["genderage"]), providers=["CPUExecutionProvider"])
    swapper = get_model(str(paths["inswapper_128"]), providers=["CPUExecutionProvider"])
    target, source = ours[0], engine.analyzer.embed(frame, ours[1])
    reference_target = InsightFace(bbox=target.bbox, kps=target.kps, det_score=target.score)
    reference_source = InsightFace(bbox=source.bbox, kps=source.kps, det_score=source.score)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # insightface uses scikit-image's deprecated estimate()
        embedding = recognizer.get(frame, reference_source)
        gender, age = attribute.get(frame, reference_target)
        reference_source.embedding = embedding
        reference_crop, reference_matrix = swapper.get(frame, reference_target, reference_source, paste_back=False)
    assert float(source.embedding @ (embedding / np.linalg.norm(embedding))) > 0.99999
    classified = engine.analyzer.classify_gender(frame, target)
    assert (classified.gender, classified.age) == ({1: "male", 0: "female"}[int(gender)], age)
    crop, matrix = engine.swapper.swapped_crop(frame, target, engine.swapper.prepare_source(frame, source))
    assert np.abs(matrix - reference_matrix).max() < 1e-4
    assert np.abs(crop.astype(int) - reference_crop.astype(int)).max() <= 1


# ------------------------------------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("variant", ["real", "alt"])
def test_detection_finds_the_faces_where_they_are(engines: dict[str, Engine], clip_frames: dict[int, np.ndarray],
                                                  variant: str) -> None:
    analyzer = engines[variant].analyzer
    for index, frame in clip_frames.items():
        faces = by_position(analyzer.detect(frame, None))
        assert len(faces) == 3
        for face, expected in zip(faces, expected_boxes(index), strict=True):
            assert iou(face.bbox, expected) > 0.8, (index, face.bbox, expected)
            assert face.score >= 0.5 and face.kps.shape == (5, 2) and face.kps.dtype == np.float32
            x1, y1, x2, y2 = face.bbox
            assert np.all((face.kps[:, 0] > x1) & (face.kps[:, 0] < x2) & (face.kps[:, 1] > y1) & (face.kps[:, 1] < y2))
            assert face.kps[0, 0] < face.kps[1, 0] and face.kps[3, 0] < face.kps[4, 0]  # image-left first
    assert analyzer.detect(mf.background(W, H)) == []  # no faces, no detections


@pytest.mark.parametrize("variant", ["real", "alt"])
def test_embeddings_tell_people_apart(engines: dict[str, Engine], clip_frames: dict[int, np.ndarray],
                                      variant: str) -> None:
    analyzer = engines[variant].analyzer
    first, later = ([analyzer.embed(frame, face).embedding for face in by_position(analyzer.detect(frame))]
                    for frame in (clip_frames[0], clip_frames[7]))
    similarity = np.array(first) @ np.array(later).T
    assert np.allclose([np.linalg.norm(e) for e in first], 1.0, atol=1e-5)
    assert np.all(np.diag(similarity) > 0.9)
    assert np.all(similarity[~np.eye(3, dtype=bool)] < analyzer.match_threshold)


@pytest.mark.parametrize("variant", ["real", "alt"])
def test_swap_replaces_only_the_chosen_face(twin_sets: dict[str, TwinSet], engines: dict[str, Engine],
                                            clip_frames: dict[int, np.ndarray], variant: str) -> None:
    engine, twin = engines[variant], twin_sets[variant].swapper
    photo = mf.astronaut_face_photo()
    (source_face,) = engine.analyzer.detect(photo)
    source = engine.swapper.prepare_source(photo, source_face)  # embeds the face itself when needed
    frame = clip_frames[7].copy()
    before = frame.copy()
    faces = by_position(engine.analyzer.detect(frame))
    target = faces[1]
    out = engine.swapper.swap(frame, target, source)

    x1, y1, x2, y2 = crop_region(frame.shape, (128, 128), engine.swapper.swapped_crop(before, target, source)[1])
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(out[outside], before[outside])  # nothing outside the face's region is written
    for other in (faces[0], faces[2]):
        ox1, oy1, ox2, oy2 = other.bbox.astype(int)
        assert np.array_equal(out[oy1:oy2, ox1:ox2], before[oy1:oy2, ox1:ox2])
    nose_x, nose_y = target.kps[2].astype(int)
    middle = out[nose_y - 8:nose_y + 8, nose_x - 8:nose_x + 8].reshape(-1, 3).astype(float)
    assert np.abs(middle - twin.colour_bgr(source.latent)).max() <= 2  # the colour the source's latent paints


def test_source_latent_is_insightfaces(twin_sets: dict[str, TwinSet], engines: dict[str, Engine]) -> None:
    photo = mf.hanks_photo()
    for variant in ("real", "alt"):
        engine = engines[variant]
        (face,) = engine.analyzer.detect(photo)
        face = engine.analyzer.embed(photo, face)
        graph = onnx.load(str(twin_sets[variant].paths["inswapper_128"])).graph
        emap = numpy_helper.to_array(graph.initializer[-1])
        assert len(graph.initializer) > 1 and not any(graph.initializer[-1].name in n.input for n in graph.node)
        expected = face.embedding.reshape(1, -1) @ emap
        expected /= np.linalg.norm(expected)
        latent = engine.swapper.prepare_source(photo, face).latent
        assert latent.dtype == np.float32 and latent.shape == (1, 512)
        assert np.abs(latent - expected).max() < 1e-6


def test_gender_comes_from_the_model(tmp_path: Path, twin_sets: dict[str, TwinSet],
                                     clip_frames: dict[int, np.ndarray]) -> None:
    frame = clip_frames[0]
    paths = dict(twin_sets["real"].paths)
    faces = by_position(load_neural_engine(paths, SessionFactory(("cpu",))).analyzer.detect(frame))
    brightness = [warp_bbox_centered(frame, face.bbox, 96)[0].mean() / 255 for face in faces]
    split = float(np.median(brightness))  # the brightest face is male, the darkest female
    paths["genderage"] = build_genderage(tmp_path / "genderage.onnx", male_above=split, age=41)
    analyzer = load_neural_engine(paths, SessionFactory(("cpu",))).analyzer
    assert analyzer.has_gender
    results = [analyzer.classify_gender(frame, face) for face in faces]
    assert [r.gender for r in results] == ["male" if b > split else "female" for b in brightness]
    assert {"male", "female"} <= {r.gender for r in results if r.gender}
    assert all(r.age == 41 for r in results)
    assert results[0].bbox is faces[0].bbox and results[0].kps is faces[0].kps  # the rest of the face is kept


# ------------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize(("slot", "wrong", "looks_like"), [
    ("w600k_r50", "gfpgan_1.4", "single-input face restorer"),
    ("w600k_r50", "codeformer", "fidelity weight"),
    ("det_10g", "inswapper_128", "inswapper"),
    ("inswapper_128", "w600k_r50", "ArcFace"),
    ("genderage", "det_10g", "SCRFD"),
])
def test_a_wrong_file_in_a_slot_is_refused(twin_sets: dict[str, TwinSet], slot: str, wrong: str,
                                           looks_like: str) -> None:
    paths = dict(twin_sets["real"].paths)
    paths[slot] = paths[wrong]
    with pytest.raises(FaceSwapError) as info:
        load_neural_engine(paths, SessionFactory(("cpu",)))
    assert info.value.code == "model_not_available"
    assert paths[wrong].name in info.value.message and looks_like in info.value.message


def test_the_engine_reports_where_it_runs(twin_sets: dict[str, TwinSet]) -> None:
    assert NEURAL_MODELS == ("det_10g", "w600k_r50", "genderage", "inswapper_128")
    engine = load_neural_engine(twin_sets["alt"].paths, SessionFactory(("cpu",)))
    assert (engine.name, engine.provider, engine.notices) == ("neural", "cpu", [])
    asked = load_neural_engine(twin_sets["alt"].paths, SessionFactory(("cuda",), available=["CPUExecutionProvider"]))
    assert asked.provider == "cpu"
    assert any("CUDAExecutionProvider" in notice for notice in asked.notices)
