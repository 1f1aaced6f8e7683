"""Face restoration after the swap: GFPGAN 1.4 and CodeFormer (ONNX), with weight and visibility."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from faceswap.engines.base import FaceRestorer
from faceswap.errors import FaceSwapError
from faceswap.models.sessions import SessionFactory
from faceswap.models.signature import require_kind
from faceswap.restore.restorer import OnnxRestorer

RESTORER_MODELS: dict[str, tuple[str, ...]] = {"gfpgan": ("gfpgan_1.4",), "codeformer": ("codeformer",)}
_EXPECTED = {"gfpgan": "restorer", "codeformer": "weighted_restorer"}

__all__ = ["RESTORER_MODELS", "OnnxRestorer", "load_restorer"]


def load_restorer(kind: str, paths: Mapping[str, Path], sessions: SessionFactory) -> FaceRestorer:
    if kind not in RESTORER_MODELS:
        raise FaceSwapError("invalid_request", f"unknown restorer {kind!r}; choose from {', '.join(RESTORER_MODELS)}",
                            field="restore")
    (name,) = RESTORER_MODELS[kind]
    if name not in paths:
        raise FaceSwapError("model_not_available", f"the {kind} restorer needs the model file {name}")
    session = sessions.runner(paths[name], half=True)
    signature = require_kind(session, paths[name], _EXPECTED[kind], f"{kind} restorer")
    return OnnxRestorer(kind, session, signature)
