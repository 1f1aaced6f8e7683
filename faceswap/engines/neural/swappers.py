"""FaceFusion's other swappers (MODELS.md §17.1, §17.2): simswap, ghost and hififace (a 512-d identity made by a
CrossFace converter), blendswap and uniface (a crop of the source face as identity), and the converters.

Their files share two signatures (`embedding`, `image`), so the registry entry the user chose (`swapper_type`)
picks the template, the normalisation and the identity path here; the loader only checks that the file's
signature is that entry's family. All feeds are float32; output [0] is CHW, mapped back by `x*std + mean` for
the [-1, 1] types, clipped to [0, 1], RGB → BGR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceswap.errors import FaceSwapError
from faceswap.faces.align import warp_to_template
from faceswap.faces.types import Face, Frame, normalized
from faceswap.models.registry import ModelSpec
from faceswap.models.signature import Signature

TEMPLATES: dict[str, NDArray[np.float64]] = {
    "arcface_112_v1": np.array([[.35473214, .45658929], [.64526786, .45658929], [.50000000, .61154464],
                                [.37913393, .77687500], [.62086607, .77687500]]),
    "arcface_112_v2": np.array([[.34191607, .46157411], [.65653393, .45983393], [.50022500, .64050536],
                                [.37097589, .82469196], [.63151696, .82325089]]),
    "ffhq_512": np.array([[.37691676, .46864664], [.62285697, .46912813], [.50123859, .61331904],
                          [.39308822, .72541100], [.61150205, .72490465]]),
    "mtcnn_512": np.array([[.36562865, .46733799], [.63305391, .46585885], [.50019127, .61942959],
                           [.39032951, .77598822], [.61178945, .77476328]]),
}
"""FaceFusion's WARP_TEMPLATE_SET (normalised x, y; MODELS.md §17.0)."""

Norm = tuple[tuple[float, float, float], tuple[float, float, float]]
UNIT: Norm = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
SIGNED: Norm = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET: Norm = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

TARGET_NORM: dict[str, Norm] = {"simswap": IMAGENET, "ghost": SIGNED, "hififace": SIGNED, "blendswap": UNIT,
                                "uniface": SIGNED}
"""The target crop's `(x/255 - mean) / std` (RGB) per type; simswap_unofficial_512 is the one per-file exception."""
TARGET_NORM_BY_NAME: dict[str, Norm] = {"simswap_unofficial_512": UNIT}
DENORMALISED = frozenset({"ghost", "hififace", "hyperswap", "uniface"})
"""Types whose output is in [-1, 1] and mapped back by `x*0.5 + 0.5`; the others are [0, 1] already."""
WEIGHTED = frozenset({"inswapper", "hyperswap", "simswap", "ghost", "hififace"})
"""Types whose identity is an embedding, so `swapper_weight` can move it towards the target's (§17.0)."""
NORMED_CONVERSION = frozenset({"simswap", "hififace"})
"""Types that take the converter's output L2-normalised (ghost takes it as it comes)."""


def to_blob(crop: Frame, norm: Norm) -> NDArray[np.float32]:
    """BGR uint8 HWC → RGB float32 NCHW, `(x/255 - mean) / std`."""
    mean, std = (np.asarray(value, np.float32) for value in norm)
    rgb = crop[:, :, ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(((rgb - mean) / std).transpose(2, 0, 1)[None], dtype=np.float32)


def from_output(prediction: Any, denormalise: bool) -> Frame:
    """Output [0] (CHW RGB, [-1, 1] or [0, 1]) → BGR uint8 HWC."""
    rgb = np.asarray(prediction, dtype=np.float32)[0].transpose(1, 2, 0)
    if denormalise:
        rgb = rgb * 0.5 + 0.5
    return np.ascontiguousarray(np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)[:, :, ::-1])


def balance(latent: NDArray[np.float32], target: NDArray[np.floating], weight: float) -> NDArray[np.float32]:
    """FaceFusion's `balance_source_embedding`: w = interp(weight, [0,1], [.35,-.35]); src*(1-w) + target*w.

    `target` is the target face's unit ArcFace embedding (FaceFusion takes ghost's raw; ours are stored unit-length,
    so ghost's mix differs from FaceFusion's by the embedding's norm). 0.5 leaves the identity as it is.
    """
    w = float(np.interp(weight, [0.0, 1.0], [0.35, -0.35]))
    mixed = latent.reshape(1, -1) * (1.0 - w) + np.asarray(target, np.float32).reshape(1, -1) * w
    return np.ascontiguousarray(mixed, dtype=np.float32)


def embedding_of(image: Frame, face: Face, embedder: Callable[[Frame, Face], Face] | None, name: str
                 ) -> NDArray[np.float32]:
    if face.embedding is None:
        if embedder is None:
            raise FaceSwapError("internal_error", "the face has no embedding and no embedder was given")
        face = embedder(image, face)
    embedding = normalized(face.embedding)
    if embedding.shape[0] != 512:
        raise FaceSwapError("invalid_request", f"{name} needs a 512-d ArcFace embedding of the face, got "
                            f"{embedding.shape[0]}-d (faces found by the classic engine cannot feed it)")
    return embedding


@dataclass(frozen=True)
class SwapSource:
    """What a swapper needs from one source face: `latent` (an identity vector or a source-crop blob)."""

    latent: NDArray[np.float32]
    embedding: NDArray[np.float32] | None = None


