"""Settings read once from the environment into a frozen object that is passed down (tests build their own)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

MiB = 1024 * 1024


TRUE_WORDS = ("1", "true", "yes", "on")


def _user_dir(env_var: str, fallback: str, leaf: str, environ: Mapping[str, str]) -> Path:
    base = environ.get(env_var) or str(Path.home() / fallback)
    return Path(base).expanduser() / "faceswap" / leaf


def hub_cache_dir(environ: Mapping[str, str]) -> Path:
    """The Hugging Face Hub cache that huggingface_hub uses under this environment: HF_HUB_CACHE (or the older
    HUGGINGFACE_HUB_CACHE), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    `~/.cache/huggingface/hub`. Read from `environ` here (huggingface_hub reads os.environ once, at import)."""
    home = environ.get("HF_HOME") or str(Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    chosen = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE") or str(Path(home) / "hub")
    return Path(os.path.expandvars(chosen)).expanduser()


def _choice(*allowed: str) -> Callable[[str], str]:
    def cast(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError(f"choose from {', '.join(allowed)}")
        return value.lower()

    return cast


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    """Jobs database, uploads and outputs (FACESWAP_DATA_DIR)."""
    models_dir: Path
    """Model weights (FACESWAP_MODELS_DIR)."""
    max_upload_bytes: int = 500 * MiB
    max_duration_s: float = 600.0
    max_pixels: int = 4096 * 2304
    max_frames: int = 36_000
    api_keys: frozenset[str] = frozenset()
    rate_limit_per_minute: int = 60
    """Job creations per API key (or client address) per minute; status polls are never limited."""
    retention_s: float = 3600.0
    workers: int = 1
    public_base_url: str | None = None
    url_allowlist: tuple[str, ...] = ()
    """Hosts or CIDR blocks URL inputs may reach although they are private (for tests and trusted LANs)."""
    fetch_timeout_s: float = 60.0
    ui_auth: tuple[str, str] | None = None
    providers: tuple[str, ...] = ()
    """onnxruntime providers to use, in order of preference (FACESWAP_PROVIDERS); empty = best available."""
    allow_model_download: bool = True
    hub_cache_dir: Path | None = None
    """A Hugging Face Hub cache to take model files from when they are already there (on Spaces,
    `preload_from_hub` puts them there); None: look in none. `from_env` resolves it as huggingface_hub does."""
    allow_unverified_models: bool = False
    """Use a model file whose size or checksum differs from the registry's (another build with the same interface),
    with a warning and a notice in each report, instead of refusing it (FACESWAP_ALLOW_UNVERIFIED_MODELS)."""
    fetch_min_bytes_per_s: int = 16 * 1024
    """A URL download slower than this on average over any `fetch_rate_window_s` is refused (FACESWAP_FETCH_MIN_KBPS;
    0 turns the check off). The total deadline is `fetch_timeout_s`."""
    fetch_rate_window_s: float = 10.0
    max_inline_bytes: int = 32 * MiB
    """Largest media given inline in a JSON body (data URI or base64), decoded (FACESWAP_MAX_INLINE_MB). Bigger
    files go by URL or through an upload ticket; JSON bodies are limited to what two such inputs need."""
    max_open_uploads: int = 10
    """Upload tickets one API key (or address) may hold open, not yet filled (FACESWAP_MAX_OPEN_UPLOADS)."""
    max_open_upload_bytes: int = 2048 * MiB
    """Total announced bytes of one key's open upload tickets (FACESWAP_MAX_OPEN_UPLOAD_MB)."""
    trusted_proxies: tuple[str, ...] = ()
    """Peers (addresses or CIDR blocks) whose X-Forwarded-For is believed (FACESWAP_TRUSTED_PROXIES); none by
    default, so the rate limit counts the connecting address."""
    auto_download: bool = False
    """Download missing neural/restoration models when a job needs them (FACESWAP_AUTO_DOWNLOAD=1, e.g. on a
    Space). Off by default: models download only when a person asks (`models download`, the UI's button)."""
    backend: str = "embedded"
    """Job store and executor (FACESWAP_BACKEND): embedded = SQLite in the data dir + worker threads; celery = the
    Redis JobStore at `redis_url` + Celery workers (`faceswap worker`)."""
    redis_url: str | None = None
    """The Redis that holds the jobs and the Celery queue in the celery backend (FACESWAP_REDIS_URL)."""
    lease_stale_s: float = 30.0
    """A processing job whose worker sent no heartbeat for this long is taken as abandoned and re-queued (once) by
    whoever looks next (FACESWAP_LEASE_STALE_S); a live worker beats at least every second while it swaps."""
    visibility_timeout_s: float = 3600.0
    """Celery over Redis: a task not acknowledged this long after delivery (its whole worker died) is delivered again
    (FACESWAP_VISIBILITY_TIMEOUT_S); about twice the time one task (a job, or one segment of a long one) takes."""
    cancel_grace_s: float = 30.0
    """After a cancel, seconds a Celery worker gets to stop by itself before its task is terminated
    (FACESWAP_CANCEL_GRACE_S)."""
    blobs: str = "dir"
    """Where inputs and outputs are stored (FACESWAP_BLOBS): dir = the data dir's files/ folder."""
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    device_id: int = 0
    """Which GPU the GPU providers run on (FACESWAP_DEVICE_ID); part of the session cache key."""
    max_output_bytes: int = 4096 * MiB
    """Bytes one output video may reach while it is encoded (FACESWAP_MAX_OUTPUT_MB)."""
    job_timeout_s: float = 3600.0
    """Wall-clock seconds one job may run before it fails with `timeout` (FACESWAP_JOB_TIMEOUT_S; 0 = no
    limit). Checked between frames."""
    live_max: int = 2
    """Live (camera) sessions that may run at once (FACESWAP_LIVE_MAX; 0 turns the Live tab's swapping off).
    Each takes one CPU core or a share of the GPU for as long as its visitor streams."""
    segment_after_s: float = 60.0
    """Videos (or chosen parts) longer than this many seconds are split at keyframes into segments that run as
    separate tasks, in parallel where there are workers, and are stitched back (FACESWAP_SEGMENT_AFTER_S; 0 = never
    split)."""
    segment_s: float = 30.0
    """About how long each segment of a split video is (FACESWAP_SEGMENT_S); cuts fall on keyframes."""
    precision: str = "auto"
    """Swappers and restorers in fp16 or fp32 (FACESWAP_PRECISION: auto = fp16 on CUDA/TensorRT, fp32 on CPU)."""
    io_binding: str = "auto"
    """onnxruntime IO binding, values on the provider's device (FACESWAP_IO_BINDING: auto = on for CUDA/TensorRT)."""
    trt_cache_dir: Path | None = None
    """TensorRT engine cache (FACESWAP_TRT_CACHE); None: `.trt-cache` beside the models."""
    decode_threads: int = 0
    """Video decoder threads (FACESWAP_DECODE_THREADS); 0: from the CPU count (`media.threads`)."""
    encode_threads: int = 0
    """libx264 encoder threads (FACESWAP_ENCODE_THREADS); 0: from the CPU count (`media.threads`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def read(name: str, cast: Callable[[str], T], default: T) -> T:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                return cast(raw.strip())
            except ValueError as exc:
                raise ValueError(f"environment variable {name}={raw!r} is not a valid value: {exc}") from exc

        ui_auth = None
        if env.get("FACESWAP_UI_AUTH"):
            user, sep, password = env["FACESWAP_UI_AUTH"].partition(":")
            if not sep or not user or not password:
                raise ValueError("FACESWAP_UI_AUTH must look like user:password")
            ui_auth = (user, password)
        offline = env.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_WORDS
        return cls(
            data_dir=Path(env["FACESWAP_DATA_DIR"]).expanduser() if env.get("FACESWAP_DATA_DIR")
            else _user_dir("XDG_DATA_HOME", ".local/share", "data", env),
            models_dir=Path(env["FACESWAP_MODELS_DIR"]).expanduser() if env.get("FACESWAP_MODELS_DIR")
            else _user_dir("XDG_CACHE_HOME", ".cache", "models", env),
            max_upload_bytes=read("FACESWAP_MAX_UPLOAD_MB", lambda v: int(float(v) * MiB), 500 * MiB),
            max_duration_s=read("FACESWAP_MAX_DURATION_S", float, 600.0),
            max_pixels=read("FACESWAP_MAX_PIXELS", int, 4096 * 2304),
            max_frames=read("FACESWAP_MAX_FRAMES", int, 36_000),
            api_keys=frozenset(k.strip() for k in env.get("FACESWAP_API_KEYS", "").split(",") if k.strip()),
            rate_limit_per_minute=read("FACESWAP_RATE_LIMIT", int, 60),
            retention_s=read("FACESWAP_RETENTION_S", float, 3600.0),
            workers=read("FACESWAP_WORKERS", int, 1),
            public_base_url=(env.get("FACESWAP_PUBLIC_URL") or "").rstrip("/") or None,
            url_allowlist=tuple(h.strip() for h in env.get("FACESWAP_URL_ALLOWLIST", "").split(",") if h.strip()),
            fetch_timeout_s=read("FACESWAP_FETCH_TIMEOUT_S", float, 60.0),
            ui_auth=ui_auth,
            providers=tuple(p.strip() for p in env.get("FACESWAP_PROVIDERS", "").split(",") if p.strip()),
            allow_model_download=not offline,
            hub_cache_dir=hub_cache_dir(env),
            allow_unverified_models=env.get("FACESWAP_ALLOW_UNVERIFIED_MODELS", "").strip().lower() in TRUE_WORDS,
            device_id=read("FACESWAP_DEVICE_ID", int, 0),
            max_output_bytes=read("FACESWAP_MAX_OUTPUT_MB", lambda v: int(float(v) * MiB), 4096 * MiB),
            job_timeout_s=read("FACESWAP_JOB_TIMEOUT_S", float, 3600.0),
            live_max=read("FACESWAP_LIVE_MAX", int, 2),
            fetch_min_bytes_per_s=read("FACESWAP_FETCH_MIN_KBPS", lambda v: int(float(v) * 1024), 16 * 1024),
            fetch_rate_window_s=read("FACESWAP_FETCH_RATE_WINDOW_S", float, 10.0),
            max_inline_bytes=read("FACESWAP_MAX_INLINE_MB", lambda v: int(float(v) * MiB), 32 * MiB),
            max_open_uploads=read("FACESWAP_MAX_OPEN_UPLOADS", int, 10),
            max_open_upload_bytes=read("FACESWAP_MAX_OPEN_UPLOAD_MB", lambda v: int(float(v) * MiB), 2048 * MiB),
            trusted_proxies=tuple(h.strip() for h in env.get("FACESWAP_TRUSTED_PROXIES", "").split(",") if h.strip()),
            auto_download=env.get("FACESWAP_AUTO_DOWNLOAD", "").strip().lower() in TRUE_WORDS,
            backend=env.get("FACESWAP_BACKEND", "").strip().lower() or "embedded",
            redis_url=env.get("FACESWAP_REDIS_URL", "").strip() or None,
            lease_stale_s=read("FACESWAP_LEASE_STALE_S", float, 30.0),
            visibility_timeout_s=read("FACESWAP_VISIBILITY_TIMEOUT_S", float, 3600.0),
            cancel_grace_s=read("FACESWAP_CANCEL_GRACE_S", float, 30.0),
            blobs=env.get("FACESWAP_BLOBS", "").strip() or "dir",
            segment_after_s=read("FACESWAP_SEGMENT_AFTER_S", float, 60.0),
            segment_s=read("FACESWAP_SEGMENT_S", float, 30.0),
            precision=read("FACESWAP_PRECISION", _choice("auto", "fp32", "fp16"), "auto"),
            io_binding=read("FACESWAP_IO_BINDING", _choice("auto", "on", "off"), "auto"),
            trt_cache_dir=Path(env["FACESWAP_TRT_CACHE"]).expanduser() if env.get("FACESWAP_TRT_CACHE") else None,
            decode_threads=read("FACESWAP_DECODE_THREADS", int, 0),
            encode_threads=read("FACESWAP_ENCODE_THREADS", int, 0),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)
