"""The celery backend against the embedded one: what queueing through Redis to a worker process costs per job, and
how throughput grows from one worker to two.

    python -m benchmarks.celery_overhead                      # 2 s clip, 640x480, 1 face, classic engine
    python -m benchmarks.celery_overhead --repeats 5 --jobs 8 --size 720p

1. Overhead: the same clip swapped `--repeats` times one after the other, after one warm-up job (models loaded),
   by the embedded job service (SQLite + a worker thread) and by the celery backend (Redis + one `faceswap worker`
   process). Per job: wall time from submit to `succeeded` as the caller sees it (polling every 50 ms), the pipeline's
   own time (report `elapsed_s`), and their difference — queueing, claiming, blob hand-over, heartbeats, polling.
2. Throughput: `--jobs` copies submitted at once to one worker, then to two; jobs per minute from the first submit
   to the last result. On a machine with few cores the second worker competes with the first for them; on a GPU
   host each worker has its own card.

Needs redis-server (Debian package) and the `distributed` extra. The table goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.clips import SIZES, write_clip, write_source_photo

TESTS = Path(__file__).resolve().parent.parent / "tests"


def _support() -> tuple[Any, Any]:
    """The test suite's redis-server and worker-process helpers (they start real processes on free ports)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import celery_support
    import redis_support

    return redis_support, celery_support


def _service(settings: Any) -> Any:
    from faceswap.jobs import JobService
    from faceswap.runtime import Runtime

    service = JobService(Runtime(settings), settings)
    service.start()
    return service


def _run_one(service: Any, options: Any) -> tuple[float, float]:
    started = time.perf_counter()
    job = service.submit(options)
    while not (job := service.get(job.id)).finished:
        time.sleep(0.05)
    if job.status != "succeeded":
        raise RuntimeError(f"job {job.status}: {job.error}")
    return time.perf_counter() - started, float(job.report["elapsed_s"])


def _latencies(service: Any, options: Any, repeats: int) -> dict[str, float]:
    _run_one(service, options)  # warm-up: the engine loads
    runs = [_run_one(service, options) for _ in range(repeats)]
    walls, pipelines = [wall for wall, _ in runs], [pipeline for _, pipeline in runs]
    return {"wall_s": statistics.median(walls), "pipeline_s": statistics.median(pipelines),
            "overhead_s": statistics.median(wall - pipeline for wall, pipeline in runs)}


def _throughput(service: Any, options: Any, jobs: int) -> float:
    started = time.perf_counter()
    ids = [service.submit(options).id for _ in range(jobs)]
    for job_id in ids:
        job = service.wait(job_id, timeout=3600)
        if job.status != "succeeded":
            raise RuntimeError(f"job {job.status}: {job.error}")
    return jobs / (time.perf_counter() - started) * 60


@contextlib.contextmanager
def _celery(settings: Any, folder: Path, workers: int) -> Iterator[Any]:
    _, celery_support = _support()
    names = tuple(f"bench{number}" for number in range(1, workers + 1))
    with celery_support.worker_processes(settings, folder, names=names):
        service = _service(settings)
        try:
            yield service
        finally:
            service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="640x480")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="sequential jobs per mode for the overhead")
    parser.add_argument("--jobs", type=int, default=4, help="jobs submitted at once for the throughput")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from faceswap.config import Settings
    from faceswap.options import SwapOptions

    redis_support, celery_support = _support()
    with tempfile.TemporaryDirectory(prefix="faceswap-celery-bench-") as tmp:
        folder = Path(tmp)
        clip = write_clip(folder / "clip.mp4", size=args.size, faces=args.faces, seconds=args.seconds)
        face = write_source_photo(folder / "face.png")
        options = SwapOptions(video=str(clip), face=str(face), engine="classic")
        base = Settings(data_dir=folder / "data", models_dir=folder / "models", workers=1)

        rows: list[tuple[str, dict[str, float]]] = []
        embedded = _service(base.with_(data_dir=folder / "embedded"))
        try:
            rows.append(("embedded (SQLite + thread)", _latencies(embedded, options, args.repeats)))
            embedded_rate = _throughput(embedded, options, args.jobs)
        finally:
            embedded.close()

        with redis_support.redis_server(folder) as url:
            rates: dict[int, float] = {}
            for workers in (1, 2):
                celery_support.flush(url)
                settings = celery_support.celery_settings(base.with_(data_dir=folder / f"celery{workers}",
                                                                     workers=workers), url)
                with _celery(settings, folder, workers) as service:
                    if workers == 1:
                        rows.append(("celery (Redis + 1 worker process)",
                                     _latencies(service, options, args.repeats)))
                    rates[workers] = _throughput(service, options, args.jobs)

    frames = round(args.seconds * 25)
    print(f"\n{args.seconds:g} s clip, {args.size}, {frames} frames, {args.faces} face(s), classic engine; "
          f"{os.cpu_count()} CPU cores; medians of {args.repeats} sequential jobs after a warm-up\n")
    print(f"{'mode':<36}{'submit→done s':>15}{'pipeline s':>12}{'overhead s':>12}")
    for name, row in rows:
        print(f"{name:<36}{row['wall_s']:>15.2f}{row['pipeline_s']:>12.2f}{row['overhead_s']:>12.2f}")
    extra = rows[1][1]["overhead_s"] - rows[0][1]["overhead_s"]
    print(f"celery path costs {extra:+.2f} s per job over the embedded one\n")
    print(f"{'throughput, ' + str(args.jobs) + ' jobs at once':<36}{'jobs/min':>15}{'vs 1 worker':>12}")
    print(f"{'embedded, 1 thread':<36}{embedded_rate:>15.2f}{'':>12}")
    for workers, rate in rates.items():
        print(f"{f'celery, {workers} worker(s)':<36}{rate:>15.2f}{rate / rates[1]:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
