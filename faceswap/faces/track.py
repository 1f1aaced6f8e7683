"""Follow faces from frame to frame: cheap region searches between full searches, steady geometry.

The tracker keeps a track per visible face. Between whole-frame searches it asks the analyzer to look only around
where each face was (much cheaper), associates detections to tracks by box overlap, and smooths each track's key
points and landmarks over time. With an analyzer that can follow a face by its landmarks (the classic one:
`follow`, one predictor pass seeded by the previous frame's landmarks), most frames take only that step; a region
search confirms every `confirm_every` frames, and of the periodic searches for faces that came into view, two in
three look coarsely (`coarse_boxes`: one HOG pass at half resolution, new faces then confirmed around where they
are). A face lost, a jump, a slipped fit or a face that no longer looks like its track's falls back to the
detectors at once. It flags a face as `uncertain` whenever its identity may have changed — a new
track, a weak or crowded association, a scene cut, a face that suddenly looks different from its track's last
frame (a tiny aligned grey patch; measured on t1's faces: the same face on consecutive frames correlates ≥ 0.85,
different people ≤ 0.6), or simply time since the last check — so the selector knows when an (expensive) identity
embedding is worth computing.

Two guards keep a wrong box off the screen. A region search whose face jumped in size or position beyond what a
face does between two frames is not trusted: a whole-frame search decides instead (a region crop can fit a face
much too big; the whole frame then gives the right one). And a face the analyzer only followed by its landmarks
(score below zero: no detector confirmed it) is kept only for a track it continues and only while it still looks
like that track's face; a whole-frame search that misses a track asks for such a follow before giving it up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from faceswap.engines.base import FaceAnalyzer
from faceswap.faces.align import ARCFACE_112, scaled_template, warp_to_template
from faceswap.faces.smooth import OneEuroFilter, SmoothingParams
from faceswap.faces.types import Face, Frame, iou


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    face: Face
    """The face with smoothed geometry (bbox, kps, landmarks)."""
    uncertain: bool
    """Its identity may differ from the track's previous frames: check before trusting the track."""


@dataclass(frozen=True)
class TrackerParams:
    full_search_every: int = 8
    """Whole-frame searches at least this often (in frames), to find faces that came into view."""
    fine_search_every: int = 3
    """With an analyzer that can look coarsely (`coarse_boxes`, the classic one), only every this many-th periodic
    search is a whole-frame search (it finds the smallest faces; about thirty landmark steps at 640x480); the
    others look at `coarse_scale` of its resolution, for about a sixth of its cost, and find faces at least
    1 / coarse_scale times the smallest. Lost, missing or doubtful tracks always get the whole-frame search."""
    coarse_scale: float = 0.5
    min_iou: float = 0.25
    """Box overlap below which a detection is not the same track."""
    confident_iou: float = 0.45
    """Box overlap below which the association is kept but the identity is re-checked."""
    crowd_iou: float = 0.05
    """Faces whose boxes overlap at least this much may swap tracks: re-check both."""
    cut_threshold: float = 30.0
    """Mean absolute difference (0–255) of small grey thumbnails of consecutive frames that means a scene cut."""
    verify_every_s: float = 2.0
    """Even a steady track is re-checked this often."""
    same_look: float = 0.75
    """Correlation of consecutive aligned face patches below which the face may be someone else."""
    keep_missing: int = 3
    """Frames a track survives without a detection (a blink of the detector), to be picked up again."""
    max_size_jump: float = 0.15
    """A region-search face whose size differs from the track's by more than this fraction is checked by a
    whole-frame search (a face grows by a few percent between frames, even in a fast zoom)."""
    max_shift: float = 0.35
    """Likewise for a face whose centre moved more than this many face sizes from where the track predicted it."""
    max_followed: int = 48
    """Frames in a row a track may be kept by landmark following alone before a detector must confirm it."""
    confirm_every: int = 6
    """With an analyzer that can follow faces by their landmarks (`follow`), a region search (a detector) confirms
    the tracks at least this often; the frames between take only the landmark step."""
    smoothing: SmoothingParams = field(default_factory=SmoothingParams)


@dataclass
class _Track:
    track_id: int
    bbox: np.ndarray
    velocity: np.ndarray
    smoother: OneEuroFilter
    checked_at: float
    look: np.ndarray
    face: Face
    """The face the track last matched (raw geometry): the seed of the next landmark step."""
    missing: int = 0
    followed: int = 0


LOOK_SIZE = 16
_LOOK_TEMPLATE = scaled_template(ARCFACE_112, 112, LOOK_SIZE)


