"""Twins for the GPU-side runtime: an inswapper with a free batch dimension, and float16-I/O copies of any twin.

`build_inswapper_batched` follows the real interface (`target` then `source`, `output`, the emap `buff2fs` as the
last initializer) with the batch dimension left free (`N`), and mixes the target into its output so a face that
went through a batch in the wrong slot would show. `half_io_copy` converts a twin with onnxruntime's float16
converter *without* keeping the I/O types: inputs and outputs become float16, the case the adapters' boundary cast
must handle (the published fp16 files keep float32 I/O).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from twins import GraphBuilder, InswapperTwin, tensor


def build_inswapper_batched(path: Path, *, batch: int | str = "N", keep_target: float = 0.5,
                            seed: int = 5) -> InswapperTwin:
    """output = keep_target*target + (1-keep_target)*sigmoid(source @ palette * 3), per batch item."""
    rng = np.random.default_rng(seed)
    emap = (rng.standard_normal((512, 512)) / np.sqrt(512) + np.eye(512)).astype(np.float32)
    palette = rng.standard_normal((512, 3)).astype(np.float32)
    g = GraphBuilder("swapb")
    colour = g.op("Sigmoid", [g.op("Mul", [g.op("MatMul", ["source", g.const(palette)]), g.const(3.0)])])
    colour = g.op("Reshape", [colour, g.const(np.array([-1, 3, 1, 1]), dtype=np.int64)])
    flat = g.op("Add", [g.op("Mul", ["target", g.const(0.0)]), colour])
    mixed = g.op("Add", [g.op("Mul", ["target", g.const(keep_target)]),
                         g.op("Mul", [flat, g.const(1 - keep_target)])])
    g.op("Identity", [mixed], output="output")
    g.save(path, [tensor("target", [batch, 3, 128, 128]), tensor("source", [batch, 512])],
           [tensor("output", [batch, 3, 128, 128])], [numpy_helper.from_array(emap, "buff2fs")])
    return InswapperTwin(path, emap, palette, keep_target)


def half_io_copy(source: Path, target: Path, *, keep_emap: bool = False) -> Path:
    """`source` converted to float16 throughout, inputs and outputs included; `keep_emap`: the last initializer
    (inswapper's emap, used by no node) stays last and float32, as the real fp16 exports keep it."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    emap = onnx.TensorProto()
    if keep_emap:
        emap.CopyFrom(model.graph.initializer[-1])
    converted = convert_float_to_float16(model, keep_io_types=False)
    if keep_emap:
        kept = [init for init in converted.graph.initializer if init.name != emap.name]
        del converted.graph.initializer[:]
        converted.graph.initializer.extend([*kept, emap])
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(target))
    return target
