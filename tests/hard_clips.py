"""Hard moving clips for the classic engine, made from real package-shipped photos (no product code).

Each clip is a short list of BGR frames in memory: a camera that pans, zooms and rolls a little over one photo,
optionally with a strong directional light, an occluder drawn over the mouth, or a perspective turn of the head.
Faces come from insightface's t1.jpg (six people) and Tom_Hanks_54745.png, and scikit-image's astronaut and
camera-man photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from media_factory import T1_FACE_BOXES, astronaut_face_photo, hanks_photo, t1_photo

Box = tuple[float, float, float, float]

HANKS_FACE_BOX: Box = (6.0, 22.0, 100.0, 117.0)
"""Tom Hanks' face in Tom_Hanks_54745.png (112×112), measured once with the classic analyzer."""
ASTRONAUT_FACE_BOX: Box = (82.0, 51.0, 186.0, 154.0)
"""The astronaut's face in media_factory.astronaut_face_photo(), measured once with the classic analyzer."""
HAND_BGR = (150, 175, 225)
"""A light hand's colour (RGB 225, 175, 150)."""
OBJECT_BGR = (160, 90, 40)
"""A blue mug (an orange one has the hue and chroma of t1.jpg's warm skin: colour alone cannot tell them apart)."""


@dataclass(frozen=True)
class Camera:
    """A camera move over a photo: the face's box is centred at (cx, cy) of the frame, `fill` of its height."""

    fill: float = 0.4
    frames: int = 12
    width: int = 640
    height: int = 480
    pan_px: float = 40.0
    zoom: float = 0.08
    roll_deg: float = 4.0


def _matrix(box: Box, camera: Camera, index: int) -> np.ndarray:
    """The affine map from photo to frame for frame `index`: pan left-right, zoom in and out, roll."""
    phase = index / max(camera.frames - 1, 1)
    x1, y1, x2, y2 = box
    size = max(x2 - x1, y2 - y1)
    scale = camera.height * camera.fill / size * (1 + camera.zoom * np.sin(np.pi * phase))
    angle = camera.roll_deg * np.sin(2 * np.pi * phase)
    matrix = cv2.getRotationMatrix2D(((x1 + x2) / 2, (y1 + y2) / 2), angle, scale)
    matrix[:, 2] += np.array([camera.width / 2 + camera.pan_px * (phase - 0.5) - (x1 + x2) / 2,
                              camera.height / 2 - (y1 + y2) / 2])
    return matrix


def film(photo: np.ndarray, box: Box, camera: Camera) -> list[np.ndarray]:
    return [cv2.warpAffine(photo, _matrix(box, camera, i), (camera.width, camera.height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT) for i in range(camera.frames)]


def side_light(frame: np.ndarray, strength: float = 0.9, angle_deg: float = 0.0) -> np.ndarray:
    """A strong directional light: brightness falls smoothly from 1.2 on one side to 1.2·(1 − strength) on the
    other (a logistic ramp across the middle sixth of the frame, where the face is), slightly warm on the lit side."""
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))], np.float32)
    along = ((xs - width / 2) * direction[0] + (ys - height / 2) * direction[1]) / (width / 12)
    light = (1 - strength) + strength / (1 + np.exp(along))
    tint = np.stack([light * 0.95, light, light * 1.05], axis=-1) * 1.2
    return np.clip(frame.astype(np.float32) * tint, 0, 255).astype(np.uint8)


def mouth_occluder(frame: np.ndarray, mouth_center: Sequence[float], face_width: float,
                   colour: tuple[int, int, int] = HAND_BGR) -> np.ndarray:
    """A solid rounded shape (a hand or an object) over the mouth, about 0.55 of the face wide."""
    result = frame.copy()
    cx, cy = mouth_center
    axes = (int(face_width * 0.3), int(face_width * 0.2))
    cv2.ellipse(result, (int(cx), int(cy + face_width * 0.05)), axes, 0, 0, 360, colour, -1, cv2.LINE_AA)
    return result


def perspective_turn(photo: np.ndarray, box: Box, amount: float) -> tuple[np.ndarray, Box]:
    """The photo warped as if the head turned sideways: the face's far half is squeezed toward the near edge
    (`amount` 0..1 of its width). Returns the warped photo and the face's new approximate box."""
    x1, y1, x2, y2 = box
    width = x2 - x1
    src = np.float32([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    squeeze = amount * width
    dst = np.float32([[x1, y1], [x2 - squeeze, y1 + 0.12 * squeeze], [x2 - squeeze, y2 - 0.12 * squeeze],
                      [x1, y2]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(photo, matrix, (photo.shape[1], photo.shape[0]), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
    return warped, (x1, y1, x2 - squeeze, y2)


def t1_face(index: int) -> tuple[np.ndarray, Box]:
    return t1_photo(), tuple(float(v) for v in T1_FACE_BOXES[index])  # type: ignore[return-value]


def hanks_face() -> tuple[np.ndarray, Box]:
    return hanks_photo(), HANKS_FACE_BOX


def astronaut_face() -> tuple[np.ndarray, Box]:
    return astronaut_face_photo(), ASTRONAUT_FACE_BOX
