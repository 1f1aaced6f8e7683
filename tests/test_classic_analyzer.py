"""The classic engine's analysis (dlib, shipped in packages) on real photos: detection, key points, landmarks,
region searches, identity embeddings and the gender refusal."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_factory import (
    T1_FACE_BOXES,
    ClipSpec,
    astronaut_face_photo,
    astronaut_photo,
    background,
    face_patch,
    hanks_photo,
    read_frames,
    t1_photo,
    write_clip,
)

from faceswap.engines.classic import ClassicAnalyzer, ClassicSwapper, load_classic_engine
from faceswap.engines.classic.analyzer import cosine_for_distance
from faceswap.errors import FaceSwapError
from faceswap.faces.types import Face, iou


@pytest.fixture(scope="session")
def classic_engine():
    return load_classic_engine()


@pytest.fixture(scope="module")
def analyzer(classic_engine) -> ClassicAnalyzer:
    return classic_engine.analyzer


@pytest.fixture(scope="module")
def t1_faces(analyzer) -> list[Face]:
    return sorted(analyzer.detect(t1_photo()), key=lambda face: face.bbox[0])


def _matching(faces: list[Face], box) -> Face:
    return max(faces, key=lambda face: iou(face.bbox, np.asarray(box, np.float32)))


def _eye_distance(face: Face) -> float:
    return float(np.linalg.norm(face.kps[1] - face.kps[0]))


def test_load_classic_engine_needs_no_download(classic_engine) -> None:
    assert classic_engine.name == "classic"
    assert classic_engine.provider == "cpu"
    assert isinstance(classic_engine.swapper, ClassicSwapper)
    assert classic_engine.analyzer.name == "classic" and classic_engine.analyzer.has_gender is False


def test_finds_all_six_t1_faces_with_key_points_in_order(t1_faces: list[Face]) -> None:
    assert len(t1_faces) == 6
    for face, box in zip(t1_faces, T1_FACE_BOXES, strict=True):
        assert iou(face.bbox, np.asarray(box, np.float32)) > 0.6
        assert face.score > 0
        assert face.kps.shape == (5, 2) and face.kps.dtype == np.float32
        assert face.landmarks is not None and face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
        left_eye, right_eye, nose, left_mouth, right_mouth = face.kps
        assert left_eye[0] < right_eye[0], "the image-left eye comes first"
        assert left_eye[0] < nose[0] < right_eye[0]
        assert left_mouth[0] < right_mouth[0]
        assert min(left_mouth[1], right_mouth[1]) > max(left_eye[1], right_eye[1]) + 0.3 * _eye_distance(face)
        assert nose[1] < max(left_mouth[1], right_mouth[1])
        # Eyes, brows, nose and mouth lie inside the box; the jaw line may graze its edge.
        x1, y1, x2, y2 = face.bbox
        inner = face.landmarks[17:]
        assert ((inner >= [x1, y1]) & (inner <= [x2, y2])).all()
        grown = face.width * 0.15
        assert ((face.landmarks >= [x1 - grown, y1 - grown]) & (face.landmarks <= [x2 + grown, y2 + grown])).all()


def test_key_points_are_the_landmarks_eye_centres_nose_tip_and_mouth_corners(t1_faces: list[Face]) -> None:
    for face in t1_faces:
        marks = face.landmarks
        expected = [marks[36:42].mean(axis=0), marks[42:48].mean(axis=0), marks[30], marks[48], marks[54]]
        np.testing.assert_allclose(face.kps, np.array(expected), atol=1e-4)


def test_region_search_finds_the_same_faces_near_given_boxes(analyzer, t1_faces: list[Face]) -> None:
    photo = t1_photo()
    # Boxes from a previous frame are off: shifted by a tenth of the face and a little too small or too large.
    regions = []
    for index, face in enumerate(t1_faces):
        shift = np.array([1, -1]) * 0.1 * face.width * (1 if index % 2 else -1)
        scale = 0.85 if index % 2 else 1.2
        center = np.array(face.center) + shift
        half = face.width * scale / 2
        regions.append(np.array([*(center - half), *(center + half)], np.float32))
    found = analyzer.detect(photo, regions)
    assert len(found) == 6
    for face in t1_faces:
        match = _matching(found, face.bbox)
        assert iou(match.bbox, face.bbox) > 0.8
        error = np.linalg.norm(match.landmarks - face.landmarks, axis=1).mean()
        assert error < 0.05 * _eye_distance(face)


def test_region_search_away_from_faces_finds_nothing(analyzer) -> None:
    photo = t1_photo()
    lamp_and_wall = [np.array([560, 60, 680, 180], np.float32), np.array([1000, 500, 1100, 600], np.float32)]
    assert analyzer.detect(photo, lamp_and_wall) == []


def test_overlapping_regions_give_one_face(analyzer, t1_faces: list[Face]) -> None:
    face = t1_faces[2]
    found = analyzer.detect(t1_photo(), [face.bbox, face.bbox + 4, face.bbox - 3])
    assert len(found) == 1


def test_whole_frame_search_rejects_look_alikes(analyzer) -> None:
    """The full astronaut photo's mission patch scores like a weak face in a plain HOG search."""
    faces = analyzer.detect(astronaut_photo())
    assert len(faces) == 1
    assert iou(faces[0].bbox, np.array([177, 82, 266, 170], np.float32)) > 0.5
    from skimage import data

    for name in ("chelsea", "coffee", "rocket"):
        image = np.ascontiguousarray(getattr(data, name)()[:, :, ::-1])
        assert analyzer.detect(image) == [], name


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720), (1920, 1080)])
def test_finds_faces_down_to_a_twelfth_of_the_frame(analyzer, width: int, height: int) -> None:
    face_px = max(42, round(min(width, height) / 11))
    frame = background(width, height)
    photo = t1_photo()
    placed = []
    for slot, index in enumerate((0, 2, 5)):
        patch = face_patch(photo, T1_FACE_BOXES[index], 2 * face_px)  # the face spans half the patch
        x, y = 20 + slot * (width // 3), height // 3
        frame[y:y + 2 * face_px, x:x + 2 * face_px] = patch
        placed.append(np.array([x + face_px / 2, y + face_px / 2, x + 1.5 * face_px, y + 1.5 * face_px], np.float32))
    faces = analyzer.detect(frame)
    assert len(faces) == 3
    for box in placed:
        assert max(iou(face.bbox, box) for face in faces) > 0.5


def test_faces_at_the_frame_edge_and_tiny_faces_do_not_break_detection(analyzer, t1_faces: list[Face]) -> None:
    photo = t1_photo()
    # Jennifer (x 60–181) half outside a frame that starts at x=120.
    cut = np.ascontiguousarray(photo[:, 120:])
    faces = analyzer.detect(cut, [np.array([0, 277, 61, 397], np.float32)])
    for face in faces:
        assert np.isfinite(face.landmarks).all()
    analyzer.detect(cut)
    # A face of 20 px, boxes of zero size and boxes outside the frame.
    tiny = cv2.resize(photo, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA)
    assert analyzer.detect(tiny) == []
    outside = [np.array([5000, 5000, 5100, 5100], np.float32), np.array([10, 10, 10, 10], np.float32),
               np.array([-300, -300, -100, -100], np.float32)]
    assert analyzer.detect(tiny, outside) == []


def test_landmarks_hold_still_on_a_sliding_face(analyzer) -> None:
    """Region searches on a face sliding across a frame: the landmarks follow the motion, with little jitter."""
    patch = face_patch(t1_photo(), T1_FACE_BOXES[3], 200)
    base = background(640, 480)
    residuals = []
    box = None
    for step in range(12):
        dx, dy = 150 + step * 2.7, 120 + step * 1.3
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        frame = base.copy()
        inside = cv2.warpAffine(np.full((200, 200), 255, np.uint8), matrix, (640, 480)) > 0
        frame[inside] = cv2.warpAffine(patch, matrix, (640, 480))[inside]
        box = box if box is not None else np.array([dx + 50, dy + 50, dx + 150, dy + 150], np.float32)
        faces = analyzer.detect(frame, [box])
        assert len(faces) == 1
        box = faces[0].bbox
        residuals.append(faces[0].landmarks - [dx, dy])
    residuals = np.array(residuals)
    eye_distance = np.linalg.norm(residuals[:, 36:42].mean(axis=1) - residuals[:, 42:48].mean(axis=1), axis=1)
    jitter = residuals.std(axis=0).mean() / eye_distance.mean()
    assert jitter < 0.015


def test_gender_is_refused_with_the_catalog_error(analyzer, t1_faces: list[Face]) -> None:
    with pytest.raises(FaceSwapError) as caught:
        analyzer.classify_gender(t1_photo(), t1_faces[0])
    assert caught.value.code == "invalid_request"
    assert "no gender model" in caught.value.message


# ---- identity --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def t1_embeddings(analyzer, t1_faces: list[Face]) -> list[np.ndarray]:
    photo = t1_photo()
    return [analyzer.embed(photo, face).embedding for face in t1_faces]


def test_embeddings_are_unit_float32_and_keep_the_face(analyzer, t1_faces, t1_embeddings) -> None:
    embedded = analyzer.embed(t1_photo(), t1_faces[1])
    assert embedded.embedding.shape == (128,) and embedded.embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(embedded.embedding)) - 1) < 1e-5
    np.testing.assert_array_equal(embedded.bbox, t1_faces[1].bbox)
    np.testing.assert_array_equal(embedded.landmarks, t1_faces[1].landmarks)
    assert t1_faces[1].embedding is None, "embed returns a new record"


