"""68-point face landmarks (buffalo_l 1k3d68, role `landmarker`), as insightface's landmark model computes them
(MODELS.md §6).

The crop is centred on the face box, the box's longer side scaled to 192/1.5 pixels, no rotation; pixels are RGB,
fed raw when the graph normalises itself (node names, as insightface decides) else `(x - 127.5) / 128`. The output
[1, 3309] holds (x, y, z) triples; the last 68 are the iBUG points, in crop units of [-1, 1]: `(p + 1) * 96` gives
crop pixels, and the crop's inverse affine frame pixels. Area masks use them when the file is present
(`swap.masks`), else estimate 68 points from the five key points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.faces.align import transform_points, warp_bbox_centered
from faceswap.faces.types import Face, Frame
from faceswap.models import graph
from faceswap.models.signature import Signature, require_kind

CONTEXT = 1.5
POINTS = 68


class Landmarker68:
    """The face's 68 iBUG landmarks in frame pixels."""

    def __init__(self, name: str, session: Any, signature: Signature, *, raw_pixels: bool) -> None:
        self.name = name
        self.session = session
        image = signature.inputs[0]
        self.input_name = image.name
        self.output_name = signature.outputs[0].name
        self.size = int(image.shape[2] or 192)
        self.mean, self.std = (0.0, 1.0) if raw_pixels else (127.5, 128.0)

    def landmarks(self, frame: Frame, face: Face) -> NDArray[np.float32]:
        crop, matrix = warp_bbox_centered(frame, face.bbox, self.size, context=CONTEXT)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / self.std, (self.size, self.size), (self.mean,) * 3, swapRB=True)
        prediction = np.asarray(self.session.run([self.output_name], {self.input_name: blob})[0], np.float64)
        points = prediction.reshape(-1, 3)[-POINTS:, :2]
        points = (points + 1.0) * (self.size // 2)
        return transform_points(points, cv2.invertAffineTransform(matrix))


def load_landmarker(name: str, path: Path, session: Any) -> Landmarker68:
    """The adapter for landmarker `name`, after checking that the file's exact signature is 1k3d68's."""
    signature = require_kind(session, path, "landmarker", f"landmark model {name}")
    return Landmarker68(name, session, signature, raw_pixels=graph.normalises_internally(path, allow_bn_data=True))
