"""Per-stage cost of the quality tools: masks (box, occlusion, region, area) and pixel boost (native, 256, 512).

    python -m benchmarks.quality                       # full-size cost twins in benchmarks/models/quality/
    python -m benchmarks.quality --scale 0.05 --out /tmp/q --repeats 1      # tiny twins (smoke test)

It runs the crop stages of one face (`swap.stages`, `swap.masks` and the real adapters of `engines.neural`) on the
astronaut's face in a 640x360 frame, with cost twins of inswapper_128 (MODELS.md §16: 174.6 G multiply-adds a
call), 1k3d68 (§16: 3.0 G), XSeg and BiSeNet (no published figure: sized by their files, `twin_masks`), and prints
the median milliseconds of each stage at each crop size. Pixel boost B runs the swap model (B/128)² times per face:
native 1, 256 4, 512 16. Random weights: the figures are the cost of the arithmetic, not a claim of quality.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import clips
from benchmarks.cost_twins import format_table
from benchmarks.graphs import measure
from benchmarks.twin_masks import build_landmarker, build_occluder, build_parser
from benchmarks.twin_models import build_inswapper
from faceswap.faces.align import transform_points

log = logging.getLogger(__name__)

DEFAULT_OUT = Path(__file__).resolve().parent / "models" / "quality"
BOOSTS = ("native", "256", "512")
FILES = {"inswapper_128": "inswapper_128.onnx", "xseg_1": "xseg_1.onnx", "bisenet_resnet_18": "bisenet_resnet_18.onnx",
         "1k3d68": "1k3d68.onnx"}
BUILDERS: dict[str, Callable[..., Path]] = {"inswapper_128": build_inswapper, "xseg_1": build_occluder,
                                            "bisenet_resnet_18": build_parser, "1k3d68": build_landmarker}
FACE_AT = (185, 40)
ASTRONAUT_KPS = np.array([[113.3, 81.5], [156.5, 83.7], [135.0, 107.0], [111.0, 119.0], [155.0, 121.0]], np.float32)
ASTRONAUT_BOX = np.array([86, 56, 175, 146], np.float32)
"""The astronaut's five key points and box in `media_factory.astronaut_face_photo()` (as tests/twins.py has them)."""
STAGES = ("align", "box mask (made once per run)", "occlusion (xseg)", "swap (inswapper)", "region (bisenet)",
          "area (68 estimated from 5)", "area (1k3d68)", "combine + paste")


def build(out: Path, *, scale: float) -> dict[str, Any]:
    """The four cost twins in `out` (rebuilt when `scale` changed), with their counted cost."""
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("scale") == scale and all((out / name).is_file() for name in FILES.values()):
            return manifest
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"scale": scale, "files": {}}
    for name, filename in FILES.items():
        started = time.monotonic()
        path = BUILDERS[name](out / filename, scale=scale)
        cost = measure(path, exclude={"buff2fs"})
        manifest["files"][name] = {"params": cost.params, "macs": cost.macs}
        log.info("built %s in %.1f s", path.name, time.monotonic() - started)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


