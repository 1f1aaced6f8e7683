"""What covers the target's face: pixels inside it that are not the target's skin, to be left as they are.

The classic engine has no segmentation model, so it judges by colour what it can see: the target's skin is
sampled where an occluder rarely is (the cheeks under the eyes and the nose), and every
pixel of the face is compared with it in two measures that a light gradient barely moves — the hue angle
(atan2(b, a) in CIE LAB) and the chroma relative to lightness (C / L) — so the shadowed side of a side-lit face
stays skin while a mug, a sleeve, a microphone or a beard does not. A skin-coloured occluder (a hand of similar
tone) passes for skin by colour and is swapped over, the limit of judging by colour alone.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.engines.classic.warp import (
    BROWS,
    LEFT_EYE_POINTS,
    RIGHT_EYE_POINTS,
    Points,
    eye_distance,
    face_outline,
)

FloatMask = NDArray[np.float32]

REFERENCE_PARTS = ((1, 2, 3, 31, 39, 40, 41, 36), (15, 14, 13, 35, 42, 47, 46, 45), (27, 31, 33, 35))
"""Where the target's skin is sampled: the cheeks beside the nose and under the eyes, and the nose (landmark
indices). A hand over the mouth or chin stays out of them, and so do hair and background."""
HUE_LIMIT_DEG = 18.0
"""Hue (degrees) beyond the skin's own spread (3 robust deviations) that marks a pixel as not skin: skin tones
of different people lie within about 30° of each other, lighting moves one face's hue by a few degrees."""
CHROMA_RATIO_LIMIT = 0.12
"""Likewise for chroma over lightness, beyond the skin's spread."""
MIN_CHROMA = 6.0
"""Below this chroma the hue of a pixel is noise: only its chroma ratio counts."""
MIN_AREA_EYES = 0.05
"""Occluded patches smaller than this fraction of the squared eye distance are specks (freckles, glints)."""
GROW_EYES = 0.04
"""An occluder's mask grows by this many eye distances before its edge is softened, so the occluder itself is
left byte-identical and only the skin around it blends."""
FEATURE_MARGIN_EYES = 0.15
WORK_EYE_PX = 32.0
MIN_REFERENCE_PIXELS = 32


def _hue_and_ratio(lab: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    return hue, chroma / np.maximum(lab[..., 0], 5.0), chroma


def _robust(values: NDArray[np.float32]) -> tuple[float, float]:
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def occluded(image: NDArray[np.uint8], landmarks: Points, lift: float) -> FloatMask:
    """1 where the face (below the brows lifted by `lift` eye distances) is covered by something that is not
    its skin, 0 elsewhere, softened at the edge only outward; eyes and brows are never marked (the source's
    replace them). Judged on a copy where the eyes are WORK_EYE_PX apart: an occluder is large, and the mask is
    1 at least one working pixel beyond it, so it stays 1 over the whole occluder when scaled back."""
    scale = min(1.0, WORK_EYE_PX / eye_distance(landmarks))
    if scale == 1.0:
        return _occluded(image, landmarks, lift)
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(round(width * scale), 2), max(round(height * scale), 2)),
                       interpolation=cv2.INTER_AREA)
    factors = np.array([small.shape[1] / width, small.shape[0] / height], dtype=np.float32)
    mask = _occluded(small, landmarks * factors, lift)
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)


def _occluded(image: NDArray[np.uint8], landmarks: Points, lift: float) -> FloatMask:
    shape = image.shape[:2]
    eyes = eye_distance(landmarks)
    face = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.rint(face_outline(landmarks, lift)).astype(np.int32)), 255)
    features = np.zeros(shape, np.uint8)
    for part in (LEFT_EYE_POINTS, RIGHT_EYE_POINTS):
        cv2.fillConvexPoly(features, cv2.convexHull(np.rint(landmarks[part]).astype(np.int32)), 255)
    margin = max(int(round(FEATURE_MARGIN_EYES * eyes)), 1)
    brows = np.rint(landmarks[BROWS]).astype(np.int32)
    cv2.polylines(features, [brows[:5], brows[5:]], False, 255, 2 * margin + 1)
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    sampled = np.zeros(shape, np.uint8)
    for part in REFERENCE_PARTS:
        cv2.fillConvexPoly(sampled, cv2.convexHull(np.rint(landmarks[list(part)]).astype(np.int32)), 255)
    reference = (sampled > 0) & (features == 0)
    if int(reference.sum()) < MIN_REFERENCE_PIXELS:
        return np.zeros(shape, np.float32)

    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    hue, ratio, chroma = _hue_and_ratio(lab)
    coloured = reference & (chroma >= MIN_CHROMA)
    ratio_median, ratio_spread = _robust(ratio[reference])
    unlike = np.abs(ratio - ratio_median) > 3 * ratio_spread + CHROMA_RATIO_LIMIT
    if int(coloured.sum()) >= MIN_REFERENCE_PIXELS:
        hue_median, hue_spread = _robust(hue[coloured])
        hue_step = np.abs((hue - hue_median + 180.0) % 360.0 - 180.0)
        unlike |= (chroma >= MIN_CHROMA) & (hue_step > 3 * hue_spread + HUE_LIMIT_DEG)
    mask = np.where(unlike & (face > 0) & (features == 0), 255, 0).astype(np.uint8)

    # Specks are skin; what remains grows a little and softens outward only.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < MIN_AREA_EYES * eyes * eyes
    small[0] = True
    mask[small[labels]] = 0
    if not mask.any():
        return np.zeros(shape, np.float32)
    grow = max(int(round(GROW_EYES * eyes)), 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
    core = cv2.dilate(mask, kernel)
    soft = cv2.GaussianBlur(cv2.dilate(core, kernel).astype(np.float32) / 255.0, (0, 0), grow)
    return np.maximum(soft, core.astype(np.float32) / 255.0)
