"""The classic swap: warp the source face onto the target's landmarks, match its colour, feather it in.

Once per run, `prepare_source` crops the face photo, triangulates its landmarks and finds its hair
(blend.source_hair). Per frame and face, `swap`:
1. takes a region of interest around the target face (on a downscaled copy when the face is large);
2. moves the target's brows, nose and eyes towards the source's proportions (warp.toward_source_shape) and warps
   the source onto them with one dense piecewise-affine remap, read from the pyramid level nearest the
   target's size so a large source shrunk onto a small face does not alias;
3. recolours the warped face to the target's skin (color.match_colors) and gives it the target's sharpness
   (color.match_sharpness);
4. blends it in with feathered edges, keeping the target's jaw line, lips and hairline (blend.face_masks) and
   whatever covers its face (occlusion.occluded).
Only pixels where the blend weight is above zero change. A face turned beyond TURN_LIMIT is left untouched.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.engines.classic import blend, color, occlusion, warp
from faceswap.errors import FaceSwapError
from faceswap.faces.types import Face, Frame

log = logging.getLogger(__name__)

SOURCE_MARGIN = 0.6
"""The source crop reaches this many face sizes beyond the mesh, so the warp never reads past its edge."""
MAX_SOURCE_FACE_PX = 400
"""A bigger source face is shrunk to this size once: it is more detail than any video face needs."""
MIN_PYRAMID_FACE_PX = 24
LANDMARK_COUNT = 68
WORK_FACE_PX = 200
"""Faces larger than this (warp.face_size) are swapped on a downscaled copy of their region, then blended in at
full resolution."""
TURN_LIMIT = 0.55
"""Faces turned further than this (warp.turn: the nose's offset from the middle of the eyes, in eye distances;
t1's Joey and Courteney, clearly turned, measure 0.3–0.47) are left untouched: the far half of the face is too
foreshortened for a 2D warp of a frontal photo, which would smear it. `skip_reason` says so, for the report."""
SHAPE_TRANSFER = 0.8
"""How far the target's brows, nose and eyes move towards the source's proportions (warp.toward_source_shape):
0 keeps the target's face shape and only changes its skin, 1 takes the source's proportions outright."""


@dataclass(frozen=True)
class ClassicSource:
    """What the swap needs from the face photo, computed once per run."""

    levels: tuple[NDArray[np.uint8], ...]
    """The source crop and successive halvings of it (cv2.pyrDown), for targets much smaller than it. Channels:
    B, G, R and the source's hair mask (blend.SourceHair), so one remap warps both."""
    points: NDArray[np.float32]
    """Mesh points in level-0 crop coordinates."""
    triangles: NDArray[np.int32]
    size: float
    """Face size (warp.face_size) in level-0 pixels."""
    forehead_lift: float
    """How far above the brows (eye distances) the source shows bare skin: where the swapped region ends."""


def _landmarks_of(face: Face, role: str) -> NDArray[np.float32]:
    if face.landmarks is None or face.landmarks.shape != (LANDMARK_COUNT, 2):
        raise FaceSwapError("internal_error", f"The classic engine needs the 68 landmarks of the {role} face, "
                                              "found by its own analyzer.")
    return np.asarray(face.landmarks, dtype=np.float32)


class ClassicSwapper:
    name = "classic"

    def __init__(self, shape_transfer: float = SHAPE_TRANSFER, turn_limit: float = TURN_LIMIT) -> None:
        if not 0 <= shape_transfer <= 1:
            raise ValueError(f"shape_transfer must lie in 0..1, not {shape_transfer}")
        if turn_limit <= 0:
            raise ValueError(f"turn_limit must be above 0, not {turn_limit}")
        self.shape_transfer = shape_transfer
        self.turn_limit = turn_limit

    def prepare_source(self, image: Frame, face: Face) -> ClassicSource:
        landmarks = _landmarks_of(face, "source")
        points = warp.mesh_points(landmarks)
        size = warp.face_size(landmarks)
        margin = SOURCE_MARGIN * size
        x0, y0 = np.floor(points.min(axis=0) - margin).astype(int)
        x1, y1 = np.ceil(points.max(axis=0) + margin).astype(int)
        scale = min(1.0, MAX_SOURCE_FACE_PX / size)
        width, height = max(round((x1 - x0) * scale), 1), max(round((y1 - y0) * scale), 1)
        matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
        # Parts of the crop beyond the photo repeat its edge, like the frame edges repeat in the warp.
        crop = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        local = (points - np.array([x0, y0], dtype=np.float32)) * scale
        hair = blend.source_hair(crop, local[:LANDMARK_COUNT])
        levels = [np.dstack([crop, hair.mask])]
        level_size = size * scale
        while level_size / 2 >= MIN_PYRAMID_FACE_PX and min(levels[-1].shape[:2]) >= 4:
            levels.append(cv2.pyrDown(levels[-1]))
            level_size /= 2
        log.debug("classic source: face %.0f px (scaled %.2f), forehead lift %.2f, %d pyramid levels", size,
                  scale, hair.forehead_lift, len(levels))
        return ClassicSource(levels=tuple(levels), points=local.astype(np.float32),
                             triangles=warp.triangulate(local), size=size * scale, forehead_lift=hair.forehead_lift)

    def skip_reason(self, target: Face) -> str | None:
        """Why `swap` would leave this face untouched ('turned'), or None when it swaps it."""
        landmarks = target.landmarks
        if landmarks is None or landmarks.shape != (LANDMARK_COUNT, 2) or not np.isfinite(landmarks).all():
            return None
        return "turned" if abs(warp.turn(np.asarray(landmarks, dtype=np.float32))) > self.turn_limit else None

    def swap(self, frame: Frame, target: Face, source: ClassicSource) -> Frame:
        # 1. Target geometry and the region of interest around it.
        landmarks = _landmarks_of(target, "target")
        if not np.isfinite(landmarks).all() or self.skip_reason(target) is not None:
            return frame
        size = warp.face_size(landmarks)
        height, width = frame.shape[:2]
        reach = blend.reach(landmarks, source.forehead_lift)
        x0, y0 = np.floor(reach.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(reach.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return frame
        roi = frame[y0:y1, x0:x1]
        # A large face is worked on at a smaller scale, never below the source's own resolution: the warped
        # source has no finer detail, and the masks and colour corrections are smooth anyway.
        scale = min(1.0, max(WORK_FACE_PX, source.size) / size)
        work = roi if scale == 1.0 else cv2.resize(roi, (max(round(roi.shape[1] * scale), 2),
                                                          max(round(roi.shape[0] * scale), 2)),
                                                   interpolation=cv2.INTER_AREA)
        scale_xy = np.array([work.shape[1] / roi.shape[1], work.shape[0] / roi.shape[0]], dtype=np.float32)
        local = (landmarks - np.array([x0, y0], dtype=np.float32)) * scale_xy

        # 2. Dense warp of the source, read from the pyramid level nearest the target's size.
        level = int(np.clip(math.floor(math.log2(max(source.size / (size * scale), 1.0))), 0,
                            len(source.levels) - 1))
        shaped = warp.toward_source_shape(local, source.points[:LANDMARK_COUNT], self.shape_transfer)
        map_x, map_y = warp.warp_maps(warp.mesh_points(shaped), source.points / (1 << level), source.triangles,
                                      work.shape[:2])
        warped = cv2.remap(source.levels[level], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped, hair = np.ascontiguousarray(warped[..., :3]), warped[..., 3]

        # 3. Masks, and the warped face recoloured to the target's skin.
        masks = blend.face_masks(local, shaped, work.shape[:2], source.forehead_lift)
        matched = color.match_colors(warped, work, masks.skin, masks.surround, warp.eye_distance(local))
        # Whatever covers the target's face is left as it is (its mask is 1 a little beyond the occluder, so
        # it stays 1 over the occluder itself when scaled up).
        weight = masks.weight * (1 - hair.astype(np.float32) / 255) * (1 - occlusion.occluded(
            work, local, source.forehead_lift))
        skin = masks.skin
        if work is not roi:
            full_size = (roi.shape[1], roi.shape[0])
            matched = cv2.resize(matched, full_size, interpolation=cv2.INTER_LINEAR)
            weight = cv2.resize(weight, full_size, interpolation=cv2.INTER_LINEAR)
            skin = cv2.resize(skin, full_size, interpolation=cv2.INTER_LINEAR)
        matched = color.match_sharpness(matched, roi, skin)

        # 4. Feathered blend without the source's hair, in place.
        blend.blend_into(roi, matched, weight)
        return frame
