"""The Face record both engines produce, so selection, tracking, restoration and paste-back are shared."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Frame = NDArray[np.uint8]
"""A video frame or photo: HxWx3 uint8, BGR (OpenCV's order), C-contiguous."""

KeyPoints = NDArray[np.float32]
"""(5, 2) float32 pixel coordinates: left eye, right eye, nose tip, left mouth corner, right mouth corner, where
'left' is the image's left. This is the order of the ArcFace, inswapper and FFHQ templates."""

BBox = NDArray[np.float32]
"""(4,) float32 x1, y1, x2, y2 in pixels."""

Gender = Literal["male", "female"]


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    bbox: BBox
    score: float
    kps: KeyPoints
    landmarks: NDArray[np.float32] | None = None
    """Dense landmarks when the engine has them: (68, 2) for the classic engine, None for the neural one."""
    embedding: NDArray[np.float32] | None = None
    """L2-normalised identity vector (128-d dlib or 512-d ArcFace); None until the analyzer embedded the face."""
    gender: Gender | None = None
    age: int | None = None

    @property
    def width(self) -> float:
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        return float(self.bbox[3] - self.bbox[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return float(self.bbox[0] + self.bbox[2]) / 2, float(self.bbox[1] + self.bbox[3]) / 2

    def replace(self, **changes: object) -> Face:
        return dataclasses.replace(self, **changes)


def normalized(vector: NDArray[np.floating]) -> NDArray[np.float32]:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def iou(a: BBox, b: BBox) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0
