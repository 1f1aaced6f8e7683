"""The crop stages of a face swap, as pure array functions: align → swap → masks → composite → paste.

Every stage takes arrays and returns arrays, so the swap session (`swap.session`) strings them together and a test
can run any of them alone. A crop is described by the 2x3 frame→crop `matrix` (`faces.align`); masks are crop-sized
float32 arrays in [0, 1] (1 takes the swapped crop, 0 keeps the frame). Restoration is its own pass after the paste
(a restorer aligns on its own template, FFHQ, at its own size), as FaceFusion runs its enhancer as a separate
processor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from faceswap.faces.align import Matrix, warp_to_template
from faceswap.faces.paste import Mask, feathered_box_mask, paste_back
from faceswap.faces.types import Frame, KeyPoints

CropModel = Callable[[Frame], Frame]
"""One model call on a crop at the model's size: BGR uint8 in, BGR uint8 out, same size."""


def align(frame: Frame, kps: KeyPoints, template: NDArray[np.float64], size: int) -> tuple[Frame, Matrix]:
    """The `size` crop with the key points on `template` (already scaled to `size`), and the frame→crop matrix."""
    return warp_to_template(frame, kps, template, size)


def box_mask(size: int, blur: float) -> Mask:
    """The feathered box mask (FaceFusion's box mask, MODELS.md §17.4) for a crop of `size`."""
    return feathered_box_mask(size, blur=blur)


def combine_masks(masks: Sequence[Mask]) -> Mask:
    """Masks combined by their minimum (a pixel is swapped only where every mask allows it), clipped to [0, 1]."""
    if not masks:
        raise ValueError("combine_masks needs at least one mask")
    combined = np.minimum.reduce([np.asarray(mask, dtype=np.float32) for mask in masks])
    return np.clip(combined, 0.0, 1.0).astype(np.float32)


def paste(frame: Frame, crop: Frame, matrix: Matrix, mask: Mask, *, opacity: float = 1.0) -> Frame:
    """Put `crop` back into `frame` (in place) through `mask`; pixels outside the crop's footprint never change."""
    return paste_back(frame, crop, matrix, mask, opacity=opacity)


def implode(crop: Frame, factor: int) -> list[Frame]:
    """Split a (t·S)² crop into its t² sub-pixel phases, each an S² image of the whole face (not tiles).

    Phase `k = a*t + b` is `crop[a::t, b::t]`: the face at the model's size, shifted by the sub-pixel (a, b).
    """
    size = crop.shape[0] // factor
    if factor < 1 or crop.shape[0] != crop.shape[1] or size * factor != crop.shape[0]:
        raise ValueError(f"a {crop.shape[0]}x{crop.shape[1]} crop cannot be split into {factor}x{factor} phases")
    if factor == 1:
        return [crop]
    phases = crop.reshape(size, factor, size, factor, -1).transpose(1, 3, 0, 2, 4)
    return [np.ascontiguousarray(phase.reshape(size, size, *crop.shape[2:])) for phase in phases.reshape(
        factor * factor, size, size, -1)]


def explode(phases: Sequence[Frame], factor: int) -> Frame:
    """Interleave t² phases back into one (t·S)² crop: the inverse of `implode`."""
    if len(phases) != factor * factor:
        raise ValueError(f"{factor}x{factor} phases expected, got {len(phases)}")
    if factor == 1:
        return phases[0]
    size = phases[0].shape[0]
    stack = np.stack([phase.reshape(size, size, -1) for phase in phases])
    channels = stack.shape[-1]
    merged = stack.reshape(factor, factor, size, size, channels).transpose(2, 0, 3, 1, 4)
    merged = merged.reshape(size * factor, size * factor, channels)
    return np.ascontiguousarray(merged if phases[0].ndim == 3 else merged[:, :, 0])


def swap_boosted(crop: Frame, model: CropModel, factor: int) -> Frame:
    """Run `model` on each of the crop's t² phases and interleave the results (pixel boost, MODELS.md §17.3)."""
    return explode([model(phase) for phase in implode(crop, factor)], factor)


def swap_face(frame: Frame, kps: KeyPoints, model: CropModel, *, template: NDArray[np.float64], size: int,
              mask: Mask, factor: int = 1) -> Frame:
    """The whole crop path for one face: align at `size·factor` → swap (each phase at `size`) → mask → paste.

    `template` is the model's template at `size`; `mask` is at `size·factor` (see `combine_masks`). Returns
    `frame`, changed in place inside the face's footprint only.
    """
    crop, matrix = align(frame, kps, template * factor, size * factor)
    return paste(frame, swap_boosted(crop, model, factor), matrix, mask)
