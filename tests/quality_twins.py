"""Twins for the quality tools (MODELS.md §17.4, §17.6): occluder, parser, and a twin set that carries them.

- **xseg** (occluder): NHWC `input` [1,256,256,3] (BGR in [0, 1]) → [1,256,256,1]; keeps (1) every pixel except
  saturated green ones (0), so a green "hand" painted over a face is what it marks as an occlusion.
- **bisenet** (parser): `input` [1,3,512,512] → `output` [1,19,512,512] logits; a fixed class map on the aligned
  crop: `mouth` (11) on a box around where the arcface_128 template puts the mouth, `skin` (1) elsewhere.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from twins import GraphBuilder, TwinSet, tensor, twin_specs

from faceswap.models.registry import REGISTRY

GRID = 16
MOUTH_CELLS = (slice(10, 13), slice(5, 11))
"""Rows, columns of the 16x16 grid (over the crop) that the parser twin labels mouth: x .31–.69, y .62–.81."""


def build_xseg(path: Path) -> Path:
    """Occluder twin: keep = 1 - clip((2G - B - R - 0.5) * 4, 0, 1)."""
    g = GraphBuilder("xseg")
    greenness = g.op("MatMul", ["input", g.const(np.array([[-1.0], [2.0], [-1.0]], np.float32))])
    hidden = g.op("Clip", [g.op("Mul", [g.op("Sub", [greenness, g.const(0.5)]), g.const(4.0)]),
                           g.const(0.0), g.const(1.0)])
    g.op("Sub", [g.const(1.0), hidden], output="output")
    return g.save(path, [tensor("input", [1, 256, 256, 3])], [tensor("output", [1, 256, 256, 1])])


def build_bisenet(path: Path, *, aux_heads: bool = False) -> Path:
    """Parser twin: a fixed class map (mouth box, skin elsewhere) at 512, whatever the crop shows."""
    logits = np.zeros((1, 19, GRID, GRID), np.float32)
    logits[0, 1] = 5.0
    logits[0, 11][MOUTH_CELLS] = 10.0
    g = GraphBuilder("parse")
    grid = g.op("Resize", [g.const(logits), "", g.const(np.array([1, 1, 512 / GRID, 512 / GRID], np.float32))],
                mode="nearest")
    anchor = g.op("Mul", [g.op("ReduceMean", ["input"], axes=[1, 2, 3], keepdims=1), g.const(0.0)])
    g.op("Add", [grid, anchor], output="output")
    outputs = [tensor("output", [1, 19, 512, 512])]
    if aux_heads:  # the upstream export's two auxiliary heads
        for name in ("aux1", "aux2"):
            g.op("Identity", ["output"], output=name)
            outputs.append(tensor(name, [1, 19, 512, 512]))
    return g.save(path, [tensor("input", [1, 3, 512, 512])], outputs)


def with_mask_models(twins: TwinSet, *, occluder: str = "xseg_1", parser: str = "bisenet_resnet_34") -> TwinSet:
    """The twin set plus an occluder and a parser twin under their registry file names, with matching specs."""
    paths = dict(twins.paths)
    paths[occluder] = build_xseg(twins.directory / REGISTRY[occluder].filename)
    paths[parser] = build_bisenet(twins.directory / REGISTRY[parser].filename)
    return replace(twins, paths=paths, specs=twin_specs(paths))
