"""How face indices count: from the image's left, or largest first. Also the gender filter applied before it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from faceswap.faces.types import Face
from faceswap.options import Gender, Order

T = TypeVar("T")


def order_faces(items: Sequence[T], order: Order, face_of: Callable[[T], Face] = lambda item: item) -> list[T]:
    """`items` sorted so that index 0 is the leftmost (by box centre) or the largest (by box area) face.

    Ties break on the other criterion and then top to bottom, so the order never depends on detector output order.
    """
    def key(item: T) -> tuple[float, float, float]:
        face = face_of(item)
        cx, cy = face.center
        if order == "largest_first":
            return (-round(face.area, 1), cx, cy)
        return (round(cx, 1), -face.area, cy)

    return sorted(items, key=key)


def matches_gender(face: Face, wanted: Gender) -> bool:
    return wanted == "any" or face.gender == wanted
