"""The neural engine's FaceAnalyzer: SCRFD detection, ArcFace embeddings, genderage.

`regions` is accepted and ignored: the detector always searches the whole frame. On a CPU the swap model costs
about eight times the detector per face (MODELS.md §16), so cropping detection to the previous frame's boxes would
save little and would miss faces that walk in.
"""

from __future__ import annotations

from collections.abc import Sequence

from faceswap.engines.base import EngineName
from faceswap.engines.neural.arcface import ArcFaceEmbedder
from faceswap.engines.neural.genderage import GenderAgeClassifier
from faceswap.engines.neural.scrfd import ScrfdDetector
from faceswap.faces.types import BBox, Face, Frame

MATCH_THRESHOLD = 0.35
"""Cosine similarity of two ArcFace (w600k_r50) embeddings above which they are the same person.

One person across the frames of a video typically scores 0.6–0.9 with this model, while two different people score
around 0 (impostor scores rarely pass 0.25); published verification thresholds for buffalo_l sit near 0.28–0.4.
0.35 keeps a margin on both sides: pose and lighting changes stay matched, strangers stay apart."""


class NeuralAnalyzer:
    name: EngineName = "neural"
    has_gender = True
    match_threshold = MATCH_THRESHOLD

    def __init__(self, detector: ScrfdDetector, embedder: ArcFaceEmbedder, genderage: GenderAgeClassifier) -> None:
        self.detector = detector
        self.embedder = embedder
        self.genderage = genderage

    def detect(self, frame: Frame, regions: Sequence[BBox] | None = None) -> list[Face]:
        return self.detector.detect(frame)

    def embed(self, frame: Frame, face: Face) -> Face:
        return self.embedder.embed(frame, face)

    def classify_gender(self, frame: Frame, face: Face) -> Face:
        return self.genderage.classify(frame, face)
