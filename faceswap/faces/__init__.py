"""Faces: the shared Face record, ordering, selection and tracking across frames."""

from faceswap.faces.types import BBox, Face, Frame, KeyPoints

__all__ = ["BBox", "Face", "Frame", "KeyPoints"]
