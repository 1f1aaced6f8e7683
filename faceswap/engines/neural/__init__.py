"""The neural engine: SCRFD + ArcFace + genderage for analysis, a registry swapper (inswapper_128 by default).

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
from faceswap.engines.neural.swappers import EmbeddingConverter, EmbeddingSwapper, ImageSourceSwapper
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
    """The files the neural engine needs with `swapper` (a registry name of role `swapper`) and its converter."""
    converter = REGISTRY[swapper].converter if swapper in REGISTRY else None
    return (*ANALYSIS_MODELS, swapper, *((converter,) if converter else ()))


__all__ = ["ANALYSIS_MODELS", "MATCH_THRESHOLD", "NEURAL_MODELS", "Inswapper", "NeuralAnalyzer", "SourceLatent",
           "load_neural_engine", "neural_models"]


FAMILIES: dict[str, str] = {"inswapper": "inswapper", "hyperswap": "hyperswap", "simswap": "embedding",
                            "ghost": "embedding", "hififace": "embedding", "blendswap": "image", "uniface": "image"}
"""The signature family (models.signature) a swapper type's file must have."""


def load_swapper(name: str, path: Path, session: Any, *, embedder: Callable[[Frame, Face], Face],
                 converter: Any = None) -> CropSwapper:
    """The adapter for swapper `name`, after checking that the file's exact signature is that swapper's family.

    The registry entry chosen (`name`) decides the adapter and its normalisation; the file only has to fit that
    entry's family. A file of another family, or one whose signature fits no family, is a catalog error: the
    normalisation is chosen by the entry, so a guess would swap with the wrong one.
    """
    spec = REGISTRY[name]
    signature = require_kind(session, path, "swapper", f"face swapper {name}")
    family = signature.swapper_family()
    expected = adapter_family(spec.swapper_type)
    if expected != family:
        raise FaceSwapError(
            "model_not_available",
            f"{Path(path).name} has the {family} swapper signature ({signature.describe()}), but swapper {name} "
            f"needs a {expected} file. Replace it with the right file (`python -m faceswap models download`) or "
            "choose the swapper that matches it.", field="swapper")
    if family == "inswapper":
        emap = graph.last_initializer(path, shape=(512, 512))
        return Inswapper(session, signature, emap, embedder=embedder, name=name)
    if family == "hyperswap":
        return HyperSwapper(name, session, signature, embedder=embedder)
    if family == "image":
        return ImageSourceSwapper(spec, session, signature, embedder=embedder)
    if converter is None:
        raise FaceSwapError("model_not_available", f"swapper {name} needs its converter {spec.converter} as well")
    return EmbeddingSwapper(spec, session, signature, converter=converter, embedder=embedder)


def adapter_family(swapper_type: str) -> str:
    """The signature family a registry swapper type stands for (`simswap` → `embedding`)."""
    return FAMILIES.get(swapper_type, "unknown")


def load_neural_engine(paths: Mapping[str, Path], sessions: SessionFactory, *, swapper: str = SWAPPER) -> Engine:
    missing = [name for name in neural_models(swapper) if name not in paths]
    if missing:
        raise FaceSwapError("model_not_available", f"the neural engine needs {', '.join(missing)} as well")

    spec = REGISTRY[swapper]
    converts = sessions.precision == "fp16" and spec.precision == "fp32"
    if converts:  # the float32 swapper is never built: its fp16 copy is
        swap_runner = sessions.runner(paths[swapper], half=True)
    sessions.preload(paths[name] for name in neural_models(swapper) if not (converts and name == swapper))
    session = sessions.runner(paths[DETECTOR])
    detector = ScrfdDetector(session, require_kind(session, paths[DETECTOR], "detector", "face detector"))

    session = sessions.runner(paths[RECOGNIZER])
    signature = require_kind(session, paths[RECOGNIZER], "recognizer", "face recognizer")
    embedder = ArcFaceEmbedder(session, signature,
                               raw_pixels=graph.normalises_internally(paths[RECOGNIZER], allow_bn_data=False))

    session = sessions.runner(paths[GENDERAGE])
    signature = require_kind(session, paths[GENDERAGE], "genderage", "gender/age model")
    genderage = GenderAgeClassifier(session, signature,
                                    raw_pixels=graph.normalises_internally(paths[GENDERAGE], allow_bn_data=True))

    converter = None
    if spec.converter:
        name = spec.converter
        session = sessions.runner(paths[name])
        converter = EmbeddingConverter(name, session, require_kind(session, paths[name], "converter",
                                                                   f"embedding converter {name}"))
    if not converts:
        swap_runner = sessions.runner(paths[swapper], published_half=spec.precision == "fp16")
    adapter = load_swapper(swapper, paths[swapper], swap_runner, embedder=embedder.embed, converter=converter)
    inference = {"swapper": swapper, "swapper_precision": swap_runner.precision, "io_binding": swap_runner.io_binding,
                 "batched_faces": bool(getattr(adapter, "batches", False))}
    return Engine(name="neural", analyzer=NeuralAnalyzer(detector, embedder, genderage), swapper=adapter,
                  provider=sessions.provider_for(swap_runner), notices=sessions.notices, inference=inference)
