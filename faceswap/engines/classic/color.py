"""Colour matching of a warped source face to the target's skin.

Base and detail, in CIE LAB, measured inside the face mask only (the background of either photo must not leak
in): both images are blurred with the skin mask as weight (normalised convolution) at about a third of an eye
distance. The target's blur is the base (its skin tone, tint and lighting gradient, one cheek in shadow); the
source minus its own blur is the detail laid on it. An additive detail cannot blow up the way a ratio of two
blurs can where one is dark (the red-brown streaks and grey patches of a per-channel gain), and its chroma on
skin is bounded (match_colors), so the corrections are smooth and bounded by construction. A grey-scale source
(Tom Hanks' photo) takes the target's tint everywhere, its shadows included.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

FloatImage = NDArray[np.float32]

STD_RATIO_LIMITS = (0.5, 1.3)
"""The contrast change a face may get; beyond it a shadowed or over-exposed target would turn the face flat or
harsh."""
DETAIL_CHROMA_SCALE = 0.5
DETAIL_CHROMA_LIMIT = 6.0
"""On skin, the source's colour detail is halved and clipped to this many LAB units per chroma channel (a just
noticeable difference is about 2.3): enough for a flush or freckles, too little for a stain."""
SHADING_BLUR_EYE_FRACTION = 0.4
"""Sigma of the base (the target's smooth skin colour), in eye distances: large enough to ignore eyes, brows and
lips and to leave the source's mid-scale structure to the detail (at 0.3 a laughing target's creases stayed), small
enough to follow the target's shading (at 0.5 a cheek's colour drifted by 16 LAB units)."""
BLUR_WORK_PX = 96
"""Blurs run on a copy at most this many pixels across (they are low-pass anyway), then scale back."""
MIN_WEIGHT = 1e-3
MIN_SKIN_PIXELS = 16
SKIN_DISTANCE = 3.0
"""A pixel looks like skin within this many standard deviations (per LAB channel) of the face's skin colour."""
SKIN_STD_FLOOR = np.array([5.0, 3.0, 3.0], dtype=np.float32)
"""Lower bounds of those standard deviations, so an evenly lit face (or a grey-scale photo) is not too strict."""


def to_lab(image: NDArray[np.uint8] | FloatImage) -> FloatImage:
    return cv2.cvtColor(np.asarray(image, dtype=np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def from_lab(lab: FloatImage) -> FloatImage:
    """BGR in 0–255 as float (not yet rounded)."""
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR) * 255.0


def _masked_stats(lab: FloatImage, weight: FloatImage) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-channel mean and standard deviation where `weight` is at least one half."""
    mask = (weight >= 0.5).astype(np.uint8)
    if not mask.any():
        mask[:] = 1
    mean, std = cv2.meanStdDev(lab, mask=mask)
    return mean.reshape(3).astype(np.float32), np.maximum(std.reshape(3), 1e-3).astype(np.float32)


def _masked_blur(image: FloatImage, weight: FloatImage, sigma: float) -> FloatImage:
    """Gaussian blur of `image` where only pixels with weight count (normalised convolution)."""
    height, width = weight.shape
    factor = min(1.0, BLUR_WORK_PX / max(height, width, 1))
    small_size = (max(round(width * factor), 1), max(round(height * factor), 1))
    small_image = cv2.resize(image * weight[..., None], small_size, interpolation=cv2.INTER_AREA)
    small_weight = cv2.resize(weight, small_size, interpolation=cv2.INTER_AREA)
    small_sigma = max(sigma * factor, 0.5)
    blurred = cv2.GaussianBlur(small_image, (0, 0), small_sigma)
    blurred_weight = cv2.GaussianBlur(small_weight, (0, 0), small_sigma)
    result = blurred / np.maximum(blurred_weight, MIN_WEIGHT)[..., None]
    return cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)


def skin_likeness(lab: FloatImage, weight: FloatImage) -> NDArray[np.bool_]:
    """Pixels whose colour lies within SKIN_DISTANCE standard deviations (per LAB channel) of the colour where
    `weight` is set, which should be skin: hair, a hat or a shadowed background is not skin-like."""
    mean, std = _masked_stats(lab, np.asarray(weight, dtype=np.float32))
    std = np.maximum(std, SKIN_STD_FLOOR)
    distance = cv2.transform(((lab - mean) / std) ** 2, np.ones((1, 3), dtype=np.float32))
    return distance[..., 0] < SKIN_DISTANCE**2 if distance.ndim == 3 else distance < SKIN_DISTANCE**2


def match_colors(source: NDArray[np.uint8], target: NDArray[np.uint8], skin: FloatImage, surround: FloatImage,
                 eye_distance: float) -> FloatImage:
    """The source region recoloured to the target's skin (BGR float, 0–255 before rounding).

    `skin` (0..1) is where both faces show skin in the same place; `surround` is target skin beyond the swapped
    region that the result must meet without a step (the forehead above it). Pixels of either face that are
    not skin-like (hair over a cheek, glasses) are left out of the statistics, so they cannot tint the other face.

    The result is the target's smooth skin colour (a low-pass of its L, a and b, so its lighting and tint carry
    over) plus the source's detail (the source minus its own low-pass): wrinkles, pores, eyes, brows and lips.
    The detail's lightness is scaled by the ratio of the two faces' contrast (bounded), and on skin its chroma is
    halved and clipped to ±DETAIL_CHROMA_LIMIT, so no colour of the source photo (red-brown wrinkles, a grey
    glasses frame) can stain the target's skin: each skin pixel's a and b stay within that bound of the target's
    own smooth skin colour at that place. Inside eyes, brows and lips the source keeps its own colours, moved
    by the difference of the two skins' mean colour."""
    skin = np.asarray(skin, dtype=np.float32)
    source_lab, target_lab = to_lab(source), to_lab(target)
    target_like = skin_likeness(target_lab, skin)
    common = skin * target_like * skin_likeness(source_lab, skin)
    if float(common.sum()) < MIN_SKIN_PIXELS:
        common = skin
    sigma = SHADING_BLUR_EYE_FRACTION * eye_distance
    target_weight = np.maximum(common, np.asarray(surround, dtype=np.float32) * target_like)
    target_low = _masked_blur(target_lab, target_weight, sigma)
    source_low = _masked_blur(source_lab, common, sigma)
    detail = source_lab - source_low
    # Contrast: the spread of the lightness detail on common skin, the target's over the source's.
    mask = common >= 0.5
    if mask.any():
        target_spread = float((target_lab[..., 0] - target_low[..., 0])[mask].std())
        source_spread = float(detail[..., 0][mask].std())
        ratio = float(np.clip(target_spread / max(source_spread, 1e-3), *STD_RATIO_LIMITS))
    else:
        ratio = 1.0
    detail[..., 0] *= ratio
    result = target_low + detail
    # Chroma: on skin, the target's smooth colour plus the source's tamed detail; in eyes, brows and lips the
    # source's own colour moved by the skins' mean difference (a detail there, taken against warm skin, would
    # turn the whites of the eyes and glass lenses cyan).
    on_skin = np.clip(skin, 0, 1)[..., None]
    tamed = np.clip(detail[..., 1:] * DETAIL_CHROMA_SCALE, -DETAIL_CHROMA_LIMIT, DETAIL_CHROMA_LIMIT)
    if mask.any():
        shift = target_low[..., 1:][mask].mean(axis=0) - source_low[..., 1:][mask].mean(axis=0)
    else:
        shift = np.zeros(2, np.float32)
    result[..., 1:] = on_skin * (target_low[..., 1:] + tamed) + (1 - on_skin) * (source_lab[..., 1:] + shift)
    result[..., 0] = np.clip(result[..., 0], 0, 100)
    return np.clip(from_lab(result), 0, 255)


