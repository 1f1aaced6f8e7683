"""Masks and blending for the classic swap.

The swapped region is the face below a line a little above the brows. Its two kinds of edge are feathered
differently, as the product of two blurred masks:
- the jaw edge is pulled in by half the feather width (proportional to the face size) before blurring, so the
  blend reaches zero at the jaw line: the target keeps its own jaw line and no background of the source photo
  bleeds in;
- the forehead edge ramps inside the band above the brows where the *source* shows skin (`source_hair`): wide
  when the source has a bare forehead, narrow when bangs start right above its brows (the astronaut), so the
  source's brows fully cover the target's but the source's hair does not come along. Whatever else of the
  source is unlike its skin outside its features (hair at the temples or over a cheek) is masked out too.
The target keeps its own lips (feathered): they carry the speech and the expression from frame to frame, which a
still source photo cannot, and a source's open smile squeezed into a closed target mouth would show its teeth as
a white line. The lip line is a natural edge, so the seam there does not show.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.engines.classic.color import skin_likeness, to_lab
from faceswap.engines.classic.warp import (
    BROWS,
    JAW,
    LEFT_EYE_POINTS,
    OUTER_MOUTH,
    RIGHT_EYE_POINTS,
    Points,
    eye_distance,
    face_outline,
    face_size,
    forehead_points,
)

FloatMask = NDArray[np.float32]

FEATHER_FRACTION = 0.12
"""Width of the jaw edge's feather, as a fraction of the face size."""
MIN_FEATHER_PX = 2.0
MIN_FOREHEAD_LIFT, MAX_FOREHEAD_LIFT, FOREHEAD_STEP = 0.1, 0.3, 0.05
"""The swapped region's top edge lies this many eye distances above the brows, searched in steps."""
SKIN_LIKE_FRACTION = 0.85
"""A strip of the source's forehead counts as bare skin when this share of its pixels looks like its cheeks."""
HAIR_CLEARANCE = 0.05
"""Hair is looked for from this many eye distances above the brows (the brows themselves are dark, not hair)."""
SURROUND_BAND = 0.35
"""Height (eye distances) of the target's forehead above the swapped region that the colour must meet."""
FEATURE_MARGIN = 0.12
"""Eyes, brows and lips are left out of the skin statistics with this margin (eye distances) around them."""
FAR_OUT = 2.0
"""Face sizes by which the forehead edge's polygon reaches beyond the face on every other side."""
FIXED_POINT_SHIFT = 4


@dataclass(frozen=True)
class FaceMasks:
    """Masks of one target face, on the grid of its region of interest."""

    weight: FloatMask
    """Blend weight of the swapped face (0..1)."""
    skin: FloatMask
    """Skin both faces show in the same place (no eyes, brows, lips): where colour is compared."""
    surround: FloatMask
    """Target skin just above the swapped region, which the recoloured face must meet without a step."""


def feather_width(size: float) -> float:
    return max(MIN_FEATHER_PX, FEATHER_FRACTION * size)


def _fill(mask: NDArray[np.uint8], points: Points, value: int = 255) -> None:
    hull = cv2.convexHull(np.rint(points * (1 << FIXED_POINT_SHIFT)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, value, cv2.LINE_AA, FIXED_POINT_SHIFT)


def _fill_polygon(mask: NDArray[np.uint8], polygon: Points) -> None:
    cv2.fillPoly(mask, [np.rint(polygon * (1 << FIXED_POINT_SHIFT)).astype(np.int32)], 255, cv2.LINE_AA,
                 FIXED_POINT_SHIFT)


def _brow_side(landmarks: Points, shape: tuple[int, int], lift: float, below: bool) -> NDArray[np.uint8]:
    """One side of the line along the brows lifted by `lift`, continued down the temples to the top of the jaw
    line (hair often reaches down beside the brows): the face below it, or forehead, temples and hair above."""
    line = forehead_points(landmarks, lift)
    jaw = landmarks[JAW]
    along = (line[-1] - line[0]) / max(float(np.linalg.norm(line[-1] - line[0])), 1e-6)
    away = np.array([-along[1], along[0]], dtype=np.float32) * (1 if below else -1)
    far = FAR_OUT * face_size(landmarks)
    left, right = jaw[0] - along * far / 4, jaw[-1] + along * far / 4
    region = np.zeros(shape, dtype=np.uint8)
    _fill_polygon(region, np.concatenate([[left + away * far, left], line, [right, right + away * far]]))
    return region


def _blurred(mask: NDArray[np.uint8], sigma: float) -> FloatMask:
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(sigma, 0.5))


def _features(landmarks: Points, shape: tuple[int, int]) -> NDArray[np.uint8]:
    """Eyes, brows and lips, grown by FEATURE_MARGIN."""
    features = np.zeros(shape, dtype=np.uint8)
    for part in (LEFT_EYE_POINTS, RIGHT_EYE_POINTS, OUTER_MOUTH):
        _fill(features, landmarks[part])
    margin = max(int(round(FEATURE_MARGIN * eye_distance(landmarks))), 1)
    brows = np.rint(landmarks[BROWS] * (1 << FIXED_POINT_SHIFT)).astype(np.int32)
    cv2.polylines(features, [brows[:5], brows[5:]], False, 255, 2 * margin + 1, cv2.LINE_AA, FIXED_POINT_SHIFT)
    return cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))


def _skin(landmarks: Points, features: NDArray[np.uint8], lift: float) -> FloatMask:
    face = np.zeros(features.shape, dtype=np.uint8)
    _fill(face, face_outline(landmarks, lift))
    return cv2.subtract(face, features).astype(np.float32) / 255.0


