"""Gender and age (buffalo_l genderage), as insightface's attribute model computes them (MODELS.md §5).

The crop is centred on the face box, the box's longer side scaled to 96/1.5 pixels, no rotation; pixels are RGB,
fed raw when the graph normalises itself (the real file does) else `(x - 127.5) / 128`. The output is
`[female score, male score, age / 100]`; argmax 1 means male.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from faceswap.faces.align import warp_bbox_centered
from faceswap.faces.types import Face, Frame
from faceswap.models.signature import Signature

CONTEXT = 1.5


class GenderAgeClassifier:
    def __init__(self, session: Any, signature: Signature, *, raw_pixels: bool) -> None:
        self.session = session
        image = signature.inputs[0]
        self.input_name = image.name
        self.output_name = signature.outputs[0].name
        self.size = int(image.shape[2] or 96)
        self.mean, self.std = (0.0, 1.0) if raw_pixels else (127.5, 128.0)

    def classify(self, frame: Frame, face: Face) -> Face:
        crop, _ = warp_bbox_centered(frame, face.bbox, self.size, context=CONTEXT)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / self.std, (self.size, self.size), (self.mean,) * 3, swapRB=True)
        prediction = np.asarray(self.session.run([self.output_name], {self.input_name: blob})[0]).reshape(-1)
        gender = "male" if int(np.argmax(prediction[:2])) == 1 else "female"
        age = int(np.round(float(prediction[2]) * 100))
        return face.replace(gender=gender, age=max(age, 0))
