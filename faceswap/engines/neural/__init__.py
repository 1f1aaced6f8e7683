"""The neural engine: SCRFD + ArcFace + genderage for analysis, inswapper_128 for the swap.

`load_neural_engine` takes the model files from `ModelStore.ensure(NEURAL_MODELS, ...)` and a `SessionFactory`.
Each file is checked against the exact signature of its slot (a restorer given as ArcFace is refused with a
catalog error), and everything the wrappers need (names, shapes, output order, pre-processing rule, emap) is read
from the files themselves, so files that follow the real interface but name or order things differently work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from faceswap.engines.base import CropSwapper, Engine
from faceswap.engines.neural.analyzer import MATCH_THRESHOLD, NeuralAnalyzer
from faceswap.engines.neural.arcface import ArcFaceEmbedder
from faceswap.engines.neural.genderage import GenderAgeClassifier
from faceswap.engines.neural.hyperswap import HyperSwapper
from faceswap.engines.neural.inswapper import Inswapper, SourceLatent
from faceswap.engines.neural.scrfd import ScrfdDetector
from faceswap.errors import FaceSwapError
from faceswap.faces.types import Face, Frame
from faceswap.models import graph
from faceswap.models.registry import REGISTRY
from faceswap.models.sessions import SessionFactory
from faceswap.models.signature import require_kind

DETECTOR, RECOGNIZER, GENDERAGE, SWAPPER = "det_10g", "w600k_r50", "genderage", "inswapper_128"
ANALYSIS_MODELS: tuple[str, ...] = (DETECTOR, RECOGNIZER, GENDERAGE)
NEURAL_MODELS: tuple[str, ...] = (*ANALYSIS_MODELS, SWAPPER)
"""The files of the neural engine with the default swapper."""


def neural_models(swapper: str = SWAPPER) -> tuple[str, ...]:
    """The files the neural engine needs with `swapper` (a registry name of role `swapper`)."""
    return (*ANALYSIS_MODELS, swapper)


__all__ = ["ANALYSIS_MODELS", "MATCH_THRESHOLD", "NEURAL_MODELS", "Inswapper", "NeuralAnalyzer", "SourceLatent",
           "load_neural_engine", "neural_models"]


def load_swapper(name: str, path: Path, session: Any, *, embedder: Callable[[Frame, Face], Face]) -> CropSwapper:
    """The adapter for swapper `name`, after checking that the file's exact signature is that swapper's family.

    A file of another family, or one whose signature fits no family (or several), is a catalog error: the
    normalisation is chosen by the family, so a guess would swap with the wrong one.
    """
    signature = require_kind(session, path, "swapper", f"face swapper {name}")
    family = signature.swapper_family()
    expected = REGISTRY[name].adapter
    if adapter_family(expected) != family:
        raise FaceSwapError(
            "model_not_available", f"{Path(path).name} is a {family} model ({signature.describe()}), but swapper "
            f"{name} needs a {adapter_family(expected)} file. Replace it with the right file "
            "(`python -m faceswap models download`) or choose the swapper that matches it.", field="swapper")
    if family == "inswapper":
        emap = graph.last_initializer(path, shape=(512, 512))
        return Inswapper(session, signature, emap, embedder=embedder)
    return HyperSwapper(name, session, signature, embedder=embedder)


def adapter_family(adapter: str) -> str:
    """The swapper family an adapter class path stands for (`...:Inswapper` → `inswapper`)."""
    return {"Inswapper": "inswapper", "HyperSwapper": "hyperswap"}.get(adapter.partition(":")[2], "unknown")


def load_neural_engine(paths: Mapping[str, Path], sessions: SessionFactory, *, swapper: str = SWAPPER) -> Engine:
    missing = [name for name in neural_models(swapper) if name not in paths]
    if missing:
        raise FaceSwapError("model_not_available", f"the neural engine needs {', '.join(missing)} as well")

    sessions.preload(paths[name] for name in neural_models(swapper))
    session = sessions.session(paths[DETECTOR])
    detector = ScrfdDetector(session, require_kind(session, paths[DETECTOR], "detector", "face detector"))

    session = sessions.session(paths[RECOGNIZER])
    signature = require_kind(session, paths[RECOGNIZER], "recognizer", "face recognizer")
    embedder = ArcFaceEmbedder(session, signature,
                               raw_pixels=graph.normalises_internally(paths[RECOGNIZER], allow_bn_data=False))

    session = sessions.session(paths[GENDERAGE])
    signature = require_kind(session, paths[GENDERAGE], "genderage", "gender/age model")
    genderage = GenderAgeClassifier(session, signature,
                                    raw_pixels=graph.normalises_internally(paths[GENDERAGE], allow_bn_data=True))

    swap_session = sessions.session(paths[swapper])
    adapter = load_swapper(swapper, paths[swapper], swap_session, embedder=embedder.embed)
    return Engine(name="neural", analyzer=NeuralAnalyzer(detector, embedder, genderage), swapper=adapter,
                  provider=sessions.provider_for(swap_session), notices=sessions.notices)
