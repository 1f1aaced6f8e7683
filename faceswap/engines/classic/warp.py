"""A dense piecewise-affine warp between two faces, driven by their 68 landmarks.

The landmarks are extended by points above the eyebrows (the 68 stop there) and a ring outside the face, then
triangulated once on the source. Instead of warping triangle by triangle (which leaves seams where neighbouring
triangles are resampled separately), every target pixel is labelled with its triangle and mapped through that
triangle's affine transform into one `cv2.remap` call: the maps agree along shared edges, so the warp is
continuous. Pixels no usable triangle covers (degenerate triangles of a turned face, the area outside the mesh)
fall back to the best affine fit of all points, so the maps have no holes.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import Delaunay, QhullError

from faceswap.errors import FaceSwapError

Points = NDArray[np.float32]

JAW = slice(0, 17)
BROWS = slice(17, 27)
OUTER_MOUTH = slice(48, 60)
LEFT_EYE_POINTS = slice(36, 42)
RIGHT_EYE_POINTS = slice(42, 48)

MESH_LIFT = 0.9
"""The mesh reaches this many eye distances above the brows, beyond any forehead the swap blends in."""
OUTER_RING_SCALE = 1.25
"""The outer ring of mesh points: the face outline scaled this much about its centre."""
MIN_TRIANGLE_AREA = 0.5
"""Target triangles smaller than this (px²) are folded flat by a turned head and left to the fallback map."""
FIXED_POINT_SHIFT = 4
"""Sub-pixel bits for rasterising triangles with cv2.fillPoly."""


def eye_distance(landmarks: Points) -> float:
    left, right = landmarks[LEFT_EYE_POINTS].mean(axis=0), landmarks[RIGHT_EYE_POINTS].mean(axis=0)
    return max(float(np.linalg.norm(right - left)), 1.0)


def forehead_points(landmarks: Points, lift: float) -> Points:
    """The ten brow points moved up the face (away from the chin) by `lift` eye distances."""
    brows = landmarks[BROWS]
    up = brows.mean(axis=0) - landmarks[8]
    up = up / max(float(np.linalg.norm(up)), 1e-6)
    return (brows + up * lift * eye_distance(landmarks)).astype(np.float32)


def face_outline(landmarks: Points, lift: float) -> Points:
    """The jaw line and the brows lifted by `lift` eye distances, in order around the face."""
    return np.concatenate([landmarks[JAW], forehead_points(landmarks, lift)[::-1]]).astype(np.float32)


def face_size(landmarks: Points) -> float:
    """Square root of the face outline's area: a size that neither a turned nor a tilted head collapses."""
    outline = cv2.convexHull(face_outline(landmarks, 0.0))
    return max(float(np.sqrt(cv2.contourArea(outline))), 1.0)


def mesh_points(landmarks: Points) -> Points:
    """The 68 landmarks, the lifted brows and an outer ring: the vertices of the warp mesh."""
    outline = face_outline(landmarks, MESH_LIFT)
    center = outline.mean(axis=0)
    ring = center + (outline - center) * OUTER_RING_SCALE
    return np.concatenate([landmarks, forehead_points(landmarks, MESH_LIFT), ring]).astype(np.float32)


def triangulate(points: Points) -> NDArray[np.int32]:
    """Delaunay triangles (indices into `points`)."""
    try:
        return Delaunay(points.astype(np.float64)).simplices.astype(np.int32)
    except QhullError as e:
        raise FaceSwapError("source_face_not_found",
                            "The face in the face image is too small or too distorted to swap.") from e


def _affine_fit(dst: Points, src: Points) -> NDArray[np.float64]:
    """The least-squares affine transform taking `dst` points to `src` points (2x3)."""
    design = np.hstack([dst.astype(np.float64), np.ones((len(dst), 1))])
    solution, *_ = np.linalg.lstsq(design, src.astype(np.float64), rcond=None)
    return solution.T


def _triangle_affines(dst: Points, src: Points, triangles: NDArray[np.int32]) -> tuple[NDArray, NDArray]:
    """Per triangle, the affine map from target to source (T, 2, 3), and whether the target triangle is usable."""
    d = dst[triangles].astype(np.float64)
    s = src[triangles].astype(np.float64)
    design = np.concatenate([d, np.ones((len(triangles), 3, 1))], axis=2)
    area = 0.5 * np.abs(np.linalg.det(design))
    usable = area >= MIN_TRIANGLE_AREA
    affines = np.zeros((len(triangles), 2, 3))
    if usable.any():
        affines[usable] = np.linalg.solve(design[usable], s[usable]).transpose(0, 2, 1)
    return affines, usable


