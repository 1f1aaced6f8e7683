"""Peak memory against clip length (issue 2), and where a neural worker's memory goes (issue 17).

    python -m benchmarks.memory                       # classic: 10 s vs 60 s at 640x480, one face
    python -m benchmarks.memory --short 10 --long 120 --size 720p
    python -m benchmarks.memory --engine neural       # neural on the cost twins: 1080p, one face, 6 frames

Classic: the pipeline streams (decode and encode threads with bounded queues), so the peak should not grow with
the clip's length: the target is a long/short ratio within 10% (≤ 1.10), each length in a fresh process.

Neural: one fresh process loads the engine on the cost twins (`python -m benchmarks.cost_twins` first) and runs
the real pipeline; RSS and peak RSS (`getrusage`) are recorded after the imports, after each onnxruntime session
is built, after the engine is ready, after the warm-up and after the measured run, so each step's share of the
peak shows. The peak is compared with roop's on the same twins and clip (3,035 MiB, recorded by issue 17's
measurement; roop itself is not installed here), target ≤ 0.5×.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import clips
from benchmarks.cost_twins import DEFAULT_OUT, faces_dir, format_table
from benchmarks.harness import Config
from benchmarks.run import DEFAULT_WORKDIR, clip_path, machine, photo_path, run_in_child

log = logging.getLogger(__name__)

TARGET_RATIO = 1.10
ROOP_PEAK_MIB = 3035.0
"""roop's peak RSS on the 1080p one-face cost-twin clip, as issue 17 records it (not reproducible here)."""
TARGET_VS_ROOP = 0.5


def measure_lengths(*, short: float, long: float, size: str, faces: int, workdir: Path) -> list[dict[str, Any]]:
    photo = str(photo_path(workdir))
    results = []
    for seconds in (short, long):
        clip = clip_path(workdir, size, faces, seconds)
        config = Config(engine="classic", size=size, faces=faces, restore="none", seconds=seconds, frames=0,
                        clip=str(clip), photo=photo, models_dir=None, repeat=1, warmup=0, workdir=str(workdir))
        log.info("measuring %g s", seconds)
        results.append(run_in_child(config))
    return results


def memory_table(results: Sequence[dict[str, Any]]) -> str:
    rows = [("clip s", "frames", "frames/s", "RSS after load MB", "peak RSS MB", "peak - loaded MB",
             "RSS after run MB")]
    for r in results:
        rows.append((f"{r['clip_seconds']:g}", str(r["frames"]), f"{r['fps_median']:.2f}", f"{r['rss_loaded_mb']:.0f}",
                     f"{r['peak_rss_mb']:.0f}", f"{r['peak_rss_mb'] - r['rss_loaded_mb']:.0f}",
                     f"{r['rss_after_run_mb']:.0f}"))
    return format_table(rows)


def ratio_line(results: Sequence[dict[str, Any]]) -> str:
    short, long = results[0], results[-1]
    ratio = long["peak_rss_mb"] / short["peak_rss_mb"]
    verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
    return (f"peak RSS {long['clip_seconds']:g} s / {short['clip_seconds']:g} s = {ratio:.3f} "
            f"({verdict} the {TARGET_RATIO:.2f} target)")


def neural_profile(*, size: str, frames: int, workdir: Path, models: Path) -> dict[str, Any]:
    clip = clip_path(workdir, size, 1, max(2.0, frames / 25 + 1))
    config = Config(engine="neural", size=size, faces=1, restore="none", seconds=max(2.0, frames / 25 + 1),
                    frames=frames, clip=str(clip), photo=str(photo_path(workdir)),
                    models_dir=str(faces_dir(models, 1)), repeat=1, warmup=2, workdir=str(workdir))
    return run_in_child(config, module="benchmarks.memory_steps")


def steps_table(result: dict[str, Any]) -> str:
    rows = [("step", "RSS after MB", "Δ RSS MB", "peak so far MB")]
    previous = 0.0
    for step in result["steps"]:
        rows.append((step["step"], f"{step['rss_mb']:.0f}", f"{step['rss_mb'] - previous:+.0f}",
                     f"{step['peak_mb']:.0f}"))
        previous = step["rss_mb"]
    return format_table(rows)


def roop_line(result: dict[str, Any]) -> str:
    ratio = result["peak_rss_mb"] / ROOP_PEAK_MIB
    verdict = "within" if ratio <= TARGET_VS_ROOP else "ABOVE"
    return (f"neural peak RSS {result['peak_rss_mb']:.0f} MiB vs roop {ROOP_PEAK_MIB:,.0f} MiB (recorded) = "
            f"{ratio:.2f}x ({verdict} the {TARGET_VS_ROOP:.1f}x target); {result['fps_median']:.3f} frames/s, "
            f"load {result['load_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["classic", "neural"], default="classic")
    parser.add_argument("--frames", type=int, default=6, help="neural: frames measured after 2 warm-up frames")
    parser.add_argument("--models", type=Path, default=DEFAULT_OUT, help="neural: cost twins folder")
    parser.add_argument("--short", type=float, default=10.0, help="short clip, seconds (default 10)")
    parser.add_argument("--long", type=float, default=60.0, help="long clip, seconds (default 60)")
    parser.add_argument("--size", choices=list(clips.SIZES), default=None,
                        help="default 640x480 (classic), 1080p (neural)")
    parser.add_argument("--faces", type=int, choices=[1, 3], default=1)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="clips and scratch files")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    args = parser.parse_args(argv)
    if not 0 < args.short < args.long:
        parser.error("need 0 < --short < --long")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    context = machine()  # the load average before this benchmark adds its own
    if args.engine == "neural":
        result = neural_profile(size=args.size or "1080p", frames=args.frames, workdir=args.workdir,
                                models=args.models)
        if args.json:
            print(json.dumps(result, indent=2))
            return 0
        print(context)
        print(f"neural engine on cost twins, {result['size']}, 1 face, {result['frames']} frames after "
              f"{result['warmup_frames']} warm-up, one fresh process (load average at the end "
              f"{result['load_after']:.2f})")
        print(steps_table(result))
        print(roop_line(result))
        return 0
    args.size = args.size or "640x480"
    results = measure_lengths(short=args.short, long=args.long, size=args.size, faces=args.faces,
                              workdir=args.workdir)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(context)
    print(f"classic engine, {args.size}, {args.faces} face(s), whole clip, each length in a fresh process")
    print(memory_table(results))
    print(ratio_line(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
