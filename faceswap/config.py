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
    backend: str = "embedded"
    """Job store and executor (FACESWAP_BACKEND): embedded = SQLite in the data dir + worker threads."""
    blobs: str = "dir"
    """Where inputs and outputs are stored (FACESWAP_BLOBS): dir = the data dir's files/ folder."""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

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
            backend=env.get("FACESWAP_BACKEND", "").strip().lower() or "embedded",
            blobs=env.get("FACESWAP_BLOBS", "").strip() or "dir",
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)
