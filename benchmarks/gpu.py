"""The GPU benchmark in one command: build the cost twins, then 1080p one-face frames/s, swap-only and with GFPGAN,
per stage, on the GPU provider; and libx264 1080p encode frames/s (the H200 has no NVENC).

    benchmarks/gpu.sh                        # on the GPU machine: installs what it needs, then runs this
    python -m benchmarks.gpu                 # the same, dependencies already installed
    python -m benchmarks.gpu --dry-run       # the same code path on the CPU provider: tiny twins, tiny clip

Each configuration runs the REAL `faceswap.pipeline.run` in a fresh process (`benchmarks.run`'s child), with
`FACESWAP_PROVIDERS` set, so the sessions are built exactly as the product builds them (TensorRT with an engine
cache when `--providers tensorrt,cuda`). The whole run is budgeted (`--budget`, default 6 minutes): a step that
would start after the budget is skipped and said so, so a lent device's minutes are never spent on a hang.
"""

from __future__ import annotations

import argparse
import fractions
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import clips
from benchmarks.cost_twins import build, faces_dir, format_table
from benchmarks.harness import Config
from benchmarks.run import clip_path, machine, photo_path, run_in_child, stage_table, summary_table
from faceswap.media.threads import codec_threads

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TARGET_FPS = 300.0
ENCODE_OPTIONS = {"crf": "18", "preset": "veryfast"}  # faceswap.media.encode.X264_OPTIONS, checked in main()
NEEDED = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.seconds = seconds

    @property
    def used(self) -> float:
        return time.monotonic() - self.started

    def allows(self, step: str, needs: float = 0.0) -> bool:
        if self.used + needs <= self.seconds:
            return True
        print(f"SKIPPED {step}: {self.used:.0f} s of the {self.seconds:.0f} s budget used")
        return False


def stand_in_photos(folder: Path) -> bool:
    """Without insightface (a GPU image rarely has it, and it builds from source), give `tests/media_factory.py`
    stand-ins for t1.jpg and the Hanks photo cut from scikit-image's astronaut. The cost-twin detector places the
    faces by the clip's layout, not by what the pixels show, so the work per frame is the same. True if used."""
    import importlib.util

    import cv2

    if importlib.util.find_spec("insightface") is not None:
        return False
    images = folder / "insightface" / "data" / "images"
    images.mkdir(parents=True, exist_ok=True)
    (folder / "insightface" / "__init__.py").write_text('"""Stand-in: only the photos benchmarks/clips.py reads."""\n')
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    cv2.imwrite(str(images / "t1.jpg"), cv2.resize(astronaut, (1280, 886)))
    cv2.imwrite(str(images / "Tom_Hanks_54745.png"), cv2.resize(astronaut[20:300, 90:360], (112, 112)))
    sys.path.insert(0, str(folder))
    return True


def gpu_name() -> str:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return "no nvidia-smi"
    done = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or done.stderr.strip()


def check_providers(wanted: Sequence[str]) -> list[str]:
    """The providers asked for that this onnxruntime lacks."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [name for name in wanted if NEEDED.get(name, name) not in available]


def clip_frames(clip: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of `clip` (BGR), to encode real video content rather than noise."""
    import av

    frames: list[np.ndarray] = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) >= count:
                break
    return frames


