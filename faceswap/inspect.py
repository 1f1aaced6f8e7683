"""Single-frame helpers for people choosing faces: list the faces on a frame, preview a swapped frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceswap.errors import FaceSwapError
from faceswap.faces.order import order_faces
from faceswap.faces.select import TargetSelector
from faceswap.faces.types import Face, Frame
from faceswap.media.decode import read_frame
from faceswap.media.images import load_image
from faceswap.media.probe import probe_video
from faceswap.options import EngineChoice, Order, SwapOptions
from faceswap.pipeline import check_engine_supports, prepare_sources, seed_from_reference_frame
from faceswap.runtime import Runtime
from faceswap.swap.session import SwapParams, SwapSession, still_locator

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
THUMBNAIL_SIZE = 128


@dataclass(frozen=True)
class FoundFace:
    index: int
    """Position in the requested order: what to pass as a target or source index."""
    bbox: tuple[int, int, int, int]
    score: float
    gender: str | None
    age: int | None
    thumbnail: Frame = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "box": list(self.bbox), "score": round(self.score, 4), "gender": self.gender,
                "age": self.age}


@dataclass(frozen=True)
class FaceListing:
    engine: str
    frame_index: int
    frame_count: int
    """Frames in the video (1 for a photo)."""
    faces: list[FoundFace]
    notices: list[str]

    def to_dict(self) -> dict[str, object]:
        return {"engine": self.engine, "frame": self.frame_index, "frame_count": self.frame_count,
                "faces": [face.to_dict() for face in self.faces], "notices": self.notices}


@dataclass(frozen=True)
class PreviewResult:
    image: Frame
    engine: str
    faces_swapped: int
    notices: list[str]


def load_still(path: Path, runtime: Runtime, frame: int = 0) -> tuple[Frame, int, int]:
    """(image, frame index used, frame count) for a photo or a frame of a video."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return load_image(path, runtime.settings), 0, 1
    info = probe_video(path, runtime.settings)
    if frame < 0:
        raise FaceSwapError("invalid_request", f"The frame number must be 0 or more, got {frame}.", field="frame")
    index = min(frame, max(info.frame_count - 1, 0))
    return read_frame(info, index), index, info.frame_count


def find_faces(path: Path, runtime: Runtime, *, frame: int = 0, order: Order = "left_to_right",
               engine: EngineChoice = "auto") -> FaceListing:
    """The faces on one frame of a video (or in a photo), in `order`, with thumbnails and gender when known."""
    image, index, count = load_still(Path(path), runtime, frame)
    chosen = runtime.engine(engine)
    faces = chosen.analyzer.detect(image, None)
    if chosen.analyzer.has_gender:
        faces = [chosen.analyzer.classify_gender(image, face) for face in faces]
    found = [FoundFace(i, _int_box(face), float(face.score), face.gender, face.age, thumbnail(image, face))
             for i, face in enumerate(order_faces(faces, order))]
    return FaceListing(chosen.name, index, count, found, list(chosen.notices))


def preview_frame(options: SwapOptions, runtime: Runtime, frame: int) -> PreviewResult:
    """One frame swapped as the whole run would swap it: indices count on `options.reference_frame` when it is
    given (track mode), and the people picked there are found on this frame by identity; else they count on this
    frame."""
    video, index, _ = load_still(Path(options.video), runtime, frame)
    engine = runtime.engine(options.engine, swapper=options.swapper)
    check_engine_supports(options, engine)
    sources = prepare_sources(load_image(Path(options.face), runtime.settings), options, engine)
    reference = options.reference_frame
    if reference is not None and reference != index and options.selection == "track" and \
            options.target_faces != "all":
        selector = TargetSelector(options, engine.analyzer)
        seed_from_reference_frame(selector, probe_video(Path(options.video), runtime.settings), options, engine)
    else:
        selector = TargetSelector(options.model_copy(update={"selection": "per_frame"}), engine.analyzer)
    restorer = runtime.restorer(options.restore) if options.restore != "none" else None
    session = SwapSession(params=SwapParams.from_options(options), analyzer=engine.analyzer, swapper=engine.swapper,
                          sources=sources, selector=selector, locate=still_locator(engine.analyzer), restorer=restorer,
                          maskers=runtime.maskers(options))
    result = session.process(video)
    return PreviewResult(result.image, engine.name, result.swapped, list(engine.notices))


def thumbnail(image: Frame, face: Face, size: int = THUMBNAIL_SIZE) -> Frame:
    """A square crop around the face with some margin, `size` pixels wide."""
    cx, cy = face.center
    half = max(face.width, face.height) * 0.8
    scale = size / (2 * half)
    matrix = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _int_box(face: Face) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (round(float(v)) for v in face.bbox)
    return x1, y1, x2, y2
