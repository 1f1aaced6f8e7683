"""What a run hands back: the output file and an honest report of what happened."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Progress:
    frames_done: int
    frames_total: int
    stage: str = "swapping"

    @property
    def fraction(self) -> float:
        return min(self.frames_done / self.frames_total, 1.0) if self.frames_total else 0.0


@dataclass(frozen=True)
class FaceCounts:
    min: int = 0
    max: int = 0
    mean: float = 0.0


@dataclass(frozen=True)
class SwapReport:
    engine: str
    """The engine that really ran: 'neural' or 'classic'."""
    provider: str
    """Where inference ran: 'cpu' for classic, the onnxruntime provider for neural."""
    frames: int
    frames_swapped: int
    faces_per_frame: FaceCounts
    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool
    output_format: str
    restore: str
    elapsed_s: float
    notices: list[str] = field(default_factory=list)
    frames_skipped_turned: int = 0
    """Frames on which a chosen face was left untouched because it was turned further than the engine can swap
    (the classic engine's limit; such a frame counts as swapped only if another face on it was)."""

    @property
    def coverage(self) -> float:
        return self.frames_swapped / self.frames if self.frames else 0.0

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["coverage"] = round(self.coverage, 4)
        return data


@dataclass(frozen=True)
class SwapResult:
    output: Path
    report: SwapReport

    def to_dict(self) -> dict[str, object]:
        return {"output": str(self.output), **self.report.to_dict()}
