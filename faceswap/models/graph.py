"""Constants the reference implementations read from inside the model files (STYLE: take them from the file).

- insightface decides ArcFace/attribute pre-processing from node names: among the first 8 graph nodes, a `Sub…`
  or `_minus…` node **and** a `Mul…` or `_mul…` node (or, for attribute/landmark models, a `bn_data` node among
  the first 3) mean the graph normalises internally, so it is fed raw pixels (mean 0, std 1).
- inswapper's `emap` (the 512x512 matrix that maps an ArcFace embedding to the swapper's latent) is the graph's
  **last initializer**, consumed by no node.

Both are read without parsing the whole file: `onnx.load` on inswapper_128 (554 MB) holds the whole protobuf in
memory, +0.4–0.5 GB on a neural worker's peak RSS for one 1 MB matrix. Instead the file is memory-mapped and
walked along protobuf's wire format (tag, length, skip), touching only the graph's field headers, the first node
names and the last initializer's bytes; that one initializer is then parsed by onnx itself.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from faceswap.errors import FaceSwapError

# Field numbers from onnx.proto: ModelProto.graph, GraphProto.node / .initializer, NodeProto.name.
MODEL_GRAPH, GRAPH_NODE, GRAPH_INITIALIZER, NODE_NAME = 7, 1, 5, 3
LENGTH_DELIMITED = 2
NODES_LOOKED_AT = 8


class _Malformed(ValueError):
    pass


def _varint(data: mmap.mmap | bytes, position: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= end or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(data: mmap.mmap | bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of the message in data[start:end]."""
    position = start
    while position < end:
        key, position = _varint(data, position, end)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, position = _varint(data, position, end)
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == LENGTH_DELIMITED:
            length, position = _varint(data, position, end)
            if position + length > end:
                raise _Malformed("field runs past its message")
            yield number, position, position + length
            position += length
        else:
            raise _Malformed(f"unsupported wire type {wire_type}")
    if position != end:
        raise _Malformed("message runs past its end")


def _graph_parts(path: Path | str) -> tuple[list[str], bytes | None]:
    """The names of the first nodes and the serialized last initializer (None when there is none)."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            graphs = [(start, end) for number, start, end in _fields(data, 0, len(data)) if number == MODEL_GRAPH]
            if not graphs:
                raise _Malformed("no graph")
            names: list[str] = []
            last: tuple[int, int] | None = None
            for number, start, end in _fields(data, *graphs[-1]):
                if number == GRAPH_NODE and len(names) < NODES_LOOKED_AT:
                    name = [data[s:e] for field, s, e in _fields(data, start, end) if field == NODE_NAME]
                    names.append(name[-1].decode("utf-8", "replace") if name else "")
                elif number == GRAPH_INITIALIZER:
                    last = (start, end)
            return names, (bytes(data[last[0]:last[1]]) if last else None)
    except (OSError, ValueError) as exc:  # _Malformed, an empty file (mmap refuses it) or an unreadable one
        reason = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)  # no host path
        raise FaceSwapError("model_not_available", f"{Path(path).name} is not a readable ONNX file: {reason}") \
            from exc


def normalises_internally(path: Path | str, *, allow_bn_data: bool) -> bool:
    """insightface's test for an mxnet-style graph that subtracts and scales its input itself."""
    names, _ = _graph_parts(path)
    has_sub = any(name.startswith(("Sub", "_minus")) for name in names)
    has_mul = any(name.startswith(("Mul", "_mul")) for name in names)
    if allow_bn_data and any(name == "bn_data" for name in names[:3]):
        return True
    return has_sub and has_mul


def last_initializer(path: Path | str, *, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """The graph's last initializer as float32, checked to have `shape` (inswapper's emap)."""
    from google.protobuf.message import DecodeError
    from onnx import TensorProto, numpy_helper

    _, serialized = _graph_parts(path)
    if serialized is None:
        raise FaceSwapError("model_not_available", f"{Path(path).name} has no initializers, so no emap")
    try:
        tensor = TensorProto.FromString(serialized)
        array = numpy_helper.to_array(tensor, base_dir=str(Path(path).parent))
    except (DecodeError, OSError, ValueError, TypeError) as exc:
        reason = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)  # no host path
        raise FaceSwapError("model_not_available", f"{Path(path).name}: its last initializer cannot be read: "
                                                   f"{reason}") from exc
    if tuple(array.shape) != shape:
        raise FaceSwapError(
            "model_not_available",
            f"{Path(path).name}: the last initializer {tensor.name!r} has shape {tuple(array.shape)}, "
            f"expected the {shape} emap of inswapper_128")
    return np.ascontiguousarray(array, dtype=np.float32)
