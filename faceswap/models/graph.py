"""Constants the reference implementations read from inside the model files (STYLE: take them from the file).

- insightface decides ArcFace/attribute pre-processing from node names: among the first 8 graph nodes, a `Sub…`
  or `_minus…` node **and** a `Mul…` or `_mul…` node (or, for attribute/landmark models, a `bn_data` node among
  the first 3) mean the graph normalises internally, so it is fed raw pixels (mean 0, std 1).
- inswapper's `emap` (the 512x512 matrix that maps an ArcFace embedding to the swapper's latent) is the graph's
  **last initializer**, consumed by no node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceswap.errors import FaceSwapError


def _load(path: Path | str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as exc:
        raise FaceSwapError("model_not_available", f"{Path(path).name} is not a readable ONNX file: {exc}") from exc


def normalises_internally(path: Path | str, *, allow_bn_data: bool) -> bool:
    """insightface's test for an mxnet-style graph that subtracts and scales its input itself."""
    nodes = _load(path).graph.node[:8]
    names = [node.name for node in nodes]
    has_sub = any(name.startswith(("Sub", "_minus")) for name in names)
    has_mul = any(name.startswith(("Mul", "_mul")) for name in names)
    if allow_bn_data and any(name == "bn_data" for name in names[:3]):
        return True
    return has_sub and has_mul


def last_initializer(path: Path | str, *, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """The graph's last initializer as float32, checked to have `shape` (inswapper's emap)."""
    from onnx import numpy_helper

    graph = _load(path).graph
    if not graph.initializer:
        raise FaceSwapError("model_not_available", f"{Path(path).name} has no initializers, so no emap")
    array = numpy_helper.to_array(graph.initializer[-1])
    if tuple(array.shape) != shape:
        raise FaceSwapError(
            "model_not_available",
            f"{Path(path).name}: the last initializer {graph.initializer[-1].name!r} has shape {tuple(array.shape)}, "
            f"expected the {shape} emap of inswapper_128")
    return np.ascontiguousarray(array, dtype=np.float32)