SHARPNESS_SIGMA = 1.0
"""The finest detail (pixels): grain, pores, the edge of a wrinkle; what a resize or a soft source loses first."""
SHARPNESS_KERNEL = (5, 5)
SHARPNESS_LIMITS = (0.4, 2.5)
"""How far one pass may scale the swapped face's fine detail to meet the target's."""
SHARPNESS_PASSES = 3
"""Softening a crisp source reaches its floor within one pass (a one-pixel high-pass does not scale by its own
gain); two more passes take it most of the rest of the way."""
SHARPNESS_TOLERANCE = 1.1


def _fine_detail(image: FloatImage) -> FloatImage:
    return image - cv2.GaussianBlur(image, SHARPNESS_KERNEL, SHARPNESS_SIGMA)


def match_sharpness(result: FloatImage, target: NDArray[np.uint8], skin: FloatImage) -> FloatImage:
    """`result` (BGR float) with its finest detail scaled so that, on `skin`, it is as strong as the target's own
    (in grey): a face warped up from a smaller source or from the working scale gets its crispness back, and a
    sharp source on a soft video is softened to match, so the face does not look pasted on.

    Adding (g − 1)·d to the result, d its high-pass, changes the high-pass to d + (g − 1)·HP(d), whose spread is
    a quadratic in g, solved in closed form (SHARPNESS_PASSES passes, each bounded by SHARPNESS_LIMITS)."""
    mask = np.asarray(skin) >= 0.5
    mask[1::2] = False  # every other row is plenty for a spread
    if int(mask.sum()) < MIN_SKIN_PIXELS:
        return result
    wanted = float(_fine_detail(cv2.cvtColor(target, cv2.COLOR_BGR2GRAY).astype(np.float32))[mask].std())
    for _ in range(SHARPNESS_PASSES):
        detail = _fine_detail(result)
        grey = cv2.cvtColor(detail, cv2.COLOR_BGR2GRAY)
        d, e = grey[mask], _fine_detail(grey)[mask]
        d, e = d - d.mean(), e - e.mean()
        a, b, c = float((e * e).mean()), float((d * e).mean()), float((d * d).mean()) - wanted**2
        if a <= 1e-9 or abs(c) <= (SHARPNESS_TOLERANCE**2 - 1) * wanted**2:
            break
        # The root nearer no change; when the wanted spread is below the reachable minimum, that minimum.
        step = (-b + np.sqrt(max(b * b - a * c, 0.0))) / a
        result = result + (float(np.clip(1.0 + step, *SHARPNESS_LIMITS)) - 1.0) * detail
    return result