def _higher_brows(landmarks: Points, other: Points) -> Points:
    """`landmarks` with each brow point replaced by `other`'s where that one lies further up the face."""
    up = landmarks[BROWS].mean(axis=0) - landmarks[8]
    up /= max(float(np.linalg.norm(up)), 1e-6)
    result = landmarks.copy()
    lift = np.maximum((other[BROWS] - landmarks[BROWS]) @ up, 0.0)
    result[BROWS] = landmarks[BROWS] + lift[:, None] * up
    return result


def _band(landmarks: Points, shape: tuple[int, int], lower: float, upper: float) -> NDArray[np.uint8]:
    """The strip between the brows lifted by `lower` and by `upper` eye distances."""
    band = np.zeros(shape, dtype=np.uint8)
    _fill_polygon(band, np.concatenate([forehead_points(landmarks, lower), forehead_points(landmarks, upper)[::-1]]))
    return band


@dataclass(frozen=True)
class SourceHair:
    """What of the source photo's head must not come along with its face."""

    forehead_lift: float
    """How far above its brows (eye distances) the source shows bare skin, within the search range."""
    mask: NDArray[np.uint8]
    """255 where the source shows hair (or anything unlike its skin) outside its brows, eyes, nose and mouth."""


def source_hair(image: NDArray[np.uint8], landmarks: Points) -> SourceHair:
    """Find the source's hairline by colour: pixels like the face's own skin (cheeks, nose, chin; see
    color.skin_likeness) are skin. Strip by strip upwards from the brows, the first strip that is mostly
    something else (hair, a hat) ends the forehead; anything unlike skin around the brows, eyes, nose and
    mouth (hair over the forehead, the temples or a cheek) is masked out. Blonde hair close to the skin's
    colour passes for skin, which only costs a few strands at the edge."""
    shape = image.shape[:2]
    skin = _skin(landmarks, _features(landmarks, shape), 0.0) > 0.5
    if not skin.any():
        return SourceHair(MIN_FOREHEAD_LIFT, np.zeros(shape, dtype=np.uint8))
    skin_like = skin_likeness(to_lab(image), skin.astype(np.float32))
    lift = MIN_FOREHEAD_LIFT
    while lift + FOREHEAD_STEP <= MAX_FOREHEAD_LIFT + 1e-6:
        strip = _band(landmarks, shape, lift, lift + FOREHEAD_STEP) > 127
        if not strip.any() or float(skin_like[strip].mean()) < SKIN_LIKE_FRACTION:
            break
        lift += FOREHEAD_STEP
    radius = max(int(round(HAIR_CLEARANCE * eye_distance(landmarks))), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = np.zeros(shape, dtype=np.uint8)
    _fill(inner, landmarks[BROWS.start:])
    outside = cv2.max(_brow_side(landmarks, shape, HAIR_CLEARANCE, below=False), 255 - cv2.dilate(inner, kernel))
    hair = np.where(skin_like, 0, outside).astype(np.uint8)
    hair = cv2.morphologyEx(hair, cv2.MORPH_OPEN, kernel)  # specks of shadow or freckles are not hair
    hair = cv2.GaussianBlur(cv2.dilate(hair, kernel), (0, 0), radius)
    return SourceHair(round(lift, 2), hair)


def reach(landmarks: Points, lift: float) -> Points:
    """Points whose bounding box holds every pixel the masks of a face can touch."""
    return face_outline(landmarks, 2.5 * lift)


def face_masks(target: Points, shaped: Points, shape: tuple[int, int], lift: float) -> FaceMasks:
    """The masks of a target face, given its landmarks and where the source's features will land (`shaped`),
    both in the (h, w) grid's coordinates."""
    landmarks = _higher_brows(target, shaped)
    eyes = eye_distance(landmarks)
    feather = feather_width(face_size(landmarks))
    jaw = landmarks[JAW]
    center = face_outline(landmarks, lift).mean(axis=0)
    inward = center - jaw
    inward /= np.maximum(np.linalg.norm(inward, axis=1, keepdims=True), 1e-6)

    # The jaw edge: pulled in, open far above the forehead (the forehead edge cuts it).
    jaw_mask = np.zeros(shape, dtype=np.uint8)
    _fill(jaw_mask, np.concatenate([jaw + inward * (feather / 2), forehead_points(landmarks, lift + 2.0)]))
    # The forehead edge: below the lifted brows (the jaw edge cuts it).
    top_mask = _brow_side(landmarks, shape, lift, below=True)
    weight = _blurred(jaw_mask, feather / 4) * _blurred(top_mask, lift * eyes / 2)
    mouth = np.zeros(shape, dtype=np.uint8)
    _fill(mouth, target[OUTER_MOUTH])
    weight *= 1.0 - _blurred(mouth, feather / 6)

    features = cv2.max(_features(target, shape), _features(shaped, shape))
    surround = cv2.subtract(_band(landmarks, shape, lift, lift + SURROUND_BAND), features)
    return FaceMasks(weight=weight, skin=_skin(landmarks, features, lift),
                     surround=surround.astype(np.float32) / 255.0)


def blend_into(target: NDArray[np.uint8], source: NDArray[np.float32], weight: FloatMask) -> None:
    """target ← target + (source − target) · weight, in place. Where weight is 0 the target stays byte-identical."""
    # Computed over the whole region and copied where the weight is set: twice as fast as gathering those pixels.
    base = target.astype(np.float32)
    mixed = base + (source - base) * weight[..., None]
    np.copyto(target, np.clip(np.rint(mixed), 0, 255).astype(np.uint8), where=(weight > 0)[..., None])
