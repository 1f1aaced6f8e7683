"""Paste a processed face crop back into its frame, touching only the face's region.

The swapper and the restorers both work on an aligned crop (see `faces.align`) and hand the result here with the
frame→crop matrix. The crop is warped back through the inverse affine into the bounding box of its corners only
(not a full-frame warp, whose cost grows with the frame), and blended through a feathered mask, so pixels outside
that box are never written and pixels where the mask is zero keep their exact values.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.faces.align import Matrix, transform_points
from faceswap.faces.types import Frame

Mask = NDArray[np.float32]
"""A crop-sized float32 array in [0, 1]: 1 takes the processed crop, 0 keeps the frame."""


def feathered_box_mask(size: int, *, blur: float = 0.3) -> Mask:
    """A square mask that is 1 in the middle and fades to 0 towards the crop's edges.

    `blur` is the fraction of half the crop over which the edge fades: a border of `size*blur/4` pixels is cleared,
    then the mask is blurred with sigma `size*blur/8`. This is the box mask FaceFusion uses for its swapper and
    enhancers (blur 0.3: a 9-pixel border at 128, 38 at 512), so the crop's own edges and corners, where the
    warp brings in background or padding, never show.
    """
    if size <= 0 or not 0 <= blur <= 1:
        raise ValueError(f"feathered_box_mask needs size > 0 and 0 <= blur <= 1, got size={size}, blur={blur}")
    fade = int(size * 0.5 * blur)
    border = max(fade // 2, 1)
    return blurred_box(size, (border, border, border, border), fade * 0.25)


def blurred_box(size: int, borders: tuple[int, int, int, int], sigma: float) -> Mask:
    """Ones with `borders` (top, right, bottom, left) cleared, Gaussian-blurred by `sigma` (0: not blurred).

    A box and a Gaussian are both separable, so the mask is the outer product of two blurred 1-D profiles: the same
    values as blurring the 2-D mask (within 1e-6), in milliseconds instead of seconds at 2048 px.
    """
    top, right, bottom, left = borders
    rows = np.zeros((1, size), dtype=np.float32)
    cols = np.zeros((1, size), dtype=np.float32)
    rows[0, top:max(size - bottom, top)] = 1.0
    cols[0, left:max(size - right, left)] = 1.0
    if sigma > 0:
        rows = cv2.GaussianBlur(rows, (0, 0), sigma)
        cols = cv2.GaussianBlur(cols, (0, 0), sigma)
    return np.outer(rows[0], cols[0]).astype(np.float32)


def crop_region(frame_shape: tuple[int, ...], crop_size: tuple[int, int], matrix: Matrix) -> tuple[int, int, int, int]:
    """The (x1, y1, x2, y2) box of the frame that the crop covers, clipped to the frame (may be empty)."""
    height, width = frame_shape[:2]
    crop_h, crop_w = crop_size
    inverse = cv2.invertAffineTransform(matrix)
    corners = transform_points(np.array([[0, 0], [crop_w, 0], [0, crop_h], [crop_w, crop_h]]), inverse)
    x1 = max(math.floor(float(corners[:, 0].min())), 0)
    y1 = max(math.floor(float(corners[:, 1].min())), 0)
    x2 = min(math.ceil(float(corners[:, 0].max())) + 1, width)
    y2 = min(math.ceil(float(corners[:, 1].max())) + 1, height)
    return x1, y1, max(x2, x1), max(y2, y1)


def paste_back(frame: Frame, crop: Frame, matrix: Matrix, mask: Mask, *, opacity: float = 1.0) -> Frame:
    """Blend `crop` (aligned by the frame→crop `matrix`) into `frame` in place, weighted by `mask * opacity`.

    Returns `frame`. Only the bounding box of the crop's footprint is read and written.
    """
    if crop.shape[:2] != mask.shape[:2]:
        raise ValueError(f"crop {crop.shape[:2]} and mask {mask.shape[:2]} must have the same size")
    x1, y1, x2, y2 = crop_region(frame.shape, crop.shape[:2], matrix)
    if x2 <= x1 or y2 <= y1 or opacity <= 0:
        return frame
    inverse = cv2.invertAffineTransform(matrix)
    inverse[:, 2] -= (x1, y1)
    roi_size = (x2 - x1, y2 - y1)
    warped = cv2.warpAffine(crop, inverse, roi_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inverse, roi_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0)
    if opacity < 1:
        alpha *= float(opacity)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    roi = frame[y1:y2, x1:x2]
    # (alpha*crop + (1-alpha)*frame) with rounding, in one C++ pass; alpha 0 gives the frame's exact pixel.
    frame[y1:y2, x1:x2] = cv2.blendLinear(warped, np.ascontiguousarray(roi), alpha, 1.0 - alpha)
    return frame
