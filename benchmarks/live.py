"""End-to-end latency and frame rate of the live path (not a test): a simulated camera → `LiveHub`/`LiveSession`.

    python -m benchmarks.live                                  # classic engine, 640x480 and 320x240, 15 s each
    python -m benchmarks.live --seconds 5 --sizes 640x480
    python -m benchmarks.live --engine neural --models benchmarks/models/faces-1   # on cost twins (build them first)

A camera thread makes a frame every 1/fps s (Tom Hanks' face from insightface's photo, sliding to and fro, on a
textured background) and leaves only the newest in a one-frame slot, as a browser's webcam stream does; the swap
loop takes the newest frame whenever it is free, so frames that arrive while it works are dropped, never queued.
Latency is capture → swapped frame out (the wait in the slot plus the swap); the browser's round trip on loopback
adds a few ms on top. fps is swapped frames per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from benchmarks import clips


def camera_frames(width: int, height: int, count: int = 30) -> list[np.ndarray]:
    mf = clips.media_factory()
    side = min(width, height) // 2
    face = cv2.resize(mf.hanks_photo(), (side, side), interpolation=cv2.INTER_CUBIC)
    scene = mf.background(width, height)
    frames = []
    for i in range(count):
        image = scene.copy()
        x = (width - side) // 2 + round(side / 30 * np.sin(2 * np.pi * i / count))
        y = (height - side) // 2
        image[y:y + side, x:x + side] = face
        frames.append(np.ascontiguousarray(image[..., ::-1]))  # RGB, as the browser sends
    return frames


class Camera:
    """Frames at `fps` into a one-frame slot (newest wins), each stamped with its capture time."""

    def __init__(self, frames: list[np.ndarray], fps: float) -> None:
        self.frames, self.interval = frames, 1.0 / fps
        self.made = 0
        self._slot: tuple[float, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Camera:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                self._slot = (time.monotonic(), self.frames[self.made % len(self.frames)])
            self.made += 1
            self._stop.wait(max(0.0, start + self.made * self.interval - time.monotonic()))

    def take(self) -> tuple[float, np.ndarray] | None:
        with self._lock:
            taken, self._slot = self._slot, None
        return taken


def run_one(hub: object, face: Path, engine: str, size: tuple[int, int], seconds: float, fps: float
            ) -> dict[str, object]:
    from faceswap.live import LiveConfig

    session = hub.open("bench", LiveConfig(face=str(face), engine=engine))  # type: ignore[attr-defined]
    frames = camera_frames(*size)
    for frame in frames[:2]:  # warm-up (first inference allocations)
        session.process(frame)
    latencies: list[float] = []
    swapped = 0
    with Camera(frames, fps) as camera:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            taken = camera.take()
            if taken is None:
                time.sleep(0.001)
                continue
            captured, frame = taken
            out = session.process(frame)
            latencies.append(time.monotonic() - captured)
            swapped += out is not None and session.stats().swapped > 0
        elapsed = time.monotonic() - started
        made = camera.made
    hub.close("bench")  # type: ignore[attr-defined]
    ms = sorted(1000 * value for value in latencies)
    return {"engine": session.engine, "size": f"{size[0]}x{size[1]}", "camera fps": f"{fps:g}",
            "fps": f"{len(ms) / elapsed:.1f}", "latency p50 ms": f"{statistics.median(ms):.0f}",
            "latency p95 ms": f"{ms[int(0.95 * (len(ms) - 1))]:.0f}",
            "dropped": f"{100 * (1 - len(ms) / max(made, 1)):.0f}%", "frames with a swap": f"{swapped}/{len(ms)}"}


def table(rows: Sequence[dict[str, object]]) -> str:
    heads = list(rows[0])
    cells = [heads, *[[str(row[h]) for h in heads] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(heads))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("classic", "neural"), default="classic")
    parser.add_argument("--models", type=Path, help="a cost-twin models dir (benchmarks/models/faces-1) for neural")
    parser.add_argument("--sizes", nargs="+", default=["640x480", "320x240"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--fps", type=float, default=30.0, help="the simulated camera's frame rate")
    args = parser.parse_args(argv)

    from faceswap.config import Settings
    from faceswap.live import LiveHub
    from faceswap.runtime import Runtime

    scratch = Path(tempfile.mkdtemp(prefix="live-bench-"))
    if args.engine == "neural":
        if args.models is None:
            parser.error("--engine neural needs --models (build the cost twins: python -m benchmarks.cost_twins)")
        from benchmarks.harness import twin_runtime

        runtime = twin_runtime(args.models, scratch)
    else:
        runtime = Runtime(Settings.from_env().with_(data_dir=scratch, allow_model_download=False))
    face = scratch / "astronaut.png"
    cv2.imwrite(str(face), clips.media_factory().astronaut_face_photo())
    hub = LiveHub(runtime, max_sessions=1)
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows.append(run_one(hub, face, args.engine, (width, height), args.seconds, args.fps))
    sys.stdout.write(table(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
