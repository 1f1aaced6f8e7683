"""Face thumbnails for the galleries and the picks a person makes by clicking them (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np

from faceswap.faces.types import Frame

Thumb = tuple[np.ndarray, str]
"""(RGB thumbnail, caption): what a gallery shows for one face; kept in a `gr.State` between clicks."""

PICK_COLOUR = (34, 197, 94)  # RGB green
BORDER = 6
PICKED_MARK = "✓"
"""After a picked person's caption. Captions stay this short ("Person 3 ✓") so a thumbnail shows them whole at
1366 px wide; the pick order is the number in the green disc and the "Replacing ..." line under the gallery."""


def thumbs_from_listing(faces: Sequence[object]) -> list[Thumb]:
    """Gallery entries for `FoundFace`s: the BGR thumbnail turned RGB, captioned as a person ("Person 1" is
    index 0: people count from one, the API's indices from zero). Gender and age stay in the listing (the
    developers' JSON): in a caption they were cut off ("Person 3 (male, 3…")."""
    return [(np.ascontiguousarray(face.thumbnail[:, :, ::-1]), person(face.index)) for face in faces]


def person(index: int) -> str:
    """How the page names the face at API index `index`."""
    return f"Person {index + 1}"


def picked_summary(picks: Sequence[int], what: str = "Replacing") -> str:
    """One line naming the picked people in pick order: "Replacing Person 3." / "... Person 3, then Person 1."."""
    if not picks:
        return ""
    return f"{what} {', then '.join(person(pick) for pick in picks)}."


def parse_picks(text: str | None) -> list[int]:
    """The indices in `text` in the order typed ("2, 0" → [2, 0]); anything that is not a number is ignored, so a
    half-typed entry never breaks clicking (the swap itself validates the text strictly)."""
    seen: list[int] = []
    for token in re.findall(r"\d+", text or ""):
        if int(token) not in seen:
            seen.append(int(token))
    return seen


def toggle_pick(picks: list[int], index: int) -> list[int]:
    """Unpick `index` when picked, else add it at the end (its pairing position)."""
    return [pick for pick in picks if pick != index] if index in picks else [*picks, index]


def format_picks(picks: Sequence[int]) -> str:
    return ",".join(str(pick) for pick in picks)


def gallery_items(thumbs: Sequence[Thumb], picks: Sequence[int]) -> list[tuple[np.ndarray, str]]:
    """Thumbnails with the picked ones framed in green, numbered in pick order (which pairs them with the photo's
    faces), and their captions ticked."""
    items = []
    for index, (image, caption) in enumerate(thumbs):
        if index in picks:
            position = list(picks).index(index) + 1
            items.append((mark_picked(image, position), f"{caption} {PICKED_MARK}"))
        else:
            items.append((image, caption))
    return items


def mark_picked(image: Frame, position: int) -> Frame:
    """A copy with a green frame and the pick number in a green disc at the top-left corner."""
    marked = image.copy()
    height, width = marked.shape[:2]
    cv2.rectangle(marked, (0, 0), (width - 1, height - 1), PICK_COLOUR, BORDER * 2)
    radius = max(12, width // 8)
    centre = (BORDER + radius, BORDER + radius)
    cv2.circle(marked, centre, radius, PICK_COLOUR, -1, lineType=cv2.LINE_AA)
    label = str(position)
    scale = radius / 16
    (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(marked, label, (centre[0] - text_w // 2, centre[1] + text_h // 2), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (255, 255, 255), 2, cv2.LINE_AA)
    return marked
