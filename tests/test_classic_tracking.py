"""The tracker with the real classic analyzer, on frames rendered from t1.jpg's faces: which searches it runs per
frame (landmark steps between detections, whole-frame searches only when needed) and that faces are still found
and followed where a whole-frame detection puts them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from media_factory import Placement, background, render, t1_patches

from faceswap.engines.classic import load_classic_engine
from faceswap.faces.track import FaceTracker, TrackedFace, TrackerParams
from faceswap.faces.types import iou

WIDTH, HEIGHT, FPS = 640, 480, 25.0
LARGE, SMALL = 220, 90
"""Patch sizes: the face spans about half of its patch (110 px: a coarse search finds it; 45 px: only the
whole-frame search at full size does)."""
PARAMS = TrackerParams()


class CountingAnalyzer:
    """The real classic analyzer, recording which of its searches the tracker asks for."""

    def __init__(self, analyzer: Any) -> None:
        self._analyzer = analyzer
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._analyzer, name)

    def detect(self, frame: np.ndarray, regions: Sequence[np.ndarray] | None = None) -> list[Any]:
        self.calls.append("full" if regions is None else "region")
        return self._analyzer.detect(frame, regions)

    def follow(self, frame: np.ndarray, faces: Sequence[Any]) -> list[Any]:
        self.calls.append("follow")
        return self._analyzer.follow(frame, faces)

    def coarse_boxes(self, frame: np.ndarray, coarse: float) -> list[np.ndarray]:
        self.calls.append("coarse")
        return self._analyzer.coarse_boxes(frame, coarse)


@pytest.fixture(scope="module")
def analyzer() -> Any:
    return load_classic_engine().analyzer


@pytest.fixture(scope="module")
def patches() -> dict[int, list[np.ndarray]]:
    return {LARGE: t1_patches(LARGE), SMALL: t1_patches(SMALL)}


def _drift(index: int) -> tuple[int, int]:
    return round(6 * np.sin(index / 3)), round(6 * np.cos(index / 4))


def track(analyzer: Any, frames: list[np.ndarray]) -> tuple[list[list[TrackedFace]], list[list[str]]]:
    """Tracked faces and the analyzer calls of each frame."""
    counting = CountingAnalyzer(analyzer)
    tracker = FaceTracker(counting)
    tracked, calls = [], []
    for index, frame in enumerate(frames):
        before = len(counting.calls)
        tracked.append(tracker.update(frame, index / FPS))
        calls.append(counting.calls[before:])
    return tracked, calls


def clip(patches: list[np.ndarray], placements: list[list[Placement]]) -> list[np.ndarray]:
    base = background(WIDTH, HEIGHT)
    return [render(patches, lambda i, p=placed: p, index, WIDTH, HEIGHT, base)
            for index, placed in enumerate(placements)]


def test_a_steady_face_is_followed_by_landmarks_and_confirmed_by_detectors(analyzer, patches) -> None:
    count = PARAMS.full_search_every * PARAMS.fine_search_every + 2
    frames = clip(patches[LARGE], [[(3, 200 + dx, 130 + dy)] for dx, dy in (_drift(i) for i in range(count))])
    tracked, calls = track(analyzer, frames)

    assert [len(faces) for faces in tracked] == [1] * count
    assert len({faces[0].track_id for faces in tracked}) == 1
    whole = [i for i, made in enumerate(calls) if "full" in made]
    coarse = [i for i, made in enumerate(calls) if "coarse" in made]
    period = PARAMS.full_search_every
    assert whole == list(range(0, count, period * PARAMS.fine_search_every))
    assert coarse == [i for i in range(period, count, period) if i not in whole]
    confirmed = [i for i, made in enumerate(calls) if "full" in made or "region" in made]
    assert max(np.diff(confirmed)) <= PARAMS.confirm_every, "a detector confirms the track every few frames"
    followed_only = [i for i, made in enumerate(calls) if made == ["follow"]]
    assert len(followed_only) >= count // 2, "most frames take only the landmark step"
    for frame, faces in list(zip(frames, tracked, strict=True))[1::3]:  # the followed faces are where they are
        (reference,) = analyzer.detect(frame, None)
        assert iou(faces[0].face.bbox, reference.bbox) > 0.8
        assert abs(faces[0].face.width / reference.width - 1) < 0.1


def test_a_large_face_entering_mid_clip_is_found_by_the_next_periodic_search(analyzer, patches) -> None:
    enters, count = 3, PARAMS.full_search_every + 6
    placements = [[(3, 40 + dx, 130 + dy)] + ([(5, 380 - dx, 120 + dy)] if i >= enters else [])
                  for i, (dx, dy) in enumerate(_drift(i) for i in range(count))]
    tracked, calls = track(analyzer, clip(patches[LARGE], placements))

    found = next(i for i, faces in enumerate(tracked) if len(faces) == 2)
    assert found <= enters + PARAMS.full_search_every
    assert "coarse" in calls[found] and "full" not in calls[found], "found by the cheap coarse look"
    assert [len(faces) for faces in tracked[found:]] == [2] * (count - found)
    newcomer = max(tracked[found], key=lambda t: t.face.center[0])
    assert newcomer.uncertain, "a new track's identity is checked"


def test_a_small_face_entering_mid_clip_is_found_by_the_next_whole_frame_search(analyzer, patches) -> None:
    enters = 2
    count = PARAMS.full_search_every * PARAMS.fine_search_every + 3
    placements = [[(0, 40 + dx, 130 + dy)] + ([(1, 470 - dx, 300 + dy)] if i >= enters else [])
                  for i, (dx, dy) in enumerate(_drift(i) for i in range(count))]
    frames = clip([patches[LARGE][3], patches[SMALL][1]], placements)
    assert len(analyzer.detect(frames[-1], None)) == 2, "the small face is findable"
    tracked, calls = track(analyzer, frames)

    found = next(i for i, faces in enumerate(tracked) if len(faces) == 2)
    assert found <= enters + PARAMS.full_search_every * PARAMS.fine_search_every
    assert "full" in calls[found] and "coarse" in calls[PARAMS.full_search_every], "a coarse look misses it"
    assert [len(faces) for faces in tracked[found:]] == [2] * (count - found)


def test_a_face_that_leaves_gets_whole_frame_searches_and_is_found_again_at_once(analyzer, patches) -> None:
    placements = [[(3, 200 + dx, 130 + dy)] for dx, dy in (_drift(i) for i in range(6))]
    placements += [[]] * 3 + [[(3, 210, 140)]] * 3
    tracked, calls = track(analyzer, clip(patches[LARGE], placements))

    assert [len(faces) for faces in tracked] == [1] * 6 + [0] * 3 + [1] * 3
    assert all("full" in made for made in calls[6:10]), "the lost face is searched for in the whole frame"
    assert calls[10] != ["full"]


def test_another_person_in_the_same_place_is_not_taken_for_the_followed_one(analyzer, patches) -> None:
    placements = [[(3 if i < 5 else 2, 200 + dx, 130 + dy)] for i, (dx, dy) in enumerate(_drift(i) for i in range(8))]
    tracked, calls = track(analyzer, clip(patches[LARGE], placements))

    assert calls[5] != ["follow"], "a landmark step onto a different-looking face is not trusted"
    assert tracked[5] and tracked[5][0].uncertain, "the identity is checked again"
