"""The pipeline benchmark: the REAL `faceswap.pipeline.run` on generated clips, per-stage times, frames/s, peak RSS.

    python -m benchmarks.run --engine classic --size 640x480 --faces 1 --seconds 4
    python -m benchmarks.run --engine neural --size 640x480 720p --faces 1 3 --frames 6 --restore none gfpgan
    python -m benchmarks.run --engine both --json

Each configuration (engine x size x faces x restore) runs in a fresh Python process, so its load time and peak
RSS are its own. The neural engine and the restorers run on cost twins (`python -m benchmarks.cost_twins` builds
them into benchmarks/models/): random weights with the real models' interfaces and compute. On a CPU the neural
path manages well under one frame per second per face, so keep `--frames` small there (default 6).

Printed per configuration: frames/s, and per stage (decode, track, detect, embed, select, swap, restore, paste,
encode) the calls, seconds, ms per frame and the part spent inside onnxruntime; then the sum of the model times
against the end-to-end time (the glue's share).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import clips
from benchmarks.cost_twins import DEFAULT_OUT, faces_dir, format_table
from benchmarks.harness import Config, measure

log = logging.getLogger(__name__)

DEFAULT_WORKDIR = Path(__file__).resolve().parent / "out"
NEURAL_FRAMES = 6
STAGE_ORDER = ("setup", "setup.model", "decode", "track", "detect", "follow", "detect.model", "embed", "embed.model",
               "gender", "gender.model", "select", "swap", "swap.model", "swap:warp", "swap:masks", "swap:color",
               "restore", "restore.model", "paste", "encode", "encode-flush")
GLUE_TARGET = 0.15


def clip_path(workdir: Path, size: str, faces: int, seconds: float) -> Path:
    """The benchmark clip for these settings, written once and reused."""
    folder = workdir / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{size}-{faces}faces-{seconds:g}s.mp4"
    if not path.is_file():
        log.info("writing %s", path)
        partial = path.with_name("." + path.name)
        clips.write_clip(partial, size=size, faces=faces, seconds=seconds)
        partial.replace(path)
    return path


def photo_path(workdir: Path) -> Path:
    path = workdir / "clips" / "source.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        clips.write_source_photo(path)
    return path


def run_in_child(config: Config, *, module: str = "benchmarks.run", timeout: float | None = None) -> dict[str, Any]:
    """Measure `config` in a fresh interpreter (`module --child JSON`); its last stdout line is the JSON result."""
    command = [sys.executable, "-m", module, "--child", config.to_json()]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def configurations(args: argparse.Namespace) -> list[Config]:
    engines = ["classic", "neural"] if args.engine == "both" else [args.engine]
    workdir: Path = args.workdir
    photo = str(photo_path(workdir))
    configs = []
    for engine, size, faces, restore in itertools.product(engines, args.size, args.faces, args.restore):
        frames = args.frames if args.frames is not None else (NEURAL_FRAMES if engine == "neural" else 0)
        needs_twins = engine == "neural" or restore != "none"
        models_dir = faces_dir(args.models, faces) if needs_twins else None
        if models_dir is not None and not (models_dir / "det_10g.onnx").is_file():
            raise SystemExit(f"no cost twins for {faces} face(s) in {args.models}: run "
                             f"`python -m benchmarks.cost_twins --out {args.models}` first")
        clip = clip_path(workdir, size, faces, args.seconds)
        configs.append(Config(engine=engine, size=size, faces=faces, restore=restore, seconds=args.seconds,
                              frames=frames, clip=str(clip), photo=photo,
                              models_dir=str(models_dir) if models_dir else None, repeat=args.repeat,
                              warmup=args.warmup, workdir=str(workdir)))
    return configs


# ------------------------------------------------------------------------------------------------ printing
def machine() -> str:
    """CPU model, logical CPUs, onnxruntime version and providers: the context every figure needs."""
    import os
    import platform

    import onnxruntime

    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: {model}, {os.cpu_count()} logical CPUs, load average {load:.2f} at start; onnxruntime "
            f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})")


def summary_table(results: Sequence[dict[str, Any]]) -> str:
    rows = [("engine", "size", "faces", "restore", "frames", "frames/s", "ms/frame", "CPU ms/frame", "end-to-end s",
             "model %", "glue %", "cores", "load s", "peak RSS MB")]
    for r in results:
        glue = "-" if r["glue_share"] is None else f"{r['glue_share'] * 100:.1f}"
        rows.append((r["engine"], r["size"], str(r["faces"]), r["restore"], str(r["frames"]),
                     f"{r['fps_median']:.2f}", f"{r['ms_per_frame']:.0f}",
                     f"{r['cpu_s'] / max(r['frames'], 1) * 1000:.0f}", f"{r['e2e_s']:.2f}",
                     f"{r['model_share'] * 100:.1f}", glue, f"{r['cores_busy']:.2f}", f"{r['load_s']:.1f}",
                     f"{r['peak_rss_mb']:.0f}"))
    return format_table(rows)


def stage_table(result: dict[str, Any]) -> str:
    """Per-stage times of one configuration; main-thread rows add up to the end-to-end time."""
    frames = max(result["frames"], 1)
    e2e = result["e2e_s"]
    stages: dict[str, dict[str, Any]] = result["stages"]
    rows = [("stage", "thread", "calls", "seconds", "ms/frame", "CPU ms/frame", "% of end-to-end")]
    names = [name for name in STAGE_ORDER if name in stages] + sorted(set(stages) - set(STAGE_ORDER))
    for name in names:
        stat = stages[name]
        main = stat["thread"] == "main"
        share = f"{stat['seconds'] / e2e * 100:.1f}" if main and e2e else "(overlaps)"
        rows.append((name, stat["thread"], str(stat["calls"]), f"{stat['seconds']:.3f}",
                     f"{stat['seconds'] / frames * 1000:.1f}", f"{stat.get('cpu_s', 0.0) / frames * 1000:.1f}", share))
    rows.append(("(main, untimed)", "main", "-", f"{result['main_untimed_s']:.3f}",
                 f"{result['main_untimed_s'] / frames * 1000:.1f}", "-",
                 f"{result['main_untimed_s'] / e2e * 100:.1f}" if e2e else "-"))
    rows.append(("end-to-end", "", "-", f"{e2e:.3f}", f"{e2e / frames * 1000:.1f}",
                 f"{result['cpu_s'] / frames * 1000:.1f} (process)", "100.0"))
    title = (f"{result['engine']} {result['size']} {result['faces']} face(s) restore={result['restore']}: "
             f"{result['frames']} frames, {result['fps_median']:.2f} frames/s (runs: {result['fps_runs']}), "
             f"load {result['load_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
             f"{result['cores_busy']:.2f} cores busy")
    lines = [title, format_table(rows)]
    if result["model_s"]:
        glue = result["glue_share"]
        verdict = "within" if glue <= GLUE_TARGET else "ABOVE"
        lines.append(f"model time {result['model_s']:.3f} s of {e2e:.3f} s end-to-end: glue {glue * 100:.1f}% "
                     f"({verdict} the {GLUE_TARGET * 100:.0f}% target)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["classic", "neural", "both"], default="classic")
    parser.add_argument("--size", nargs="+", choices=list(clips.SIZES), default=["640x480"])
    parser.add_argument("--faces", nargs="+", type=int, choices=[1, 3], default=[1])
    parser.add_argument("--restore", nargs="+", choices=["none", "gfpgan", "codeformer"], default=["none"])
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds (25 fps)")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames to process (0 = whole clip; default: whole clip, {NEURAL_FRAMES} for neural)")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="frames run once, untimed, before measuring")
    parser.add_argument("--models", type=Path, default=DEFAULT_OUT, help="cost twins folder (cost_twins.py --out)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="clips and scratch files")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1 or args.warmup < 0 or (args.frames is not None and args.frames < 0):
        parser.error("--seconds and --repeat must be positive, --warmup and --frames not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.child else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    if args.child:
        print(json.dumps(measure(Config.from_json(args.child))))
        return 0
    context = machine()  # the load average before this benchmark adds its own
    results = []
    for config in configurations(args):
        log.info("measuring %s %s %d face(s) restore=%s", config.engine, config.size, config.faces, config.restore)
        results.append(run_in_child(config))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(context)
    print(summary_table(results))
    for result in results:
        print()
        print(stage_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
