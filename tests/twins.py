"""Twins: tiny ONNX models with exactly the interface of the real weights (MODELS.md §13), built in tests.

They prove loading, routing, pre/post-processing and data flow, not quality. Each behaves usefully:

- **detector** (det_10g): really responds to faces. It knows a set of real faces (the photos media_factory uses)
  and finds them by normalised cross-correlation with a template of each face at the face sizes it is built for
  (canvas pixels after the 640 letterbox; ±8 % works), anywhere in the picture. Boxes and five key points come
  from the matched face (measured once with dlib's 68-point model), so alignment downstream is realistic.
- **recognizer** (w600k_r50): a random projection of the aligned 112 crop minus a mean face; one person scores
  ≥ 0.9 with themselves across frames, different people ≤ 0.3.
- **genderage**: male when the crop's mean brightness is above `male_above` (you choose where to split).
- **swapper** (inswapper_128): a flat colour computed from the latent (`InswapperTwin.colour`), optionally mixed
  with the target crop; the emap `buff2fs` is the last initializer and no node uses it.
- **gfpgan**: the inverted image (`-x`); **codeformer**: a flat grey of level `weight` (so the weight shows).

`variant="alt"` builds an independent set that differs in everything MODELS.md allows: other tensor names,
rank-3 detector outputs, a static 640x640 detector input, a static batch, internal normalisation by `bn_data` /
Sub+Mul nodes, the swapper's inputs in the other order with extra initializers before the emap (named `emap`),
CodeFormer's `x`/`w`/`y` with `w` first, and a GFPGAN with two outputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import media_factory as mf
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from faceswap.config import Settings
from faceswap.models.registry import REGISTRY, ModelSpec
from faceswap.models.store import ModelStore
from faceswap.runtime import Runtime

Variant = Literal["real", "alt"]
OPSET = 13
MARGIN = 1.2
"""Template window = the face box's longer side times this."""
NCC_AT_HALF_SCORE = 0.8
"""Normalised cross-correlation at which the detector's score is 0.5 (true faces score 0.9+, others < 0.72)."""


# ------------------------------------------------------------------------------------------------ known faces
@dataclass(frozen=True)
class KnownFace:
    """A real face the detector twin can find: its photo, box (x1, y1, x2, y2) and five key points."""

    name: str
    photo: np.ndarray
    box: tuple[float, float, float, float]
    kps: np.ndarray

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


# Key points measured once with dlib's 68-point predictor (eye centres, nose tip 30, mouth corners 48/54) on the
# boxes dlib's HOG detector gives (media_factory.T1_FACE_BOXES, left to right).
_T1_KPS = [
    [[87.7, 330.2], [128.8, 310.5], [118.0, 337.0], [114.0, 372.0], [148.0, 352.0]],
    [[291.8, 212.3], [320.5, 194.3], [302.0, 229.0], [313.0, 249.0], [338.0, 234.0]],
    [[491.7, 320.3], [540.5, 333.7], [509.0, 366.0], [481.0, 369.0], [531.0, 380.0]],
    [[761.8, 398.7], [800.5, 403.8], [771.0, 431.0], [764.0, 436.0], [807.0, 442.0]],
    [[916.8, 117.8], [950.3, 114.7], [923.0, 148.0], [929.0, 176.0], [959.0, 169.0]],
    [[1149.3, 327.7], [1192.0, 324.8], [1164.0, 348.0], [1153.0, 367.0], [1196.0, 364.0]],
]
HANKS_BOX, HANKS_KPS = (6, 26, 96, 116), [[36.0, 51.7], [72.2, 50.0], [63.0, 78.0], [37.0, 92.0], [66.0, 91.0]]
ASTRONAUT_BOX = (86, 56, 175, 146)
ASTRONAUT_KPS = [[113.3, 81.5], [156.5, 83.7], [135.0, 107.0], [111.0, 119.0], [155.0, 121.0]]


def known_faces() -> list[KnownFace]:
    """t1's six people (left to right), Tom Hanks, and the astronaut (in `astronaut_face_photo`)."""
    t1 = mf.t1_photo()
    faces = [KnownFace(f"t1_{i}", t1, tuple(map(float, box)), np.array(kps, np.float32))
             for i, (box, kps) in enumerate(zip(mf.T1_FACE_BOXES, _T1_KPS, strict=True))]
    faces.append(KnownFace("hanks", mf.hanks_photo(), tuple(map(float, HANKS_BOX)), np.array(HANKS_KPS, np.float32)))
    faces.append(KnownFace("astronaut", mf.astronaut_face_photo(), tuple(map(float, ASTRONAUT_BOX)),
                           np.array(ASTRONAUT_KPS, np.float32)))
    return faces


