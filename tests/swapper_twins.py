"""Twins of FaceFusion's other swappers and the CrossFace converters, built to MODELS.md §17.1/§17.2/§17.6.

- **embedding swappers** (simswap, ghost, hififace): float32 `source` [1,512] and `target` [1,3,S,S] → `output`
  [1,3,S,S]. `echo`: the output is the `target` input itself (a wrong normalisation shows as a colour shift);
  else a flat colour from the identity, `tanh(source @ palette * 3)` for the [-1, 1] types and
  `sigmoid(source @ palette * 3)` for the [0, 1] types.
- **image-source swappers** (blendswap 112 source, uniface 256 source): `source` and `target` images → `output`
  [1,3,256,256]. `echo`: the target input; else the source crop's mean colour per channel (mapped to [-1, 1] for
  uniface), so the source path's template and normalisation show in the output.
- **converters**: `input` [1,512] → `output` [1,512] = `normalize(input) @ matrix` (CrossFace normalises its input).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from onnx import TensorProto, numpy_helper
from twins import GraphBuilder, TwinSet, tensor, twin_specs

from faceswap.engines.neural.swappers import DENORMALISED
from faceswap.models.registry import REGISTRY


def build_embedding_swapper(path: Path, size: int, *, signed: bool, echo: bool = True, seed: int = 5) -> np.ndarray:
    """Returns the palette [512, 3]."""
    palette = np.random.default_rng(seed).standard_normal((512, 3)).astype(np.float32)
    g = GraphBuilder("emb")
    scaled = g.op("Mul", [g.op("MatMul", ["source", g.const(palette)]), g.const(3.0)])
    colour = g.op("Reshape", [g.op("Tanh" if signed else "Sigmoid", [scaled]),
                              g.const(np.array([1, 3, 1, 1]), dtype=np.int64)])
    keep, paint = (1.0, 0.0) if echo else (0.0, 1.0)
    g.op("Add", [g.op("Mul", ["target", g.const(keep)]), g.op("Mul", [colour, g.const(paint)])], output="output")
    g.save(path, [tensor("source", [1, 512]), tensor("target", [1, 3, size, size])],
           [tensor("output", [1, 3, size, size])])
    return palette


def build_image_swapper(path: Path, source_size: int, *, signed: bool, echo: bool = True) -> Path:
    g = GraphBuilder("img")
    colour = g.op("ReduceMean", ["source"], axes=[2, 3], keepdims=1)
    if signed:
        colour = g.op("Sub", [g.op("Mul", [colour, g.const(2.0)]), g.const(1.0)])
    keep, paint = (1.0, 0.0) if echo else (0.0, 1.0)
    g.op("Add", [g.op("Mul", ["target", g.const(keep)]), g.op("Mul", [colour, g.const(paint)])], output="output")
    return g.save(path, [tensor("source", [1, 3, source_size, source_size]), tensor("target", [1, 3, 256, 256])],
                  [tensor("output", [1, 3, 256, 256])])


def build_inswapper_fp16(path: Path, *, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """inswapper_128_fp16 twin (§17.6): float32 `target` [1,3,128,128] and `source` [1,512] in, float32 `output`
    out, fp16 inside (Cast in, Cast out); paints `sigmoid(source @ palette * 3)`; a float32 emap [512,512] is
    the last initializer. Returns (emap, palette)."""
    rng = np.random.default_rng(seed)
    emap = (rng.standard_normal((512, 512)) / np.sqrt(512) + np.eye(512)).astype(np.float32)
    palette = rng.standard_normal((512, 3)).astype(np.float32)
    g = GraphBuilder("half")
    source = g.op("Cast", ["source"], to=TensorProto.FLOAT16)
    target = g.op("Cast", ["target"], to=TensorProto.FLOAT16)
    scaled = g.op("Mul", [g.op("MatMul", [source, g.const(palette, dtype=np.float16)]), g.const(3.0, dtype=np.float16)])
    colour = g.op("Reshape", [g.op("Sigmoid", [scaled]), g.const(np.array([1, 3, 1, 1]), dtype=np.int64)])
    flat = g.op("Add", [g.op("Mul", [target, g.const(0.0, dtype=np.float16)]), colour])
    g.op("Cast", [flat], output="output", to=TensorProto.FLOAT)
    g.save(path, [tensor("target", [1, 3, 128, 128]), tensor("source", [1, 512])],
           [tensor("output", [1, 3, 128, 128])], [numpy_helper.from_array(emap, "emap")])
    return emap, palette


def build_crossface(path: Path, *, seed: int = 3, scale: float = 4.0) -> np.ndarray:
    """Returns the matrix [512, 512]: output = input/‖input‖ @ matrix (not unit length, so the L2 step shows)."""
    matrix = (np.random.default_rng(seed).standard_normal((512, 512)) * scale / np.sqrt(512)).astype(np.float32)
    g = GraphBuilder("cross")
    unit = g.op("LpNormalization", ["input"], axis=1, p=2)
    g.op("MatMul", [unit, g.const(matrix)], output="output")
    g.save(path, [tensor("input", [1, 512])], [tensor("output", [1, 512])])
    return matrix


def build_swapper(directory: Path, name: str, *, echo: bool = True) -> dict[str, Path]:
    """The twin for registry swapper `name` (and its converter) under their registry file names."""
    spec = REGISTRY[name]
    paths = {name: directory / spec.filename}
    signed = spec.swapper_type in DENORMALISED
    if spec.swapper_type == "inswapper":
        build_inswapper_fp16(paths[name])
    elif spec.swapper_type in ("blendswap", "uniface"):
        build_image_swapper(paths[name], 112 if spec.swapper_type == "blendswap" else 256, signed=signed, echo=echo)
    else:
        build_embedding_swapper(paths[name], spec.input_size, signed=signed, echo=echo)
    if spec.converter:
        paths[spec.converter] = directory / REGISTRY[spec.converter].filename
        if not paths[spec.converter].exists():
            build_crossface(paths[spec.converter], scale=1.5)
    return paths


def with_swappers(twins: TwinSet, names: tuple[str, ...], *, echo: bool = False) -> TwinSet:
    paths = dict(twins.paths)
    for name in names:
        paths.update(build_swapper(twins.directory, name, echo=echo))
    return replace(twins, paths=paths, specs=twin_specs(paths))
