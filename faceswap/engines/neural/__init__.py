"""The neural engine: SCRFD + ArcFace + genderage for analysis, inswapper_128 for the swap.

`load_neural_engine` takes the model files from `ModelStore.ensure(NEURAL_MODELS, ...)` and a `SessionFactory`.
Each file is checked against the exact signature of its slot (a restorer given as ArcFace is refused with a
catalog error), and everything the wrappers need (names, shapes, output order, pre-processing rule, emap) is read
from the files themselves, so files that follow the real interface but name or order things differently work.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from faceswap.engines.base import Engine
from faceswap.engines.neural.analyzer import MATCH_THRESHOLD, NeuralAnalyzer
from faceswap.engines.neural.arcface import ArcFaceEmbedder
from faceswap.engines.neural.genderage import GenderAgeClassifier
from faceswap.engines.neural.inswapper import Inswapper, SourceLatent
from faceswap.engines.neural.scrfd import ScrfdDetector
from faceswap.errors import FaceSwapError
from faceswap.models import graph
from faceswap.models.sessions import SessionFactory
from faceswap.models.signature import require_kind

DETECTOR, RECOGNIZER, GENDERAGE, SWAPPER = "det_10g", "w600k_r50", "genderage", "inswapper_128"
NEURAL_MODELS: tuple[str, ...] = (DETECTOR, RECOGNIZER, GENDERAGE, SWAPPER)

__all__ = ["MATCH_THRESHOLD", "NEURAL_MODELS", "Inswapper", "NeuralAnalyzer", "SourceLatent", "load_neural_engine"]


def load_neural_engine(paths: Mapping[str, Path], sessions: SessionFactory) -> Engine:
    missing = [name for name in NEURAL_MODELS if name not in paths]
    if missing:
        raise FaceSwapError("model_not_available", f"the neural engine needs {', '.join(missing)} as well")

    sessions.preload(paths[name] for name in NEURAL_MODELS)
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

    swap_session = sessions.session(paths[SWAPPER])
    signature = require_kind(swap_session, paths[SWAPPER], "swapper", "face swapper")
    emap = graph.last_initializer(paths[SWAPPER], shape=(512, 512))
    swapper = Inswapper(swap_session, signature, emap, embedder=embedder.embed)

    return Engine(name="neural", analyzer=NeuralAnalyzer(detector, embedder, genderage), swapper=swapper,
                  provider=sessions.provider_for(swap_session), notices=sessions.notices)
