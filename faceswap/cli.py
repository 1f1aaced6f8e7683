"""`python -m faceswap swap | faces | models ...` — the command line.

Exit status: 0 success, 2 the caller's fault (bad input, no face), 1 ours. With `--json`, stdout carries exactly
one JSON object: the result, or `{"error": {"code", "message", "retryable"}}`. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import cv2

from faceswap import __version__
from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.options import (
    DEFAULT_SWAPPER,
    ENGINES,
    GENDERS,
    MASK_AREAS,
    MASK_REGIONS,
    MASK_TYPES,
    OCCLUDERS,
    ORDERS,
    OUTPUT_FORMATS,
    PARSERS,
    PIXEL_BOOSTS,
    RESTORES,
    SELECTIONS,
    SWAPPERS,
    SwapOptions,
)
from faceswap.report import Progress, coverage_warning

log = logging.getLogger("faceswap")

EXIT_OK, EXIT_OURS, EXIT_CALLER = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises a catalog error instead of printing and exiting, so --json callers get JSON."""

    def error(self, message: str) -> NoReturn:
        raise FaceSwapError("invalid_request", f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m faceswap", description="Swap faces in videos, offline or with neural models.")
    parser.add_argument("--version", action="version", version=f"faceswap {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    swap = commands.add_parser("swap", help="swap a face in a video")
    swap.add_argument("video", help="video file (mp4, mov, webm, mkv, gif)")
    swap.add_argument("face", help="photo of the face to put in")
    swap.add_argument("-o", "--output", required=True, help="file to write (.mp4 or .gif)")
    swap.add_argument("--engine", choices=ENGINES, default="auto")
    swap.add_argument("--target", default="0", help="face(s) to replace: 0, 0,2 or all (default 0)")
    swap.add_argument("--source", default="0", help="face(s) of the photo to use: 0 or 0,1 (default 0)")
    swap.add_argument("--order", choices=ORDERS, default="left_to_right")
    swap.add_argument("--selection", choices=SELECTIONS, default="track")
    swap.add_argument("--reference-frame", type=int, default=None, metavar="N",
                      help="count target indices on frame N (track mode), as listed by `faces --frame N`")
    swap.add_argument("--target-gender", choices=GENDERS, default="any")
    swap.add_argument("--source-gender", choices=GENDERS, default="any")
    swap.add_argument("--frame-cap", type=int, default=0, metavar="N", help="process at most N frames (0: all)")
    swap.add_argument("--start", type=float, default=None, metavar="SEC")
    swap.add_argument("--end", type=float, default=None, metavar="SEC")
    swap.add_argument("--restore", choices=RESTORES, default="none")
    swap.add_argument("--codeformer-weight", type=float, default=0.95, metavar="W")
    swap.add_argument("--restore-visibility", type=float, default=1.0, metavar="V")
    swap.add_argument("--restore-blend", type=int, default=100, metavar="0-100",
                      help="restored face mixed over the swapped one: 0 leaves it unrestored, 100 (default) shows the "
                           "restorer's output (FaceFusion's enhancer blend; its default is 80)")
    swap.add_argument("--format", choices=OUTPUT_FORMATS, default="same", dest="output_format")
    swap.add_argument("--swapper", choices=SWAPPERS, default=DEFAULT_SWAPPER, help="the neural engine's swap model")
    swap.add_argument("--pixel-boost", choices=PIXEL_BOOSTS, default="native",
                      help="swap at this crop size through sub-pixel phases (512 with inswapper_128: 16 model calls "
                           "per face)")
    swap.add_argument("--mask", type=name_list(MASK_TYPES), default=["box"], metavar="TYPES",
                      help=f"masks combined by minimum, comma-separated from {{{','.join(MASK_TYPES)}}} (neural "
                           "engine): occlusion keeps hands and objects in front of the face, region and area keep "
                           "what --mask-regions / --mask-areas leave out")
    swap.add_argument("--swapper-weight", type=float, default=0.5, metavar="W",
                      help="identity strength 0-1 (0.5 as the swapper makes it; embedding swappers only)")
    swap.add_argument("--mask-blur", type=float, default=0.3, metavar="B", help="box mask edge blur (0-1)")
    swap.add_argument("--mask-padding", default="0,0,0,0", metavar="T,R,B,L",
                      help="box mask padding in %% of the crop (one value for all sides, or top,right,bottom,left)")
    swap.add_argument("--mask-regions", type=name_list(MASK_REGIONS), default=list(MASK_REGIONS), metavar="REGIONS",
                      help=f"regions the region mask swaps, from {{{','.join(MASK_REGIONS)}}}; leave out mouth and "
                           "the lips to keep the target's mouth")
    swap.add_argument("--mask-areas", type=name_list(MASK_AREAS), default=list(MASK_AREAS), metavar="AREAS",
                      help=f"areas the area mask swaps, from {{{','.join(MASK_AREAS)}}}")
    swap.add_argument("--mask-occluder", choices=OCCLUDERS, default=OCCLUDERS[0], help="occlusion mask model")
    swap.add_argument("--mask-parser", choices=PARSERS, default=PARSERS[-1], help="region mask model")
    swap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    swap.set_defaults(handler=_swap)

    faces = commands.add_parser("faces", help="list the faces on a frame of a video, or in a photo")
    faces.add_argument("path")
    faces.add_argument("--frame", type=int, default=0, metavar="N")
    faces.add_argument("--order", choices=ORDERS, default="left_to_right")
    faces.add_argument("--engine", choices=ENGINES, default="auto")
    faces.add_argument("--thumbs", type=Path, default=None, metavar="DIR", help="write face thumbnails here")
    faces.add_argument("--json", action="store_true")
    faces.set_defaults(handler=_faces)

    worker = commands.add_parser("worker", help="run a Celery worker for the celery backend (one per GPU)")
    worker.add_argument("--device", default=None, metavar="N",
                        help="the GPU this worker uses (sets CUDA_VISIBLE_DEVICES=N; default: as the environment says)")
    worker.add_argument("-c", "--concurrency", type=int, default=1, metavar="N",
                        help="jobs run at once, one process each (default 1: one worker per GPU)")
    worker.add_argument("-n", "--hostname", default=None, help="the worker's name (Celery's %%h etc. work)")
    worker.add_argument("--preload", choices=("auto", "classic", "neural", "none"), default="auto",
                        help="engine whose models each worker process loads at start (default auto)")
    worker.set_defaults(handler=_worker)

    from faceswap.models.cli import register

    register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    wants_json = "--json" in args_list
    try:
        args = build_parser().parse_args(args_list)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")
        return int(args.handler(args))
    except KeyboardInterrupt:
        return _fail(FaceSwapError("task_cancelled", "Interrupted."), wants_json)
    except Exception as exc:  # every failure leaves as a catalog error; the log keeps the trace
        error = as_faceswap_error(exc)
        if error is not exc:
            log.error("unexpected failure", exc_info=exc)
        return _fail(error, wants_json)


def _fail(error: FaceSwapError, as_json: bool) -> int:
    if as_json:
        _emit({"error": error.to_dict()})
    else:
        print(f"error [{error.code}]: {error.message}", file=sys.stderr)
    return EXIT_CALLER if error.caller_fault else EXIT_OURS


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def name_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse type for a comma-separated list whose items must be among `choices`."""

    def parse(text: str) -> list[str]:
        items = [item.strip().lower() for item in text.split(",") if item.strip()]
        wrong = [item for item in items if item not in choices]
        if not items or wrong:
            raise argparse.ArgumentTypeError(f"invalid choice {', '.join(wrong) or repr(text)} (choose from "
                                             f"{', '.join(choices)}, comma-separated)")
        return items

    return parse


def _runtime():  # imported late: `--help` and argument errors should not load the media stack
    from faceswap.runtime import Runtime

    return Runtime()


def _swap(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from faceswap import pipeline

    options = SwapOptions.parse(
        video=args.video, face=args.face, target_faces=args.target, source_faces=args.source, order=args.order,
        selection=args.selection, reference_frame=args.reference_frame, target_gender=args.target_gender,
        source_gender=args.source_gender, frame_cap=args.frame_cap, start=args.start, end=args.end,
        engine=args.engine, restore=args.restore, codeformer_weight=args.codeformer_weight,
        restore_visibility=args.restore_visibility, restore_blend=args.restore_blend,
        output_format=args.output_format, swapper=args.swapper,
        pixel_boost=args.pixel_boost, swapper_weight=args.swapper_weight, mask=args.mask, mask_blur=args.mask_blur,
        mask_padding=args.mask_padding, mask_regions=args.mask_regions, mask_areas=args.mask_areas,
        mask_occluder=args.mask_occluder, mask_parser=args.mask_parser)
    bars: list[tqdm] = []  # made on the first frame, so early failures print no empty bar

    def on_progress(step: Progress) -> None:
        if not bars:
            bars.append(tqdm(total=step.frames_total, unit="frame", file=sys.stderr, dynamic_ncols=True,
                             desc="swapping"))
        bar = bars[0]
        if bar.total != step.frames_total:
            bar.total = step.frames_total
            bar.refresh()
        bar.update(step.frames_done - bar.n)

    try:
        result = pipeline.run(options, _runtime(), Path(args.output), progress=on_progress)
    finally:
        for bar in bars:
            bar.close()
    if args.json:
        _emit(result.to_dict())
    else:
        report = result.report
        print(f"{result.output}: {report.frames_swapped}/{report.frames} frames swapped with the {report.engine} "
              f"engine ({report.provider}) in {report.elapsed_s:.1f} s", file=sys.stderr)
        for notice in report.notices:
            print(f"note: {notice}", file=sys.stderr)
        if warning := coverage_warning(report.to_dict()):
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _faces(args: argparse.Namespace) -> int:
    from faceswap.inspect import find_faces

    listing = find_faces(Path(args.path), _runtime(), frame=args.frame, order=args.order, engine=args.engine)
    thumbs: list[str] = []
    if args.thumbs is not None:
        args.thumbs.mkdir(parents=True, exist_ok=True)
        for face in listing.faces:
            path = args.thumbs / f"face_{face.index}.png"
            cv2.imwrite(str(path), face.thumbnail)
            thumbs.append(str(path))
    if args.json:
        data = listing.to_dict()
        if thumbs:
            for face_data, thumb in zip(data["faces"], thumbs, strict=True):  # type: ignore[arg-type]
                face_data["thumbnail"] = thumb
        _emit(data)
    else:
        print(f"{len(listing.faces)} face(s) on frame {listing.frame_index} ({listing.engine} engine):")
        for face in listing.faces:
            gender = face.gender or "unknown"
            print(f"  {face.index}: box {face.bbox} score {face.score:.2f} gender {gender}")
        for notice in listing.notices:
            print(f"note: {notice}", file=sys.stderr)
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    import os

    from faceswap.config import Settings

    try:
        from faceswap.jobs.worker import check_celery_settings, run_worker
    except ImportError as exc:
        raise FaceSwapError("invalid_request", "The worker needs Celery and Redis: pip install "
                            "'faceswap[distributed]'.") from exc

    if args.device is not None:
        if not args.device.strip().isdigit():
            raise FaceSwapError("invalid_request", f"--device: expected a GPU index (0, 1, ...), got {args.device!r}")
        # The only visible card is this one, so its sessions run on device 0 of what they see.
        os.environ["CUDA_VISIBLE_DEVICES"] = args.device.strip()
        os.environ["FACESWAP_DEVICE_ID"] = "0"
    if args.concurrency < 1:
        raise FaceSwapError("invalid_request", "--concurrency must be 1 or more")
    settings = Settings.from_env()
    check_celery_settings(settings)
    run_worker(settings, concurrency=args.concurrency, hostname=args.hostname,
               loglevel="DEBUG" if args.verbose else "INFO", preload=args.preload)
    return EXIT_OK
