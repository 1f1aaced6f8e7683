"""The classic engine: offline face swap from packages alone (dlib-bin and face_recognition_models).

dlib finds faces (HOG), their 68 landmarks and a 128-d identity descriptor; the swap warps the source face onto
the target's landmarks, matches its colour to the target's skin and feathers it in. Nothing is downloaded.
"""

from __future__ import annotations

from faceswap.engines.base import Engine
from faceswap.engines.classic.analyzer import ClassicAnalyzer
from faceswap.engines.classic.swapper import ClassicSource, ClassicSwapper
from faceswap.errors import FaceSwapError

__all__ = ["ClassicAnalyzer", "ClassicSource", "ClassicSwapper", "load_classic_engine"]


def load_classic_engine() -> Engine:
    """Load dlib's models from the face_recognition_models wheel (about 100 MB read, once per Runtime)."""
    try:
        import face_recognition_models
    except ImportError as e:
        raise FaceSwapError("model_not_available",
                            "The classic engine needs the face_recognition_models package: "
                            "pip install face_recognition_models") from e
    analyzer = ClassicAnalyzer(face_recognition_models.pose_predictor_model_location(),
                               face_recognition_models.face_recognition_model_location(),
                               face_recognition_models.cnn_face_detector_model_location())
    return Engine(name="classic", analyzer=analyzer, swapper=ClassicSwapper(), provider="cpu")
