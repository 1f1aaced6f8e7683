"""ArcFace identity embeddings (w600k_r50), computed as insightface computes them (MODELS.md §4).

The face is aligned onto the 112 ArcFace template from its five key points, fed as RGB with insightface's
mean/std rule (127.5/127.5, or raw pixels when the graph normalises itself), and the output is L2-normalised.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from faceswap.faces.align import arcface_template, warp_to_template
from faceswap.faces.types import Face, Frame, normalized
from faceswap.models.signature import Signature


class ArcFaceEmbedder:
    def __init__(self, session: Any, signature: Signature, *, raw_pixels: bool) -> None:
        self.session = session
        image = signature.inputs[0]
        self.input_name = image.name
        self.output_name = signature.outputs[0].name
        self.size = int(image.shape[2] or 112)
        self.template = arcface_template(self.size)
        self.mean, self.std = (0.0, 1.0) if raw_pixels else (127.5, 127.5)
        self.dimensions = int(signature.outputs[0].shape[1] or 512)

    def crop(self, frame: Frame, face: Face) -> Frame:
        crop, _ = warp_to_template(frame, face.kps, self.template, self.size)
        return crop

    def embed(self, frame: Frame, face: Face) -> Face:
        crop = self.crop(frame, face)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / self.std, (self.size, self.size), (self.mean,) * 3, swapRB=True)
        output = self.session.run([self.output_name], {self.input_name: blob})[0]
        return face.replace(embedding=normalized(np.asarray(output).reshape(-1)))
