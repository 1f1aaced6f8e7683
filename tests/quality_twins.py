"""Twins for the quality tools (MODELS.md §17.4, §17.6): occluder, parser, and a twin set that carries them.

- **xseg** (occluder): NHWC `input` [1,256,256,3] (BGR in [0, 1]) → [1,256,256,1]; keeps (1) every pixel except
  saturated green ones (0), so a green "hand" painted over a face is what it marks as an occlusion.
- **bisenet** (parser): `input` [1,3,512,512] → `output` [1,19,512,512] logits; a fixed class map on the aligned
  crop: `mouth` (11) on a box around where the arcface_128 template puts the mouth, `skin` (1) elsewhere.
- **enhancers** (GPEN-BFR 256–2048, RestoreFormer++; §17.5): `input` [1,3,S,S] in [-1, 1] → `output` [1,3,S,S].
  `echo`: the input itself (a wrong normalisation shows as a colour shift); `probe`: the input only on discs
  around the five points of the template MODELS.md gives that model, black (-1) elsewhere (a wrong template puts
  the face's key points in the black).
- **1k3d68** (landmarker, MODELS.md §6/§13): `data` ['None',3,192,192] → `fc1` ['None',3309], Sub and Mul nodes
  first (so raw pixels are fed, as with the real file); fixed (x, y, z) triples whatever the face: the last 68 are
  `LANDMARKS_68` in crop units of [-1, 1].
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from twins import GraphBuilder, TwinSet, tensor, twin_specs

from faceswap.models.registry import REGISTRY

GRID = 16
ENHANCER_TEMPLATES: dict[str, list[tuple[float, float]]] = {
    "ffhq_512": [(.37691676, .46864664), (.62285697, .46912813), (.50123859, .61331904), (.39308822, .72541100),
                 (.61150205, .72490465)],
    "arcface_128": [(.36167656, .40387734), (.63696719, .40235469), (.50019687, .56044219), (.38710391, .72160547),
                    (.61507734, .72034453)],
}
"""MODELS.md §17.0 (normalised x, y), written out here so the twins do not borrow the code under test."""
ENHANCERS: dict[str, tuple[int, str]] = {
    "gfpgan_1.4": (512, "ffhq_512"), "gpen_bfr_256": (256, "arcface_128"), "gpen_bfr_512": (512, "ffhq_512"),
    "gpen_bfr_1024": (1024, "ffhq_512"), "gpen_bfr_2048": (2048, "ffhq_512"),
    "restoreformer_plus_plus": (512, "ffhq_512")}
"""Size and template of each single-input enhancer (MODELS.md §17.5)."""
PROBE_GRID = 256
PROBE_RADIUS = 0.045
"""Radius of the probe twin's discs, as a fraction of the crop."""
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


def probe_mask(template: str, grid: int = PROBE_GRID) -> np.ndarray:
    """1 on discs around the template's five points, 0 elsewhere, on a grid x grid raster of the crop."""
    ys, xs = np.mgrid[:grid, :grid] + 0.5
    mask = np.zeros((grid, grid), np.float32)
    for x, y in ENHANCER_TEMPLATES[template]:
        mask[(xs / grid - x) ** 2 + (ys / grid - y) ** 2 <= PROBE_RADIUS ** 2] = 1.0
    return mask


def build_enhancer(path: Path, size: int, *, template: str = "ffhq_512", probe: bool = False,
                   symbolic: bool = False) -> Path:
    """Enhancer twin (MODELS.md §17.6): `input` [1,3,S,S] float32 → `output` [1,3,S,S] float32.

    `probe`: `input*P + (P-1)` with P the template's discs (nearest-resized from a 256 raster), else the input
    itself. `symbolic`: H and W left unnamed symbols (a file whose size cannot be read)."""
    g = GraphBuilder("enh")
    if probe:
        raster = probe_mask(template)[None, None]
        scales = np.array([1, 1, size / PROBE_GRID, size / PROBE_GRID], np.float32)
        keep = g.op("Resize", [g.const(raster), "", g.const(scales)], mode="nearest")
        g.op("Add", [g.op("Mul", ["input", keep]), g.op("Sub", [keep, g.const(1.0)])], output="output")
    else:
        g.op("Identity", ["input"], output="output")
    dims: list[int | str] = [1, 3, "h", "w"] if symbolic else [1, 3, size, size]
    return g.save(path, [tensor("input", dims)], [tensor("output", dims)])


def with_enhancer(twins: TwinSet, name: str, *, probe: bool = False) -> TwinSet:
    """The twin set plus an enhancer twin for registry restorer `name` under its registry file name."""
    size, template = ENHANCERS[name]
    paths = dict(twins.paths)
    paths[name] = build_enhancer(twins.directory / REGISTRY[name].filename, size, template=template, probe=probe)
    return replace(twins, paths=paths, specs=twin_specs(paths))


def twin_landmarks_68(mouth_at: tuple[float, float] = (0.0, -0.45), radius: float = 0.12) -> np.ndarray:
    """68 points in the landmark crop's [-1, 1] units: the mouth (48-67) a ring of `radius` around `mouth_at` (by
    default on the forehead, far from the real mouth), every other point at the crop's centre."""
    points = np.zeros((68, 2), np.float32)
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points[48:] = np.stack([mouth_at[0] + radius * np.cos(angles), mouth_at[1] + radius * np.sin(angles)], axis=1)
    return points


def build_1k3d68(path: Path, points: np.ndarray | None = None) -> Path:
    """Landmark twin: `fc1` = 1035 zero triples, then the 68 points (z = 0), plus 0 x the input's mean."""
    points = twin_landmarks_68() if points is None else points
    triples = np.zeros((1103, 3), np.float32)
    triples[-68:, :2] = points
    g = GraphBuilder("lmk")
    centred = g.op("Sub", ["data", g.const(127.5)], name="Sub_0")  # insightface: mxnet-style, normalises itself
    scaled = g.op("Mul", [centred, g.const(0.0078125)], name="Mul_1")
    anchor = g.op("Mul", [g.op("ReduceMean", [scaled], axes=[1, 2, 3], keepdims=0), g.const(0.0)])
    anchor = g.op("Unsqueeze", [anchor, g.const(np.array([1]), dtype=np.int64)])
    g.op("Add", [g.const(triples.reshape(1, 3309)), anchor], output="fc1")
    return g.save(path, [tensor("data", ["None", 3, 192, 192])], [tensor("fc1", ["None", 3309])])


def with_landmarker(twins: TwinSet, points: np.ndarray | None = None) -> TwinSet:
    paths = dict(twins.paths)
    paths["1k3d68"] = build_1k3d68(twins.directory / REGISTRY["1k3d68"].filename, points)
    return replace(twins, paths=paths, specs=twin_specs(paths))
