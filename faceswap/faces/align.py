"""Face alignment: the five-point templates of the real models and warps of a frame onto them.

Pure array functions. A crop is described by the 2x3 affine `matrix` that maps frame pixels to crop pixels, so
`faces.paste` can put a processed crop back with its inverse.

Templates (MODELS.md §7), all in the key-point order of `faces.types.KeyPoints` (left eye, right eye, nose, left
mouth corner, right mouth corner):
- ARCFACE_112: insightface's `arcface_dst`, the crop ArcFace (w600k_r50) was trained on.
- INSWAPPER_128: insightface's rule for sizes that are multiples of 128 (`arcface_dst * S/128 + (8*S/128, 0)`),
  the crop inswapper_128 expects; equal to FaceFusion's `arcface_128`.
- FFHQ_512: facexlib's FFHQ template, the crop GFPGAN and CodeFormer expect.

The similarity (rotation, uniform scale, translation) is the least-squares Umeyama estimate, as insightface's
`estimate_norm` computes it with scikit-image, so our crops match the reference implementation's.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage.transform import SimilarityTransform

from faceswap.faces.types import BBox, Frame, KeyPoints

Matrix = NDArray[np.float64]
"""A 2x3 affine matrix mapping frame pixel coordinates to crop pixel coordinates."""

ARCFACE_112: NDArray[np.float64] = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])
INSWAPPER_128: NDArray[np.float64] = ARCFACE_112 + np.array([8.0, 0.0])
FFHQ_512: NDArray[np.float64] = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043],
     [313.08905, 371.15118]])


def arcface_template(size: int) -> NDArray[np.float64]:
    """insightface's `estimate_norm` template for a crop of `size` (a multiple of 112 or of 128)."""
    if size % 112 == 0:
        return ARCFACE_112 * (size / 112)
    if size % 128 == 0:
        ratio = size / 128
        return ARCFACE_112 * ratio + np.array([8.0 * ratio, 0.0])
    raise ValueError(f"an ArcFace-style template needs a crop size that is a multiple of 112 or 128, got {size}")


def scaled_template(template: NDArray[np.float64], template_size: int, size: int) -> NDArray[np.float64]:
    """`template` (defined for a `template_size` crop) for a crop of `size` pixels."""
    return template * (size / template_size)


def estimate_similarity(src: NDArray[np.floating], dst: NDArray[np.floating]) -> Matrix:
    """The 2x3 least-squares similarity taking points `src` onto `dst` (Umeyama, via scikit-image)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need two matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(transform)
    else:  # pragma: no cover - older scikit-image
        transform = SimilarityTransform()
        ok = transform.estimate(src, dst)
    if not ok or not np.all(np.isfinite(transform.params)):
        raise ValueError("the key points are degenerate (all at one place); cannot align the face")
    return np.asarray(transform.params[:2], dtype=np.float64)


def warp_to_template(frame: Frame, kps: KeyPoints, template: NDArray[np.float64], size: int, *,
                     border: int = cv2.BORDER_CONSTANT) -> tuple[Frame, Matrix]:
    """The `size`x`size` crop in which the face's key points sit on `template`, and the frame→crop matrix.

    `border=cv2.BORDER_CONSTANT` fills outside the frame with black, as insightface does for ArcFace and
    inswapper; restorers use `cv2.BORDER_REPLICATE` so frame edges do not paint black bands into the face.
    """
    matrix = estimate_similarity(kps, template)
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    return crop, matrix


def warp_bbox_centered(frame: Frame, bbox: BBox, size: int, *, context: float = 1.5) -> tuple[Frame, Matrix]:
    """A `size` crop centred on the box, the box's longer side scaled to `size / context`, no rotation.

    insightface's attribute/landmark crop (`face_align.transform(img, centre, size, size/(max(w,h)*1.5), 0)`).
    """
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    longest = max(x2 - x1, y2 - y1)
    if longest <= 0:
        raise ValueError(f"the face box {bbox.tolist()} has no area")
    scale = size / (longest * context)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    matrix = np.array([[scale, 0.0, size / 2 - cx * scale], [0.0, scale, size / 2 - cy * scale]], dtype=np.float64)
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return crop, matrix


def transform_points(points: NDArray[np.floating], matrix: Matrix) -> NDArray[np.float32]:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
