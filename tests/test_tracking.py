"""Tracking, smoothing and selection logic, driven by a scripted analyzer over synthetic scenes.

The scenes are drawn for real (each person is a distinct texture where their face is), so the tracker's own
image checks (scene cuts, a face that suddenly looks different) see real pixels. Real faces and real video are
covered end to end in test_pipeline.py; here the point is the bookkeeping: who is swapped, and what it costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from faceswap.errors import FaceSwapError
from faceswap.faces.select import TargetSelector
from faceswap.faces.smooth import OneEuroFilter
from faceswap.faces.track import FaceTracker
from faceswap.faces.types import Face
from faceswap.options import SwapOptions

WIDTH, HEIGHT, SIZE = 640, 360, 100
KPS_UNIT = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32)


def texture(person: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + person)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return np.kron(small, np.ones((SIZE // 6 + 1, SIZE // 6 + 1, 1), np.uint8))[:SIZE, :SIZE]


Scene = list[tuple[int, int, int]]
"""(person, x, y) of each face on a frame."""


@dataclass
class ScriptedAnalyzer:
    """Finds exactly the faces of the current scene; embeddings are one-hot per person; genders by person."""

    genders: dict[int, str] = field(default_factory=dict)
    has_gender: bool = True
    name: str = "classic"
    match_threshold: float = 0.5
    scene: Scene = field(default_factory=list)
    embed_calls: int = 0
    full_detects: int = 0
    region_detects: int = 0

    def face(self, person: int, x: int, y: int) -> Face:
        bbox = np.array([x, y, x + SIZE, y + SIZE], np.float32)
        return Face(bbox=bbox, score=0.9, kps=KPS_UNIT * SIZE + np.array([x, y], np.float32))

    def detect(self, frame, regions=None):
        if regions is None:
            self.full_detects += 1
        else:
            self.region_detects += 1
        return [self.face(*entry) for entry in self.scene]

    def person_at(self, face: Face) -> int:
        x, y = int(round(float(face.bbox[0]))), int(round(float(face.bbox[1])))
        return min(self.scene, key=lambda e: abs(e[1] - x) + abs(e[2] - y))[0]

    def embed(self, frame, face):
        self.embed_calls += 1
        vector = np.zeros(16, np.float32)
        vector[self.person_at(face)] = 1.0
        return face.replace(embedding=vector)

    def classify_gender(self, frame, face):
        if not self.has_gender:
            raise FaceSwapError("invalid_request", "no gender model")
        return face.replace(gender=self.genders.get(self.person_at(face), "female"))


def draw(scene: Scene) -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    for person, x, y in scene:
        frame[y:y + SIZE, x:x + SIZE] = texture(person)
    return frame


def run_scenes(options: SwapOptions, scenes: list[Scene], analyzer: ScriptedAnalyzer | None = None,
               fps: float = 12.0) -> tuple[list[list[int]], ScriptedAnalyzer]:
    """The persons swapped on each frame (in face order of the scene), and the analyzer (for its counters)."""
    analyzer = analyzer or ScriptedAnalyzer()
    tracker, selector = FaceTracker(analyzer), TargetSelector(options, analyzer)
    swapped = []
    for index, scene in enumerate(scenes):
        analyzer.scene = scene
        frame = draw(scene)
        assignments = selector.select(frame, tracker.update(frame, index / fps))
        swapped.append(sorted(analyzer.person_at(a.face) for a in assignments))
    return swapped, analyzer


def options(**fields) -> SwapOptions:
    return SwapOptions.parse(video="v.mp4", face="f.jpg", **fields)


def row(persons: list[int], dx: int = 0) -> Scene:
    return [(person, 40 + slot * 200 + dx, 120) for slot, person in enumerate(persons)]


def test_track_follows_the_person_through_a_reordering_cut_and_per_frame_does_not():
    scenes = [row([1, 2, 3], dx=i % 3) for i in range(10)] + [row([3, 1, 2], dx=i % 3) for i in range(10)]
    tracked, _ = run_scenes(options(target_faces="0", selection="track"), scenes)
    per_frame, _ = run_scenes(options(target_faces="0", selection="per_frame"), scenes)
    assert tracked == [[1]] * 20
    assert per_frame == [[1]] * 10 + [[3]] * 10


def test_track_follows_people_who_walk_past_each_other():
    # person 1 walks right past person 2, overlapping on the way; the swap stays on person 1
    scenes = [[(1, 40 + 16 * i, 120), (2, 300, 130)] for i in range(30)]
    swapped, _ = run_scenes(options(target_faces="0"), scenes)
    assert swapped == [[1]] * 30


def test_a_person_who_leaves_is_not_swapped_and_is_found_again_on_return():
    scenes = ([row([1, 2])] * 6 + [row([2]) for _ in range(6)]   # person 1 leaves; 2 stays (now in slot 0)
              + [[(2, 40, 120), (1, 440, 120)] for _ in range(6)])  # person 1 comes back elsewhere
    swapped, _ = run_scenes(options(target_faces="0"), scenes)
    assert swapped == [[1]] * 6 + [[]] * 6 + [[1]] * 6


def test_selection_waits_for_a_frame_with_enough_faces():
    scenes = [row([1])] * 4 + [row([1, 2, 3])] * 4
    swapped, _ = run_scenes(options(target_faces="2"), scenes)
    assert swapped == [[]] * 4 + [[3]] * 4


def test_all_and_lists_with_pairing():
    scenes = [row([1, 2, 3])] * 3
    assert run_scenes(options(target_faces="all"), scenes)[0] == [[1, 2, 3]] * 3
    analyzer = ScriptedAnalyzer()
    tracker = FaceTracker(analyzer)
    selector = TargetSelector(options(target_faces="0,2", source_faces="1,0"), analyzer)
    analyzer.scene = scenes[0]
    frame = draw(scenes[0])
    pairs = sorted((analyzer.person_at(a.face), a.source) for a in selector.select(frame, tracker.update(frame, 0)))
    assert pairs == [(1, 1), (3, 0)]  # target 0 (person 1) gets source position 1; target 2 gets position 0


def test_largest_first_order():
    analyzer = ScriptedAnalyzer()
    small, big = analyzer.face(1, 40, 120), analyzer.face(2, 300, 120).replace(
        bbox=np.array([300, 100, 440, 240], np.float32))
    from faceswap.faces.order import order_faces

    assert [f is big for f in order_faces([small, big], "largest_first")] == [True, False]
    assert [f is small for f in order_faces([big, small], "left_to_right")] == [True, False]


def test_gender_filter_applies_before_indexing():
    analyzer = ScriptedAnalyzer(genders={1: "female", 2: "male", 3: "male"})
    swapped, _ = run_scenes(options(target_faces="1", target_gender="male"), [row([1, 2, 3])] * 3, analyzer)
    assert swapped == [[3]] * 3  # index 1 among the men (persons 2, 3)


def test_gender_filter_without_a_gender_model_is_a_clear_error():
    analyzer = ScriptedAnalyzer(has_gender=False)
    with pytest.raises(FaceSwapError, match="gender"):
        run_scenes(options(target_faces="0", target_gender="male"), [row([1, 2])], analyzer)


def test_embeddings_are_computed_rarely_on_a_steady_shot():
    scenes = [row([1, 2, 3], dx=i % 4) for i in range(48)]  # 4 s at 12 fps
    swapped, analyzer = run_scenes(options(target_faces="1"), scenes)
    assert swapped == [[2]] * 48
    # the first pick, then one re-check every 2 s of the tracked person — not one per frame
    assert analyzer.embed_calls <= 4
    # most frames use the cheap search around known faces
    assert analyzer.region_detects > analyzer.full_detects


def test_one_euro_filter_steadies_a_still_face_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    still = OneEuroFilter()
    truth = np.array([[100.0, 100.0]] * 5)
    out = [still(truth + rng.normal(0, 2.0, truth.shape), t / 30, scale=100) for t in range(90)]
    assert np.std(np.array(out[30:]) - truth) < 0.75  # raw jitter has std 2 px: about a third of it remains

    moving = OneEuroFilter()
    lag = []
    for t in range(60):
        position = truth + np.array([10.0 * t, 0.0])  # 300 px/s
        lag.append(float(np.abs(moving(position, t / 30, scale=100) - position).max()))
    assert max(lag[10:]) < 5.0  # follows within a few pixels (5% of the face) once moving


def test_a_reference_frame_picks_the_person_there_and_they_are_followed_from_the_start():
    scenes = [row([1, 2, 3])] * 6 + [row([3, 1, 2])] * 6
    analyzer = ScriptedAnalyzer()
    selector = TargetSelector(options(target_faces="0"), analyzer)
    analyzer.scene = scenes[8]
    assert selector.seed(draw(scenes[8]), analyzer.detect(None))  # index 0 on frame 8 is person 3
    tracker = FaceTracker(analyzer)
    swapped = []
    for index, scene in enumerate(scenes):
        analyzer.scene = scene
        frame = draw(scene)
        swapped.append(sorted(analyzer.person_at(a.face) for a in selector.select(frame, tracker.update(frame, index))))
    assert swapped == [[3]] * 12

    analyzer.scene = row([1])
    assert not TargetSelector(options(target_faces="2"), analyzer).seed(draw(row([1])), analyzer.detect(None))
