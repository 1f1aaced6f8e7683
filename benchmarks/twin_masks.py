"""Cost twins of the mask models: the real interface (MODELS.md §6, §17.4) and a compute sized as honestly as the
facts allow, with random weights.

- **1k3d68** (landmarker) — MODELS.md §16 gives ≈ 35.9 M parameters and ≈ 3.0 G multiply-adds at 192x192 (sized
  from the file; the architecture is unpublished). The twin: a ResNet-18-shaped backbone 1.5x wider
  (96/192/384/768 channels, 2 basic blocks a stage) behind named Sub/Mul nodes (so insightface's rule feeds raw
  pixels, as with the real file), then Gemms 6912 → 1024 → 3309: `data` ['None',3,192,192] → `fc1` ['None',3309].
- **bisenet_resnet_18** (parser) — no compute is published; the file is 53.2 MB (≈ 13.3 M float32 parameters,
  MODELS.md §17.0). The twin: BiSeNet's ResNet-18 context path at 512x512, 128-channel refinement of the 1/32 and
  1/16 features, fusion with the 1/8 features, a 3x3 256-channel head, 19 classes, bilinear x8:
  `input` [1,3,512,512] → `output` [1,19,512,512].
- **xseg** (occluder) — no compute is published; xseg_3 is 70.3 MB (≈ 17.6 M parameters). The twin: a 6-level
  U-Net (32…512 channels, two 3x3 convs a level) on the NHWC input transposed to NCHW, sigmoid, transposed back:
  `input` [1,256,256,3] → `output` [1,256,256,1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.graphs import Graph, tensor_info


def _block(g: Graph, x: str, cin: int, cout: int, stride: int) -> str:
    y = g.relu(g.conv(x, cin, cout, 3, stride=stride, bias=False))
    y = g.conv(y, cout, cout, 3, bias=False, gain=0.5)
    if stride != 1 or cin != cout:
        x = g.conv(x, cin, cout, 1, stride=stride, bias=False, gain=1.0)
    return g.relu(g.op("Add", [y, x]))


def _resnet(g: Graph, x: str, widths: tuple[int, int, int, int]) -> list[tuple[str, int]]:
    """A ResNet-18 layout (stem, max-pool, 2 basic blocks a stage); the features of every stage."""
    stem = g.width(widths[0])
    x = g.relu(g.conv(x, 3, stem, 7, stride=2, bias=False))
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    features, cin = [], stem
    for stage, planes in enumerate(widths):
        cout = g.width(planes)
        for block in range(2):
            x = _block(g, x, cin, cout, 2 if stage > 0 and block == 0 else 1)
            cin = cout
        features.append((x, cout))
    return features


def build_landmarker(path: Path, *, scale: float = 1.0, seed: int = 7) -> Path:
    g = Graph("lmk", seed=seed, scale=scale)
    x = g.op("Sub", ["data", g.const(127.5)], name="_minusscalar0")
    x = g.op("Mul", [x, g.const(1 / 128)], name="_mulscalar0")
    (x, channels), = _resnet(g, x, (96, 192, 384, 768))[-1:]
    x = g.op("Flatten", [g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])], axis=1)  # 6x6 → 3x3
    hidden = g.width(1024)
    x = g.relu(g.gemm(x, channels * 9, hidden))
    g.op("Gemm", [x, g.random((3309, hidden), fan_in=hidden, gain=0.1), g.const(np.zeros(3309, np.float32))],
         output="fc1", transB=1)
    return g.save(path, [tensor_info("data", ["None", 3, 192, 192])], [tensor_info("fc1", ["None", 3309])])


def build_parser(path: Path, *, scale: float = 1.0, seed: int = 8) -> Path:
    g = Graph("parse", seed=seed, scale=scale)
    features = _resnet(g, "input", (64, 128, 256, 512))
    (f8, c8), (f16, c16), (f32, c32) = features[1], features[2], features[3]
    mid = g.width(128)
    context = g.resize(g.relu(g.conv(f32, c32, mid, 3, bias=False)), 2.0)
    context = g.op("Add", [context, g.relu(g.conv(f16, c16, mid, 3, bias=False))])
    context = g.resize(g.relu(g.conv(context, mid, mid, 3, bias=False)), 2.0)
    fused = g.relu(g.conv(g.op("Concat", [f8, context], axis=1), c8 + mid, g.width(256), 1, bias=False))
    head = g.relu(g.conv(fused, g.width(256), g.width(256), 3, bias=False))
    g.op("Resize", [g.conv(head, g.width(256), 19, 1, gain=1.0), "", g.const(np.array([1, 1, 8, 8], np.float32))],
         output="output", mode="linear")
    return g.save(path, [tensor_info("input", [1, 3, 512, 512])], [tensor_info("output", [1, 19, 512, 512])])


def build_occluder(path: Path, *, scale: float = 1.0, seed: int = 9) -> Path:
    g = Graph("xseg", seed=seed, scale=scale)
    x = g.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    skips, cin = [], 3
    widths = [g.width(c) for c in (32, 64, 128, 256, 512, 512)]
    for level, cout in enumerate(widths):
        if level:
            x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        x = g.leaky(g.conv(g.leaky(g.conv(x, cin, cout, 3)), cout, cout, 3))
        skips.append((x, cout))
        cin = cout
    for skip, channels in reversed(skips[:-1]):
        x = g.leaky(g.conv(g.resize(x, 2.0, mode="nearest"), cin, channels, 3))
        x = g.leaky(g.conv(g.op("Concat", [x, skip], axis=1), 2 * channels, channels, 3))
        cin = channels
    keep = g.op("Sigmoid", [g.conv(x, cin, 1, 3, gain=0.5)])
    g.op("Transpose", [keep], output="output", perm=[0, 2, 3, 1])
    return g.save(path, [tensor_info("input", [1, 256, 256, 3])], [tensor_info("output", [1, 256, 256, 1])])