def scene() -> tuple[np.ndarray, Any]:
    from faceswap.faces.types import Face

    photo = clips.media_factory().astronaut_face_photo()
    frame = clips.media_factory().background(640, 360)
    x, y = FACE_AT
    frame[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    offset = np.array([x, y], np.float32)
    return frame, Face(bbox=ASTRONAUT_BOX + np.tile(offset, 2), score=0.9, kps=ASTRONAUT_KPS + offset)


def adapters(out: Path) -> dict[str, Any]:
    from faceswap.engines.neural import load_swapper
    from faceswap.engines.neural.landmarker import load_landmarker
    from faceswap.engines.neural.maskers import load_masker
    from faceswap.models.sessions import SessionFactory

    sessions = SessionFactory(("cpu",))

    def session(name: str) -> Any:
        return sessions.session(out / FILES[name])

    def no_embedder(*_: Any) -> Any:
        raise RuntimeError("the benchmark feeds a latent directly")

    return {"swapper": load_swapper("inswapper_128", out / FILES["inswapper_128"], session("inswapper_128"),
                                    embedder=no_embedder),
            "occluder": load_masker("xseg_1", "occluder", out / FILES["xseg_1"], session("xseg_1")),
            "parser": load_masker("bisenet_resnet_18", "parser", out / FILES["bisenet_resnet_18"],
                                  session("bisenet_resnet_18")),
            "landmarker": load_landmarker("1k3d68", out / FILES["1k3d68"], session("1k3d68"))}


def _median_ms(work: Callable[[], object], repeats: int, *, warm_up: bool = True) -> float:
    if warm_up:  # first-call allocations are not the steady cost
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def time_stages(out: Path, *, boosts: Sequence[str] = BOOSTS, repeats: int = 3) -> dict[str, dict[str, Any]]:
    """Median ms of each stage for one face at each pixel boost, and the swap model's calls per face."""
    from faceswap.engines.neural.inswapper import SourceLatent, source_latent

    models = adapters(out)
    frame, face = scene()
    embedding = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    source = SourceLatent(latent=source_latent(embedding, models["swapper"].emap), embedding=embedding)
    return {boost: _time_boost(models, source, frame, face, boost, repeats) for boost in boosts}


def _time_boost(models: dict[str, Any], source: Any, frame: np.ndarray, face: Any, boost: str,
                repeats: int) -> dict[str, Any]:
    from faceswap.swap import masks, stages

    swapper = models["swapper"]
    factor = 1 if boost == "native" else int(boost) // swapper.size
    size = swapper.size * factor
    template = swapper.template * factor
    calls = [0]

    def model(phase: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return swapper.swap_crop(phase, source)

    crop, matrix = stages.align(frame, face.kps, template, size)
    swapped = stages.swap_boosted(crop, model, factor)
    per_face, calls[0] = calls[0], 0
    layers = [masks.box_mask(size, 0.3), models["occluder"].mask(crop)]

    def area(points: np.ndarray) -> object:
        return masks.area_mask(transform_points(points, matrix), masks.AREA_POINTS, size)

    timings = {
        "align": _median_ms(lambda: stages.align(frame, face.kps, template, size), repeats),
        "box mask (made once per run)": _median_ms(lambda: masks.box_mask(size, 0.3), repeats),
        "occlusion (xseg)": _median_ms(lambda: models["occluder"].mask(crop), repeats),
        "swap (inswapper)": _median_ms(partial(stages.swap_boosted, crop, model, factor), repeats,
                                       warm_up=False),  # the swap above was the warm-up
        "region (bisenet)": _median_ms(
            lambda: masks.region_mask(models["parser"].labels(swapped), masks.REGION_CLASSES, size), repeats),
        "area (68 estimated from 5)": _median_ms(lambda: area(masks.estimate_68(face.kps)), repeats),
        "area (1k3d68)": _median_ms(lambda: area(models["landmarker"].landmarks(frame, face)), repeats),
        "combine + paste": _median_ms(
            lambda: stages.paste(frame.copy(), swapped, matrix, stages.combine_masks(layers)), repeats),
    }
    return {"crop": size, "swap_calls": per_face, "ms": timings}


def stage_table(results: dict[str, dict[str, Any]]) -> str:
    boosts = list(results)
    header = ["stage (ms per face)", *(f"{b} ({results[b]['crop']} px)" for b in boosts)]
    rows: list[Sequence[str]] = [header]
    for stage in STAGES:
        cells = [f"{results[b]['ms'][stage]:.1f}" for b in boosts]
        if stage == "swap (inswapper)":
            cells = [f"{results[b]['ms'][stage]:.1f} ({results[b]['swap_calls']} calls)" for b in boosts]
        rows.append([stage, *cells])
    for label, chosen in (("total, box mask", ("align", "swap (inswapper)", "combine + paste")),
                          ("total, all four masks (area by 1k3d68)",
                           ("align", "occlusion (xseg)", "swap (inswapper)", "region (bisenet)", "area (1k3d68)",
                            "combine + paste"))):
        rows.append([label, *(f"{sum(results[b]['ms'][s] for s in chosen):.1f}" for b in boosts)])
    return format_table(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="cost twins folder (default: benchmarks/"
                                                                       "models/quality)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink internal widths (1 = the real cost)")
    parser.add_argument("--boost", nargs="+", choices=BOOSTS, default=list(BOOSTS), help="pixel boosts to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per stage (median printed)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or args.repeats < 1:
        parser.error("--scale must be in (0, 1] and --repeats at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    manifest = build(args.out, scale=args.scale)
    results = time_stages(args.out, boosts=args.boost, repeats=args.repeats)
    if args.json:
        print(json.dumps({"twins": manifest, "stages": results}, indent=2))
        return 0
    costs = ", ".join(f"{name} {entry['macs'] / 1e9:.2f} G MACs" for name, entry in manifest["files"].items())
    print(f"cost twins (scale {args.scale}): {costs}")
    print(stage_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
