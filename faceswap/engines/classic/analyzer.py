"""Face analysis with dlib: HOG detection, 68-point landmarks and the 128-d ResNet descriptor.

Detection works at one canonical scale. dlib's HOG window is about 80 px, so a frame is resized (never upsampled
by dlib's own pyramid) until the smallest face worth finding spans that window. Every candidate is then searched
again in a small crop where the face spans `REGION_FACE_PX` — the same search the region mode does — which gives
the same box geometry in both modes (the tracker compares boxes across them) and rejects look-alikes such as the
mission patch on scikit-image's astronaut, which scores 0.16 in a whole-frame search but below -0.3 at the
canonical scale, while the real faces of t1.jpg score at least 0.16 there.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import dlib
import numpy as np
from numpy.typing import NDArray

from faceswap.errors import FaceSwapError
from faceswap.faces.types import BBox, Face, Frame, iou, normalized

log = logging.getLogger(__name__)

HOG_WINDOW_PX = 80
"""The smallest face dlib's frontal HOG detector finds without upsampling."""
MIN_FACE_FRACTION = 1 / 12
"""A whole-frame search finds faces down to this fraction of the frame's short side..."""
MIN_FACE_PX = 40
"""...but not smaller than this: below it the 68 landmarks and the swap have too few pixels to work with."""
REGION_FACE_PX = 100
"""Face size in the crops of a region search: above the HOG window, so a face that grew or shrank a little since
the last frame is still found at upsample 0."""
REGION_MARGIN = 2.0
"""A region crop is this many times the given box, centred on it."""
CANDIDATE_SCORE = 0.0
"""dlib's own threshold for whole-frame candidates; each must then pass the region search."""
REGION_SCORE = 0.0
"""Confidence a face needs at the canonical scale (real faces: ≥ 0.16 on t1.jpg at 640 px; look-alikes ≤ -0.1)."""
STRONG_SCORE = 1.0
"""A whole-frame detection this confident is kept even when its region search misses it."""
DEDUPE_IOU = 0.4
LARGE_FACE_WIDTH_PX = 96
"""When HOG finds nothing, dlib's CNN (MMOD) detector reads the frame shrunk to this width. HOG finds faces up to
about the frame's height; a face that fills the frame or overflows it (a close-up, its chin or brow cut off) is
what it misses, and the CNN finds exactly those at this size (0.9–1.4 frame heights on t1's faces) for a fraction
of its full-size cost (about 40 ms on one core, against seconds at 640 px)."""
LARGE_FACE_MAX_HEIGHTS = 1.4
"""The largest face the CNN search finds, in frame heights: a frame so small that even such a face would be under
MIN_FACE_PX holds no face the engine can swap, and is not searched (a faceless thumbnail-sized stream would else pay
the CNN on every frame)."""
CNN_SCORE = 0.3
"""Confidence the CNN needs: large real faces score 0.45–1.0 at LARGE_FACE_WIDTH_PX."""
FOLLOWED_SCORE = -1.0
"""The score of a face followed by its landmarks alone (region search, no detector confirmed it): not a detection.
The tracker accepts such a face only for a track it already holds and only if it still looks like it."""
FOLLOW_SIZE_TOLERANCE = 0.15
"""A followed face's landmark box may differ from the region it was followed from by this fraction of its size,
in size and in position; beyond that the landmarks have slipped off the face."""
FOLLOW_HOG_SCORE = -0.8
"""A followed face must still answer dlib's HOG detector, weakly, once its crop is upright and centred on the
landmark fit: the close-ups and side-lit faces of t1.jpg score -0.22 or more there (most above 0.3), while
landmarks fitted on the lamp, the wall or a textured background score -1.6 or less."""
LANDMARK_ROI_MARGIN = 0.5
"""Landmarks and descriptors read a crop this many face sizes beyond the box on each side, not the whole frame."""
LANDMARK_FACE_PX = 160
"""Face size in the crop the landmark predictor reads."""
BOX_CENTER_SHIFT = -0.14
BOX_HALF_SIZE = 1.48
"""dlib's box relative to its 68 landmarks, in units of their RMS distance from their centroid: centred 0.14
above the centroid, 2.96 wide and high (spread 0.25 between detections: the pyramid's quantisation)."""
DESCRIPTOR_PADDING = 0.25
"""dlib's default padding of the 150×150 aligned chip the ResNet descriptor reads."""
DESCRIPTOR_FACE_PX = 150
ENSEMBLE_SCALES = (0.95, 1.0, 1.05)
"""The second landmark pass runs the predictor in the landmark-derived box at these scales and averages: on a
face sliding across a frame this cuts the landmarks' jitter from 0.8% to 0.45% of the eye distance (t1 faces),
for about 2.5 ms more per face. The runs share one crop, each in its own box."""
FOLLOW_SCALES = (1.0,)
"""The predictor runs of `follow`, the tracker's step between detections (see ENSEMBLE_SCALES)."""

