"""Model files on disk: find them, download missing ones once from the Hugging Face Hub, verify them.

Files live flat in `settings.models_dir` under their registry file names. A file counts as present when its size
matches the registry (when known); the first time a present file is used its sha256 (or CRC32, when that is all
that is published) is computed and remembered in a small sidecar (`.<file>.verified`, keyed by size and mtime), so
later starts do not hash hundreds of megabytes again and a good file is never downloaded twice.

Downloads go to a staging folder in the models directory, are hashed right after the transfer, and are moved into
place only when the checksum matches. Before any transfer the Hub's host is probed with a short timeout, so an
offline machine fails in seconds with the fix, instead of retrying for half a minute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models.registry import REGISTRY, ModelSpec

log = logging.getLogger(__name__)

Downloader = Callable[[ModelSpec, Path], Path]
"""Fetch one model file into a staging folder and return the path of the fetched file."""

VerifyStatus = Literal["ok", "unchecked", "missing", "size_mismatch", "checksum_mismatch"]

PROBE_TIMEOUT_S = 4.0
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class VerifyResult:
    name: str
    path: Path
    status: VerifyStatus
    message: str
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unchecked")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "status": self.status, "ok": self.ok,
                "message": self.message, "sha256": self.sha256}


def download_command(names: Iterable[str]) -> str:
    return " ".join(["python -m faceswap models download", *names])


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256 hex, CRC32 as 8 hex digits) of a file, read once in large chunks."""
    sha = hashlib.sha256()
    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
    return sha.hexdigest(), f"{crc & 0xFFFFFFFF:08x}"


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def probe_endpoint(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise `model_not_available` within `timeout` seconds when the Hub's host (or the proxy that the
    environment names for it) cannot be reached."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    via = ""
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname or "", proxy_parts.port or 80
        via = f" through the proxy {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise FaceSwapError(
            "model_not_available",
            f"cannot reach the Hugging Face Hub at {endpoint}{via} ({exc.strerror or exc}); this machine looks "
            "offline",
        ) from exc


