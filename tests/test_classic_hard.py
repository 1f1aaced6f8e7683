"""The classic engine on hard moving clips made from real photos (tests/hard_clips.py): a strong side light, a
laughing face that overflows the frame, a mug over the mouth, a turned head. Each clip is tracked and swapped
frame by frame as the pipeline does, and judged against whole-frame detection and the unswapped frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import hard_clips as hc
import numpy as np
import pytest
from media_factory import T1_FACE_BOXES, ClipSpec, astronaut_face_photo, face_patch, row_layout, t1_photo, write_clip

from faceswap.engines.base import Engine
from faceswap.engines.classic import ClassicSource, ClassicSwapper, load_classic_engine, warp
from faceswap.engines.classic.blend import _features
from faceswap.faces.track import FaceTracker, TrackedFace
from faceswap.options import SwapOptions
from faceswap.pipeline import run
from faceswap.runtime import Runtime

FPS = 12.0
GRACE_HOPPER = Path(__file__).resolve().parent.parent / "assets" / "examples" / "grace_hopper.jpg"
LAUGHING = 3
"""t1.jpg's laughing man (Matthew Perry), eyes squeezed shut."""
JOEY = 4
"""t1.jpg's man looking sideways (warp.turn about 0.3–0.46): the shipped photos' ¾ view."""
HUE_MARGIN_DEG = 20.0
"""How far a swapped skin pixel's hue may lie beyond the range of hues the target's own skin shows (its 0.5th to
99.5th percentile). Skin hues of different people and lights span about 30° in CIE LAB; the stains this guards
against (red-brown streaks, grey-blue patches from a per-channel gain) lay 35–220° outside."""
FEATURE_EDGE = 0.1
"""Eye distances around eyes, brows and lips left out: their edges carry lip and eye colour, not skin."""
MIN_CHROMA = 10.0
"""Hue is only judged where a pixel has colour enough for it to mean something."""


@pytest.fixture(scope="module")
def engine():
    return load_classic_engine()


@pytest.fixture(scope="module")
def grace(engine) -> ClassicSource:
    photo = cv2.imread(str(GRACE_HOPPER))
    face = max(engine.analyzer.detect(photo), key=lambda f: f.width)
    return engine.swapper.prepare_source(photo, engine.analyzer.embed(photo, face))


@pytest.fixture(scope="module")
def astronaut(engine) -> tuple[ClassicSource, np.ndarray]:
    photo = astronaut_face_photo()
    (face,) = engine.analyzer.detect(photo)
    embedded = engine.analyzer.embed(photo, face)
    return engine.swapper.prepare_source(photo, embedded), embedded.embedding


def swap_clip(engine, frames: list[np.ndarray], source: ClassicSource) -> list[tuple[np.ndarray, TrackedFace | None]]:
    """Track and swap the largest face of every frame, as the pipeline does."""
    tracker = FaceTracker(engine.analyzer)
    result = []
    for index, frame in enumerate(frames):
        tracked = tracker.update(frame, index / FPS)
        if not tracked:
            result.append((frame.copy(), None))
            continue
        face = max(tracked, key=lambda t: t.face.width)
        result.append((engine.swapper.swap(frame.copy(), face.face, source), face))
    return result


def _assert_swapped_and_steady(engine, frames, swapped) -> None:
    changed = [face is not None and int(np.abs(out.astype(int) - frame).max()) > 20
               for frame, (out, face) in zip(frames, swapped, strict=True)]
    assert sum(changed) >= 0.95 * len(frames), f"swapped on {sum(changed)} of {len(frames)} frames"
    for index, (frame, (_, face)) in enumerate(zip(frames, swapped, strict=True)):
        full = engine.analyzer.detect(frame, None)
        assert full, f"frame {index}: the whole-frame search finds no face"
        reference = max(full, key=lambda f: f.width)
        ratio = face.face.width / reference.width
        assert abs(ratio - 1) <= 0.15, f"frame {index}: tracked box {ratio:.2f}× the whole-frame detection"


@pytest.fixture(scope="module")
def side_lit(engine, grace):
    frames = [hc.side_light(f) for f in hc.film(*hc.t1_face(LAUGHING), hc.Camera(fill=0.35, frames=10))]
    return frames, swap_clip(engine, frames, grace)


