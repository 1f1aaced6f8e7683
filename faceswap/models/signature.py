"""Tell model files apart by their exact ONNX signature (STYLE habit 1), never by file name or loose rules.

insightface's router sends any square single-input model to ArcFace, so a GFPGAN file in the wrong place becomes a
"recognizer". Here each kind has a full signature (input and output counts, ranks, fixed sizes, dtypes); a file
that matches none, or another kind than the one its slot needs, is refused with a catalog error that says what
the file looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from faceswap.errors import FaceSwapError

SwapperFamily = Literal["inswapper", "hyperswap", "embedding", "image"]
SignatureKind = Literal["detector", "recognizer", "genderage", "swapper", "restorer", "weighted_restorer", "occluder",
                        "parser", "converter", "landmarker"]

KIND_LABELS: dict[str, str] = {
    "detector": "an SCRFD face detector with key points (det_10g)",
    "recognizer": "an ArcFace face recognizer (w600k_r50)",
    "genderage": "a gender/age model (genderage)",
    "swapper": "a face swapper (an aligned face and a 512-d identity in, the swapped face out)",
    "restorer": "a single-input face restorer (GFPGAN, GPEN-BFR, RestoreFormer++)",
    "weighted_restorer": "a face restorer with a fidelity weight (CodeFormer)",
    "occluder": "an XSeg occluder (NHWC [1,256,256,3] in, a [1,256,256,1] mask out)",
    "parser": "a BiSeNet face parser ([1,3,512,512] in, [1,19,512,512] class logits out)",
    "landmarker": "a 68-point 3-D landmark model (1k3d68: [1,3,192,192] in, [1,3309] out)",
    "converter": "an embedding converter (`input` [1,512] in, `output` [1,512] out, crossface_*)",
}

WEIGHT_INPUT_NAMES = ("weight", "w")
LANDMARK_3D_68_WIDTH = 3309
_ONNX_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
               "tensor(uint8)": "uint8", "tensor(int64)": "int64", "tensor(int32)": "int32"}
_DETECTOR_WIDTHS = (1, 4, 10)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]
    """Fixed sizes as ints; symbolic or unknown axes as None."""
    dtype: str

    @classmethod
    def from_node_arg(cls, arg: Any) -> TensorInfo:
        shape = tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in (arg.shape or ()))
        return cls(arg.name, shape, _ONNX_TYPES.get(arg.type, arg.type))

    @property
    def rank(self) -> int:
        return len(self.shape)

    def describe(self) -> str:
        dims = ",".join("?" if dim is None else str(dim) for dim in self.shape)
        return f"{self.name} [{dims}] {self.dtype}"

    def is_image(self, size: int | None = None, *, square: bool = True) -> bool:
        """NCHW with 3 channels (or unknown), float; `size` pins H and W."""
        if self.rank != 4 or self.shape[1] not in (3, None) or not self.dtype.startswith("float"):
            return False
        height, width = self.shape[2], self.shape[3]
        if size is not None:
            return height == size and width == size
        return not square or (height is not None and height == width)


def _fits(value: int | None, expected: int) -> bool:
    return value is None or value == expected


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @classmethod
    def from_session(cls, session: Any) -> Signature:
        return cls(tuple(TensorInfo.from_node_arg(a) for a in session.get_inputs()),
                   tuple(TensorInfo.from_node_arg(a) for a in session.get_outputs()))

    def describe(self) -> str:
        ins = "; ".join(t.describe() for t in self.inputs)
        outs = "; ".join(t.describe() for t in self.outputs[:4]) + (" …" if len(self.outputs) > 4 else "")
        return f"{len(self.inputs)} input(s) {ins} → {len(self.outputs)} output(s) {outs}"

    # -- classification ---------------------------------------------------------------------------------------
    def kind(self) -> SignatureKind | None:
        for kind, test in (("detector", self._is_detector), ("swapper", self._is_swapper),
                           ("occluder", self._is_occluder), ("parser", self._is_parser),
                           ("genderage", self._is_genderage), ("landmarker", self._is_landmarker),
                           ("recognizer", self._is_recognizer),
                           ("converter", self._is_converter),
                           ("weighted_restorer", self._is_weighted_restorer), ("restorer", self._is_restorer)):
            if test():
                return kind  # type: ignore[return-value]
        return None

    def _is_detector(self) -> bool:
        if len(self.inputs) != 1 or len(self.outputs) not in (6, 9, 10, 15):
            return False
        image = self.inputs[0]
        if not image.is_image(square=False):
            return False
        fmc = 3 if len(self.outputs) in (6, 9) else 5
        for index, output in enumerate(self.outputs):
            if output.rank not in (2, 3) or not _fits(output.shape[-1], _DETECTOR_WIDTHS[index // fmc]):
                return False
        return True

    def _is_recognizer(self) -> bool:
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return False
        image, out = self.inputs[0], self.outputs[0]
        size = image.shape[2] if image.rank == 4 else None
        return (image.is_image() and size is not None and size >= 112 and size % 16 == 0 and size <= 256
                and out.rank == 2 and out.shape[1] is not None and out.shape[1] >= 64)

    def _is_genderage(self) -> bool:
        return (len(self.inputs) == 1 and len(self.outputs) == 1 and self.inputs[0].is_image(96)
                and self.outputs[0].rank == 2 and self.outputs[0].shape[1] == 3)

    def _is_landmarker(self) -> bool:
        """1k3d68: one 192x192 image in, one [batch, 3309] out (1103 (x, y, z) triples; the last 68 are iBUG's)."""
        return (len(self.inputs) == 1 and len(self.outputs) == 1 and self.inputs[0].is_image(192)
                and self.outputs[0].rank == 2 and self.outputs[0].shape[1] == LANDMARK_3D_68_WIDTH)

    def _is_swapper(self) -> bool:
        return self.swapper_family() is not None

    def swapper_family(self) -> SwapperFamily | None:
        """Which swapper family the file's exact signature belongs to (MODELS.md §2.2, §17.1), or None.

        inswapper: a 128 image and a [1,512] latent in, one 128 image out. hyperswap: a 256 image and a [1,512]
        identity named `target` and `source`, two outputs, the image and its 1-channel `mask`. Other 256/512
        embedding swappers (simswap, ghost, hififace) share one signature (`embedding`) and blendswap/uniface
        another (`image`: a source face crop in place of the identity); the signature cannot tell those families
        apart, so the registry entry the user chose names the family and the file is only checked against it.
        """
        if len(self.inputs) != 2:
            return None
        image_family = self._image_source_family()
        if image_family is not None:
            return image_family
        latents = [t for t in self.inputs if t.rank == 2 and t.shape[1] == 512 and t.dtype.startswith("float")]
        images = [t for t in self.inputs if t.rank == 4 and t.is_image()]
        if len(latents) != 1 or len(images) != 1:
            return None
        size = images[0].shape[2]
        if len(self.outputs) == 1 and size == 128 and self.outputs[0].is_image(128):
            return "inswapper"
        names = {t.name for t in self.inputs}
        if names != {"source", "target"} or images[0].name != "target" or not self.outputs[0].is_image(size):
            return None
        if (len(self.outputs) == 2 and size == 256 and self.outputs[1].name == "mask" and self.outputs[1].rank == 4
                and self.outputs[1].shape[1] in (1, None)):
            return "hyperswap"
        if len(self.outputs) == 1 and size in (256, 512):
            return "embedding"
        return None

    def _image_source_family(self) -> SwapperFamily | None:
        """blendswap/uniface: `source` and `target` both images (the source face crop, 112 or 256), one 256 out."""
        if len(self.inputs) != 2 or len(self.outputs) != 1 or {t.name for t in self.inputs} != {"source", "target"}:
            return None
        source = next(t for t in self.inputs if t.name == "source")
        target = next(t for t in self.inputs if t.name == "target")
        if (source.rank == 4 and source.is_image() and source.shape[2] in (112, 256) and target.rank == 4
                and target.is_image(256) and self.outputs[0].is_image(256)):
            return "image"
        return None

    def source_input(self) -> TensorInfo:
        return next(t for t in self.inputs if t.name == "source")

    def _is_converter(self) -> bool:
        """crossface_*: one [1,512] float vector in, one [1,512] out (MODELS.md §17.2)."""
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            return False
        vector, out = self.inputs[0], self.outputs[0]
        return (vector.rank == 2 and vector.shape[1] == 512 and vector.dtype.startswith("float") and out.rank == 2
                and out.shape[1] == 512)

    def _is_occluder(self) -> bool:
        """XSeg: one NHWC float image [1,S,S,3] in, first output [1,S,S,1] (MODELS.md §17.4)."""
        if len(self.inputs) != 1 or not self.outputs:
            return False
        image, out = self.inputs[0], self.outputs[0]
        size = image.shape[1] if image.rank == 4 else None
        return (image.rank == 4 and image.dtype.startswith("float") and size is not None and image.shape[2] == size
                and image.shape[3] == 3 and out.rank == 4 and out.shape[1:] == (size, size, 1))

    def _is_parser(self) -> bool:
        """BiSeNet: one NCHW image [1,3,S,S] in, first output [1,19,S,S] logits (up to two auxiliary heads)."""
        if len(self.inputs) != 1 or not 1 <= len(self.outputs) <= 3 or not self.inputs[0].is_image():
            return False
        size = self.inputs[0].shape[2]
        return self.outputs[0].rank == 4 and self.outputs[0].shape[1:] == (19, size, size)

    def _restorer_image(self) -> TensorInfo | None:
        images = [t for t in self.inputs if t.rank == 4]
        if len(images) != 1 or not images[0].is_image() or (images[0].shape[2] or 0) < 256:
            return None
        size = images[0].shape[2]
        return images[0] if self.outputs and self.outputs[0].is_image(size) else None

    def weight_input(self) -> TensorInfo | None:
        for tensor in self.inputs:
            if tensor.name in WEIGHT_INPUT_NAMES and tensor.rank <= 1 and tensor.dtype.startswith("float"):
                return tensor
        return None

    def _is_restorer(self) -> bool:
        return len(self.inputs) == 1 and self._restorer_image() is not None

    def _is_weighted_restorer(self) -> bool:
        return len(self.inputs) == 2 and self._restorer_image() is not None and self.weight_input() is not None

    # -- lookups used by the wrappers --------------------------------------------------------------------------
    def image_input(self) -> TensorInfo:
        return next(t for t in self.inputs if t.rank == 4)

    def latent_input(self) -> TensorInfo:
        return next(t for t in self.inputs if t.rank == 2)


def require_kind(session: Any, path: Path | str, expected: SignatureKind | Sequence[SignatureKind],
                 role: str) -> Signature:
    """The file's signature, or `model_not_available` saying what the file is and what the slot needs."""
    wanted = (expected,) if isinstance(expected, str) else tuple(expected)
    signature = Signature.from_session(session)
    found = signature.kind()
    if found in wanted:
        return signature
    name = Path(path).name
    what = f"it looks like {KIND_LABELS[found]}" if found else "its inputs and outputs match no model faceswap knows"
    raise FaceSwapError(
        "model_not_available",
        f"{name} cannot be used as the {role}: {what} ({signature.describe()}), but the {role} must be "
        f"{KIND_LABELS[wanted[0]]}. Replace {Path(path)} with the right file (`python -m faceswap models download`).")
