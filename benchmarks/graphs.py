"""Build ONNX graphs layer by layer with random weights, and count what a graph costs.

`Graph` is a thin layer over `onnx.helper` for building the cost twins: convolutions, linear layers, norms and
activations with He-scaled random weights (so activations stay in a sane range through deep stacks), and a
channel `scale` that shrinks every internal width for the tiny twins of the smoke test while the interface
(input and output shapes) stays exact.

`measure` walks a saved graph the way MODELS.md §16 counts the real files: parameters are the float
initializers, compute is the multiply-adds (MACs) of Conv, ConvTranspose, Gemm and MatMul nodes at the shapes
onnx's shape inference gives (one multiply-add = two FLOPs).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
"""LayerNormalization needs 17; onnxruntime 1.18+ and insightface load it."""
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16}


def tensor_info(name: str, dims: Sequence[int | str | None], dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(dims))


class Graph:
    """Nodes and initializers of one model under construction."""

    def __init__(self, prefix: str, *, seed: int = 0, scale: float = 1.0) -> None:
        self.prefix = prefix
        self.scale = scale
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    # -- naming and constants ------------------------------------------------------------------------------------
    def _next(self) -> int:
        self._count += 1
        return self._count

    def width(self, channels: int, *, multiple: int = 2) -> int:
        """An internal channel count shrunk by `scale` (kept a multiple of `multiple`, at least `multiple`)."""
        if self.scale == 1.0:
            return channels
        return max(multiple, round(channels * self.scale / multiple) * multiple)

    def const(self, value: np.ndarray | float | Sequence[int], name: str | None = None,
              dtype: type = np.float32) -> str:
        name = name or f"{self.prefix}_c{self._next()}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(values), dtype=np.int64)

    def random(self, shape: Sequence[int], fan_in: int, gain: float = math.sqrt(2.0)) -> str:
        """He-scaled normal weights (std = gain / sqrt(fan_in))."""
        std = gain / math.sqrt(max(fan_in, 1))
        return self.const((self.rng.standard_normal(tuple(shape), dtype=np.float32) * std).astype(np.float32))

    def op(self, op_type: str, inputs: Sequence[str], *, name: str | None = None, output: str | None = None,
           **attrs: object) -> str:
        number = self._next()
        out = output or f"{self.prefix}_t{number}"
        node_name = name or f"{self.prefix}_{op_type.lower()}_{number}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=node_name, **attrs))
        return out

    def ops(self, op_type: str, inputs: Sequence[str], outputs: int, **attrs: object) -> list[str]:
        number = self._next()
        outs = [f"{self.prefix}_t{number}_{i}" for i in range(outputs)]
        name = f"{self.prefix}_{op_type.lower()}_{number}"
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs

    # -- layers ----------------------------------------------------------------------------------------------------
    def conv(self, x: str, cin: int, cout: int, kernel: int, *, stride: int = 1, groups: int = 1,
             bias: bool = True, pad: int | None = None, gain: float = math.sqrt(2.0),
             pad_mode: str = "zeros") -> str:
        padding = kernel // 2 if pad is None else pad
        if pad_mode == "reflect" and padding:
            pads = self.ints([0, 0, padding, padding, 0, 0, padding, padding])
            x = self.op("Pad", [x, pads], mode="reflect")
            padding = 0
        weight = self.random((cout, cin // groups, kernel, kernel), fan_in=cin // groups * kernel * kernel, gain=gain)
        inputs = [x, weight] + ([self.const(np.zeros(cout, np.float32))] if bias else [])
        return self.op("Conv", inputs, kernel_shape=[kernel, kernel], strides=[stride, stride],
                       pads=[padding] * 4, group=groups)

    def gemm(self, x: str, features_in: int, features_out: int, *, bias: np.ndarray | float | None = 0.0,
             gain: float = 1.0) -> str:
        """A linear layer on a (batch, features_in) input (weights stored (out, in), as PyTorch exports them)."""
        weight = self.random((features_out, features_in), fan_in=features_in, gain=gain)
        inputs = [x, weight]
        if bias is not None:
            inputs.append(self.const(np.broadcast_to(np.asarray(bias, np.float32), (features_out,)).copy()))
        return self.op("Gemm", inputs, transB=1)

    def matmul(self, x: str, features_in: int, features_out: int, *, gain: float = 1.0) -> str:
        """x (..., features_in) @ W (features_in, features_out): a linear layer on a token sequence."""
        return self.op("MatMul", [x, self.random((features_in, features_out), fan_in=features_in, gain=gain)])

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def leaky(self, x: str, slope: float = 0.2) -> str:
        return self.op("LeakyRelu", [x], alpha=slope)

    def prelu(self, x: str, channels: int) -> str:
        return self.op("PRelu", [x, self.const(np.full((channels, 1, 1), 0.25, np.float32))])

    def swish(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def batch_norm(self, x: str, channels: int) -> str:
        ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        return self.op("BatchNormalization", [x, self.const(ones), self.const(zeros), self.const(zeros),
                                              self.const(ones)], epsilon=1e-5)

    def group_norm(self, x: str, channels: int, groups: int = 32) -> str:
        """GroupNorm as PyTorch exports it before opset 18: reshape to groups, InstanceNormalization, affine."""
        groups = max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)
        shape = self.op("Shape", [x])
        grouped = self.op("Reshape", [x, self.ints([0, groups, -1])])
        normed = self.op("InstanceNormalization", [grouped, self.const(np.ones(groups, np.float32)),
                                                   self.const(np.zeros(groups, np.float32))], epsilon=1e-6)
        back = self.op("Reshape", [normed, shape])
        scaled = self.op("Mul", [back, self.const(np.ones((channels, 1, 1), np.float32))])
        return self.op("Add", [scaled, self.const(np.zeros((channels, 1, 1), np.float32))])

    def instance_norm_decomposed(self, x: str, eps: float = 1e-6) -> str:
        """(x - mean) / sqrt(var + eps) over H, W, spelled out in ReduceMean/Sub/Mul/Sqrt/Div as inswapper is."""
        centred = self.op("Sub", [x, self.op("ReduceMean", [x], axes=[2, 3], keepdims=1)])
        variance = self.op("ReduceMean", [self.op("Mul", [centred, centred])], axes=[2, 3], keepdims=1)
        return self.op("Div", [centred, self.op("Sqrt", [self.op("Add", [variance, self.const(eps)])])])

    def resize(self, x: str, factor: float, mode: str = "linear") -> str:
        scales = self.const(np.array([1, 1, factor, factor], np.float32))
        return self.op("Resize", [x, "", scales], mode=mode,
                       coordinate_transformation_mode="half_pixel" if mode == "linear" else "asymmetric",
                       nearest_mode="floor")

    # -- output ------------------------------------------------------------------------------------------------
    def save(self, path: Path, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
             *, extra_initializers: Sequence[onnx.TensorProto] = ()) -> Path:
        graph = helper.make_graph(self.nodes, path.stem, inputs, outputs,
                                  initializer=[*self.initializers, *extra_initializers])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="faceswap-cost-twin")
        model.ir_version = 8
        onnx.checker.check_model(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
        return path


# ---------------------------------------------------------------------------------------------------- counting
@dataclass(frozen=True)
class Cost:
    params: int
    """Elements of the float initializers, less `excluded`."""
    macs: int
    """Multiply-adds of Conv/ConvTranspose/Gemm/MatMul at the fixed input shapes."""
    macs_by_op: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    """Initializers left out of `params` (e.g. inswapper's emap), by name, with their element counts."""

    @property
    def flops(self) -> int:
        return 2 * self.macs


def _dims(info: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else 0 for d in info.type.tensor_type.shape.dim]


def measure(path: Path | str, *, input_shapes: Mapping[str, Sequence[int]] | None = None,
            exclude: Collection[str] = ()) -> Cost:
    """Parameters and multiply-adds of the ONNX file at `path` (symbolic input axes fixed by `input_shapes`)."""
    model = onnx.load(str(path))
    graph = model.graph
    for value in graph.input:
        fixed = (input_shapes or {}).get(value.name)
        dims = value.type.tensor_type.shape.dim
        for position, dim in enumerate(dims):
            if fixed is not None:
                dim.Clear()
                dim.dim_value = int(fixed[position])
            elif not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_value = 1  # symbolic batch axes count as one
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int]] = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shapes[info.name] = _dims(info)
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)

    params, excluded = 0, {}
    for init in graph.initializer:
        if init.data_type not in FLOAT_TYPES:
            continue
        count = int(np.prod(init.dims)) if init.dims else 1
        if init.name in exclude:
            excluded[init.name] = count
        else:
            params += count

    by_op: dict[str, int] = {}
    for node in inferred.graph.node:
        macs = _node_macs(node, shapes)
        if macs:
            by_op[node.op_type] = by_op.get(node.op_type, 0) + macs
    return Cost(params=params, macs=sum(by_op.values()), macs_by_op=by_op, excluded=excluded)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _node_macs(node: onnx.NodeProto, shapes: Mapping[str, list[int]]) -> int:
    if node.op_type in ("Conv", "ConvTranspose"):
        weight, out = shapes.get(node.input[1], []), shapes.get(node.output[0], [])
        inp = shapes.get(node.input[0], [])
        if len(weight) < 3 or not out:
            return 0
        kernel = int(np.prod(weight[2:]))
        if node.op_type == "Conv":  # weight (cout, cin/groups, k...), output (n, cout, ...)
            return int(np.prod(out)) * weight[1] * kernel
        return int(np.prod(inp)) * weight[1] * kernel  # ConvTranspose: every input element feeds cout/g * k
    if node.op_type == "Gemm":
        a, b = shapes.get(node.input[0], []), shapes.get(node.input[1], [])
        if len(a) != 2 or len(b) != 2:
            return 0
        rows = a[1] if _attr(node, "transA", 0) else a[0]
        inner = a[0] if _attr(node, "transA", 0) else a[1]
        cols = b[0] if _attr(node, "transB", 0) else b[1]
        return rows * inner * cols
    if node.op_type == "MatMul":
        a, out = shapes.get(node.input[0], []), shapes.get(node.output[0], [])
        if not a or not out:
            return 0
        return int(np.prod(out)) * a[-1]
    return 0
