"""Face restoration after the swap: GFPGAN 1.4, CodeFormer, GPEN-BFR 256–2048 and RestoreFormer++ (ONNX).

The registry entry the user chose (`restore`, `models.registry.RESTORE_CHOICES`) decides the template, the crop size
and whether a fidelity weight is fed; the file only has to have that entry's exact signature. GFPGAN, GPEN-BFR-512
and RestoreFormer++ share one signature (`input` [1,3,512,512] → [1,3,512,512]) and one pre/post-processing, so
the signature cannot and need not tell them apart; a file of another size, a weighted file given as an unweighted
restorer (or the reverse), or a file whose size is not fixed, is refused with a catalog error instead of a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from faceswap.engines.base import FaceRestorer
from faceswap.errors import FaceSwapError
from faceswap.models.registry import REGISTRY, RESTORE_CHOICES
from faceswap.models.sessions import SessionFactory
from faceswap.models.signature import require_kind
from faceswap.restore.restorer import OnnxRestorer

RESTORER_MODELS: dict[str, tuple[str, ...]] = {kind: (name,) for kind, name in RESTORE_CHOICES.items()}
WEIGHTED = frozenset({"codeformer"})
"""Restorers whose file takes a fidelity weight (`weight` or `w`, float64 [1])."""

__all__ = ["RESTORER_MODELS", "OnnxRestorer", "load_restorer"]


def load_restorer(kind: str, paths: Mapping[str, Path], sessions: SessionFactory) -> FaceRestorer:
    if kind not in RESTORER_MODELS:
        raise FaceSwapError("invalid_request", f"unknown restorer {kind!r}; choose from {', '.join(RESTORER_MODELS)}",
                            field="restore")
    (name,) = RESTORER_MODELS[kind]
    if name not in paths:
        raise FaceSwapError("model_not_available", f"the {kind} restorer needs the model file {name}")
    spec = REGISTRY[name]
    session = sessions.runner(paths[name], half=True)
    expected = "weighted_restorer" if kind in WEIGHTED else "restorer"
    signature = require_kind(session, paths[name], expected, f"{kind} restorer")
    size = signature.image_input().shape[2]
    if size != spec.input_size:
        raise FaceSwapError(
            "model_not_available",
            f"{Path(paths[name]).name} cannot be used as the {kind} restorer: it restores {size} px faces, but "
            f"{kind} works at {spec.input_size} px ({signature.describe()}). Replace it with the right file "
            f"(`python -m faceswap models download {name}`) or choose the restorer that matches it.", field="restore")
    return OnnxRestorer(kind, session, signature, template=spec.template)