class EmbeddingConverter:
    """crossface_* (role `converter`): w600k_r50 identity [1,512] → the swapper's identity [1,512] (§17.2)."""

    def __init__(self, name: str, session: Any, signature: Signature) -> None:
        self.name = name
        self.session = session
        self.input_name, self.output_name = signature.inputs[0].name, signature.outputs[0].name

    def convert(self, embedding: NDArray[np.floating]) -> NDArray[np.float32]:
        feed = np.ascontiguousarray(np.asarray(embedding, np.float32).reshape(-1, 512))
        return np.asarray(self.session.run([self.output_name], {self.input_name: feed})[0], np.float32).reshape(-1)


class _FaceFusionSwapper:
    def __init__(self, spec: ModelSpec, session: Any, signature: Signature, *,
                 embedder: Callable[[Frame, Face], Face] | None = None) -> None:
        self.name = spec.name
        self.kind = spec.swapper_type
        self.session = session
        target = next(t for t in signature.inputs if t.name == "target")
        self.size = int(target.shape[2] or spec.input_size)
        if self.size != spec.input_size:
            raise FaceSwapError("model_not_available", f"{spec.filename} swaps at {self.size} px, but {spec.name} "
                                f"is a {spec.input_size} px model; replace it with the right file.", field="swapper")
        self.template = TEMPLATES[spec.template] * self.size
        self.norm = TARGET_NORM_BY_NAME.get(spec.name, TARGET_NORM[self.kind])
        self.denormalise = self.kind in DENORMALISED
        self.output_name = signature.outputs[0].name
        self.embedder = embedder
        self.weighted = self.kind in WEIGHTED
        self.batches = bool(getattr(session, "batch_dynamic", False))
        """N faces in one call (free batch dimension); FaceFusion's files are batch 1: one call per face."""

    def swap_crop(self, crop: Frame, source: SwapSource) -> Frame:
        return self.swap_crops([crop], [source])[0]

    def swap_crops(self, crops: Sequence[Frame], sources: Sequence[SwapSource]) -> list[Frame]:
        if len(crops) > 1 and not self.batches:
            return [self.swap_crop(crop, source) for crop, source in zip(crops, sources, strict=True)]
        feed = {"target": np.concatenate([to_blob(crop, self.norm) for crop in crops]),
                "source": np.concatenate([source.latent for source in sources])}
        prediction = np.asarray(self.session.run([self.output_name], feed)[0], dtype=np.float32)
        return [from_output(prediction[index:index + 1], self.denormalise) for index in range(len(crops))]

    def balance(self, source: SwapSource, frame: Frame, target: Face, weight: float) -> SwapSource:
        """`source` moved towards (weight 1 → .35 of the way) or away from the target's identity."""
        mixed = balance(source.latent, embedding_of(frame, target, self.embedder, self.name), weight)
        return SwapSource(latent=mixed, embedding=source.embedding)


class EmbeddingSwapper(_FaceFusionSwapper):
    """simswap, ghost, hififace: identity = CrossFace(ArcFace embedding), L2-normalised for simswap/hififace.

    CrossFace normalises its input itself, so our unit embedding gives what FaceFusion's raw one gives."""

    def __init__(self, spec: ModelSpec, session: Any, signature: Signature, *, converter: EmbeddingConverter,
                 embedder: Callable[[Frame, Face], Face] | None = None) -> None:
        super().__init__(spec, session, signature, embedder=embedder)
        self.converter = converter

    def prepare_source(self, image: Frame, face: Face) -> SwapSource:
        embedding = embedding_of(image, face, self.embedder, self.name)
        converted = self.converter.convert(embedding)
        if self.kind in NORMED_CONVERSION:
            converted = normalized(converted)
        if not np.all(np.isfinite(converted)) or not np.any(converted):
            raise FaceSwapError("source_face_not_found", "the source face's identity vector is empty; use a "
                                "clearer photo")
        return SwapSource(latent=np.ascontiguousarray(converted.reshape(1, -1), np.float32), embedding=embedding)


class ImageSourceSwapper(_FaceFusionSwapper):
    """blendswap, uniface: identity = a crop of the source face (blendswap arcface_112_v2 @112, uniface ffhq_512
    @256), RGB in [0, 1] for both (uniface's target is [-1, 1], its source is not)."""

    def __init__(self, spec: ModelSpec, session: Any, signature: Signature, *,
                 embedder: Callable[[Frame, Face], Face] | None = None) -> None:
        super().__init__(spec, session, signature, embedder=embedder)
        self.source_size = int(signature.source_input().shape[2] or 0)
        expected = 112 if self.kind == "blendswap" else 256
        if self.source_size != expected:
            raise FaceSwapError("model_not_available", f"{spec.filename} takes a {self.source_size} px source face, "
                                f"but {spec.name} takes {expected} px; replace it with the right file.",
                                field="swapper")
        self.source_template = TEMPLATES["arcface_112_v2" if self.kind == "blendswap" else "ffhq_512"] * expected
        self.weighted = False

    def prepare_source(self, image: Frame, face: Face) -> SwapSource:
        crop, _ = warp_to_template(image, face.kps, self.source_template, self.source_size)
        return SwapSource(latent=to_blob(crop, UNIT))
