"""Child process of `python -m benchmarks.memory --engine neural`: `harness.measure` with RSS recorded after each
step of loading (imports, every onnxruntime session, the engine ready) and of running (warm-up, measured run).

    python -m benchmarks.memory_steps --child CONFIG_JSON    # prints one JSON line
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import Config, peak_rss_mb, rss_mb


class Steps:
    """(step, RSS MB, peak RSS MB) in the order they happened."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def mark(self, step: str) -> None:
        self.rows.append({"step": step, "rss_mb": round(rss_mb(), 1), "peak_mb": round(peak_rss_mb(), 1)})


def _after(steps: Steps, function: Callable[..., Any], label: Callable[..., str]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        steps.mark(label(*args, **kwargs))
        return result
    return wrapped


def profile(config: Config) -> dict[str, Any]:
    steps = Steps()
    steps.mark("interpreter")
    import av  # noqa: F401  (the imports a worker pays for, measured on their own)
    import cv2  # noqa: F401
    import numpy  # noqa: F401
    import onnxruntime  # noqa: F401

    from benchmarks import harness
    from faceswap import pipeline
    from faceswap.models.sessions import SessionFactory
    steps.mark("imports (numpy, cv2, av, onnxruntime, faceswap)")

    SessionFactory._create = _after(  # type: ignore[method-assign]
        steps, SessionFactory._create, lambda self, path: f"session {Path(path).name}")
    real_run = pipeline.run
    runs = iter(["warm-up run", "measured run"])

    def run(*args: Any, **kwargs: Any) -> Any:
        if not any(row["step"] == "engine ready" for row in steps.rows):
            steps.mark("engine ready")
        result = real_run(*args, **kwargs)
        steps.mark(next(runs, "run"))
        return result

    pipeline.run = run  # type: ignore[assignment]
    result = harness.measure(config)
    result["steps"] = steps.rows
    result["load_after"] = os.getloadavg()[0]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "--child":
        print(__doc__, file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = profile(Config.from_json(args[1]))
    result["child_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