DLIB_DESCRIPTOR_MATCH_DISTANCE = 0.6
"""dlib's documented threshold: raw descriptors closer than this (Euclidean) are the same person (LFW pairs)."""
MATCH_DISTANCE = 0.5
"""The distance this engine uses: stricter than dlib's, see MATCH_THRESHOLD."""
TYPICAL_DESCRIPTOR_NORM = 1.5
"""Raw dlib descriptors are not unit vectors: their norms were 1.36–1.57 on the eight faces of t1.jpg, Tom Hanks
and the astronaut (mean 1.49)."""


def cosine_for_distance(distance: float, norm: float = TYPICAL_DESCRIPTOR_NORM) -> float:
    """For two raw descriptors of norm r, |a − b|² = 2r²(1 − cos): the cosine at Euclidean `distance`."""
    return 1 - distance**2 / (2 * norm**2)


MATCH_THRESHOLD = round(cosine_for_distance(MATCH_DISTANCE), 3)
"""0.944. dlib's 0.6 is cosine 0.92, but on t1.jpg two different men (Perry and LeBlanc) reach 0.91–0.92, right
on that line, while one face seen again — rescaled, mirrored, re-encoded — stays at 0.98 or more. Frames of one
video are far more alike than LFW's photo pairs, and tracking must never hand a swap to the wrong person, so the
engine uses distance 0.5, which falls between the two groups with margin on both sides."""

# Where the 5 key points come from in the iBUG 68-point scheme (image-left first).
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
LEFT_MOUTH = 48
RIGHT_MOUTH = 54


@dataclass(frozen=True)
class _Detection:
    box: BBox
    score: float


def key_points(landmarks: NDArray[np.float32]) -> NDArray[np.float32]:
    """The 5 key points (left eye, right eye, nose tip, left and right mouth corner) of 68 landmarks."""
    return np.stack([landmarks[LEFT_EYE].mean(axis=0), landmarks[RIGHT_EYE].mean(axis=0), landmarks[NOSE_TIP],
                     landmarks[LEFT_MOUTH], landmarks[RIGHT_MOUTH]]).astype(np.float32)


def roll_of(landmarks: NDArray[np.float32]) -> float:
    """The tilt of the eye line (radians, clockwise in image coordinates)."""
    left, right = landmarks[LEFT_EYE].mean(axis=0), landmarks[RIGHT_EYE].mean(axis=0)
    return float(np.arctan2(right[1] - left[1], right[0] - left[0]))


def box_from_landmarks(landmarks: NDArray[np.float32]) -> BBox:
    """The box dlib's detector would most likely draw around these landmarks if the face were upright (fitted on
    52 detections of the t1, astronaut and Hanks faces at several scales, mirrored too)."""
    center = landmarks.mean(axis=0)
    radius = float(np.sqrt(((landmarks - center) ** 2).sum(axis=1).mean()))
    roll = roll_of(landmarks)
    up = np.array([np.sin(roll), -np.cos(roll)])  # the face's "up", (0, -1) when upright
    cx, cy = center - BOX_CENTER_SHIFT * radius * up
    half = BOX_HALF_SIZE * radius
    return np.array([cx - half, cy - half, cx + half, cy + half], dtype=np.float32)