@pytest.mark.slow
def test_side_lit_face_is_swapped_on_every_frame_with_the_right_box(engine, side_lit) -> None:
    _assert_swapped_and_steady(engine, *side_lit)


@pytest.mark.slow
def test_large_laughing_face_that_overflows_the_frame(engine, astronaut) -> None:
    """The laughing man's face 1.15 times the height of a 640×480 frame: HOG misses it, the CNN finds it."""
    frames = hc.film(*hc.t1_face(LAUGHING), hc.Camera(fill=1.15, frames=8, pan_px=30))
    _assert_swapped_and_steady(engine, frames, swap_clip(engine, frames, astronaut[0]))


def _hue(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)
    return np.degrees(np.arctan2(lab[..., 2], lab[..., 1])), np.hypot(lab[..., 1], lab[..., 2])


@pytest.mark.slow
def test_no_skin_pixel_leaves_the_target_skin_hues(side_lit) -> None:
    """Grace Hopper (wrinkles, glasses) onto a side-lit face: every coloured pixel of the swapped skin (the face
    outline without eyes, brows and lips) keeps a hue the target's own skin has, within HUE_MARGIN_DEG, unless
    its hue did not move by more than that (a pixel the swap left as it was, such as the target's lips)."""
    frames, swapped = side_lit
    for frame, (out, face) in zip(frames, swapped, strict=True):
        landmarks = face.face.landmarks
        outline = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillConvexPoly(outline, cv2.convexHull(np.rint(warp.face_outline(landmarks, 0.0)).astype(np.int32)), 1)
        grow = 2 * round(FEATURE_EDGE * warp.eye_distance(landmarks)) + 1
        features = cv2.dilate(_features(landmarks, frame.shape[:2]), np.ones((grow, grow), np.uint8))
        skin = (outline > 0) & (features == 0)
        before, chroma_before = _hue(frame)
        after, chroma_after = _hue(out)
        low, high = np.percentile(before[skin & (chroma_before >= MIN_CHROMA)], [0.5, 99.5])
        judged = skin & (chroma_after >= MIN_CHROMA)
        outside = np.maximum(low - after[judged], after[judged] - high)
        moved = np.abs((after[judged] - before[judged] + 180) % 360 - 180)
        beyond = np.minimum(outside, moved)  # the target's own lips, kept as they were, did not shift
        assert beyond.max() <= HUE_MARGIN_DEG, f"a skin pixel's hue lies {beyond.max():.0f}° beyond the target's"


def test_a_mug_over_the_mouth_is_left_as_it_is(engine, astronaut) -> None:
    frames = hc.film(*hc.t1_face(2), hc.Camera(fill=0.4, frames=3))
    covered = []
    for frame in frames:
        (face,) = engine.analyzer.detect(frame)
        mouth = face.landmarks[48:60].mean(axis=0)
        covered.append(hc.mouth_occluder(frame, mouth, face.width, hc.OBJECT_BGR))
    for frame, (out, face) in zip(covered, swap_clip(engine, covered, astronaut[0]), strict=True):
        assert face is not None
        mug = np.all(frame == hc.OBJECT_BGR, axis=-1).astype(np.uint8)
        inside = cv2.erode(mug, np.ones((3, 3), np.uint8)) > 0
        assert inside.sum() > 500
        np.testing.assert_array_equal(out[inside], frame[inside])
        assert int(np.abs(out.astype(int) - frame).max()) > 20, "the rest of the face is still swapped"


@pytest.mark.slow
def test_three_quarter_view_moves_towards_the_source_identity(engine, astronaut) -> None:
    """Joey looks sideways: each frame is either swapped with its dlib descriptor nearer the astronaut's, or
    left untouched and said to be too turned."""
    source, identity = astronaut
    frames = hc.film(*hc.t1_face(JOEY), hc.Camera(fill=0.4, frames=4))
    closer = 0
    for frame, (out, face) in zip(frames, swap_clip(engine, frames, source), strict=True):
        if engine.swapper.skip_reason(face.face) == "turned":
            np.testing.assert_array_equal(out, frame)
            continue
        before = engine.analyzer.embed(frame, face.face).embedding
        (again,) = engine.analyzer.detect(out, [face.face.bbox])
        after = engine.analyzer.embed(out, again).embedding
        closer += float(after @ identity) > float(before @ identity) + 0.01
    assert closer == len(frames)


