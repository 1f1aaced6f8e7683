"""Swap engines: neural (inswapper_128) and classic (offline landmark warp), behind one interface."""

from faceswap.engines.base import Engine, EngineName, FaceAnalyzer, FaceRestorer, FaceSwapper

__all__ = ["Engine", "EngineName", "FaceAnalyzer", "FaceRestorer", "FaceSwapper"]
