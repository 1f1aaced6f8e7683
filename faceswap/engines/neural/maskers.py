"""Occluder and parser adapters (roles `occluder`, `parser`; MODELS.md §11, §17.4), routed by exact signature.

- xseg_1/2/3 (occluder): the crop resized to 256, BGR, `/255`, NHWC `input` [1,256,256,3] → [1,256,256,1], 1 where
  the face shows (0 on hands, hair, microphones in front of it).
- bisenet_resnet_18/34 (parser): the crop resized to 512, RGB, `/255`, ImageNet mean/std, NCHW `input`
  [1,3,512,512] → first output [1,19,512,512] logits; the arg-max is the per-pixel class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.faces.paste import Mask
from faceswap.faces.types import Frame
from faceswap.models.signature import Signature, require_kind
from faceswap.swap.masks import smooth_model_mask

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class XsegOccluder:
    """What of the face is not hidden by something in front of it, as a crop-sized mask."""

    def __init__(self, name: str, session: Any, signature: Signature) -> None:
        self.name = name
        self.session = session
        self.input_name = signature.inputs[0].name
        self.size = int(signature.inputs[0].shape[1] or 256)

    def mask(self, crop: Frame) -> Mask:
        blob = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)[None].astype(np.float32) / 255
        keep = np.asarray(self.session.run(None, {self.input_name: blob})[0])[0]
        return smooth_model_mask(keep.reshape(self.size, self.size), crop.shape[0])


class BisenetParser:
    """The face-parsing class of every pixel of a crop (BiSeNet's 19 classes)."""

    def __init__(self, name: str, session: Any, signature: Signature) -> None:
        self.name = name
        self.session = session
        self.input_name = signature.inputs[0].name
        self.size = int(signature.inputs[0].shape[2] or 512)

    def labels(self, crop: Frame) -> NDArray[np.int64]:
        rgb = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        normalised = (rgb.astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
        blob = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)
        logits = np.asarray(self.session.run(None, {self.input_name: blob})[0])[0]
        return logits.argmax(axis=0)


def load_masker(name: str, role: str, path: Path, session: Any) -> XsegOccluder | BisenetParser:
    """The adapter for occluder or parser `name`, after checking that the file's exact signature is that role's."""
    if role == "occluder":
        return XsegOccluder(name, session, require_kind(session, path, "occluder", f"occluder {name}"))
    return BisenetParser(name, session, require_kind(session, path, "parser", f"face parser {name}"))