def _nms(detections: list[_Detection]) -> list[_Detection]:
    kept: list[_Detection] = []
    for detection in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(iou(detection.box, other.box) < DEDUPE_IOU for other in kept):
            kept.append(detection)
    return kept


class ClassicAnalyzer:
    """dlib's frontal HOG detector, 68-point shape predictor and ResNet face descriptor (models from the
    face_recognition_models wheel). Loaded once per engine; the Runtime caches the engine."""

    name = "classic"
    has_gender = False
    match_threshold = MATCH_THRESHOLD

    def __init__(self, predictor_path: str, descriptor_path: str, cnn_detector_path: str | None = None) -> None:
        try:
            self._hog_pool: queue.SimpleQueue[dlib.fhog_object_detector] = queue.SimpleQueue()
            self._hog_pool.put(dlib.get_frontal_face_detector())
            self._cnn = dlib.cnn_face_detection_model_v1(cnn_detector_path) if cnn_detector_path else None
            self._predictor = dlib.shape_predictor(predictor_path)
            self._descriptor = dlib.face_recognition_model_v1(descriptor_path)
        except RuntimeError as e:
            raise FaceSwapError("model_not_available",
                                f"The classic engine's dlib models could not be loaded ({e}); reinstall "
                                "face_recognition_models.") from e
        # The ResNet keeps its activations in the network object, so two threads must not run it at once.
        self._descriptor_lock = threading.Lock()
        self._cnn_lock = threading.Lock()

    @contextmanager
    def _hog(self) -> Iterator[dlib.fhog_object_detector]:
        """A HOG detector no other thread is using: dlib's keeps the image pyramid of its last call in the object,
        so two threads sharing one corrupt each other's memory. Detectors are pooled because making one takes about
        half a second; a new one is made only when more threads detect at once than ever before."""
        try:
            detector = self._hog_pool.get_nowait()
        except queue.Empty:
            detector = dlib.get_frontal_face_detector()
        try:
            yield detector
        finally:
            self._hog_pool.put(detector)

    # ---- detection -------------------------------------------------------------------------------------------

    def detect(self, frame: Frame, regions: Sequence[BBox] | None = None) -> list[Face]:
        followed: list[Face] = []
        if regions is None:
            detections = self._search_frame(frame) or self._search_large(frame)
        else:
            detections = []
            for region in regions:
                found = self._search_region(frame, region)
                if found:
                    detections.extend(found)
                elif (face := self._follow(frame, region)) is not None:
                    followed.append(face)
        faces = [self._with_landmarks(frame, detection) for detection in _nms(detections)]
        faces += [face for face in followed if all(iou(face.bbox, other.bbox) < DEDUPE_IOU for other in faces)]
        kept = _nms([_Detection(face.bbox, face.score) for face in faces])
        return [face for face in faces if any(face.bbox is detection.box for detection in kept)]

    def coarse_boxes(self, frame: Frame, coarse: float) -> list[BBox]:
        """Boxes of the faces at least 1 / `coarse` times the smallest a whole-frame search finds, by one HOG pass
        on the frame at `coarse` times that search's scale (about coarse² of its cost), with no confirmation and
        no landmarks: a tracker's cheap look for faces that came into view, each then confirmed by `detect` with
        its box as a region."""
        return [box for box, _ in self._candidates(frame, coarse)]

    def _candidates(self, frame: Frame, coarse: float = 1.0) -> list[tuple[BBox, float]]:
        height, width = frame.shape[:2]
        min_face = max(MIN_FACE_PX, min(height, width) * MIN_FACE_FRACTION)
        scale = HOG_WINDOW_PX / min_face * coarse
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = grey if scale == 1 else cv2.resize(grey, (max(round(width * scale), 1),
                                                           max(round(height * scale), 1)), interpolation=interpolation)
        with self._hog() as detector:
            rects, scores, _ = detector.run(scaled, 0, CANDIDATE_SCORE)
        return [(np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float32) / scale,
                 float(score)) for rect, score in zip(rects, scores, strict=True)]

    def _search_frame(self, frame: Frame) -> list[_Detection]:
        found: list[_Detection] = []
        for box, score in self._candidates(frame):
            confirmed = self._search_region(frame, box)
            if confirmed:
                found.extend(confirmed)
            elif score >= STRONG_SCORE:
                found.append(_Detection(box, float(score)))
            else:
                log.debug("rejected a weak face candidate at %s (score %.2f)", box.round(), score)
        return found

    def _search_large(self, frame: Frame) -> list[_Detection]:
        """Faces about the frame's size or larger, by dlib's CNN on a small copy of the frame (see
        LARGE_FACE_WIDTH_PX). Each must also fit its landmarks where the CNN drew it."""
        height, width = frame.shape[:2]
        if self._cnn is None or min(height, width) * LARGE_FACE_MAX_HEIGHTS < MIN_FACE_PX:
            return []
        scale = LARGE_FACE_WIDTH_PX / width
        small = cv2.resize(frame, (LARGE_FACE_WIDTH_PX, max(round(height * scale), 1)), interpolation=cv2.INTER_AREA)
        with self._cnn_lock:
            found = self._cnn(np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)), 0)
        detections = []
        for item in found:
            if item.confidence < CNN_SCORE:
                continue
            rect = item.rect
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float32) / scale
            detections.append(_Detection(box, float(item.confidence)))
        return detections

    def _follow(self, frame: Frame, region: BBox) -> Face | None:
        """The face in `region` found by its landmarks alone, when no detector fires there (a face turned, lit
        from one side or cut by the frame edge more than HOG tolerates): the predictor fits the 68 points in the
        region, and the fit counts only if its own box stays where the region is (FOLLOW_SIZE_TOLERANCE)."""
        region = np.asarray(region, dtype=np.float32)
        size = max(float(region[2] - region[0]), float(region[3] - region[1]))
        if not np.isfinite(region).all() or size < MIN_FACE_PX / 2:
            return None
        face = self._with_landmarks(frame, _Detection(region, FOLLOWED_SCORE))
        shift = np.abs((face.bbox[:2] + face.bbox[2:]) - (region[:2] + region[2:])).max() / 2
        if abs(face.width / size - 1) > FOLLOW_SIZE_TOLERANCE or shift > FOLLOW_SIZE_TOLERANCE * size:
            return None
        if self._upright_score(frame, face) < FOLLOW_HOG_SCORE:
            return None
        return face

    def _upright_score(self, frame: Frame, face: Face) -> float:
        """dlib's HOG score for the face in a crop turned upright by its landmarks, where it spans
        REGION_FACE_PX: the best candidate that overlaps the face's place, down to any score."""
        landmarks = face.landmarks if face.landmarks is not None else self.landmarks(frame, face.bbox)
        scale = REGION_FACE_PX / max(face.width, face.height, 1.0)
        side = round(REGION_FACE_PX * REGION_MARGIN)
        cx, cy = face.center
        matrix = cv2.getRotationMatrix2D((cx, cy), float(np.degrees(roll_of(landmarks))), scale)
        matrix[:, 2] += np.array([side / 2 - cx, side / 2 - cy])
        crop = cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        with self._hog() as detector:
            rects, scores, _ = detector.run(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), 0, FOLLOW_HOG_SCORE - 1)
        low, high = (side - REGION_FACE_PX) / 2, (side + REGION_FACE_PX) / 2
        expected = np.array([low, low, high, high], np.float32)
        overlapping = [float(score) for rect, score in zip(rects, scores, strict=True)
                       if iou(np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float32),
                              expected) >= DEDUPE_IOU]
        return max(overlapping, default=-np.inf)

    def _search_region(self, frame: Frame, region: BBox) -> list[_Detection]:
        """Faces in a crop `REGION_MARGIN` times `region`, scaled so a face of the region's size spans
        `REGION_FACE_PX`. Pixels beyond the frame repeat its edge, so a face half outside can still be found."""
        region = np.asarray(region, dtype=np.float32)
        size = max(float(region[2] - region[0]), float(region[3] - region[1]))
        if size < 2:
            return []
        scale = REGION_FACE_PX / size
        side = round(REGION_FACE_PX * REGION_MARGIN)
        cx, cy = float(region[0] + region[2]) / 2, float(region[1] + region[3]) / 2
        half = side / (2 * scale)
        offset_x, offset_y = cx - half, cy - half
        height, width = frame.shape[:2]
        x0, y0 = max(int(offset_x) - 1, 0), max(int(offset_y) - 1, 0)
        x1, y1 = min(int(cx + half) + 2, width), min(int(cy + half) + 2, height)
        if x1 <= x0 or y1 <= y0:
            return []
        grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        matrix = np.array([[scale, 0, (x0 - offset_x) * scale], [0, scale, (y0 - offset_y) * scale]])
        crop = cv2.warpAffine(grey, matrix, (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        with self._hog() as detector:
            rects, scores, _ = detector.run(crop, 0, REGION_SCORE)
        return [_Detection(np.array([rect.left() / scale + offset_x, rect.top() / scale + offset_y,
                                     (rect.right() + 1) / scale + offset_x, (rect.bottom() + 1) / scale + offset_y],
                                    np.float32), float(score))
                for rect, score in zip(rects, scores, strict=True)]

    def _with_landmarks(self, frame: Frame, detection: _Detection) -> Face:
        """Landmarks from a second predictor pass in the box and tilt the first pass implies: the HOG box jumps
        between pyramid levels and cells from frame to frame, the landmark-derived box does not."""
        first = self.landmarks(frame, detection.box)
        landmarks = self._ensemble(frame, box_from_landmarks(first), roll_of(first), ENSEMBLE_SCALES)
        return Face(bbox=box_from_landmarks(landmarks), score=detection.score, kps=key_points(landmarks),
                    landmarks=landmarks)

    def follow(self, frame: Frame, faces: Sequence[Face]) -> list[Face | None]:
        """Each face of the previous frame found again on this one by its landmarks alone: one ensemble pass
        (FOLLOW_SCALES) in the box and tilt its previous landmarks imply, shifted by `shifts` — no detector. It is
        what a tracker does between detections, at a quarter of `detect`'s cost per face. None where the fit
        slipped: its own box left the seed's by more than FOLLOW_SIZE_TOLERANCE in size or position. The face keeps
        its score; the tracker confirms it with a detector every few frames."""
        followed: list[Face | None] = []
        for face in faces:
            seed = face.landmarks
            if seed is None or seed.shape != (68, 2) or not np.isfinite(seed).all():
                followed.append(None)
                continue
            box = box_from_landmarks(seed)
            size = max(float(box[2] - box[0]), float(box[3] - box[1]))
            if size < MIN_FACE_PX / 2:
                followed.append(None)
                continue
            landmarks = self._ensemble(frame, box, roll_of(seed), FOLLOW_SCALES)
            found = box_from_landmarks(landmarks)
            width = max(float(found[2] - found[0]), float(found[3] - found[1]))
            shift = float(np.abs((found[:2] + found[2:]) - (box[:2] + box[2:])).max()) / 2
            if abs(width / size - 1) > FOLLOW_SIZE_TOLERANCE or shift > FOLLOW_SIZE_TOLERANCE * size:
                followed.append(None)
                continue
            followed.append(Face(bbox=found, score=face.score, kps=key_points(landmarks), landmarks=landmarks))
        return followed

    def _ensemble(self, frame: Frame, box: BBox, roll: float, scales: Sequence[float]) -> NDArray[np.float32]:
        """The mean of predictor runs in `box` grown by each of `scales`, all read from one upright crop."""
        grey, inverse = self._upright_crop(frame, box, roll)
        runs = [self._fit(grey, inverse, factor) for factor in scales]
        return np.mean(runs, axis=0).astype(np.float32)

    def landmarks(self, frame: Frame, box: BBox, roll: float = 0.0) -> NDArray[np.float32]:
        """The 68 iBUG landmarks of the face in `box` (frame coordinates, may lie outside the frame).

        The predictor reads an upright crop in which the face spans LANDMARK_FACE_PX: the face is turned by
        `roll` (radians, the tilt of its eye line) first, because dlib's predictor was trained on upright faces,
        and resized, because it answers in whole pixels, which would be 2% steps on a 50-pixel face."""
        grey, inverse = self._upright_crop(frame, box, roll)
        return self._fit(grey, inverse, 1.0)

    @staticmethod
    def _upright_crop(frame: Frame, box: BBox, roll: float) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
        """The grey crop the predictor reads (see `landmarks`) and the affine map from it back to the frame."""
        size = max(float(box[2] - box[0]), float(box[3] - box[1]))
        if not np.isfinite(box).all() or size < 2:
            raise FaceSwapError("invalid_request", "The face box is empty.")
        center = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        scale = LANDMARK_FACE_PX / size
        side = round(LANDMARK_FACE_PX * (1 + 2 * LANDMARK_ROI_MARGIN))
        matrix = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(np.degrees(roll)), scale)
        matrix[:, 2] += np.array([side / 2 - center[0], side / 2 - center[1]])
        # Only the part of the frame the crop reads is converted to grey (a whole 1080p frame would be 6 MB).
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0], [side, 0], [0, side], [side, side]], np.float64) @ inverse[:, :2].T + inverse[:, 2]
        height, width = frame.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, [width - 1, height - 1])
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, [x0 + 1, y0 + 1], [width, height])
        grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
        crop = cv2.warpAffine(grey, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return crop, inverse

    def _fit(self, grey: NDArray[np.uint8], inverse: NDArray[np.float64], factor: float) -> NDArray[np.float32]:
        """One predictor run on an upright crop, in the centred box of LANDMARK_FACE_PX times `factor`."""
        side = grey.shape[0]
        half = LANDMARK_FACE_PX * factor / 2
        start, stop = round(side / 2 - half), round(side / 2 + half)
        shape = self._predictor(grey, dlib.rectangle(start, start, stop - 1, stop - 1))
        points = np.array([(part.x, part.y) for part in shape.parts()], dtype=np.float64)
        return (points @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)

    # ---- identity --------------------------------------------------------------------------------------------

    def embed(self, frame: Frame, face: Face) -> Face:
        """The dlib descriptor of the face, aligned by its own landmarks. It reads a crop in which the face spans
        DESCRIPTOR_FACE_PX (the size of dlib's aligned chip), so the landmarks, which dlib takes in whole
        pixels, lose no precision on small faces."""
        landmarks = face.landmarks if face.landmarks is not None else self.landmarks(frame, face.bbox)
        if not np.isfinite(landmarks).all():
            raise FaceSwapError("invalid_request", "The face to embed has no valid landmarks.")
        low, high = landmarks.min(axis=0), landmarks.max(axis=0)
        size = max(float((high - low).max()), 1.0)
        scale = DESCRIPTOR_FACE_PX / size
        side = round(DESCRIPTOR_FACE_PX * (1 + 2 * LANDMARK_ROI_MARGIN))
        offset = (low + high) / 2 * scale - side / 2
        matrix = np.array([[scale, 0, -offset[0]], [0, scale, -offset[1]]])
        crop = cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        rgb = np.ascontiguousarray(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        local = np.rint(landmarks * scale - offset).astype(int)
        low_local, high_local = local.min(axis=0), local.max(axis=0)
        rect = dlib.rectangle(int(low_local[0]), int(low_local[1]), int(high_local[0]), int(high_local[1]))
        shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in local])
        with self._descriptor_lock:
            descriptor = self._descriptor.compute_face_descriptor(rgb, shape, 0, DESCRIPTOR_PADDING)
        return face.replace(landmarks=landmarks, embedding=normalized(np.asarray(descriptor)))

    def classify_gender(self, frame: Frame, face: Face) -> Face:
        raise FaceSwapError("invalid_request",
                            "Gender filters need a gender model, and the classic engine has no gender model: use the "
                            "neural engine (install its models) or leave the gender filters at 'any'.")
