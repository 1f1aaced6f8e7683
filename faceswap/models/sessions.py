"""onnxruntime sessions: provider choice, one cached session per (file, providers, device), honest provider reporting.

Provider order: the names in FACESWAP_PROVIDERS (short names such as `cuda` or full onnxruntime names), else the
best available of TensorRT, CUDA, CoreML, CPU. CPU is always last so a session can still be created. When a GPU
provider was asked for and does not load, a warning is logged and a notice is kept (the engine carries it into the
report): the run goes on on CPU, but never silently.

Installing insightface on a GPU machine pulls the CPU `onnxruntime` next to `onnxruntime-gpu`; both own the
`onnxruntime` module and the last one installed wins, so the GPU can vanish. That is detected from the installed
distributions (importlib.metadata) and reported with the fix (DESIGN §10).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from faceswap.errors import FaceSwapError
from faceswap.models.runner import ModelRunner, Precision, resolve_io_binding, resolve_precision, value_device

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
DEFAULT_ORDER: tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CoreMLExecutionProvider",
                                  CPU)
SHORT_NAMES: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider", "gpu": "CUDAExecutionProvider", "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider", "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider", "dml": "DmlExecutionProvider", "openvino": "OpenVINOExecutionProvider",
    "cpu": CPU,
}
DEVICE_PROVIDERS = frozenset({"CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider"})
"""Providers that take a `device_id` option (TensorRT takes it too, with its cache options)."""
ONNXRUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                             "onnxruntime-silicon", "onnxruntime-rocm", "onnxruntime-training")


def full_provider_name(name: str) -> str:
    """`cuda` → `CUDAExecutionProvider`; full names pass through (matched case-insensitively)."""
    text = name.strip()
    if text.lower() in SHORT_NAMES:
        return SHORT_NAMES[text.lower()]
    for known in (*DEFAULT_ORDER, *SHORT_NAMES.values()):
        if known.lower() == text.lower():
            return known
    return text


def short_provider_name(name: str) -> str:
    """`CUDAExecutionProvider` → `cuda`: the form reports show."""
    return name.removesuffix("ExecutionProvider").lower() or name


def installed_onnxruntime_distributions() -> list[str]:
    """Names of the installed distributions that provide the `onnxruntime` module."""
    found = []
    for dist in ONNXRUNTIME_DISTRIBUTIONS:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return found


def distribution_notices(distributions: Sequence[str], available: Sequence[str]) -> list[str]:
    """What to tell the user about the installed onnxruntime packages (empty when all is well)."""
    notices = []
    if len(distributions) > 1:
        gpu = [d for d in distributions if d != "onnxruntime"] or list(distributions[1:])
        keep = gpu[0]
        notices.append(
            f"Several onnxruntime packages are installed ({', '.join(distributions)}). They share the `onnxruntime` "
            f"module, so whichever was installed last wins (available providers now: {', '.join(available)}). "
            f"Keep one: `pip uninstall -y {' '.join(distributions)} && pip install {keep}`.")
    if "onnxruntime-gpu" in distributions and "CUDAExecutionProvider" not in available:
        notices.append("onnxruntime-gpu is installed but the CUDA provider is not available; check the CUDA and "
                       "cuDNN libraries match this onnxruntime-gpu build.")
    return notices


def provider_arguments(providers: Sequence[str], model_path: str | Path, *, device_id: int = 0,
                       trt_cache: Path | None = None, fp16: bool = False) -> list[Any]:
    """The `providers=` list for one session: TensorRT with its engine cache (`trt_cache`, default `.trt-cache`
    beside the model; engines are built once per model, GPU and TensorRT version, then loaded in seconds) and fp16
    engines when the run is half precision; CUDA, ROCm and DirectML with the device id; others by name."""
    arguments: list[Any] = []
    for provider in providers:
        if provider == "TensorrtExecutionProvider":
            cache = trt_cache or Path(model_path).parent / ".trt-cache"
            arguments.append((provider, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                                         "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
                                         "trt_fp16_enable": fp16, "device_id": device_id}))
        elif provider in DEVICE_PROVIDERS:
            arguments.append((provider, {"device_id": device_id}))
        else:
            arguments.append(provider)
    return arguments


def share_cpu_arena(ort: Any) -> bool:
    """Register one CPU arena with onnxruntime's environment for all sessions of this process to share.

    Each session's own arena keeps the largest activation buffers it ever needed, so four neural sessions hold
    four peaks (+190 MB resident on a 1080p run); a shared arena holds the largest one, and grows only by what is
    asked (kSameAsRequested, not powers of two). Without an arena at all, every run maps and zero-fills its
    buffers again (the detector ran measurably slower). The registration is the environment's, once per
    process: a second one is refused by onnxruntime and the first stays in use."""
    try:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 1, -1, -1))  # 1 = kSameAsRequested
    except AttributeError:  # an onnxruntime build without the API: sessions keep their own arenas
        return False
    except Exception as exc:  # already registered in this process: that arena is shared
        if "already" not in str(exc).lower():
            log.warning("sessions keep their own memory arenas: %s", exc)
            return False
    return True


class SessionFactory:
    """Creates and caches onnxruntime sessions for model files. One per Runtime; thread-safe."""

    def __init__(self, providers: Sequence[str] = (), *, threads: int | None = None,
                 available: Sequence[str] | None = None, distributions: Sequence[str] | None = None,
                 device_id: int = 0, precision: str = "auto", io_binding: str = "auto",
                 trt_cache: Path | None = None) -> None:
        """`precision` (auto | fp32 | fp16) and `io_binding` (auto | on | off): `auto` turns both on for CUDA and
        TensorRT and off on CPU (FACESWAP_PRECISION, FACESWAP_IO_BINDING); `trt_cache` is TensorRT's engine cache
        (FACESWAP_TRT_CACHE; default `.trt-cache` beside each model)."""
        import onnxruntime

        self._ort = onnxruntime
        self.requested: tuple[str, ...] = tuple(full_provider_name(p) for p in providers if p.strip())
        self.available: tuple[str, ...] = tuple(available if available is not None
                                                else onnxruntime.get_available_providers())
        self.distributions: tuple[str, ...] = tuple(distributions if distributions is not None
                                                    else installed_onnxruntime_distributions())
        self.threads = threads
        self.device_id = device_id
        """The GPU the device providers (CUDA, TensorRT, ROCm, DirectML) run on."""
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, tuple[str, ...], int], Any] = {}
        self._notices: list[str] = []
        self.providers: tuple[str, ...] = self._choose_providers()
        self.precision: Precision = resolve_precision(precision, self.providers)
        """The precision swappers and restorers run in. Analysis models stay float32 files; under TensorRT the fp16
        flag is a provider option, so TensorRT may build every model's engine in fp16 (it picks fp16 or fp32 per
        layer, by speed)."""
        self.io_binding: bool = resolve_io_binding(io_binding, self.providers)
        self.value_device = value_device(self.providers)
        self.trt_cache = trt_cache
        self._shared_arena = share_cpu_arena(onnxruntime)
        for notice in distribution_notices(self.distributions, self.available):
            self._notice(notice)

    # -- public ------------------------------------------------------------------------------------------------
    @property
    def notices(self) -> list[str]:
        with self._lock:
            return list(self._notices)

    def session(self, path: Path | str, *, device_id: int | None = None) -> Any:
        """The cached `onnxruntime.InferenceSession` for `path` with this factory's providers, on `device_id`
        (default: the factory's device)."""
        resolved = str(Path(path).resolve())
        device = self.device_id if device_id is None else device_id
        key = (resolved, self.providers, device)
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
        created = self._create(resolved, device)
        with self._lock:
            return self._sessions.setdefault(key, created)

    def runner(self, path: Path | str, *, half: bool = False, published_half: bool = False,
               device_id: int | None = None) -> ModelRunner:
        """The session for `path` behind a `ModelRunner` with this factory's IO binding. `half`: a swapper or
        restorer that should run in half precision: when this factory's precision is fp16 and the provider is not
        TensorRT (which makes fp16 engines itself), a float16 copy of a float32 file is used (`models.half`).
        `published_half`: the file is a half-precision export already (inswapper_128_fp16): used as it is."""
        chosen = Path(path)
        precision = "fp16" if published_half or (half and self.precision == "fp16") else "fp32"
        if precision == "fp16" and not published_half and self.providers[0] != "TensorrtExecutionProvider":
            from faceswap.models.half import half_copy

            chosen = half_copy(chosen)
        session = self.session(chosen, device_id=device_id)
        on_device = self.provider_for(session) != "cpu"
        return ModelRunner(session, io_binding=self.io_binding, device=self.value_device if on_device else "cpu",
                           device_id=self.device_id if device_id is None else device_id,
                           precision="fp16" if precision == "fp16" else "fp32")

    def provider_for(self, session: Any) -> str:
        """The provider that runs `session` (its first active provider), in short form: `cuda`, `cpu`…"""
        active = session.get_providers()
        return short_provider_name(active[0]) if active else "cpu"

    def provider_report(self) -> dict[str, object]:
        with self._lock:
            sessions = {Path(key[0]).name: list(session.get_providers()) for key, session in self._sessions.items()}
            notices = list(self._notices)
        return {
            "requested": list(self.requested),
            "available": list(self.available),
            "providers": list(self.providers),
            "onnxruntime_version": self._ort.__version__,
            "distributions": list(self.distributions),
            "precision": self.precision,
            "io_binding": self.io_binding,
            "sessions": sessions,
            "notices": notices,
        }

    # -- internals ---------------------------------------------------------------------------------------------
    def _notice(self, text: str) -> None:
        log.warning("%s", text)
        with self._lock:
            if text not in self._notices:
                self._notices.append(text)

    def _choose_providers(self) -> tuple[str, ...]:
        if not self.requested:
            chosen = [p for p in DEFAULT_ORDER if p in self.available]
            return tuple(chosen) if chosen else (CPU,)
        missing = [p for p in self.requested if p not in self.available]
        chosen = [p for p in self.requested if p in self.available]
        if missing:
            self._notice(
                f"FACESWAP_PROVIDERS asks for {', '.join(missing)}, which this onnxruntime "
                f"({self._ort.__version__}) does not offer (available: {', '.join(self.available)}); "
                f"running on {', '.join(chosen) or 'CPU'} instead.")
        if CPU not in chosen:
            chosen.append(CPU)
        return tuple(chosen)

    def _options(self) -> Any:
        options = self._ort.SessionOptions()
        options.log_severity_level = 3  # errors only; provider fallbacks are reported by us, plainly
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self._shared_arena:
            options.add_session_config_entry("session.use_env_allocators", "1")
        if self.threads:
            options.intra_op_num_threads = self.threads
        return options

    def _provider_arguments(self, model_path: str, device_id: int = 0) -> list[Any]:
        return provider_arguments(self.providers, model_path, device_id=device_id, trt_cache=self.trt_cache,
                                  fp16=self.precision == "fp16")

    def preload(self, paths: Iterable[Path | str]) -> None:
        """Build the sessions for `paths`, largest file first: a session's build briefly holds its file twice
        (parsed protobuf and tensors), and that peak is lowest while little else is loaded."""
        def size(path: Path | str) -> int:
            try:
                return Path(path).stat().st_size
            except OSError:  # session() reports it
                return 0

        for path in sorted(paths, key=size, reverse=True):
            self.session(path)

    def _create(self, path: str, device_id: int) -> Any:
        from faceswap.models.heap import compact_heap

        try:
            with compact_heap():
                session = self._ort.InferenceSession(path, sess_options=self._options(),
                                                     providers=self._provider_arguments(path, device_id))
        except Exception as exc:  # onnxruntime raises its own pybind error types
            raise FaceSwapError(
                "model_not_available",
                f"{Path(path).name} could not be loaded by onnxruntime ({type(exc).__name__}: {exc}); the file is "
                f"damaged or not an ONNX model. Delete it and download it again "
                f"(`python -m faceswap models download`).",
            ) from exc
        self._check_fallback(path, session.get_providers())
        return session

    def _check_fallback(self, path: str, active: Iterable[str]) -> None:
        active = list(active)
        wanted_gpu = [p for p in self.providers if p != CPU]
        if wanted_gpu and (not active or active[0] == CPU):
            origin = "FACESWAP_PROVIDERS asks" if self.requested else "this onnxruntime offers"
            self._notice(
                f"{origin} {', '.join(wanted_gpu)} but it did not load for {Path(path).name}; it runs on CPU and "
                "will be slow. Check the GPU drivers and CUDA/cuDNN libraries for this onnxruntime build.")
