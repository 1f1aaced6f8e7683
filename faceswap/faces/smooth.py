"""Temporal smoothing of face geometry, so a swapped face does not jitter between frames.

A One Euro filter (Casiez et al., CHI 2012): a low-pass filter whose cut-off rises with speed, so a still face is
held steady while a moving face is followed without lag. Points are filtered in units of the face's size, which
keeps one set of parameters right for small and large faces alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class SmoothingParams:
    min_cutoff_hz: float = 0.5
    """Cut-off for a still face: lower holds it steadier, higher follows small real motion."""
    beta: float = 3.0
    """How fast the cut-off rises with speed (in face sizes per second): higher means less lag on fast motion."""
    derivative_cutoff_hz: float = 1.0


def _alpha(cutoff_hz: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters an array of points (any shape) over time. One instance per tracked face."""

    def __init__(self, params: SmoothingParams = SmoothingParams()) -> None:
        self.params = params
        self._value: NDArray[np.float64] | None = None
        self._speed: NDArray[np.float64] | None = None
        self._time: float | None = None

    def __call__(self, points: NDArray[np.floating], time: float, scale: float) -> NDArray[np.float32]:
        """Smoothed `points` (pixels) at `time` seconds; `scale` (the face's size in pixels) normalises speed."""
        value = np.asarray(points, dtype=np.float64)
        if self._value is None or self._time is None or time <= self._time or self._value.shape != value.shape:
            self._value, self._speed, self._time = value, np.zeros_like(value), time
            return value.astype(np.float32)
        dt = time - self._time
        a_d = _alpha(self.params.derivative_cutoff_hz, dt)
        self._speed = a_d * (value - self._value) / dt + (1 - a_d) * self._speed
        cutoff = self.params.min_cutoff_hz + self.params.beta * np.abs(self._speed) / max(scale, 1.0)
        a = 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))
        self._value = a * value + (1 - a) * self._value
        self._time = time
        return self._value.astype(np.float32)
