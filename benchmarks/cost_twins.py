"""Build cost twins: ONNX files with each real model's exact interface AND its compute, with random weights.

    python -m benchmarks.cost_twins                 # full size into benchmarks/models/ (~1.5 GB, about a minute)
    python -m benchmarks.cost_twins --scale 0.05 --out /tmp/tiny   # tiny widths, same interfaces (smoke test)

Layout of the output folder (a models dir per detector layout, for `Settings(models_dir=...)`):

    shared/       w600k_r50.onnx genderage.onnx inswapper_128.onnx GFPGANv1.4.onnx codeformer.onnx
    faces-1/      det_10g.onnx reporting one face at clips.face_slots(1), plus links to ../shared/*
    faces-3/      det_10g.onnx reporting three faces, plus links
    manifest.json sizes, sha256 and counted cost of every file (run.py rewrites the registry with them)

The script counts what it built (parameters = float initializers; multiply-adds of Conv/Gemm/MatMul at the
model's input size; MODELS.md §16 counts the same way) and prints it next to the targets. Random weights are
not a claim of quality: they make onnxruntime do the real model's amount and kind of arithmetic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import clips
from benchmarks.graphs import Cost, measure
from benchmarks.twin_models import (
    EMAP_NAME,
    FORCE_PREFIX,
    build_detector,
    build_genderage,
    build_inswapper,
    build_recognizer,
)
from benchmarks.twin_restorers import build_codeformer, build_gfpgan

log = logging.getLogger(__name__)

DEFAULT_OUT = Path(__file__).resolve().parent / "models"
MANIFEST = "manifest.json"
FACE_LAYOUTS = (1, 3)


@dataclass(frozen=True)
class Target:
    """The real file's figures and where they come from."""

    registry_name: str
    filename: str
    params: float
    macs: float
    source: str
    input_shapes: dict[str, list[int]] | None = None


TARGETS: dict[str, Target] = {
    "inswapper_128": Target("inswapper_128", "inswapper_128.onnx", 138.3e6, 174.6e9,
                            "MODELS.md §16 (emap's 0.26 M not counted)"),
    "det_10g": Target("det_10g", "det_10g.onnx", 4.23e6, 13.3e9, "MODELS.md §16, at 640x640",
                      {"input.1": [1, 3, 640, 640]}),
    "w600k_r50": Target("w600k_r50", "w600k_r50.onnx", 43.6e6, 6.3e9, "MODELS.md §16"),
    "genderage": Target("genderage", "genderage.onnx", 0.33e6, 0.008e9, "MODELS.md §16"),
    "gfpgan_1.4": Target("gfpgan_1.4", "GFPGANv1.4.onnx", 340_256_690 / 4, 197.8e9,
                         "params: 340,256,690-byte ONNX / 4 bytes; MACs: GFPGANv1Clean v1.4 counted layer by layer"),
    "codeformer": Target("codeformer", "codeformer.onnx", 376_637_898 / 4, 404.9e9,
                         "params: 376,637,898-byte .pth / 4 bytes; MACs: CodeFormer arch counted layer by layer"),
}

Builder = Callable[[Path, float], Path]
SHARED_BUILDERS: dict[str, Builder] = {
    "w600k_r50": lambda path, scale: build_recognizer(path, scale=scale),
    "genderage": lambda path, scale: build_genderage(path, scale=scale),
    "inswapper_128": lambda path, scale: build_inswapper(path, scale=scale),
    "gfpgan_1.4": lambda path, scale: build_gfpgan(path, scale=scale),
    "codeformer": lambda path, scale: build_codeformer(path, scale=scale),
}


def faces_dir(out: Path, faces: int) -> Path:
    return out / f"faces-{faces}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count(name: str, path: Path) -> Cost:
    target = TARGETS[name]
    exclude = {EMAP_NAME} if name == "inswapper_128" else set()
    if name == "det_10g":
        import onnx

        exclude = {init.name for init in onnx.load(str(path)).graph.initializer if init.name.startswith(FORCE_PREFIX)}
    return measure(path, input_shapes=target.input_shapes, exclude=exclude)


def build(out: Path, *, scale: float = 1.0, faces: Sequence[int] = FACE_LAYOUTS,
          models: Sequence[str] = tuple(SHARED_BUILDERS)) -> dict[str, object]:
    """Build the twins into `out` and write the manifest; returns it."""
    shared = out / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {"scale": scale, "files": {}, "detectors": {}}
    if (out / MANIFEST).is_file():  # a partial rebuild keeps the entries of the twins it does not touch
        previous = load_manifest(out)
        if previous.get("scale") == scale:
            manifest = previous
    manifest["built"] = time.strftime("%Y-%m-%d %H:%M:%S")
    files: dict[str, dict[str, object]] = manifest["files"]  # type: ignore[assignment]
    for name in models:
        path = shared / TARGETS[name].filename
        started = time.monotonic()
        SHARED_BUILDERS[name](path, scale)
        files[name] = _describe(name, path, time.monotonic() - started)
        log.info("built %s in %.1f s", path, files[name]["build_s"])
    detectors: dict[str, dict[str, object]] = manifest["detectors"]  # type: ignore[assignment]
    for count_ in faces:
        folder = faces_dir(out, count_)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / TARGETS["det_10g"].filename
        started = time.monotonic()
        build_detector(path, slots=clips.face_slots(count_), scale=scale)
        detectors[str(count_)] = _describe("det_10g", path, time.monotonic() - started)
        for name in models:
            link = folder / TARGETS[name].filename
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(Path("..") / "shared" / TARGETS[name].filename)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _describe(name: str, path: Path, seconds: float) -> dict[str, object]:
    cost = count(name, path)
    return {"path": str(path), "size": path.stat().st_size, "sha256": sha256_of(path), "params": cost.params,
            "macs": cost.macs, "macs_by_op": cost.macs_by_op, "excluded": cost.excluded, "build_s": round(seconds, 2)}


