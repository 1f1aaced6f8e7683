"""Cost twins of the analysis and swap models: the real interface (MODELS.md §13) and the real compute (§16).

Each builder reconstructs the published architecture layer by layer with random weights, so onnxruntime does the
same kind of work (same convolution shapes, same memory traffic) as with the real file:

- **inswapper_128** — ReSwapper's reconstruction: a 7x7 reflect-padded conv and three 3x3 convs to 1024 channels
  at 32x32, 6 style blocks of two 3x3 1024→1024 convs, each instance-normalised (spelled out in
  ReduceMean/Sub/Sqrt/Div as the real graph is) and modulated by a Gemm of the 512-d `source`, then bilinear x2,
  x2 and convs back to 3 channels, tanh, `(x + 1) / 2`. The 512x512 emap `buff2fs` is the last initializer and
  no node reads it.
- **det_10g** — SCRFD-10GF: a ResNetV1e backbone (deep stem, basic blocks (3, 4, 2, 3) of 56/88/88/224
  channels), a PAFPN neck of 56 channels and per-stride heads of three 3x3 80-channel convs, 9 rank-2 outputs in
  insightface's order. Random weights would find random "faces", so the head's outputs are squashed (tanh, a
  small factor) and added to constant maps that make exactly the given faces pass the 0.5 score threshold, with
  their boxes and five key points: the pipeline then swaps the same number of faces on every frame, at the places
  the benchmark clip shows them (`clips.face_slots`).
- **w600k_r50** — IResNet-50 (blocks 3, 4, 14, 3; BN-conv-BN-PReLU-conv-BN), BN, a 25088→512 Gemm, BN.
- **genderage** — a small MobileNet-style net behind named Sub/Mul nodes (so insightface feeds raw pixels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from onnx import numpy_helper

from benchmarks.clips import FaceSlot
from benchmarks.graphs import Graph, tensor_info

EMAP_NAME = "buff2fs"
DET_OUTPUT_NAMES = ("448", "471", "494", "451", "474", "497", "454", "477", "500")
DET_STRIDES = (8, 16, 32)
DET_CANVAS = 640
FORCE_PREFIX = "force_"
"""Initializers that steer the detector to the benchmark's faces: not parameters of the real model."""
FORCED_LOGIT = 12.0
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                        [70.7299, 92.2041]], np.float32)


# ------------------------------------------------------------------------------------------------ inswapper
def build_inswapper(path: Path, *, scale: float = 1.0, seed: int = 1) -> Path:
    g = Graph("swap", seed=seed, scale=scale)
    c128, c256, c512, c1024 = g.width(128), g.width(256), g.width(512), g.width(1024)
    x = g.leaky(g.conv("target", 3, c128, 7, pad_mode="reflect"))
    x = g.leaky(g.conv(x, c128, c256, 3))
    x = g.leaky(g.conv(x, c256, c512, 3, stride=2))
    x = g.leaky(g.conv(x, c512, c1024, 3, stride=2))
    split = g.ints([c1024, c1024])
    per_channel = g.ints([1, c1024, 1, 1])
    for _block in range(6):
        skip = x
        for layer in range(2):
            y = g.instance_norm_decomposed(g.conv(x, c1024, c1024, 3))
            style = g.gemm("source", 512, 2 * c1024, bias=np.concatenate([np.ones(c1024), np.zeros(c1024)]),
                           gain=0.1)
            gamma, beta = g.ops("Split", [style, split], 2, axis=1)
            y = g.op("Add", [g.op("Mul", [y, g.op("Reshape", [gamma, per_channel])]),
                             g.op("Reshape", [beta, per_channel])])
            x = g.relu(y) if layer == 0 else y
        x = g.op("Add", [x, skip])
    x = g.leaky(g.conv(g.resize(x, 2.0), c1024, c512, 3))
    x = g.leaky(g.conv(g.resize(x, 2.0), c512, c256, 3))
    x = g.leaky(g.conv(x, c256, c128, 3))
    x = g.op("Tanh", [g.conv(x, c128, 3, 7, pad_mode="reflect", gain=0.5)])
    g.op("Mul", [g.op("Add", [x, g.const(1.0)]), g.const(0.5)], output="output")
    emap = g.rng.standard_normal((512, 512), dtype=np.float32) / math.sqrt(512) + np.eye(512, dtype=np.float32)
    return g.save(path, [tensor_info("target", [1, 3, 128, 128]), tensor_info("source", [1, 512])],
                  [tensor_info("output", [1, 3, 128, 128])],
                  extra_initializers=[numpy_helper.from_array(emap.astype(np.float32), EMAP_NAME)])