def _look(frame: Frame, face: Face) -> np.ndarray:
    """A 16x16 grey patch of the face aligned on its key points, zero mean and unit variance."""
    try:
        crop, _ = warp_to_template(frame, face.kps, _LOOK_TEMPLATE, LOOK_SIZE)
    except ValueError:
        return np.zeros((LOOK_SIZE, LOOK_SIZE), np.float32)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return (grey - grey.mean()) / (grey.std() + 1e-6)


def _thumbnail(frame: Frame) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (64, 36), interpolation=cv2.INTER_AREA).astype(np.int16)


class FaceTracker:
    """Stateful per run: create one per video, call `update` once per frame in display order."""

    def __init__(self, analyzer: FaceAnalyzer, params: TrackerParams | None = None) -> None:
        self.analyzer = analyzer
        self.params = params or TrackerParams()
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frames_since_full = 0
        self._coarse_since_fine = 0
        self._frames_since_confirm = 0
        self._looks: dict[int, np.ndarray] = {}
        self._previous_thumb: np.ndarray | None = None
        self.full_searches = 0
        self.coarse_searches = 0
        self.region_searches = 0
        self.follows = 0
        self.cuts = 0

    def update(self, frame: Frame, time: float) -> list[TrackedFace]:
        thumb = _thumbnail(frame)
        cut = self._previous_thumb is not None and float(
            np.abs(thumb - self._previous_thumb).mean()) > self.params.cut_threshold
        self._previous_thumb = thumb
        if cut:
            self.cuts += 1
            self._tracks = []

        faces = self._detect(frame)
        return self._associate(frame, faces, time)

    def _detect(self, frame: Frame) -> list[Face]:
        periodic = self._frames_since_full + 1 >= self.params.full_search_every
        coarse = (periodic and callable(getattr(self.analyzer, "coarse_boxes", None))
                  and self._coarse_since_fine + 1 < self.params.fine_search_every)
        if self._tracks and not any(track.missing for track in self._tracks) and (coarse or not periodic):
            faces = self._tracked(frame)
            if faces is not None:
                if not coarse:
                    self._frames_since_full += 1
                    return faces
                self._frames_since_full = 0
                self._coarse_since_fine += 1
                return faces + self._new_faces(frame, faces)
        self._frames_since_full = self._frames_since_confirm = self._coarse_since_fine = 0
        self.full_searches += 1
        height, width = frame.shape[:2]
        faces = self.analyzer.detect(frame, None)
        lost = [self._predicted_box(track, width, height) for track in self._tracks
                if track.followed < self.params.max_followed
                and not any(iou(face.bbox, track.bbox) >= self.params.min_iou for face in faces)]
        if lost:
            faces += [face for face in self.analyzer.detect(frame, lost)
                      if all(iou(face.bbox, other.bbox) < self.params.min_iou for other in faces)]
        return faces

    def _tracked(self, frame: Frame) -> list[Face] | None:
        """The tracks' faces on this frame, by the landmark step or (every `confirm_every` frames, or when that
        step fails) a region search; None when a face is not where its track can plausibly be."""
        height, width = frame.shape[:2]
        regions = [self._predicted_box(track, width, height) for track in self._tracks]
        if self._frames_since_confirm + 1 < self.params.confirm_every:
            followed = self._follow(frame, regions)
            if followed is not None:
                self._frames_since_confirm += 1
                return followed
        self.region_searches += 1
        faces = self.analyzer.detect(frame, regions)
        if all(any(self._plausible(face, region) for face in faces) for region in regions):
            self._frames_since_confirm = 0
            return faces
        return None

    def _new_faces(self, frame: Frame, known: list[Face]) -> list[Face]:
        """Faces that came into view: the analyzer's coarse boxes away from the known faces, confirmed by a region
        search around each."""
        self.coarse_searches += 1
        boxes = self.analyzer.coarse_boxes(frame, self.params.coarse_scale)  # type: ignore[attr-defined]
        new = [box for box in boxes if all(iou(box, face.bbox) < self.params.min_iou for face in known)]
        if not new:
            return []
        return [face for face in self.analyzer.detect(frame, new)
                if all(iou(face.bbox, other.bbox) < self.params.min_iou for other in known)]

    def _follow(self, frame: Frame, regions: list[np.ndarray]) -> list[Face] | None:
        """Every track's face by the analyzer's landmark step alone, or None (then a detector decides) when the
        analyzer cannot follow, or any face slipped, jumped or no longer looks like its track's."""
        follow = getattr(self.analyzer, "follow", None)
        if follow is None:
            return None
        tracks = self._tracks
        seeds = [self._shifted(track.face, track.velocity) for track in tracks]
        self.follows += 1
        faces = follow(frame, seeds)
        looks = {}
        for face, track, region in zip(faces, tracks, regions, strict=True):
            if face is None or not self._plausible(face, region):
                return None
            look = _look(frame, face)
            if float((look * track.look).mean()) < self.params.same_look:
                return None
            looks[id(face)] = look
        self._looks = looks  # _associate takes them rather than computing them again
        return faces

    @staticmethod
    def _shifted(face: Face, velocity: np.ndarray) -> Face:
        shift = velocity.astype(np.float32)
        return face.replace(bbox=face.bbox + np.tile(shift, 2), kps=face.kps + shift,
                            landmarks=None if face.landmarks is None else face.landmarks + shift)

    def _plausible(self, face: Face, region: np.ndarray) -> bool:
        """Whether a region search's face can be the region's track one frame later."""
        size = max(float(region[2] - region[0]), float(region[3] - region[1]), 1.0)
        shift = float(np.abs((face.bbox[:2] + face.bbox[2:]) - (region[:2] + region[2:])).max()) / 2
        return (iou(face.bbox, region) >= self.params.min_iou
                and abs(max(face.width, face.height) / size - 1) <= self.params.max_size_jump
                and shift <= self.params.max_shift * size)

    @staticmethod
    def _predicted_box(track: _Track, width: int, height: int) -> np.ndarray:
        """Where the track's face should be now; its centre is kept inside the frame, its size is kept whole (a
        close-up's box reaches beyond the frame, and a clipped box would be a smaller face)."""
        box = track.bbox + np.tile(track.velocity, 2)
        center = (box[:2] + box[2:]) / 2
        box = box + np.tile(np.clip(center, 0, [width, height]) - center, 2)
        return box.astype(np.float32)

    def _associate(self, frame: Frame, faces: list[Face], time: float) -> list[TrackedFace]:
        pairs = sorted(((iou(track.bbox, face.bbox), t, f) for t, track in enumerate(self._tracks)
                        for f, face in enumerate(faces)), key=lambda item: item[0], reverse=True)
        track_of_face: dict[int, tuple[int, float]] = {}
        used_tracks: set[int] = set()
        for overlap, t, f in pairs:
            if overlap < self.params.min_iou:
                break
            if t in used_tracks or f in track_of_face:
                continue
            used_tracks.add(t)
            track_of_face[f] = (t, overlap)

        crowded = {f for f, face in enumerate(faces) for g, other in enumerate(faces)
                   if f != g and iou(face.bbox, other.bbox) >= self.params.crowd_iou}
        tracks: list[_Track] = []
        result: list[TrackedFace] = []
        looks, self._looks = self._looks, {}
        for f, face in enumerate(faces):
            look = looks[id(face)] if id(face) in looks else _look(frame, face)
            followed = face.score < 0
            if f in track_of_face:
                t, overlap = track_of_face[f]
                track = self._tracks[t]
                changed = float((look * track.look).mean()) < self.params.same_look
                if followed and changed:
                    used_tracks.discard(t)
                    continue
                track.followed = track.followed + 1 if followed else 0
                uncertain = overlap < self.params.confident_iou or f in crowded or changed
                track.velocity = ((face.bbox[:2] + face.bbox[2:]) - (track.bbox[:2] + track.bbox[2:])) / 2
                if changed:
                    track.smoother = OneEuroFilter(self.params.smoothing)
            elif followed:
                continue
            else:
                track = _Track(self._next_id, face.bbox, np.zeros(2, np.float32),
                               OneEuroFilter(self.params.smoothing), checked_at=time, look=look, face=face)
                self._next_id += 1
                uncertain = True
            track.look = look
            if time - track.checked_at >= self.params.verify_every_s:
                uncertain = True
            if uncertain:
                track.checked_at = time
            track.bbox = face.bbox
            track.face = face
            tracks.append(track)
            result.append(TrackedFace(track.track_id, self._smoothed(track, face, time), uncertain))
        kept = [track for t, track in enumerate(self._tracks)
                if t not in used_tracks and track.missing < self.params.keep_missing]
        for track in kept:
            track.missing += 1
        for track in tracks:
            track.missing = 0
        self._tracks = tracks + kept
        return result

    @staticmethod
    def _smoothed(track: _Track, face: Face, time: float) -> Face:
        parts = [face.bbox.reshape(2, 2), face.kps]
        if face.landmarks is not None:
            parts.append(face.landmarks)
        points = track.smoother(np.concatenate(parts), time, scale=max(face.width, face.height))
        return face.replace(bbox=points[:2].reshape(4), kps=points[2:7],
                            landmarks=points[7:] if face.landmarks is not None else None)
