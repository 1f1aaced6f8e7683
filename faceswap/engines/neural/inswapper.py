"""inswapper_128: put a source identity onto a target face (MODELS.md §2).

The source latent is computed exactly as insightface computes it: the L2-normalised ArcFace embedding times the
`emap` matrix read from the file's last initializer, re-normalised, float32. The target face is aligned onto the
128 template (`arcface_dst + (8, 0)`), fed as RGB in [0, 1]; `swap_crop` is the swap stage alone, and a swap
session (`faceswap.swap`) does the aligning, masking and pasting around it. Input and output names are read from
the session; the image and latent inputs are told apart by shape, so files that name or order them differently
work too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.engines.neural.swappers import balance, embedding_of
from faceswap.errors import FaceSwapError
from faceswap.faces.align import arcface_template
from faceswap.faces.types import Face, Frame, normalized
from faceswap.models.signature import Signature
from faceswap.swap import stages

MASK_BLUR = 0.3


@dataclass(frozen=True)
class SourceLatent:
    """What the swapper needs from one source face: its latent, and the embedding it came from."""

    latent: NDArray[np.float32]
    """(1, 512) float32, unit length."""
    embedding: NDArray[np.float32]
    resident: Any = None
    """The latent made resident on the device once (an OrtValue, with IO binding), fed as it is; None: feed
    `latent`."""


def source_latent(embedding: NDArray[np.floating], emap: NDArray[np.float32]) -> NDArray[np.float32]:
    """insightface's `latent = normed_embedding @ emap; latent /= ||latent||` as a (1, 512) float32 array."""
    latent = normalized(embedding).reshape(1, -1) @ emap
    norm = float(np.linalg.norm(latent))
    if not np.isfinite(norm) or norm == 0:
        raise FaceSwapError("source_face_not_found", "the source face's identity vector is empty; use a clearer photo")
    return np.ascontiguousarray(latent / norm, dtype=np.float32)


class Inswapper:
    """The adapter for inswapper_128 files (role `swapper`): prepares a source latent, swaps one aligned crop."""

    name = "inswapper_128"

    def __init__(self, session: Any, signature: Signature, emap: NDArray[np.float32], *,
                 embedder: Callable[[Frame, Face], Face] | None = None, name: str = "inswapper_128") -> None:
        self.name = name
        self.session = session
        image, latent = signature.image_input(), signature.latent_input()
        self.image_name, self.latent_name = image.name, latent.name
        self.output_name = signature.outputs[0].name
        self.size = int(image.shape[2] or 128)
        self.template = arcface_template(self.size)
        self.emap = emap
        self.embedder = embedder
        self.mask = stages.box_mask(self.size, MASK_BLUR)
        self.batches = bool(getattr(session, "batch_dynamic", False))
        """N faces (or a boosted crop's phases) go through one call; False for fixed-batch files (the release
        file is [1,3,128,128]), which take one call per face."""

    def prepare_source(self, image: Frame, face: Face) -> SourceLatent:
        embedding = embedding_of(image, face, self.embedder, "inswapper")  # the emap is 512×512 (graph check)
        latent = source_latent(embedding, self.emap)
        make_resident = getattr(self.session, "resident", None)
        resident = make_resident(self.latent_name, latent) if getattr(self.session, "io_binding", False) else None
        return SourceLatent(latent=latent, embedding=embedding, resident=resident)

    weighted = True
    """`swapper_weight` is honoured: the identity is an embedding (MODELS.md §17.0)."""

    def balance(self, source: SourceLatent, frame: Frame, target: Face, weight: float) -> SourceLatent:
        """FaceFusion's balance of the prepared identity with the target face's unit embedding."""
        target_embedding = embedding_of(frame, target, self.embedder, self.name)
        return SourceLatent(latent=balance(source.latent, target_embedding, weight), embedding=source.embedding)

    def swap_crop(self, crop: Frame, source: SourceLatent) -> Frame:
        """The swap stage alone: the model's output for an aligned BGR uint8 crop of `self.size`, as BGR uint8."""
        return self.swap_crops([crop], [source])[0]

    def swap_crops(self, crops: Sequence[Frame], sources: Sequence[SourceLatent]) -> list[Frame]:
        """Several crops, each with its source: one model call when the file's batch is free, else one each."""
        if len(crops) > 1 and not self.batches:
            return [self.swap_crop(crop, source) for crop, source in zip(crops, sources, strict=True)]
        blob = cv2.dnn.blobFromImages(list(crops), 1.0 / 255.0, (self.size, self.size), (0.0, 0.0, 0.0),
                                      swapRB=True)
        if len(sources) == 1:
            latent = sources[0].latent if sources[0].resident is None else sources[0].resident
        else:
            latent = np.concatenate([source.latent for source in sources])
        prediction = self.session.run([self.output_name], {self.image_name: blob, self.latent_name: latent})[0]
        rgb = np.clip(np.asarray(prediction, dtype=np.float32).transpose(0, 2, 3, 1) * 255.0, 0, 255)
        return [np.ascontiguousarray(face[:, :, ::-1]) for face in np.rint(rgb).astype(np.uint8)]

    def swapped_crop(self, frame: Frame, target: Face, source: SourceLatent) -> tuple[Frame, NDArray[np.float64]]:
        """The model's output for `target` as a BGR uint8 crop, and the frame→crop matrix."""
        crop, matrix = stages.align(frame, target.kps, self.template, self.size)
        return self.swap_crop(crop, source), matrix

    def swap(self, frame: Frame, target: Face, source: SourceLatent) -> Frame:
        """One face through the crop stages at the native size with the box mask (what a swap session does)."""
        return stages.swap_face(frame, target.kps, partial(self.swap_crop, source=source), template=self.template,
                                size=self.size, mask=self.mask)