REAL_CPU_MS = {"det_10g": 189.0, "w600k_r50": 68.0, "genderage": 0.4, "inswapper_128": 1596.0}
"""The real files on a 2-core x86 CPU (MODELS.md §16: onnxruntime, 2 threads, median of 7)."""


def time_models(out: Path, *, repeats: int = 5, faces: int = 1,
                only: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """Median and minimum milliseconds per call of each twin in `out/faces-<faces>` with onnxruntime's defaults
    (all cores), on random inputs of the real shapes: the detector at 640x640 (the letterboxed canvas the pipeline
    feeds it), and also at 640x480 and 640x384 (the same frames letterboxed without the padding rows)."""
    import numpy as np
    import onnxruntime

    rng = np.random.default_rng(0)
    feeds = {
        "det_10g": {"input.1": rng.standard_normal((1, 3, 640, 640), dtype=np.float32)},
        "det_10g@640x480": {"input.1": rng.standard_normal((1, 3, 480, 640), dtype=np.float32)},
        "det_10g@640x384": {"input.1": rng.standard_normal((1, 3, 384, 640), dtype=np.float32)},
        "w600k_r50": {"input.1": rng.standard_normal((1, 3, 112, 112), dtype=np.float32)},
        "genderage": {"data": rng.uniform(0, 255, (1, 3, 96, 96)).astype(np.float32)},
        "inswapper_128": {"target": rng.uniform(0, 1, (1, 3, 128, 128)).astype(np.float32),
                          "source": rng.standard_normal((1, 512), dtype=np.float32) / 22.6},
        "gfpgan_1.4": {"input": rng.uniform(-1, 1, (1, 3, 512, 512)).astype(np.float32)},
        "codeformer": {"input": rng.uniform(-1, 1, (1, 3, 512, 512)).astype(np.float32),
                       "weight": np.array([0.5], dtype=np.float64)},
    }
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    timings = {}
    for name, feed in feeds.items():
        path = faces_dir(out, faces) / TARGETS[name.split("@")[0]].filename
        if not path.is_file() or (only and name.split("@")[0] not in only):
            continue
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, feed)
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(None, feed)
            seconds.append(time.perf_counter() - started)
        timings[name] = {"median_ms": round(float(np.median(seconds)) * 1000, 1),
                         "min_ms": round(min(seconds) * 1000, 1), "runs": repeats}
    return timings


def timing_table(timings: dict[str, dict[str, float]]) -> str:
    rows = [("model", "twin median ms", "twin min ms", "runs", "real file ms (MODELS.md §16)")]
    for name, timing in timings.items():
        real = REAL_CPU_MS.get(name)
        rows.append((name, f"{timing['median_ms']:.1f}", f"{timing['min_ms']:.1f}", str(timing["runs"]),
                     f"{real:g}" if real is not None else "not published"))
    return format_table(rows)


def load_manifest(out: Path) -> dict[str, object]:
    path = out / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no cost twins in {out}: run `python -m benchmarks.cost_twins --out {out}` first")
    return json.loads(path.read_text())


def cost_table(manifest: dict[str, object]) -> str:
    """Twin vs target, one line per model (the detector once: every layout has the same network)."""
    rows = [("model", "params", "target", "Δ", "MACs", "target", "Δ", "file MB", "target source")]
    entries = dict(manifest["files"])  # type: ignore[arg-type]
    detectors = manifest["detectors"]  # type: ignore[assignment]
    if detectors:
        entries["det_10g"] = next(iter(detectors.values()))  # type: ignore[union-attr]
    for name, target in TARGETS.items():
        if name not in entries:
            continue
        entry = entries[name]
        rows.append((name, f"{entry['params'] / 1e6:.2f} M", f"{target.params / 1e6:.2f} M",
                     _delta(entry["params"], target.params), _gmacs(entry["macs"]), _gmacs(target.macs),
                     _delta(entry["macs"], target.macs), f"{entry['size'] / 1e6:.1f}", target.source))
    return format_table(rows)


def _gmacs(value: float) -> str:
    return f"{value / 1e9:.3f} G" if value < 1e9 else f"{value / 1e9:.1f} G"


def _delta(value: float, target: float) -> str:
    return f"{(value - target) / target * 100:+.1f}%"


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost_twins", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: benchmarks/models)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="shrink every internal width by this factor (interfaces stay exact); 1 = real cost")
    parser.add_argument("--faces", type=int, nargs="+", default=list(FACE_LAYOUTS),
                        help="detector layouts to build: how many faces the detector reports (default 1 3)")
    parser.add_argument("--models", nargs="+", choices=list(SHARED_BUILDERS), default=list(SHARED_BUILDERS),
                        help="which non-detector twins to build (default: all)")
    parser.add_argument("--time", type=int, metavar="N", default=0,
                        help="also time each twin N times with onnxruntime (median and minimum ms per call)")
    parser.add_argument("--no-build", action="store_true", help="use the twins already in --out (with --time)")
    parser.add_argument("--only", nargs="+", choices=list(TARGETS), default=[], help="time only these twins")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON instead of the table")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    manifest = (load_manifest(args.out) if args.no_build
                else build(args.out, scale=args.scale, faces=args.faces, models=args.models))
    timings = time_models(args.out, repeats=args.time, faces=args.faces[0], only=args.only) if args.time else {}
    if args.json:
        print(json.dumps({**manifest, "timings": timings}, indent=2))
        return 0
    print(f"cost twins in {os.path.relpath(args.out)} (scale {manifest['scale']}):")
    print(cost_table(manifest))
    if timings:
        print()
        print(timing_table(timings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
