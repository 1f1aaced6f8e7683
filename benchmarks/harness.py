"""One benchmark configuration, measured inside a fresh process (run.py and memory.py start one per configuration,
so peak RSS belongs to that configuration alone).

Steps: build a `Runtime` (for the neural engine and the restorers, on a cost-twin models dir with the registry's
sizes and hashes rewritten to the twins', as `tests/twins.py` does for tests), load the models (timed as `load`),
optionally warm up on the first frames (onnxruntime allocates its buffers on the first call), then run the REAL
`faceswap.pipeline.run` under `Instrument` and report per-stage times, frames/s, CPU time and peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.instrument import Instrument, StageClock

MAIN_THREAD = "MainThread"


@dataclass(frozen=True)
class Config:
    engine: str
    size: str
    faces: int
    restore: str
    seconds: float
    frames: int
    """Frames to process (0 = the whole clip)."""
    clip: str
    photo: str
    models_dir: str | None
    repeat: int = 1
    warmup: int = 2
    """Frames processed once, untimed, before the measured runs (0: none)."""
    workdir: str = field(default_factory=tempfile.gettempdir)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls(**json.loads(text))


def rss_mb() -> float:
    """Resident set size now (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KB on Linux), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def twin_runtime(models_dir: Path, data_dir: Path) -> Any:
    """A Runtime on a cost-twin models dir: the registry entries point at the twins' sizes and sha256."""
    from benchmarks.cost_twins import TARGETS, load_manifest
    from faceswap.config import Settings
    from faceswap.models.registry import REGISTRY
    from faceswap.models.store import ModelStore
    from faceswap.runtime import Runtime

    manifest = load_manifest(models_dir.parent)
    entries: dict[str, dict[str, Any]] = dict(manifest["files"])  # type: ignore[arg-type]
    faces = models_dir.name.removeprefix("faces-")
    entries["det_10g"] = manifest["detectors"][faces]  # type: ignore[index]
    specs = dict(REGISTRY)
    for name, entry in entries.items():
        specs[name] = replace(REGISTRY[name], filename=TARGETS[name].filename, size=int(entry["size"]),
                              sha256=str(entry["sha256"]), crc32=None)
    env = Settings.from_env()  # FACESWAP_PROVIDERS, _PRECISION, _IO_BINDING, _TRT_CACHE as the product reads them
    settings = Settings(data_dir=data_dir, models_dir=models_dir, allow_model_download=False, providers=env.providers,
                        precision=env.precision, io_binding=env.io_binding, trt_cache_dir=env.trt_cache_dir,
                        decode_threads=env.decode_threads, encode_threads=env.encode_threads)
    runtime = Runtime(settings)
    runtime.models = ModelStore(settings, specs=specs)
    return runtime


def _options(config: Config, frames: int) -> Any:
    from faceswap.options import SwapOptions

    return SwapOptions.parse(video=config.clip, face=config.photo, engine=config.engine, restore=config.restore,
                             target_faces=[0] if config.faces == 1 else "all", frame_cap=frames)


def measure(config: Config) -> dict[str, Any]:
    from faceswap.config import Settings
    from faceswap.pipeline import run
    from faceswap.runtime import Runtime

    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=config.workdir))
    needs_twins = config.engine == "neural" or config.restore != "none"
    if needs_twins and not config.models_dir:
        raise ValueError("the neural engine and the restorers need a cost-twin models dir")
    runtime = (twin_runtime(Path(config.models_dir), workdir / "data") if needs_twins and config.models_dir
               else Runtime(Settings(data_dir=workdir / "data", models_dir=workdir / "models",
                                     allow_model_download=False)))
    started = time.perf_counter()
    engine = runtime.engine(config.engine)
    restorer = runtime.restorer(config.restore) if config.restore != "none" else None
    load_s = time.perf_counter() - started
    rss_loaded = rss_mb()

    output = workdir / "out.mp4"
    if config.warmup:
        run(_options(config, config.warmup), runtime, output)
        output.unlink(missing_ok=True)
    rss_before = rss_mb()

    clock = StageClock()
    runs = []
    with Instrument(clock, engine, restorer):
        for _ in range(config.repeat):
            clock.reset()
            cpu = os.times()
            started = time.perf_counter()
            result = run(_options(config, config.frames), runtime, output)
            elapsed = time.perf_counter() - started
            cpu_after = os.times()
            runs.append(_summarise(clock, result.report, elapsed,
                                   cpu_after.user + cpu_after.system - cpu.user - cpu.system))
            output.unlink(missing_ok=True)
    chosen = sorted(runs, key=lambda item: item["e2e_s"])[len(runs) // 2]  # the median run
    return {
        "engine": config.engine, "size": config.size, "faces": config.faces, "restore": config.restore,
        "clip_seconds": config.seconds, "load_s": round(load_s, 3), "rss_loaded_mb": round(rss_loaded, 1),
        "rss_before_run_mb": round(rss_before, 1), "rss_after_run_mb": round(rss_mb(), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1), "warmup_frames": config.warmup,
        "fps_runs": [run_["fps"] for run_ in runs], "fps_median": round(statistics.median(r["fps"] for r in runs), 3),
        **chosen,
    }


def _summarise(clock: StageClock, report: Any, elapsed: float, cpu_s: float) -> dict[str, Any]:
    stats = clock.stats
    frames = report.frames
    stages = {name: {"calls": stat.calls, "seconds": round(stat.seconds, 4), "cpu_s": round(stat.cpu_seconds, 4),
                     "thread": "main" if stat.threads == {MAIN_THREAD} else ",".join(sorted(stat.threads))}
              for name, stat in sorted(stats.items())}
    main = sum(stat.seconds for stat in stats.values() if stat.threads == {MAIN_THREAD})
    models = sum(stat.seconds for name, stat in stats.items() if name.endswith(".model"))
    return {
        "frames": frames, "frames_swapped": report.frames_swapped, "faces_mean": report.faces_per_frame.mean,
        "e2e_s": round(elapsed, 3), "fps": round(frames / elapsed, 3) if elapsed else 0.0,
        "ms_per_frame": round(elapsed / max(frames, 1) * 1000, 1), "cpu_s": round(cpu_s, 2),
        "cores_busy": round(cpu_s / elapsed, 2) if elapsed else 0.0,
        "stages": stages, "main_untimed_s": round(elapsed - main, 4), "model_s": round(models, 4),
        "model_share": round(models / elapsed, 4) if elapsed else 0.0,
        "glue_share": round(1 - models / elapsed, 4) if elapsed and models else None,
        "provider": report.provider,
        "inference": dict(getattr(report, "inference", {})),
    }