# ------------------------------------------------------------------------------------------------ det_10g
def _basic_block(g: Graph, x: str, cin: int, cout: int, stride: int) -> str:
    y = g.relu(g.conv(x, cin, cout, 3, stride=stride, bias=False))
    y = g.conv(y, cout, cout, 3, bias=False, gain=0.5)
    if stride != 1 or cin != cout:  # ResNetV1e shortcut: average-pool, then a 1x1 conv
        if stride != 1:
            x = g.op("AveragePool", [x], kernel_shape=[stride, stride], strides=[stride, stride], ceil_mode=1)
        x = g.conv(x, cin, cout, 1, bias=False, gain=1.0)
    return g.relu(g.op("Add", [y, x]))


def _forcing_maps(slots: Sequence[FaceSlot], stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score logits (1, 2, H, W), box distances (1, 8, H, W) and key points (1, 20, H, W) on the 640 canvas for
    one stride: channel blocks per anchor, so (H, W, anchor) flattening gives insightface's anchor order."""
    side = DET_CANVAS // stride
    score = np.full((1, 2, side, side), -FORCED_LOGIT, np.float32)
    box = np.ones((1, 8, side, side), np.float32)
    kps = np.zeros((1, 20, side, side), np.float32)
    for slot in slots:
        if _stride_for(slot.size) != stride:
            continue
        col, row = int(slot.x // stride), int(slot.y // stride)
        ax, ay = col * stride, row * stride
        half_w, half_h = slot.size / 2, slot.size * 0.6
        score[0, 0, row, col] = FORCED_LOGIT
        box[0, 0:4, row, col] = np.array([ax - (slot.x - half_w), ay - (slot.y - half_h),
                                          slot.x + half_w - ax, slot.y + half_h - ay]) / stride
        points = (ARCFACE_112 / 112.0 - 0.5) * slot.size * 1.1 + np.array([slot.x, slot.y])
        kps[0, 0:10, row, col] = ((points - np.array([ax, ay])) / stride).reshape(-1)
    return score, box, kps


def _stride_for(size: float) -> int:
    """SCRFD's anchors are 16/32 px at stride 8, 64/128 at 16, 256/512 at 32."""
    return 8 if size < 48 else 16 if size < 192 else 32


def build_detector(path: Path, *, slots: Sequence[FaceSlot], scale: float = 1.0, seed: int = 2) -> Path:
    g = Graph("det", seed=seed, scale=scale)
    w = g.width
    x = g.relu(g.conv("input.1", 3, w(28), 3, stride=2, bias=False))
    x = g.relu(g.conv(x, w(28), w(28), 3, bias=False))
    x = g.relu(g.conv(x, w(28), w(56), 3, bias=False))
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    features, cin = [], w(56)
    for stage, (blocks, planes) in enumerate(zip((3, 4, 2, 3), (56, 88, 88, 224), strict=True)):
        cout = w(planes)
        for block in range(blocks):
            x = _basic_block(g, x, cin, cout, 2 if stage > 0 and block == 0 else 1)
            cin = cout
        features.append((x, cout))
    neck = w(56)
    laterals = [g.conv(feature, channels, neck, 1) for feature, channels in features[1:]]
    for level in (1, 0):  # top-down
        laterals[level] = g.op("Add", [laterals[level], g.resize(laterals[level + 1], 2.0, mode="nearest")])
    outs = [g.conv(lateral, neck, neck, 3) for lateral in laterals]
    for level in (1, 2):  # bottom-up (PAFPN)
        outs[level] = g.op("Add", [outs[level], g.conv(outs[level - 1], neck, neck, 3, stride=2)])
    outs = [outs[0]] + [g.conv(out, neck, neck, 3) for out in outs[1:]]

    results: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    head = w(80)
    for stride, feature in zip(DET_STRIDES, outs, strict=True):
        y = feature
        for layer in range(3):
            y = g.relu(g.conv(y, neck if layer == 0 else head, head, 3))
        forcing = dict(zip(("score", "bbox", "kps"), _forcing_maps(slots, stride), strict=True))
        for kind, width, squash in (("score", 1, 1.0), ("bbox", 4, 0.01), ("kps", 10, 0.01)):
            raw = g.op("Mul", [g.op("Tanh", [g.conv(y, head, 2 * width, 3, gain=0.1)]), g.const(squash)])
            size = g.op("Slice", [g.op("Shape", [raw]), g.ints([2]), g.ints([4])])
            bias = g.op("Slice", [g.const(forcing[kind], name=f"{FORCE_PREFIX}{kind}_{stride}"), g.ints([0, 0]),
                                  size, g.ints([2, 3])])
            value = g.op("Add", [raw, bias])
            if kind == "score":
                value = g.op("Sigmoid", [value])
            cells = g.op("Transpose", [value], perm=[0, 2, 3, 1])
            results[kind].append(g.op("Reshape", [cells, g.ints([-1, width])]))
    ordered = [*results["score"], *results["bbox"], *results["kps"]]
    widths = [1] * 3 + [4] * 3 + [10] * 3
    for produced, name in zip(ordered, DET_OUTPUT_NAMES, strict=True):
        g.op("Identity", [produced], output=name)
    outputs = [tensor_info(name, [f"n{name}", width]) for name, width in zip(DET_OUTPUT_NAMES, widths, strict=True)]
    return g.save(path, [tensor_info("input.1", [1, 3, "?", "?"])], outputs)


# ------------------------------------------------------------------------------------------------ w600k_r50
def build_recognizer(path: Path, *, scale: float = 1.0, seed: int = 3) -> Path:
    g = Graph("rec", seed=seed, scale=scale)
    w = g.width
    x = g.prelu(g.batch_norm(g.conv("input.1", 3, w(64), 3, bias=False), w(64)), w(64))
    cin = w(64)
    for blocks, planes in zip((3, 4, 14, 3), (64, 128, 256, 512), strict=True):
        cout = w(planes)
        for block in range(blocks):
            stride = 2 if block == 0 else 1
            y = g.conv(g.batch_norm(x, cin), cin, cout, 3, bias=False)
            y = g.prelu(g.batch_norm(y, cout), cout)
            y = g.batch_norm(g.conv(y, cout, cout, 3, stride=stride, bias=False, gain=0.3), cout)
            shortcut = x if block else g.batch_norm(g.conv(x, cin, cout, 1, stride=stride, bias=False, gain=1.0),
                                                   cout)
            x = g.op("Add", [y, shortcut])
            cin = cout
    x = g.op("Flatten", [g.batch_norm(x, cin)], axis=1)
    x = g.gemm(x, cin * 7 * 7, 512)
    g.op("BatchNormalization", [x, g.const(np.ones(512, np.float32)), g.const(np.zeros(512, np.float32)),
                                g.const(np.zeros(512, np.float32)), g.const(np.ones(512, np.float32))],
         output="683", epsilon=1e-5)
    return g.save(path, [tensor_info("input.1", ["None", 3, 112, 112])], [tensor_info("683", ["None", 512])])


# ------------------------------------------------------------------------------------------------ genderage
def build_genderage(path: Path, *, scale: float = 1.0, seed: int = 4) -> Path:
    g = Graph("ga", seed=seed, scale=scale)
    w = g.width
    x = g.op("Sub", ["data", g.const(127.5)], name="_minusscalar0")
    x = g.op("Mul", [x, g.const(1 / 128)], name="_mulscalar0")
    x = g.relu(g.batch_norm(g.conv(x, 3, w(16), 5, stride=2, bias=False), w(16)))
    cin = w(16)
    for planes, stride in ((32, 2), (64, 1), (64, 2), (128, 1), (128, 2), (256, 1)):
        cout = w(planes)
        x = g.relu(g.batch_norm(g.conv(x, cin, cin, 3, stride=stride, groups=cin, bias=False), cin))
        x = g.relu(g.batch_norm(g.conv(x, cin, cout, 1, bias=False), cout))
        cin = cout
    x = g.op("Flatten", [g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])], axis=1)
    x = g.relu(g.gemm(x, cin * 3 * 3, w(112)))
    g.op("Gemm", [x, g.random((3, w(112)), fan_in=w(112), gain=0.5), g.const(np.array([0.0, 0.0, 0.3]))],
         output="fc1", transB=1)
    return g.save(path, [tensor_info("data", ["None", 3, 96, 96])], [tensor_info("fc1", ["None", 3])])