def hub_download(spec: ModelSpec, staging: Path) -> Path:
    """The default downloader: `huggingface_hub.hf_hub_download` into `staging`, after a quick reachability probe."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    endpoint = hub_endpoint()
    probe_endpoint(endpoint)
    try:
        fetched = huggingface_hub.hf_hub_download(
            spec.repo_id, spec.repo_path, repo_type=spec.repo_type, local_dir=staging, etag_timeout=10,
            endpoint=endpoint)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise FaceSwapError(
            "model_not_available",
            f"downloading {spec.filename} from {spec.url} failed: {exc}",
        ) from exc
    return Path(fetched)


class ModelStore:
    """The models directory: presence, download and verification of the registry's files."""

    def __init__(self, settings: Settings, *, specs: Mapping[str, ModelSpec] | None = None,
                 downloader: Downloader | None = None) -> None:
        self.settings = settings
        self.specs: Mapping[str, ModelSpec] = specs if specs is not None else REGISTRY
        self.directory = Path(settings.models_dir)
        self._downloader: Downloader = downloader or hub_download

    # -- lookup ------------------------------------------------------------------------------------------------
    def spec(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise FaceSwapError("invalid_request", f"unknown model {name!r}; known: {', '.join(self.specs)}",
                                field="models") from None

    def path(self, name: str) -> Path:
        return self.directory / self.spec(name).filename

    def present(self, names: Iterable[str]) -> bool:
        """True when every file is there with the right size (checksums are checked on first use)."""
        return all(self._size_ok(name) for name in names)

    # -- ensure / download -------------------------------------------------------------------------------------
    def ensure(self, names: Iterable[str], *, download: bool) -> dict[str, Path]:
        """Paths of good files for `names`, downloading missing ones when `download` (and settings) allow.

        Raises `model_not_available` naming every missing or damaged file, the directory they belong in, and the
        command that downloads them.
        """
        names = tuple(names)
        missing = [name for name in names if not self.path(name).is_file()]
        if missing and download:
            self.download(missing)
            missing = [name for name in names if not self.path(name).is_file()]
        if missing:
            raise self._missing_error(missing, download=download)
        return {name: self._checked_path(name) for name in names}

    def download(self, names: Iterable[str], *, force: bool = False) -> dict[str, Path]:
        """Download the files that are missing (all of `names` with `force`), verify them, move them in place."""
        names = tuple(names)
        todo = [name for name in names if force or not self.path(name).is_file()]
        if todo and not self.settings.allow_model_download:
            raise FaceSwapError(
                "model_not_available",
                f"model downloads are turned off (HF_HUB_OFFLINE is set), and {self._listing(todo)} "
                f"{'is' if len(todo) == 1 else 'are'} not in {self.directory}. Copy the files there, or unset "
                f"HF_HUB_OFFLINE and run `{download_command(todo)}`.")
        for name in todo:
            self._download_one(self.spec(name))
        return {name: self._checked_path(name) for name in names}

    def _download_one(self, spec: ModelSpec) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".download-{spec.name}-", dir=self.directory))
        try:
            log.info("downloading %s from %s", spec.filename, spec.url)
            try:
                fetched = self._downloader(spec, staging)
            except FaceSwapError as exc:
                raise FaceSwapError(
                    exc.code,
                    f"{exc.message}. {spec.filename} is needed in {self.directory} (FACESWAP_MODELS_DIR): copy it "
                    f"there from {spec.url}, or run `{download_command([spec.name])}` on a connected machine.",
                ) from exc
            result = self._check_file(spec, fetched)
            if not result.ok:
                raise FaceSwapError(
                    "model_not_available",
                    f"the downloaded {spec.filename} is damaged or not the expected file: {result.message}. "
                    f"Nothing was installed; try `{download_command([spec.name])}` again.")
            target = self.directory / spec.filename
            os.replace(fetched, target)
            self._remember(spec, target, result.sha256)
            log.info("installed %s (%s)", target, result.message)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- verification ------------------------------------------------------------------------------------------
    def verify(self, names: Iterable[str]) -> list[VerifyResult]:
        """Hash every file now (ignoring remembered results) and compare with the registry."""
        results = []
        for name in names:
            spec = self.spec(name)
            path = self.path(name)
            if not path.is_file():
                results.append(VerifyResult(name, path, "missing", f"{path} does not exist"))
                continue
            result = self._check_file(spec, path)
            if result.ok:
                self._remember(spec, path, result.sha256)
            results.append(result)
        return results

    def _check_file(self, spec: ModelSpec, path: Path) -> VerifyResult:
        size = path.stat().st_size
        if spec.size is not None and size != spec.size:
            return VerifyResult(spec.name, path, "size_mismatch",
                                f"{path.name} is {size:,} bytes, expected {spec.size:,}")
        sha256, crc32 = file_digests(path)
        if spec.sha256 is not None:
            if sha256 != spec.sha256.lower():
                return VerifyResult(spec.name, path, "checksum_mismatch",
                                    f"{path.name} has sha256 {sha256}, expected {spec.sha256}", sha256)
            return VerifyResult(spec.name, path, "ok", f"sha256 {sha256} matches", sha256)
        if spec.crc32 is not None:
            if crc32 != spec.crc32.lower():
                return VerifyResult(spec.name, path, "checksum_mismatch",
                                    f"{path.name} has CRC32 {crc32}, expected {spec.crc32} (no sha256 is published "
                                    "for this file)", sha256)
            return VerifyResult(spec.name, path, "ok",
                                f"CRC32 {crc32} matches; no sha256 is published for this file (sha256 {sha256})",
                                sha256)
        note = "size matches; " if spec.size is not None else ""
        return VerifyResult(spec.name, path, "unchecked",
                            f"{note}no checksum is published for {path.name}, so it cannot be verified "
                            f"(sha256 {sha256})", sha256)

    def _checked_path(self, name: str) -> Path:
        """The file's path once it is known good: checked against the registry on first use, then remembered."""
        spec = self.spec(name)
        path = self.path(name)
        if self._remembered(spec, path):
            return path
        result = self._check_file(spec, path)
        if not result.ok:
            raise FaceSwapError(
                "model_not_available",
                f"{result.message}: the file in {self.directory} is damaged or a different build. Delete it and "
                f"run `{download_command([name])}`.")
        self._remember(spec, path, result.sha256)
        return path

    def _size_ok(self, name: str) -> bool:
        spec = self.spec(name)
        path = self.path(name)
        return path.is_file() and (spec.size is None or path.stat().st_size == spec.size)

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(f".{path.name}.verified")

    def _remember(self, spec: ModelSpec, path: Path, sha256: str | None) -> None:
        stat = path.stat()
        record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256,
                  "expected": spec.sha256 or spec.crc32}
        sidecar = self._sidecar(path)
        try:
            tmp = sidecar.with_name(sidecar.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, sidecar)
        except OSError as exc:  # a read-only models dir still works, it just hashes again next time
            log.debug("cannot record verification of %s: %s", path, exc)

    def _remembered(self, spec: ModelSpec, path: Path) -> bool:
        try:
            record = json.loads(self._sidecar(path).read_text())
            stat = path.stat()
        except (OSError, ValueError):
            return False
        return (record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns
                and record.get("expected") == (spec.sha256 or spec.crc32))

    # -- messages ----------------------------------------------------------------------------------------------
    def _listing(self, names: Iterable[str]) -> str:
        parts = []
        for name in names:
            spec = self.spec(name)
            size = f", {spec.size / 1e6:,.0f} MB" if spec.size else ""
            parts.append(f"{spec.filename} ({spec.url}{size})")
        return ", ".join(parts)

    def _missing_error(self, names: list[str], *, download: bool) -> FaceSwapError:
        why = "" if download else " (downloads are off here)"
        return FaceSwapError(
            "model_not_available",
            f"missing model file{'s' if len(names) > 1 else ''}{why}: {self._listing(names)}. Put "
            f"{'them' if len(names) > 1 else 'it'} in {self.directory} (FACESWAP_MODELS_DIR), or download "
            f"with `{download_command(names)}`.")
