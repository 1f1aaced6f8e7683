"""Masks for the crop stages (MODELS.md §11, §17.4): box with padding, occlusion, region and 68-point area masks.

Every mask is a crop-sized float32 array in [0, 1] (1 takes the swapped crop, 0 keeps the target), and they are
combined by their minimum (`stages.combine_masks`). Box and occlusion masks are made on the target's crop before the
swap; region and area masks on the swapped crop (FaceFusion's order, §17.3). The model-based masks (occlusion,
region) come from adapters (`engines.neural.maskers`); this module holds the pure array functions around them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.faces.align import Matrix, arcface_template, estimate_similarity, transform_points
from faceswap.faces.paste import Mask, blurred_box
from faceswap.faces.types import Face, KeyPoints

MaskType = Literal["box", "occlusion", "region", "area"]
MaskRegion = Literal["skin", "left-eyebrow", "right-eyebrow", "left-eye", "right-eye", "glasses", "nose", "mouth",
                     "upper-lip", "lower-lip"]
MaskArea = Literal["upper-face", "lower-face", "mouth"]

REGION_CLASSES: dict[str, int] = {
    "skin": 1, "left-eyebrow": 2, "right-eyebrow": 3, "left-eye": 4, "right-eye": 5, "glasses": 6, "nose": 10,
    "mouth": 11, "upper-lip": 12, "lower-lip": 13}
"""BiSeNet face-parsing class ids of the regions a region mask can keep (FaceFusion `face_mask_region_set`)."""

AREA_POINTS: dict[str, tuple[int, ...]] = {
    "upper-face": (0, 1, 2, 31, 32, 33, 34, 35, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17),
    "lower-face": (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 34, 33, 32, 31),
    "mouth": tuple(range(48, 68)),
}
"""iBUG 68-point indices whose convex hull is each area (FaceFusion `face_mask_area_set`)."""

MODEL_MASK_SIGMA = 5.0
"""Occlusion, region and area masks: a fixed Gaussian blur in crop pixels, then `(clip(.5, 1) - .5) * 2`."""

MEAN_68: NDArray[np.float64] = np.array([
    (0.241, 0.411), (0.240, 0.486), (0.245, 0.563), (0.260, 0.641), (0.288, 0.715), (0.329, 0.786),
    (0.377, 0.853), (0.432, 0.912), (0.506, 0.932), (0.589, 0.922), (0.665, 0.875), (0.735, 0.818),
    (0.794, 0.749), (0.835, 0.671), (0.856, 0.585), (0.866, 0.495), (0.870, 0.407), (0.274, 0.336),
    (0.307, 0.310), (0.352, 0.308), (0.399, 0.321), (0.441, 0.345), (0.541, 0.344), (0.593, 0.323),
    (0.650, 0.314), (0.706, 0.322), (0.753, 0.351), (0.489, 0.408), (0.484, 0.466), (0.479, 0.524),
    (0.473, 0.583), (0.427, 0.611), (0.453, 0.626), (0.485, 0.638), (0.519, 0.626), (0.551, 0.613),
    (0.328, 0.410), (0.357, 0.397), (0.393, 0.400), (0.426, 0.417), (0.390, 0.425), (0.355, 0.423),
    (0.582, 0.420), (0.614, 0.403), (0.652, 0.405), (0.689, 0.416), (0.654, 0.429), (0.616, 0.429),
    (0.384, 0.698), (0.418, 0.685), (0.457, 0.680), (0.490, 0.689), (0.526, 0.680), (0.577, 0.686),
    (0.634, 0.698), (0.583, 0.751), (0.532, 0.776), (0.493, 0.780), (0.458, 0.775), (0.418, 0.750),
    (0.402, 0.703), (0.458, 0.705), (0.491, 0.709), (0.527, 0.705), (0.613, 0.703), (0.529, 0.731),
    (0.492, 0.735), (0.459, 0.728),
])
"""A mean iBUG 68-point face in the arcface_128 template's frame (x, y as fractions of the crop), measured once
with dlib's 68-point predictor on the 16 faces of insightface's t1.jpg, Tom_Hanks_54745.png and scikit-image's
astronaut at two scales, each aligned by its 5 key points. It estimates 68 points from 5 when the analyzer has no
dense landmarks (as FaceFusion's fan_68_5 does with a model)."""


def box_mask(size: int, blur: float, padding: Sequence[float] = (0, 0, 0, 0)) -> Mask:
    """FaceFusion's box mask: ones with borders of max(blur border, padding %) cleared (top, right, bottom, left),
    then blurred with sigma `int(size*0.5*blur)*0.25`."""
    fade = int(size * 0.5 * blur)
    border = max(fade // 2, 1)
    top, right, bottom, left = (max(border, int(size * float(pad) / 100)) for pad in padding)
    return blurred_box(size, (top, right, bottom, left), fade * 0.25 if fade > 0 else 0.0)


def smooth_model_mask(mask: NDArray[np.floating], size: int) -> Mask:
    """A model's or a polygon's mask at `size`, blurred by σ 5 and remapped so only confident pixels count."""
    mask = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    if mask.shape[:2] != (size, size):
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    mask = cv2.GaussianBlur(mask.reshape(size, size), (0, 0), MODEL_MASK_SIGMA)
    return ((np.clip(mask, 0.5, 1.0) - 0.5) * 2.0).astype(np.float32)


def region_mask(labels: NDArray[np.integer], regions: Iterable[str], size: int) -> Mask:
    """Keep the parsed classes of `regions` (a per-pixel class map from a face parser) as a smoothed mask."""
    ids = [REGION_CLASSES[region] for region in regions]
    keep = np.isin(labels, ids).astype(np.float32)
    keep = cv2.resize(keep, (size, size), interpolation=cv2.INTER_NEAREST) if keep.shape != (size, size) else keep
    return smooth_model_mask(keep, size)


def landmarks_68(face: Face) -> NDArray[np.float32]:
    """The face's 68 iBUG landmarks in frame pixels: its own when the analyzer has them, else estimated from its
    five key points by placing the mean face (`MEAN_68`) with the similarity that fits the key points."""
    if face.landmarks is not None and face.landmarks.shape == (68, 2):
        return np.asarray(face.landmarks, dtype=np.float32)
    return estimate_68(face.kps)


def estimate_68(kps: KeyPoints) -> NDArray[np.float32]:
    template = arcface_template(128)
    to_frame: Matrix = estimate_similarity(template, kps)
    return transform_points(MEAN_68 * 128, to_frame)


def area_mask(points: NDArray[np.floating], areas: Iterable[str], size: int) -> Mask:
    """The convex hull of the chosen areas' landmark points (crop pixels), filled and smoothed."""
    indices = sorted({index for area in areas for index in AREA_POINTS[area]})
    mask = np.zeros((size, size), dtype=np.float32)
    if indices:
        hull = cv2.convexHull(np.asarray(points, dtype=np.float32)[indices].reshape(-1, 1, 2))
        cv2.fillConvexPoly(mask, np.rint(hull).astype(np.int32), 1.0)
    return smooth_model_mask(mask, size)
