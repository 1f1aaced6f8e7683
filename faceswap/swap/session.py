"""The swap session: the one per-frame unit that the pipeline, the preview and a live stream all run.

A session is made once per run from the options (`SwapParams.from_options`), the analyzer, the swapper, the
restorer and the prepared sources, plus a face locator (the tracker for a video, one detection for a still) and a
target selector. `process(frame)` returns the swapped frame and what it found there:

1. locate the faces (tracked or detected) and select the targets with their sources;
2. per target, the crop stages (`swap.stages`): align → box and occlusion masks on the target's crop → swap (at
   the boosted size) → region and area masks on the swapped crop → combine by minimum → paste;
   a swapper that works on the whole frame (classic) does its own warp and blend instead;
3. per target, restore (its own align on the restorer's template → restore → box mask → paste with opacity
   `restore_visibility · restore_blend / 100`; blend 0 skips the restorer, so the swapped face stays as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.engines.base import CropSwapper, FaceAnalyzer, FaceRestorer, FaceSwapper
from faceswap.errors import FaceSwapError
from faceswap.faces.align import Matrix, estimate_similarity, transform_points
from faceswap.faces.paste import Mask
from faceswap.faces.select import Assignment, TargetSelector
from faceswap.faces.track import FaceTracker, TrackedFace
from faceswap.faces.types import Face, Frame
from faceswap.swap import masks, stages

if TYPE_CHECKING:
    from faceswap.options import SwapOptions

FaceLocator = Callable[[Frame, float], list[TrackedFace]]
"""Faces on a frame at a time (seconds), each with a track id and whether its identity needs checking."""

BOX_MASK_BLUR = 0.3
"""The box mask's blur (FaceFusion's default face_mask_blur), a fraction of half the crop."""


@dataclass(frozen=True)
class SwapParams:
    """What a swap session needs from the options: the one place that lists them."""

    pixel_boost: int | None = None
    """Crop size to swap at (a whole multiple of the swapper's size); None: the swapper's own size."""
    mask: tuple[str, ...] = ("box",)
    """Mask types combined by minimum (`swap.masks.MaskType`)."""
    mask_blur: float = BOX_MASK_BLUR
    mask_padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    mask_regions: tuple[str, ...] = tuple(masks.REGION_CLASSES)
    mask_areas: tuple[str, ...] = tuple(masks.AREA_POINTS)
    restore_visibility: float = 1.0
    codeformer_weight: float = 0.95
    restore_blend: int = 100
    """0–100: how much of the restored crop shows over the unrestored (swapped) one (FaceFusion's enhancer blend)."""
    swapper_weight: float = 0.5
    """Identity strength (MODELS.md §17.0 balance); 0.5 leaves the source identity as it is."""

    @classmethod
    def from_options(cls, options: SwapOptions) -> SwapParams:
        return cls(pixel_boost=options.pixel_boost_size, mask=tuple(options.mask), mask_blur=options.mask_blur,
                   mask_padding=options.mask_padding, mask_regions=tuple(options.mask_regions),
                   mask_areas=tuple(options.mask_areas), restore_visibility=options.restore_visibility,
                   codeformer_weight=options.codeformer_weight, restore_blend=options.restore_blend,
                   swapper_weight=options.swapper_weight)

    def boost_factor(self, model_size: int) -> int:
        """t in 'the model runs t² times per face': the boosted size over the model's size."""
        if self.pixel_boost is None:
            return 1
        if self.pixel_boost < model_size or self.pixel_boost % model_size:
            raise FaceSwapError("invalid_request", f"pixel_boost {self.pixel_boost} is not a whole multiple of the "
                                f"swap model's {model_size} px crop.", field="pixel_boost")
        return self.pixel_boost // model_size


@dataclass(frozen=True)
class FrameResult:
    image: Frame
    """The processed frame (the input array itself when nothing was swapped)."""
    faces: int
    """Faces found on the frame."""
    swapped: int
    """Faces swapped on it."""
    skipped_turned: int = 0
    """Chosen faces left untouched because they are turned further than the swapper can handle."""


@dataclass(frozen=True)
class FrameAnalysis:
    """What `SwapSession.analyse` found on a frame: the faces, and which to swap with which source."""

    faces: int
    assignments: Sequence[Assignment]
    """The selector's assignments (face and source index), faces too turned to swap left out."""
    skipped_turned: int = 0


@dataclass(frozen=True)
class Maskers:
    """The model adapters behind the occlusion and region masks (None when that mask is not asked for)."""

    occluder: Any = None
    """`mask(crop) -> Mask` (engines.neural.maskers.XsegOccluder)."""
    parser: Any = None
    """`labels(crop) -> class map` (engines.neural.maskers.BisenetParser)."""
    landmarker: Any = None
    """`landmarks(frame, face) -> (68, 2)` (engines.neural.landmarker.Landmarker68) for the area mask; None: the
    face's own 68 landmarks, or 68 estimated from its five key points."""


class CropFaceStep:
    """The crop stages for a swap-model adapter: align → masks on the target → swap (boosted) → masks on the
    swapped crop → paste through their minimum (MODELS.md §17.3)."""

    def __init__(self, swapper: CropSwapper, params: SwapParams, maskers: Maskers | None = None) -> None:
        self.swapper = swapper
        self.params = params
        self.factor = params.boost_factor(swapper.size)
        self.size = swapper.size * self.factor
        self.template = swapper.template * self.factor
        self.box = masks.box_mask(self.size, params.mask_blur, params.mask_padding) if "box" in params.mask else None
        self.maskers = maskers or Maskers()
        for kind, model in (("occlusion", self.maskers.occluder), ("region", self.maskers.parser)):
            if kind in params.mask and model is None:
                raise FaceSwapError("internal_error", f"the {kind} mask was asked for but its model was not loaded")
        if params.swapper_weight != 0.5 and not getattr(swapper, "weighted", False):
            raise FaceSwapError("invalid_request", f"{swapper.name} cannot honour swapper_weight (it takes no "
                                "identity vector); leave it at 0.5", field="swapper_weight")

    @property
    def batches(self) -> bool:
        """Whether the swapper takes several crops in one call (a free batch dimension)."""
        return bool(getattr(self.swapper, "batches", False)) and hasattr(self.swapper, "swap_crops")

    def __call__(self, frame: Frame, face: Face, source: Any) -> Frame:
        return self.swap_all(frame, [(face, source)], batch=False)

    def swap_all(self, frame: Frame, pairs: Sequence[tuple[Face, Any]], *, batch: bool = True) -> Frame:
        """Every (face, source) of a frame. With a batching swapper and crops that do not overlap, all crops (and
        all pixel-boost phases) go through one model call; the result is the same as one face after the other,
        which is what runs otherwise (a face's crop must see the faces pasted before it where they overlap)."""
        if not (batch and len(pairs) > 1 and self.batches) or self._overlap(frame, [face for face, _ in pairs]):
            for face, source in pairs:
                frame = self._paste(frame, *self._batch([self._prepare(frame, face, source)])[0])
            return frame
        prepared = [self._prepare(frame, face, source) for face, source in pairs]
        for done in self._batch(prepared):
            frame = self._paste(frame, *done)
        return frame

    def _prepare(self, frame: Frame, face: Face, source: Any) -> tuple[Face, Any, Frame, Matrix, list[Mask]]:
        if self.params.swapper_weight != 0.5:
            source = self.swapper.balance(source, frame, face, self.params.swapper_weight)  # type: ignore[attr-defined]
        crop, matrix = stages.align(frame, face.kps, self.template, self.size)
        layers: list[Mask] = [] if self.box is None else [self.box]
        if "occlusion" in self.params.mask:
            layers.append(self.maskers.occluder.mask(crop))
        return face, source, crop, matrix, layers

    def _batch(self, prepared: Sequence[tuple[Face, Any, Frame, Matrix, list[Mask]]]
               ) -> list[tuple[Face, Frame, Matrix, list[Mask]]]:
        """The swapped crop of each prepared face: its t² phases, all faces' together, in one swapper call."""
        phases = [stages.implode(crop, self.factor) for _, _, crop, _, _ in prepared]
        if hasattr(self.swapper, "swap_crops"):
            flat = [phase for face_phases in phases for phase in face_phases]
            sources = [source for (_, source, _, _, _), face_phases in zip(prepared, phases, strict=True)
                       for _ in face_phases]
            swapped = self.swapper.swap_crops(flat, sources)  # type: ignore[attr-defined]
        else:
            swapped = [self.swapper.swap_crop(phase, source) for (_, source, _, _, _), face_phases
                       in zip(prepared, phases, strict=True) for phase in face_phases]
        count = self.factor * self.factor
        return [(face, stages.explode(swapped[index * count:(index + 1) * count], self.factor), matrix, layers)
                for index, (face, _, _, matrix, layers) in enumerate(prepared)]

    def _paste(self, frame: Frame, face: Face, swapped: Frame, matrix: Matrix, layers: list[Mask]) -> Frame:
        layers = list(layers)
        if "region" in self.params.mask:
            layers.append(masks.region_mask(self.maskers.parser.labels(swapped), self.params.mask_regions, self.size))
        if "area" in self.params.mask:
            if self.maskers.landmarker is not None:
                face = face.replace(landmarks=self.maskers.landmarker.landmarks(frame, face))
            points = transform_points(masks.landmarks_68(face), matrix)
            layers.append(masks.area_mask(points, self.params.mask_areas, self.size))
        return stages.paste(frame, swapped, matrix, stages.combine_masks(layers))

    def _overlap(self, frame: Frame, faces: Sequence[Face]) -> bool:
        """Whether any two faces' crop footprints on the frame meet (then batching could change the result)."""
        shapes = [footprint(face.kps, self.template, self.size) for face in faces]
        return any(cv2.intersectConvexConvex(a, b)[0] > 0 for i, a in enumerate(shapes) for b in shapes[i + 1:])


def footprint(kps: NDArray[np.float32], template: NDArray[np.float64], size: int) -> NDArray[np.float32]:
    """The frame quadrilateral (4x2) a crop of `size` on `template` reads and pastes, grown by 2 frame pixels for
    interpolation."""
    matrix = estimate_similarity(kps, template)
    margin = 2.0 * float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # 2 frame pixels in crop pixels
    inverse = cv2.invertAffineTransform(matrix)
    low, high = -margin, size + margin
    corners = np.array([[low, low], [high, low], [high, high], [low, high]], dtype=np.float64)
    return np.ascontiguousarray(corners @ inverse[:, :2].T + inverse[:, 2], dtype=np.float32)


class FrameFaceStep:
    """The minimal adapter for a swapper that warps and blends on the whole frame itself (classic)."""

    def __init__(self, swapper: FaceSwapper) -> None:
        self.swapper = swapper

    def __call__(self, frame: Frame, face: Face, source: Any) -> Frame:
        return self.swapper.swap(frame, face, source)


def face_step(swapper: FaceSwapper | CropSwapper, params: SwapParams,
              maskers: Maskers | None = None) -> Callable[[Frame, Face, Any], Frame]:
    if isinstance(swapper, CropSwapper):
        return CropFaceStep(swapper, params, maskers)
    return FrameFaceStep(swapper)


def still_locator(analyzer: FaceAnalyzer) -> FaceLocator:
    """Every face detected on the frame, each its own uncertain track (a photo or one frame of a video)."""

    def locate(frame: Frame, time: float) -> list[TrackedFace]:
        return [TrackedFace(index, face, uncertain=True) for index, face in enumerate(analyzer.detect(frame, None))]

    return locate


class SwapSession:
    def __init__(self, *, params: SwapParams, analyzer: FaceAnalyzer, swapper: FaceSwapper | CropSwapper,
                 sources: Sequence[Any], selector: TargetSelector, locate: FaceLocator,
                 restorer: FaceRestorer | None = None, maskers: Maskers | None = None) -> None:
        self.params = params
        self.analyzer = analyzer
        self.sources = list(sources)
        self.selector = selector
        self.locate = locate
        self.restorer = restorer
        self._swap_face = face_step(swapper, params, maskers)
        # An engine with a pose limit (classic) names faces it would smear; they are left as they are, and counted.
        self._skip_reason: Callable[[Face], str | None] | None = getattr(swapper, "skip_reason", None)

    @classmethod
    def for_stream(cls, options: SwapOptions, analyzer: FaceAnalyzer, swapper: FaceSwapper | CropSwapper,
                   sources: Sequence[Any], *, restorer: FaceRestorer | None = None,
                   selector: TargetSelector | None = None, tracker: FaceTracker | None = None,
                   maskers: Maskers | None = None) -> SwapSession:
        """A session for consecutive frames (a video, a live stream): faces are tracked from frame to frame."""
        tracker = tracker or FaceTracker(analyzer)
        return cls(params=SwapParams.from_options(options), analyzer=analyzer, swapper=swapper, sources=sources,
                   selector=selector or TargetSelector(options, analyzer), locate=tracker.update, restorer=restorer,
                   maskers=maskers)

    def process(self, frame: Frame, time: float = 0.0) -> FrameResult:
        """The frame with its chosen faces swapped (a new array; `frame` is not changed), and what was found."""
        return self.render(frame, self.analyse(frame, time))

    def analyse(self, frame: Frame, time: float = 0.0) -> FrameAnalysis:
        """Locate and select the faces of a frame (the first half of `process`; frames in display order)."""
        tracked = self.locate(frame, time)
        assignments = self.selector.select(frame, tracked)
        skipped = 0
        if self._skip_reason is not None:
            kept = [assignment for assignment in assignments if self._skip_reason(assignment.face) != "turned"]
            skipped, assignments = len(assignments) - len(kept), kept
        return FrameAnalysis(len(tracked), assignments, skipped)

    def render(self, frame: Frame, analysis: FrameAnalysis) -> FrameResult:
        """Swap (and restore) the faces `analyse` chose on this frame (the second half of `process`). It uses
        neither the tracker nor the selector, so it may run in another thread than `analyse`, one frame behind."""
        assignments, skipped = analysis.assignments, analysis.skipped_turned
        if not assignments:
            return FrameResult(frame, analysis.faces, 0, skipped)
        image = frame.copy()
        pairs = [(assignment.face, self.sources[assignment.source]) for assignment in assignments]
        swap_all = getattr(self._swap_face, "swap_all", None)
        if swap_all is not None:
            image = swap_all(image, pairs)
        else:
            for face, source in pairs:
                image = self._swap_face(image, face, source)
        if self.restorer is not None and self.params.restore_blend > 0:
            opacity = self.params.restore_visibility * self.params.restore_blend / 100
            for assignment in assignments:
                image = self.restorer.restore(image, assignment.face, visibility=opacity,
                                              codeformer_weight=self.params.codeformer_weight)
        return FrameResult(image, analysis.faces, len(assignments), skipped)
