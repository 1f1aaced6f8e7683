"""Peak memory against clip length (issue 2): the classic pipeline on a short and a long clip, each measured in a
fresh process (peak RSS from `getrusage`), printed with their ratio.

    python -m benchmarks.memory                       # 10 s vs 60 s at 640x480, one face
    python -m benchmarks.memory --short 10 --long 120 --size 720p

The pipeline streams (decode and encode threads with bounded queues), so the peak should not grow with the
clip's length: the target is a long/short ratio within 10% (≤ 1.10).
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
from benchmarks.cost_twins import format_table
from benchmarks.harness import Config
from benchmarks.run import DEFAULT_WORKDIR, clip_path, machine, photo_path, run_in_child

log = logging.getLogger(__name__)

TARGET_RATIO = 1.10


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--short", type=float, default=10.0, help="short clip, seconds (default 10)")
    parser.add_argument("--long", type=float, default=60.0, help="long clip, seconds (default 60)")
    parser.add_argument("--size", choices=list(clips.SIZES), default="640x480")
    parser.add_argument("--faces", type=int, choices=[1, 3], default=1)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="clips and scratch files")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    args = parser.parse_args(argv)
    if not 0 < args.short < args.long:
        parser.error("need 0 < --short < --long")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    context = machine()  # the load average before this benchmark adds its own
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
