"""hyperswap_1a/1b/1c_256: FaceFusion's swappers (MODELS.md §17.1), routed by their exact signature.

Contract (FaceFusion `forward_swap_face`, labs export): inputs `source` [1,512] (the L2-normalised ArcFace
embedding, no emap) and `target` [1,3,256,256] (the arcface_128 crop at 256, RGB, `(x/255 - 0.5) / 0.5`);
outputs `output` [1,3,256,256] in [-1, 1], mapped back by `x*0.5 + 0.5`, and `mask` (its own blend mask, which
FaceFusion ignores and so do we: the generator has already blended with it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from faceswap.engines.neural.inswapper import SourceLatent
from faceswap.engines.neural.swappers import balance, embedding_of
from faceswap.faces.align import arcface_template
from faceswap.faces.types import Face, Frame
from faceswap.models.signature import Signature

MEAN, STD = 0.5, 0.5


class HyperSwapper:
    """The adapter for hyperswap files (role `swapper`): prepares a normalised identity, swaps one aligned crop."""

    def __init__(self, name: str, session: Any, signature: Signature, *,
                 embedder: Callable[[Frame, Face], Face] | None = None) -> None:
        self.name = name
        self.session = session
        image = signature.image_input()
        self.size = int(image.shape[2] or 256)
        self.template = arcface_template(self.size)
        self.output_name = signature.outputs[0].name
        self.embedder = embedder

    def prepare_source(self, image: Frame, face: Face) -> SourceLatent:
        embedding = embedding_of(image, face, self.embedder, self.name)
        latent = np.ascontiguousarray(embedding.reshape(1, -1), dtype=np.float32)
        return SourceLatent(latent=latent, embedding=embedding)

    weighted = True
    """`swapper_weight` is honoured: the identity is an embedding (MODELS.md §17.0)."""

    def balance(self, source: SourceLatent, frame: Frame, target: Face, weight: float) -> SourceLatent:
        """FaceFusion's balance of the prepared identity with the target face's unit embedding."""
        target_embedding = embedding_of(frame, target, self.embedder, self.name)
        return SourceLatent(latent=balance(source.latent, target_embedding, weight), embedding=source.embedding)

    def swap_crop(self, crop: Frame, source: SourceLatent) -> Frame:
        blob = cv2.dnn.blobFromImage(crop, 1.0 / (255.0 * STD), (self.size, self.size),
                                     (255.0 * MEAN,) * 3, swapRB=True)
        prediction = self.session.run([self.output_name], {"target": blob, "source": source.latent})[0]
        rgb = np.clip(np.asarray(prediction)[0].transpose(1, 2, 0) * STD + MEAN, 0.0, 1.0) * 255.0
        return np.ascontiguousarray(np.rint(rgb).astype(np.uint8)[:, :, ::-1])