def test_embedding_follows_the_landmarks_not_the_box(analyzer, t1_faces, t1_embeddings) -> None:
    """The descriptor is computed from the face's own landmarks: Ross's box with Lisa's landmarks is Lisa."""
    mixed = t1_faces[2].replace(landmarks=t1_faces[5].landmarks)
    vector = analyzer.embed(t1_photo(), mixed).embedding
    assert float(vector @ t1_embeddings[5]) > 0.99


def _clip_faces(tmp_path: Path, analyzer) -> list[Face]:
    """The t1 faces re-photographed: smaller, mirrored, through H.264, on frame 7 of a clip."""
    photo = t1_photo()
    patches = [np.ascontiguousarray(face_patch(photo, box, 150)[:, ::-1]) for box in T1_FACE_BOXES]

    def layout(index: int):
        return [(k, 10 + (k % 3) * 210 + index, 20 + (k // 3) * 170) for k in range(6)]

    path = write_clip(tmp_path / "faces.mp4", patches, layout, ClipSpec(width=640, height=360, frames=8,
                                                                         audio=False))
    frame = read_frames(path)[7]
    faces = analyzer.detect(frame)
    assert len(faces) == 6
    order = sorted(faces, key=lambda face: (face.bbox[1] > 180, face.bbox[0]))
    return [analyzer.embed(frame, face) for face in order]


def test_same_and_different_people_straddle_the_match_threshold(analyzer, t1_embeddings, tmp_path) -> None:
    threshold = analyzer.match_threshold
    assert cosine_for_distance(0.6) < threshold < 1
    again = _clip_faces(tmp_path, analyzer)
    same = [float(face.embedding @ t1_embeddings[k]) for k, face in enumerate(again)]
    others = []
    for image in (hanks_photo(), astronaut_face_photo()):
        (face,) = analyzer.detect(image)
        others.append(analyzer.embed(image, face).embedding)
    everyone = [*t1_embeddings, *others]
    different = [float(a @ b) for a, b in itertools.combinations(everyone, 2)]
    assert min(same) > threshold + 0.01
    assert max(different) < threshold - 0.01
    # Every clip face is closest to its own photo.
    for k, face in enumerate(again):
        assert int(np.argmax([face.embedding @ vector for vector in t1_embeddings])) == k


def test_two_threads_sharing_one_analyzer_find_what_one_thread_finds(analyzer) -> None:
    """Job workers and the live tab share the engine: dlib's HOG detector keeps its last image pyramid in the
    object, so a shared one crashed the process or returned faces of the other thread's frame."""
    import threading

    photo = t1_photo()
    frames = [cv2.resize(photo, None, fx=scale, fy=scale) for scale in (0.6, 0.8, 1.0)] * 3
    expected = [[face.bbox.round() for face in analyzer.detect(frame)] for frame in frames]
    results: dict[int, list] = {}

    def work(worker: int) -> None:
        results[worker] = [[face.bbox.round() for face in analyzer.detect(frame)] for frame in frames]

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in range(2):
        assert len(results[worker]) == len(frames)
        for got, want in zip(results[worker], expected, strict=True):
            assert len(got) == len(want) == 6
            np.testing.assert_allclose(sorted(map(tuple, got)), sorted(map(tuple, want)), atol=1)
