"""libx264 1080p encode frames/s on this machine, per preset and thread count, scaled to a 16-core GPU machine.

    python -m benchmarks.encode                       # ultrafast and veryfast, 1 thread and all CPUs
    python -m benchmarks.encode --presets veryfast --frames 200 --cores 16

The clip is the benchmark's own synthetic 1080p clip (a real face on a panning background, `benchmarks.clips`),
decoded once; its frames are encoded cycled, with the product's options (crf 18) and each preset, to /dev/null.
"Per busy core" divides by the cores the process really kept busy (CPU time / wall time), which is what scales
when the machine has more of them; the 16-core figure is that times `--cores` times `--efficiency` (x264's frame
threads do not scale perfectly: 0.8 by default, a guess to be checked on the device with `benchmarks/gpu.sh`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import clips
from benchmarks.cost_twins import format_table
from benchmarks.gpu import TARGET_FPS, clip_frames, encode_rate
from benchmarks.run import machine

ROOT = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encode", description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["ultrafast", "veryfast"])
    parser.add_argument("--frames", type=int, default=100, help="frames encoded per measurement")
    parser.add_argument("--cores", type=int, default=16, help="cores of the machine to scale to")
    parser.add_argument("--efficiency", type=float, default=0.8, help="scaling efficiency assumed")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "encode")
    args = parser.parse_args(argv)
    print(machine())
    args.out.mkdir(parents=True, exist_ok=True)
    clip = args.out / "1080p-2s.mp4"
    if not clip.exists():
        clips.write_clip(clip, size="1080p", faces=1, seconds=2.0, audio=False)
    pictures = clip_frames(clip, 50)
    cpus = os.cpu_count() or 1
    rows = [("preset", "threads", "frames", "frames/s", "cores busy", "frames/s per busy core",
             f"x {args.cores} cores x {args.efficiency}")]
    for preset in args.presets:
        for threads in sorted({1, cpus}):
            result = encode_rate(pictures, frames=args.frames, threads=threads, preset=preset)
            per_core = result["fps"] / max(result["cores_busy"], 0.01)
            scaled = per_core * args.cores * args.efficiency
            rows.append((preset, str(threads), str(args.frames), f"{result['fps']:.1f}", f"{result['cores_busy']:.2f}",
                         f"{per_core:.1f}", f"{scaled:.0f}" + (" (caps 300)" if scaled < TARGET_FPS else "")))
            print(f"{preset} threads={threads}: {result['fps']:.1f} frames/s, {result['cores_busy']:.2f} cores busy",
                  file=sys.stderr)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