def warp_maps(dst: Points, src: Points, triangles: NDArray[np.int32],
              shape: tuple[int, int]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """`cv2.remap` maps for a target region of `shape` (h, w): for each pixel, where to read the source. `dst`
    are mesh points in the region's coordinates, `src` the same points in the source image."""
    height, width = shape
    affines, usable = _triangle_affines(dst, src, triangles)
    fallback = _affine_fit(dst, src)[None]
    table = np.concatenate([fallback, affines]).reshape(-1, 6).astype(np.float32)

    labels = np.zeros((height, width), dtype=np.uint16)
    scaled = np.rint(dst * (1 << FIXED_POINT_SHIFT)).astype(np.int32)
    for index in np.flatnonzero(usable):
        cv2.fillConvexPoly(labels, scaled[triangles[index]], int(index) + 1, cv2.LINE_8, FIXED_POINT_SHIFT)

    coefficients = table[labels]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    map_x = coefficients[..., 0] * xs + coefficients[..., 1] * ys + coefficients[..., 2]
    map_y = coefficients[..., 3] * xs + coefficients[..., 4] * ys + coefficients[..., 5]
    return map_x, map_y


def similarity_fit(src: Points, dst: Points) -> NDArray[np.float64]:
    """The least-squares similarity transform (rotation, uniform scale, shift) taking `src` to `dst` (2x3)."""
    src64, dst64 = src.astype(np.float64), dst.astype(np.float64)
    src_mean, dst_mean = src64.mean(axis=0), dst64.mean(axis=0)
    a, b = src64 - src_mean, dst64 - dst_mean
    variance = float((a**2).sum())
    if variance <= 1e-9:
        return np.hstack([np.eye(2), (dst_mean - src_mean)[:, None]])
    cross = b.T @ a
    u, singular, vt = np.linalg.svd(cross)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float((singular * np.diag(sign)).sum()) / variance
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


RIGID_PARTS = slice(17, 36)
"""Brows and nose: their shape is the person's, not the expression's, so it is taken from the source."""
MOVING_PARTS = ((slice(36, 42), 36, 39), (slice(42, 48), 42, 45))
"""The eyes, with the corners that give their size: they open and close with the target's expression, so only
their place and size come from the source. The mouth stays the target's (see blend)."""
PART_SCALE_LIMITS = (0.67, 1.5)
NOSE_LINE = slice(30, 34)
"""The nose tip and the base of the nose."""
TURN_LIMIT = 0.35
"""A difference in turn (see `turn`) at which the shape transfer has faded out completely."""


def turn(landmarks: Points) -> float:
    """How far the head is turned: the nose's offset from the middle of the eyes, along the eye line, in eye
    distances (about 0 for a frontal face, ±0.3 for Joey in t1.jpg)."""
    left, right = landmarks[LEFT_EYE_POINTS].mean(axis=0), landmarks[RIGHT_EYE_POINTS].mean(axis=0)
    axis = right - left
    distance = max(float(np.linalg.norm(axis)), 1e-6)
    nose = landmarks[NOSE_LINE].mean(axis=0)
    return float((nose - (left + right) / 2) @ axis) / distance**2


def toward_source_shape(target: Points, source: Points, amount: float) -> Points:
    """The target's 68 landmarks moved `amount` of the way towards the source's face shape, keeping the target's
    pose, jaw line and expression.

    The source's landmarks are posed like the target's (the similarity transform that best maps one onto the
    other). Brows and nose then move towards the posed source outright; the eyes keep their own outline (a
    blink) and only move and scale towards the source's; the mouth does not move. Identity lives partly in these
    proportions: on the six t1 faces, amount 0.8 raises the mean dlib similarity of the swapped face to the
    source from 0.907 to 0.918 (astronaut), 0.904 to 0.913 (Hanks) and 0.945 to 0.956 (Lisa), and it lifts the
    weakest face most (astronaut: from +0.010 to +0.037 over the unswapped face)."""
    # A 2D pose cannot turn a frontal face sideways: for a turned head (or source) the posed nose and eyes would
    # land where a frontal face has them, so the transfer fades out as the two faces' turn differs.
    amount *= float(np.clip(1 - abs(turn(target) - turn(source)) / TURN_LIMIT, 0, 1))
    matrix = similarity_fit(source, target)
    posed = source.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    moved = target.astype(np.float64).copy()
    moved[RIGID_PARTS] += amount * (posed[RIGID_PARTS] - moved[RIGID_PARTS])
    for part, first, last in MOVING_PARTS:
        own_center, source_center = moved[part].mean(axis=0), posed[part].mean(axis=0)
        own_size = float(np.linalg.norm(moved[last] - moved[first]))
        source_size = float(np.linalg.norm(posed[last] - posed[first]))
        ratio = float(np.clip(source_size / max(own_size, 1e-6), *PART_SCALE_LIMITS))
        scale = 1 + amount * (ratio - 1)
        moved[part] = own_center + amount * (source_center - own_center) + (moved[part] - own_center) * scale
    return moved.astype(np.float32)
