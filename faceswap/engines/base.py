"""What every engine provides. The pipeline only talks to these interfaces.

An engine is an analyzer (find faces, embed them, tell gender) plus a swapper (put a prepared source face onto a
target face in a frame). Both engines fill the same `Face` record, so selection, tracking, restoration and
paste-back do not care which engine found the face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from faceswap.faces.types import BBox, Face, Frame

EngineName = Literal["classic", "neural"]


class FaceAnalyzer(Protocol):
    name: EngineName
    has_gender: bool
    match_threshold: float
    """Cosine similarity of two normalised embeddings above which they are taken for the same person."""

    def detect(self, frame: Frame, regions: Sequence[BBox] | None = None) -> list[Face]:
        """Faces with bbox, score and 5 key points (and dense landmarks when the engine has them), no embedding.

        `regions=None` searches the whole frame. With regions (boxes of faces seen on the previous frame), the
        analyzer may search only around them; it returns the faces it found there, in any order.
        """
        ...

    def embed(self, frame: Frame, face: Face) -> Face:
        """The same face with `embedding` (L2-normalised) filled in."""
        ...

    def classify_gender(self, frame: Frame, face: Face) -> Face:
        """The same face with `gender` (and `age` when known) filled in; engines without a gender model raise
        `invalid_request` saying so."""
        ...


class FaceSwapper(Protocol):
    """A swapper that works on the whole frame itself (the classic engine warps landmarks and blends on its own)."""

    name: str

    def prepare_source(self, image: Frame, face: Face) -> Any:
        """Everything the swapper needs from one face of the face photo, computed once per run."""
        ...

    def swap(self, frame: Frame, target: Face, source: Any) -> Frame:
        """Put the source face onto `target` and return the frame.

        Only the target face's region changes. The frame may be modified in place: the pipeline passes a frame
        it owns and uses the returned array.
        """
        ...


@runtime_checkable
class CropSwapper(Protocol):
    """A swap model adapter: one aligned crop in, the swapped crop out. The swap session aligns, masks and pastes."""

    name: str
    """The model's registry name (`inswapper_128`)."""
    size: int
    """The model's crop size in pixels."""
    template: NDArray[np.float64]
    """Five-point template at `size` (faces.align)."""

    def prepare_source(self, image: Frame, face: Face) -> Any:
        """Everything the swapper needs from one face of the face photo, computed once per run."""
        ...

    def swap_crop(self, crop: Frame, source: Any) -> Frame:
        """The swapped face for an aligned BGR uint8 crop of `size`, as a BGR uint8 crop of the same size."""
        ...


class FaceRestorer(Protocol):
    name: str

    def restore(self, frame: Frame, face: Face, *, visibility: float, codeformer_weight: float) -> Frame:
        """Restore the face at `face.kps` and blend it over the frame by `visibility`; only its region changes."""
        ...


@dataclass
class Engine:
    """An analyzer and a swapper that work together, plus what the user should know about the choice."""

    name: EngineName
    analyzer: FaceAnalyzer
    swapper: FaceSwapper | CropSwapper
    notices: list[str] = field(default_factory=list)
    provider: str = "cpu"
    """Where inference runs: 'cpu' for classic, the onnxruntime provider actually used for neural."""
    inference: dict[str, object] = field(default_factory=dict)
    """How the models run (neural): the swapper file, its precision, IO binding, faces batched per call."""

    def with_notice(self, notice: str) -> Engine:
        """A copy that shares the loaded models and carries one more notice for the report."""
        return replace(self, notices=[*self.notices, notice])