def canvas_scale(frame_shape: Sequence[int], canvas: int = 640) -> float:
    """How SCRFD's letterbox scales a frame of this (height, width) into a square canvas."""
    height, width = frame_shape[:2]
    return canvas / height if height / width > 1 else canvas / width


def clip_face_size(patch_size: int = 180, frame_shape: Sequence[int] = (360, 640)) -> float:
    """Canvas size of a face in a media_factory clip made from `face_patch(..., patch_size)` (margin 2)."""
    return patch_size / 2 * canvas_scale(frame_shape)


def photo_face_size(face: KnownFace) -> float:
    """Canvas size of a known face when its own photo is fed to the detector."""
    return face.size * canvas_scale(face.photo.shape)


def default_face_sizes() -> tuple[float, ...]:
    """Faces in 640x360 clips of 180-pixel patches, and the Hanks and astronaut photos as source photos."""
    faces = {face.name: face for face in known_faces()}
    return (clip_face_size(), photo_face_size(faces["astronaut"]), photo_face_size(faces["hanks"]))


# ------------------------------------------------------------------------------------------------ graph helpers
class GraphBuilder:
    """A few conveniences over onnx.helper: constants become initializers, nodes get readable names."""

    def __init__(self, prefix: str = "n") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.prefix = prefix
        self._count = 0

    def const(self, value: np.ndarray | float, name: str | None = None, dtype: type = np.float32) -> str:
        self._count += 1
        name = name or f"c{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], *, name: str | None = None, output: str | None = None,
           **attrs: object) -> str:
        self._count += 1
        node_name = name or f"{self.prefix}{self._count}_{op_type.lower()}"
        out = output or f"t{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=node_name, **attrs))
        return out

    def save(self, path: Path, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
             extra_initializers: Sequence[onnx.TensorProto] = ()) -> Path:
        graph = helper.make_graph(self.nodes, path.stem, inputs, outputs,
                                  initializer=[*self.initializers, *extra_initializers])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="faceswap-twin")
        model.ir_version = 8
        onnx.checker.check_model(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
        return path


def tensor(name: str, dims: Sequence[int | str | None], dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(dims))


# ------------------------------------------------------------------------------------------------ detector
DET_NAMES_REAL = ["448", "471", "494", "451", "474", "497", "454", "477", "500"]
DET_NAMES_ALT = [f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in (8, 16, 32)]
STRIDES = (8, 16, 32)


def _gray(photo: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _face_template(face: KnownFace, kernel: int) -> np.ndarray:
    """The face's window (box centre, longer side × MARGIN) as a zero-mean, unit-norm kernel×kernel template."""
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = kernel / (face.size * MARGIN)
    matrix = np.array([[scale, 0, kernel / 2 - cx * scale], [0, scale, kernel / 2 - cy * scale]])
    patch = cv2.warpAffine(_gray(face.photo), matrix, (kernel, kernel), flags=cv2.INTER_AREA,
                           borderMode=cv2.BORDER_REPLICATE)
    patch -= patch.mean()
    return patch / max(float(np.linalg.norm(patch)), 1e-6)


def _level_for(size: float) -> tuple[int, int]:
    """(stride, odd kernel size) that fit a face of `size` canvas pixels: the first stride whose kernel ≤ 41."""
    for stride in STRIDES:
        kernel = round(size * MARGIN / (stride // 2))
        if kernel <= 41 or stride == STRIDES[-1]:
            return stride, kernel | 1
    raise AssertionError("unreachable")


def _face_geometry(face: KnownFace, size: float, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Box distances (l, t, r, b) and key-point offsets (10) in stride units from a cell's anchor, for this face
    scaled to `size` and centred on the cell's first sub-cell (the graph adds the matched sub-cell's offset)."""
    x1, y1, x2, y2 = face.box
    scale = size / face.size
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    shift = (stride // 2 - 1) / 2  # centre of the first average-pooled pixel of the cell
    half_w, half_h = (x2 - x1) / 2 * scale, (y2 - y1) / 2 * scale
    box = np.array([half_w - shift, half_h - shift, half_w + shift, half_h + shift]) / stride
    kps = ((face.kps - centre) * scale + shift).reshape(-1) / stride
    return box, kps


def build_detector(path: Path, *, variant: Variant = "real", face_sizes: Sequence[float] | None = None,
                   faces: Sequence[KnownFace] | None = None) -> Path:
    """det_10g twin: finds `faces` (default: all known faces) at `face_sizes` (canvas pixels)."""
    faces = list(faces) if faces is not None else known_faces()
    sizes = list(face_sizes) if face_sizes is not None else list(default_face_sizes())
    g = GraphBuilder("det")
    image = "input.1" if variant == "real" else "images"
    gray = g.op("ReduceMean", [image], axes=[1], keepdims=1)
    outputs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for stride in STRIDES:
        pool = stride // 2
        pooled = g.op("AveragePool", [gray], kernel_shape=[pool, pool], strides=[pool, pool])
        squared = g.op("Mul", [pooled, pooled])
        by_kernel: dict[int, list[tuple[KnownFace, float]]] = {}
        for size in sizes:
            level, kernel = _level_for(size)
            if level == stride:
                by_kernel.setdefault(kernel, []).extend((face, size) for face in faces)
        nccs, boxes, kpss = [], [], []
        for kernel, entries in by_kernel.items():
            pads = [kernel // 2] * 4
            templates = np.stack([_face_template(face, kernel) for face, _ in entries])[:, None]
            ones = np.ones((1, 1, kernel, kernel), np.float32)
            numerator = g.op("Conv", [pooled, g.const(templates)], pads=pads)
            total = g.op("Conv", [pooled, g.const(ones)], pads=pads)
            total_sq = g.op("Conv", [squared, g.const(ones)], pads=pads)
            spread = g.op("Sub", [total_sq, g.op("Div", [g.op("Mul", [total, total]), g.const(kernel * kernel)])])
            spread = g.op("Sqrt", [g.op("Add", [g.op("Relu", [spread]), g.const(1e-2)])])
            nccs.append(g.op("Div", [numerator, spread]))
            for face, size in entries:
                box, kps = _face_geometry(face, size, stride)
                boxes.append(box)
                kpss.append(kps)
        if nccs:
            ncc = nccs[0] if len(nccs) == 1 else g.op("Concat", nccs, axis=1)
            # Which of the cell's 2x2 sub-cells matched best: its score, and its offset (soft arg-max).
            sub_cells = g.op("SpaceToDepth", [g.op("ReduceMax", [ncc], axes=[1], keepdims=1)], blocksize=2)
            best = g.op("ReduceMax", [sub_cells], axes=[1], keepdims=1)
            score = g.op("Sigmoid", [g.op("Mul", [g.op("Sub", [best, g.const(NCC_AT_HALF_SCORE)]), g.const(25.0)])])
            where = g.op("Softmax", [g.op("Mul", [sub_cells, g.const(60.0)])], axis=1)
            step = pool / stride
            to_offset = np.array([[0, step, 0, step], [0, 0, step, step]], np.float32)[:, :, None, None]
            offset = g.op("Conv", [where, g.const(to_offset)])  # (dx, dy) in stride units
            # Which known face (and size) matched: its box and key points.
            weights = g.op("Softmax", [g.op("Mul", [g.op("MaxPool", [ncc], kernel_shape=[2, 2], strides=[2, 2]),
                                                    g.const(60.0)])], axis=1)
            box = g.op("Conv", [weights, g.const(np.array(boxes, np.float32).T[:, :, None, None])])
            box_shift = np.array([[-1, 0], [0, -1], [1, 0], [0, 1]], np.float32)[:, :, None, None]
            box = g.op("Add", [box, g.op("Conv", [offset, g.const(box_shift)])])
            kps = g.op("Conv", [weights, g.const(np.array(kpss, np.float32).T[:, :, None, None])])
            kps_shift = np.tile(np.eye(2, dtype=np.float32), (5, 1))[:, :, None, None]
            kps = g.op("Add", [kps, g.op("Conv", [offset, g.const(kps_shift)])])
        else:  # no face size at this stride: nothing to find, but the outputs keep their shapes
            blank = g.op("Mul", [g.op("MaxPool", [pooled], kernel_shape=[2, 2], strides=[2, 2]), g.const(0.0)])
            score = blank
            box = g.op("Tile", [blank, g.const(np.array([1, 4, 1, 1]), dtype=np.int64)])
            kps = g.op("Tile", [blank, g.const(np.array([1, 10, 1, 1]), dtype=np.int64)])
        for kind, value, width in (("score", score, 1), ("bbox", box, 4), ("kps", kps, 10)):
            cells = g.op("Reshape", [g.op("Transpose", [value], perm=[0, 2, 3, 1]),
                                     g.const(np.array([-1, 1, width]), dtype=np.int64)])
            anchors = g.op("Tile", [cells, g.const(np.array([1, 2, 1]), dtype=np.int64)])
            shape = [-1, width] if variant == "real" else [1, -1, width]
            outputs[kind].append(g.op("Reshape", [anchors, g.const(np.array(shape), dtype=np.int64)]))
    names = DET_NAMES_REAL if variant == "real" else DET_NAMES_ALT
    ordered = [*outputs["score"], *outputs["bbox"], *outputs["kps"]]
    for produced, name in zip(ordered, names, strict=True):
        g.op("Identity", [produced], output=name)
    if variant == "real":
        inputs = [tensor(image, [1, 3, "?", "?"])]
        outs = [tensor(name, ["n" + name, width]) for name, width in zip(names, [1] * 3 + [4] * 3 + [10] * 3,
                                                                         strict=True)]
    else:
        inputs = [tensor(image, [1, 3, 640, 640])]
        counts = [(640 // s) ** 2 * 2 for s in STRIDES] * 3
        widths = [1] * 3 + [4] * 3 + [10] * 3
        outs = [tensor(name, [1, count, width]) for name, count, width in zip(names, counts, widths, strict=True)]
    return g.save(path, inputs, outs)


# ------------------------------------------------------------------------------------------------ recognizer
def mean_face_112() -> np.ndarray:
    """The mean of the known faces aligned on the ArcFace 112 template (RGB, normalised like ArcFace's input)."""
    from faceswap.faces.align import ARCFACE_112, warp_to_template

    crops = [warp_to_template(face.photo, face.kps, ARCFACE_112, 112)[0] for face in known_faces()]
    mean = np.mean([crop[:, :, ::-1].astype(np.float32) for crop in crops], axis=0)
    return ((mean - 127.5) / 127.5).transpose(2, 0, 1)[None]


def build_recognizer(path: Path, *, variant: Variant = "real", seed: int = 11) -> Path:
    """w600k_r50 twin: (crop - mean face), 4x average-pooled, centred, randomly projected to 512 dims."""
    g = GraphBuilder("rec")
    image = "input.1" if variant == "real" else "input"
    x = image
    if variant == "alt":  # an mxnet-style graph that normalises its raw 0..255 input itself
        x = g.op("Sub", [x, g.const(127.5)], name="Sub_0")
        x = g.op("Mul", [x, g.const(1 / 127.5)], name="Mul_1")
    x = g.op("Sub", [x, g.const(mean_face_112())], name="minus_mean_face")
    x = g.op("AveragePool", [x], kernel_shape=[4, 4], strides=[4, 4], name="pool")
    x = g.op("Flatten", [x], axis=1, name="flatten")
    x = g.op("Sub", [x, g.op("ReduceMean", [x], axes=[1], keepdims=1, name="centre")], name="centred")
    projection = np.random.default_rng(seed).standard_normal((3 * 28 * 28, 512)).astype(np.float32)
    output = "683" if variant == "real" else "embedding"
    g.op("MatMul", [x, g.const(projection)], name="fc", output=output)
    batch = "None" if variant == "real" else 1
    return g.save(path, [tensor(image, [batch, 3, 112, 112])], [tensor(output, [batch, 512])])


# ------------------------------------------------------------------------------------------------ genderage
def build_genderage(path: Path, *, variant: Variant = "real", male_above: float = 0.5, age: int = 33) -> Path:
    """genderage twin fed raw 0..255 RGB: [female, male, age/100] with male when mean brightness/255 > male_above."""
    g = GraphBuilder("ga")
    image = "data" if variant == "real" else "input"
    if variant == "real":  # Sub and Mul named nodes first: insightface feeds raw pixels (mean 0, std 1)
        x = g.op("Sub", [image, g.const(0.0)], name="Sub_0")
        x = g.op("Mul", [x, g.const(1 / 255)], name="Mul_1")
    else:  # or a node named bn_data among the first three
        x = g.op("Mul", [image, g.const(1 / 255)], name="bn_data")
    brightness = g.op("ReduceMean", [x], axes=[1, 2, 3], keepdims=0)
    male = g.op("Sub", [brightness, g.const(male_above)])
    female = g.op("Neg", [male])
    years = g.op("Add", [g.op("Mul", [brightness, g.const(0.0)]), g.const(age / 100)])
    column = g.const(np.array([-1, 1]), dtype=np.int64)
    columns = [g.op("Reshape", [v, column]) for v in (female, male, years)]
    output = "fc1" if variant == "real" else "genderage_out"
    g.op("Concat", columns, axis=1, output=output)
    batch = "None" if variant == "real" else 1
    return g.save(path, [tensor(image, [batch, 3, 96, 96])], [tensor(output, [batch, 3])])


# ------------------------------------------------------------------------------------------------ swapper
@dataclass(frozen=True)
class InswapperTwin:
    path: Path
    emap: np.ndarray
    palette: np.ndarray
    keep_target: float

    def colour(self, latent: np.ndarray) -> np.ndarray:
        """The flat RGB colour in [0, 1] the twin paints for a (1, 512) latent."""
        return 1 / (1 + np.exp(-(latent.reshape(1, -1) @ self.palette * 3.0)))[0]

    def colour_bgr(self, latent: np.ndarray) -> np.ndarray:
        return (self.colour(latent) * 255)[::-1]


def build_inswapper(path: Path, *, variant: Variant = "real", keep_target: float = 0.0,
                    seed: int = 5) -> InswapperTwin:
    """inswapper_128 twin: output = keep_target*target + (1-keep_target)*colour(source)."""
    rng = np.random.default_rng(seed)
    emap = (rng.standard_normal((512, 512)) / np.sqrt(512) + np.eye(512)).astype(np.float32)
    palette = rng.standard_normal((512, 3)).astype(np.float32)
    g = GraphBuilder("swap")
    target, source, output = ("target", "source", "output") if variant == "real" else ("img", "latent", "swapped")
    if variant == "alt":  # extra initializers before the emap, unused too
        g.const(rng.standard_normal((16,)).astype(np.float32), name="unused_bias")
    colour = g.op("Sigmoid", [g.op("Mul", [g.op("MatMul", [source, g.const(palette)]), g.const(3.0)])])
    colour = g.op("Reshape", [colour, g.const(np.array([1, 3, 1, 1]), dtype=np.int64)])
    flat = g.op("Add", [g.op("Mul", [target, g.const(0.0)]), colour])
    mixed = g.op("Add", [g.op("Mul", [target, g.const(keep_target)]), g.op("Mul", [flat, g.const(1 - keep_target)])])
    g.op("Identity", [mixed], output=output)
    emap_name = "buff2fs" if variant == "real" else "emap"
    image_info, latent_info = tensor(target, [1, 3, 128, 128]), tensor(source, [1, 512])
    inputs = [image_info, latent_info] if variant == "real" else [latent_info, image_info]
    g.save(path, inputs, [tensor(output, [1, 3, 128, 128])], [numpy_helper.from_array(emap, emap_name)])
    return InswapperTwin(path, emap, palette, keep_target)


# ------------------------------------------------------------------------------------------------ restorers
def build_gfpgan(path: Path, *, variant: Variant = "real") -> Path:
    """GFPGAN twin: the inverted face (`-x` in [-1, 1])."""
    g = GraphBuilder("gfp")
    g.op("Neg", ["input"], output="output" if variant == "real" else "1392")
    outputs = [tensor("output" if variant == "real" else "1392", [1, 3, 512, 512])]
    if variant == "alt":
        g.op("ReduceMean", ["input"], axes=[1, 2, 3], keepdims=0, output="aux")
        outputs.append(tensor("aux", [1]))
    return g.save(path, [tensor("input", [1, 3, 512, 512])], outputs)


def build_codeformer(path: Path, *, variant: Variant = "real") -> Path:
    """CodeFormer twin: a flat grey of level `weight` (output 2*weight - 1), whatever the face."""
    g = GraphBuilder("cf")
    image, weight, output = ("input", "weight", "output") if variant == "real" else ("x", "w", "y")
    level = g.op("Sub", [g.op("Mul", [g.op("Cast", [weight], to=TensorProto.FLOAT), g.const(2.0)]), g.const(1.0)])
    level = g.op("Reshape", [level, g.const(np.array([1, 1, 1, 1]), dtype=np.int64)])
    g.op("Add", [g.op("Mul", [image, g.const(0.0)]), level], output=output)
    image_info, weight_info = tensor(image, [1, 3, 512, 512]), tensor(weight, [1], TensorProto.DOUBLE)
    inputs = [image_info, weight_info] if variant == "real" else [weight_info, image_info]
    return g.save(path, inputs, [tensor(output, [1, 3, 512, 512])])


# ------------------------------------------------------------------------------------------------ sets
@dataclass(frozen=True)
class TwinSet:
    directory: Path
    paths: dict[str, Path]
    swapper: InswapperTwin
    specs: dict[str, ModelSpec]
    """Registry entries rewritten to these files' sizes and sha256, for `ModelStore(settings, specs=...)`."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def twin_specs(paths: Mapping[str, Path], registry: Mapping[str, ModelSpec] = REGISTRY) -> dict[str, ModelSpec]:
    """The registry with each twin's real size and sha256 (other entries unchanged)."""
    specs = dict(registry)
    for name, path in paths.items():
        specs[name] = replace(registry[name], filename=path.name, size=path.stat().st_size,
                              sha256=file_sha256(path), crc32=None)
    return specs


def twin_runtime(twins: TwinSet, data_dir: Path) -> Runtime:
    """A Runtime whose models dir is the twin set's, with the registry rewritten to the twins' sizes and hashes
    (the real registry would refuse them as damaged files)."""
    settings = Settings(data_dir=data_dir, models_dir=twins.directory, allow_model_download=False)
    return Runtime(settings, models=ModelStore(settings, specs=twins.specs))


def build_twin_set(directory: Path, *, variant: Variant = "real", face_sizes: Sequence[float] | None = None,
                   male_above: float = 0.5, keep_target: float = 0.0) -> TwinSet:
    """All six twins under their registry file names in `directory` (a models dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    swapper = build_inswapper(directory / REGISTRY["inswapper_128"].filename, variant=variant,
                              keep_target=keep_target)
    paths = {
        "det_10g": build_detector(directory / REGISTRY["det_10g"].filename, variant=variant, face_sizes=face_sizes),
        "w600k_r50": build_recognizer(directory / REGISTRY["w600k_r50"].filename, variant=variant),
        "genderage": build_genderage(directory / REGISTRY["genderage"].filename, variant=variant,
                                     male_above=male_above),
        "inswapper_128": swapper.path,
        "gfpgan_1.4": build_gfpgan(directory / REGISTRY["gfpgan_1.4"].filename, variant=variant),
        "codeformer": build_codeformer(directory / REGISTRY["codeformer"].filename, variant=variant),
    }
    return TwinSet(directory, paths, swapper, twin_specs(paths))


# ------------------------------------------------------------------------------------------------ more swappers
def build_hyperswap(path: Path, *, echo: bool = True, seed: int = 11) -> np.ndarray:
    """hyperswap twin built to MODELS.md §17.1/§17.6: inputs `source` [1,512] then `target` [1,3,256,256] (float32),
    outputs `output` [1,3,256,256] in [-1,1] and `mask` [1,1,256,256] (sigmoid).

    `echo`: the output is the target input itself (so a wrong normalisation shows as a colour shift); else a flat
    colour `tanh(source @ palette * 3)` per channel. Returns the palette."""
    palette = np.random.default_rng(seed).standard_normal((512, 3)).astype(np.float32)
    g = GraphBuilder("hyper")
    colour = g.op("Tanh", [g.op("Mul", [g.op("MatMul", ["source", g.const(palette)]), g.const(3.0)])])
    colour = g.op("Reshape", [colour, g.const(np.array([1, 3, 1, 1]), dtype=np.int64)])
    keep, paint = (1.0, 0.0) if echo else (0.0, 1.0)
    g.op("Add", [g.op("Mul", ["target", g.const(keep)]), g.op("Mul", [colour, g.const(paint)])], output="output")
    g.op("Sigmoid", [g.op("ReduceMean", ["target"], axes=[1], keepdims=1)], output="mask")
    g.save(path, [tensor("source", [1, 512]), tensor("target", [1, 3, 256, 256])],
           [tensor("output", [1, 3, 256, 256]), tensor("mask", [1, 1, 256, 256])])
    return palette
