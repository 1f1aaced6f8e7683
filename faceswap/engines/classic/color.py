"""Colour matching of a warped source face to the target's skin.

Two steps, both measured inside the face mask only (the background of either photo must not leak in):
1. per-channel mean and standard deviation in CIE LAB (Reinhard et al. 2001) give the source the target's skin
   tone and contrast;
2. a low-frequency correction removes what a global statistic cannot: the target's lighting gradient (one cheek
   in shadow) and the source's own. Both images are blurred with the mask as weight (normalised convolution) at
   about half an eye distance, and the source is multiplied, per BGR channel, by the ratio of the blurs, so fine
   detail stays the source's while shading and tint follow the target. Being a per-channel gain, it also gives
   a grey-scale source (Tom Hanks' photo) the target's skin tint in proportion to its brightness, where a LAB
   shift alone leaves it flat and grey in the shadows.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

FloatImage = NDArray[np.float32]

STD_RATIO_LIMITS = (0.5, 1.3)
"""The contrast change a face may get; beyond it a shadowed or over-exposed target would turn the face flat or
harsh."""
GAIN_LIMITS = (0.5, 2.0)
"""Bounds of the local shading gain, so a black or blown-out patch cannot explode it."""
SHADING_BLUR_EYE_FRACTION = 0.3
"""Sigma of the shading blur, in eye distances: large enough to ignore eyes, brows and lips."""
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
    not skin-like (hair over a cheek) are left out, so they cannot tint the other face."""
    skin = np.asarray(skin, dtype=np.float32)
    source_lab, target_lab = to_lab(source), to_lab(target)
    target_like = skin_likeness(target_lab, skin)
    common = skin * target_like * skin_likeness(source_lab, skin)
    if float(common.sum()) < MIN_SKIN_PIXELS:
        common = skin
    # 1. Global lightness and contrast: the L channel's mean and standard deviation. The chroma channels are
    #    left to step 2: shifting them additively would turn a low-chroma highlight complementary (blue).
    source_mean, source_std = _masked_stats(source_lab, common)
    target_mean, target_std = _masked_stats(target_lab, common)
    ratio = float(np.clip(target_std[0] / source_std[0], *STD_RATIO_LIMITS))
    source_lab[..., 0] = (source_lab[..., 0] - source_mean[0]) * ratio + target_mean[0]
    toned = np.maximum(from_lab(source_lab), 0)
    # 2. Local shading, as a per-channel gain between the two low-pass images.
    sigma = SHADING_BLUR_EYE_FRACTION * eye_distance
    target_weight = np.maximum(common, np.asarray(surround, dtype=np.float32))
    target_blur = _masked_blur(target.astype(np.float32), target_weight, sigma)
    gain = (target_blur + 1) / (_masked_blur(toned, common, sigma) + 1)
    return toned * np.clip(gain, *GAIN_LIMITS)
