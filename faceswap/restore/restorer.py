"""Face restoration with GFPGAN 1.4, CodeFormer, GPEN-BFR or RestoreFormer++ ONNX files (MODELS.md §8–§10, §17.5).

The face is aligned onto the restorer's template (FFHQ-512 scaled to its size; GPEN-BFR-256: arcface_128 at 256)
from its five key points (edges replicated, so frame borders do
not paint black into the face), fed as RGB in [-1, 1], the output clipped to [-1, 1] and mapped back to pixels,
then pasted into the face's region only, through a feathered box mask scaled by `visibility` (0.1 shows mostly the
unrestored face, 1 the fully restored one). It only needs `face.kps`, so it works after either engine.

CodeFormer's fidelity weight is fed as a rank-1 float64 array of length 1 to the input named `weight`
(FaceFusion's export) or `w` (harisreedhar's / Rope's), found by name; its dtype follows the file.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.faces.align import FFHQ_512, arcface_template, scaled_template, warp_to_template
from faceswap.faces.paste import feathered_box_mask, paste_back
from faceswap.faces.types import Face, Frame
from faceswap.models.signature import Signature

MASK_BLUR = 0.3


def restorer_template(template: str, size: int) -> NDArray[np.float64]:
    """The five-point template of a restorer at its crop size: `ffhq_512` scaled, or `arcface_128` (GPEN-BFR-256,
    insightface's rule for multiples of 128, equal to FaceFusion's arcface_128)."""
    if template == "ffhq_512":
        return scaled_template(FFHQ_512, 512, size)
    if template == "arcface_128":
        return arcface_template(size)
    raise ValueError(f"no restorer template {template!r}")


class OnnxRestorer:
    def __init__(self, name: str, session: Any, signature: Signature, *, template: str = "ffhq_512") -> None:
        self.name = name
        self.session = session
        image = signature.image_input()
        self.image_name = image.name
        self.size = int(image.shape[2] or 512)
        self.output_name = signature.outputs[0].name
        weight = signature.weight_input()
        self.weight_name = weight.name if weight is not None else None
        self.weight_dtype = np.float32 if weight is not None and weight.dtype == "float32" else np.float64
        self.weight_rank = weight.rank if weight is not None else 1
        self.template = restorer_template(template, self.size)
        self.mask = feathered_box_mask(self.size, blur=MASK_BLUR)

    def restored_crop(self, frame: Frame, face: Face, *, codeformer_weight: float) -> tuple[Frame, np.ndarray]:
        """The restored face as a BGR uint8 crop on the FFHQ template, and the frame→crop matrix."""
        crop, matrix = warp_to_template(frame, face.kps, self.template, self.size, border=cv2.BORDER_REPLICATE)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 127.5, (self.size, self.size), (127.5, 127.5, 127.5), swapRB=True)
        feeds: dict[str, np.ndarray] = {self.image_name: blob}
        if self.weight_name is not None:
            weight = np.array([codeformer_weight], dtype=self.weight_dtype)
            feeds[self.weight_name] = weight if self.weight_rank == 1 else weight.reshape(())
        prediction = np.asarray(self.session.run([self.output_name], feeds)[0])[0]
        rgb = (np.clip(prediction, -1.0, 1.0).transpose(1, 2, 0) + 1.0) * 127.5
        return np.ascontiguousarray(np.rint(rgb).astype(np.uint8)[:, :, ::-1]), matrix

    def restore(self, frame: Frame, face: Face, *, visibility: float, codeformer_weight: float) -> Frame:
        restored, matrix = self.restored_crop(frame, face, codeformer_weight=codeformer_weight)
        return paste_back(frame, restored, matrix, self.mask, opacity=float(np.clip(visibility, 0.0, 1.0)))
