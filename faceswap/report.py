"""What a run hands back: the output file and an honest report of what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


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
    frames_missed: list[list[int]] = field(default_factory=list)
    """Runs [first, last] of output frames (0 = the first) with no face swapped (the first 64 runs)."""
    frames_skipped_turned: int = 0
    """Frames on which a chosen face was left untouched because it was turned further than the engine can swap
    (the classic engine's limit; such a frame counts as swapped only if another face on it was)."""
    inference: dict[str, object] = field(default_factory=dict)
    """How the neural models ran: swapper file and precision, restorer precision, IO binding, faces batched."""

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


LOW_COVERAGE = 0.8
"""Below this share of frames with a swapped face, the page and the CLI warn and name the frames."""


def frame_ranges(runs: Sequence[Sequence[int]], shown: int = 8) -> str:
    """[[0, 2], [7, 7]] → "0–2, 7" (the first `shown` runs, then "and N more")."""
    texts = [f"{run[0]}–{run[1]}" if run[1] > run[0] else str(run[0]) for run in runs[:shown]]
    more = f" and {len(runs) - shown} more" if len(runs) > shown else ""
    return ", ".join(texts) + more


def coverage_warning(report: dict[str, Any]) -> str:
    """A warning when few frames had the chosen face swapped, naming the frames without it ('' otherwise)."""
    frames = int(report.get("frames") or 0)
    swapped = int(report.get("frames_swapped") or 0)
    if not frames or swapped / frames >= LOW_COVERAGE:
        return ""
    missed = report.get("frames_missed")
    where = f" No face was swapped on frames {frame_ranges(missed)}." if missed else ""
    return (f"Only {swapped} of {frames} frames ({swapped / frames:.0%}) had the chosen face swapped.{where} "
            "Try another face pick, or selection per_frame.")