def encode_rate(pictures: Sequence[np.ndarray], *, frames: int, threads: int,
                preset: str | None = None) -> dict[str, Any]:
    """libx264 with the product's options (or another `preset`): frames/s over `frames` frames cycled from
    `pictures`; `threads` 0 = x264's own choice."""
    import av

    height, width = pictures[0].shape[:2]
    options = {**ENCODE_OPTIONS, **({"preset": preset} if preset else {})}
    with av.open(os.devnull, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=clips.FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = threads
        stream.codec_context.time_base = fractions.Fraction(1, clips.FPS)
        cpu = os.times()
        started = time.perf_counter()
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(pictures[index % len(pictures)], format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        elapsed = time.perf_counter() - started
        after = os.times()
    cores = (after.user + after.system - cpu.user - cpu.system) / elapsed
    return {"size": f"{width}x{height}", "preset": options["preset"], "frames": frames, "threads": threads,
            "seconds": round(elapsed, 3),
            "fps": round(frames / elapsed, 2), "cores_busy": round(cores, 2)}


def inference_line(result: dict[str, Any]) -> str:
    """How the models ran in one configuration: precision, IO binding, batching (from the product's report)."""
    info = result.get("inference") or {}
    if not info:
        return "inference: (not reported)"
    restorer = f", restorer {info['restorer_precision']}" if "restorer_precision" in info else ""
    return (f"inference: provider {result.get('provider')}; swapper {info.get('swapper')} in "
            f"{info.get('swapper_precision')}{restorer}; IO binding {'on' if info.get('io_binding') else 'off'}; "
            f"faces batched per call: {'yes' if info.get('batched_faces') else 'no (fixed-batch file)'}")


def encode_table(rows: Sequence[dict[str, Any]]) -> str:
    table = [("encoder", "size", "threads", "frames", "frames/s", "cores busy", "frames/s per busy core")]
    for row in rows:
        table.append((f"libx264 {row.get('preset', ENCODE_OPTIONS['preset'])} crf {ENCODE_OPTIONS['crf']}", row["size"],
                      str(row["threads"]),
                      str(row["frames"]), f"{row['fps']:.1f}", f"{row['cores_busy']:.2f}",
                      f"{row['fps'] / max(row['cores_busy'], 0.01):.1f}"))
    return format_table(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU provider, twins at scale 0.05, 640x480, 2 frames: proves the path, measures nothing")
    parser.add_argument("--providers", default=None, help="FACESWAP_PROVIDERS for the runs (default cuda; dry: cpu)")
    parser.add_argument("--size", choices=list(clips.SIZES), default=None, help="default 1080p (dry: 640x480)")
    parser.add_argument("--frames", type=int, default=None, help="frames measured per run (default 150; dry: 2)")
    parser.add_argument("--restore", nargs="+", choices=["none", "gfpgan", "codeformer"], default=["none", "gfpgan"])
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16"], default=None,
                        help="FACESWAP_PRECISION for the runs (default auto: fp16 on CUDA/TensorRT; dry: fp16)")
    parser.add_argument("--io-binding", choices=["auto", "on", "off"], default=None,
                        help="FACESWAP_IO_BINDING for the runs (default auto: on for CUDA/TensorRT; dry: on)")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds for the whole run (default 360)")
    parser.add_argument("--out", type=Path, default=None,
                        help="twins and clips folder (default benchmarks/out/gpu, dry: benchmarks/out/gpu-dry)")
    parser.add_argument("--json", type=Path, default=None, help="also write every result to this JSON file")
    args = parser.parse_args(argv)
    args.providers = args.providers or ("cpu" if args.dry_run else "cuda")
    # the dry run forces what `auto` turns on for a GPU, so the CPU provider runs the GPU's code path
    args.precision = args.precision or ("fp16" if args.dry_run else "auto")
    args.io_binding = args.io_binding or ("on" if args.dry_run else "auto")
    args.size = args.size or ("640x480" if args.dry_run else "1080p")
    args.frames = args.frames if args.frames is not None else (2 if args.dry_run else 150)
    args.out = args.out or ROOT / "benchmarks" / "out" / ("gpu-dry" if args.dry_run else "gpu")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from faceswap.media.encode import X264_OPTIONS

    if X264_OPTIONS != ENCODE_OPTIONS:
        log.warning("the product's x264 options are now %s; measuring those", X264_OPTIONS)
        ENCODE_OPTIONS.update(X264_OPTIONS)
    budget = Budget(args.budget)
    wanted = [p.strip().lower() for p in args.providers.split(",") if p.strip()]
    print(machine())
    print(f"GPU: {gpu_name()}; providers asked: {', '.join(wanted)}; {os.cpu_count()} CPUs")
    missing = check_providers(wanted)
    if missing:
        print(f"FAILED: this onnxruntime lacks {', '.join(missing)}: install onnxruntime-gpu alone "
              "(benchmarks/gpu.sh does), then run again")
        return 1
    os.environ["FACESWAP_PROVIDERS"] = ",".join(wanted)
    os.environ["FACESWAP_PRECISION"], os.environ["FACESWAP_IO_BINDING"] = args.precision, args.io_binding
    results: dict[str, Any] = {"providers": wanted, "size": args.size, "runs": [], "encode": []}

    started = time.monotonic()
    models = args.out / "models"
    manifest = build(models, scale=0.05 if args.dry_run else 1.0, faces=[1],
                     models=["w600k_r50", "genderage", "inswapper_128",
                             *(("gfpgan_1.4",) if "gfpgan" in args.restore else ()),
                             *(("codeformer",) if "codeformer" in args.restore else ())])
    print(f"cost twins built in {time.monotonic() - started:.0f} s (scale {manifest['scale']})")

    if stand_in_photos(args.out / "stand-in"):
        print("photos: insightface is not installed, so the clip's faces are stand-ins cut from scikit-image's "
              "astronaut (same work per frame: the cost-twin detector places the faces)")
    seconds = max(2.0, (args.frames + 2) / clips.FPS + 0.5)
    clip, photo = clip_path(args.out, args.size, 1, seconds), photo_path(args.out)
    for restore in args.restore:
        if not budget.allows(f"neural {args.size} restore={restore}", needs=30):
            continue
        config = Config(engine="neural", size=args.size, faces=1, restore=restore, seconds=seconds,
                        frames=args.frames, clip=str(clip), photo=str(photo), models_dir=str(faces_dir(models, 1)),
                        repeat=1, warmup=2, workdir=str(args.out))
        log.info("measuring neural %s restore=%s on %s", args.size, restore, ",".join(wanted))
        try:
            results["runs"].append(run_in_child(config, timeout=max(budget.seconds - budget.used, 30)))
        except subprocess.TimeoutExpired:
            print(f"STOPPED neural restore={restore}: it ran past the {budget.seconds:.0f} s budget")
    if results["runs"]:
        print(summary_table(results["runs"]))
        for result in results["runs"]:
            print()
            print(stage_table(result))
            print(inference_line(result))

    cores = os.cpu_count() or 1
    pictures = clip_frames(clip, 25)
    encode_frames = 10 if args.dry_run else 150
    product_threads = codec_threads(cores)[1] or cores  # what the product gives libx264 on this machine
    for preset, threads in [(ENCODE_OPTIONS["preset"], 1), (ENCODE_OPTIONS["preset"], product_threads),
                            ("ultrafast", product_threads)]:
        if budget.allows(f"encode {preset} with {threads} threads", needs=20):
            results["encode"].append(encode_rate(pictures, frames=encode_frames, threads=threads, preset=preset))
    if results["encode"]:
        print()
        print(encode_table(results["encode"]))
        for preset in dict.fromkeys(row["preset"] for row in results["encode"]):
            best = max(row["fps"] for row in results["encode"] if row["preset"] == preset)
            verdict = "caps" if best < TARGET_FPS else "does not cap"
            print(f"libx264 {preset} at {args.size}: {best:.0f} frames/s on {cores} CPUs: encode {verdict} the "
                  f"{TARGET_FPS:.0f} frames/s target")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"done in {budget.used:.0f} s" + (" (dry run: CPU provider, tiny twins; no figure here is a GPU figure)"
                                            if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