def test_a_face_turned_beyond_the_limit_is_left_untouched(engine, astronaut) -> None:
    """Joey's landmarks with the nose and mouth moved further sideways (as a head turned more would show them):
    the swapper names the reason and leaves the frame as it is."""
    frame = hc.film(*hc.t1_face(JOEY), hc.Camera(fill=0.4, frames=1))[0]
    (face,) = engine.analyzer.detect(frame)
    assert engine.swapper.skip_reason(face) is None
    landmarks = face.landmarks.copy()
    eyes = warp.eye_distance(landmarks)
    direction = np.sign(warp.turn(landmarks)) or 1.0
    landmarks[27:36] += np.array([direction * 0.3 * eyes, 0], np.float32)
    landmarks[48:68] += np.array([direction * 0.2 * eyes, 0], np.float32)
    turned = face.replace(landmarks=landmarks)
    assert engine.swapper.skip_reason(turned) == "turned"
    np.testing.assert_array_equal(engine.swapper.swap(frame.copy(), turned, astronaut[0]), frame)


class _StricterRuntime(Runtime):
    """The real runtime whose classic engine swaps faces turned up to `turn_limit` only."""

    def __init__(self, turn_limit: float) -> None:
        super().__init__()
        self.turn_limit = turn_limit

    def _classic(self) -> Engine:
        engine = super()._classic()
        return Engine(name="classic", analyzer=engine.analyzer, swapper=ClassicSwapper(turn_limit=self.turn_limit))


def test_the_report_counts_frames_with_a_face_too_turned_to_swap(tmp_path) -> None:
    """Perry (frontal) and Joey (turned about 0.3–0.46) with a turn limit of 0.2: Joey is left untouched on every
    frame and the report says so; Perry is swapped, so every frame still counts as swapped."""
    patches = [face_patch(t1_photo(), T1_FACE_BOXES[index], 180) for index in (LAUGHING, JOEY)]
    spec = ClipSpec(width=480, height=240, fps=12, frames=6, audio=False)
    video = write_clip(tmp_path / "two.mp4", patches, row_layout(2, 180, spec.width, spec.height), spec)
    options = SwapOptions.parse(video=str(video), face=str(GRACE_HOPPER), target_faces="all",
                                engine="classic")
    report = run(options, _StricterRuntime(turn_limit=0.2), tmp_path / "out.mp4").report
    assert report.frames == 6
    assert report.frames_swapped == 6
    assert report.frames_skipped_turned == 6
    assert report.to_dict()["frames_skipped_turned"] == 6


def _fine_detail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), 1.0)


@pytest.mark.parametrize("who", ["astronaut", "grace"])
@pytest.mark.parametrize("fill", [0.35, 0.9])
def test_swapped_skin_is_as_sharp_as_the_target(engine, astronaut, grace, fill: float, who: str) -> None:
    """The astronaut (a sharp 100-pixel face) and Grace Hopper (sharp wrinkles) onto the laughing man (a soft,
    magnified photo) at two sizes: on the large one the warp magnifies the source and works on a reduced copy,
    on the small one it shrinks it. Either way the swapped skin's finest detail (1-pixel high-pass) is within a
    factor 1.75 of the target skin's own (without matching: 2.3–3×; what is left above 1 is mostly the edges of
    Grace Hopper's glasses, which the target's skin does not have)."""
    frame = hc.film(*hc.t1_face(LAUGHING), hc.Camera(fill=fill, frames=1))[0]
    (face,) = engine.analyzer.detect(frame)
    out = engine.swapper.swap(frame.copy(), face, astronaut[0] if who == "astronaut" else grace)
    outline = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(outline, cv2.convexHull(np.rint(warp.face_outline(face.landmarks, 0.0)).astype(np.int32)), 1)
    skin = (outline > 0) & (_features(face.landmarks, frame.shape[:2]) == 0)
    ratio = float(_fine_detail(out)[skin].std()) / float(_fine_detail(frame)[skin].std())
    assert 1 / 1.75 <= ratio <= 1.75, f"swapped skin has {ratio:.2f}× the target's fine detail"
