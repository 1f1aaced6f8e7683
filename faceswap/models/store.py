"""Model files on disk: find them, download missing ones once from the Hugging Face Hub, verify them.

Files live flat in `settings.models_dir` under their registry file names. A file counts as present when its size
matches the registry (when known); the first time a present file is used its sha256 (or CRC32, when that is all
that is published) is computed and remembered in a small sidecar (`.<file>.verified`, keyed by size and mtime), so
later starts do not hash hundreds of megabytes again and a good file is never downloaded twice.

A file is also looked for in the Hugging Face Hub cache (`settings.hub_cache_dir`), where Spaces'
`preload_from_hub` and any earlier `hf_hub_download` put it: first the copy of the revision `main` points to, then
those of other revisions, newest first. A copy there is verified like any other and used **in place**, never copied
or linked into the models dir: the cache's blobs already are the one copy on disk (models are hundreds of MB, and
Spaces' disks are small), and a link would dangle once the cache is pruned. Only its verification record lives in
the models dir (`.<file>.hub-<id>.verified`), so nothing is written into the cache. The models dir's own copy comes
first; a good cached copy means no download, and a cached copy that is not the registry's file makes `ensure`
download the right one into the models dir (a bad file in the models dir is the user's to delete, as before).

`settings.allow_unverified_models` (FACESWAP_ALLOW_UNVERIFIED_MODELS=1) lets a person knowingly use a file whose
size or checksum differs from the registry's (FaceFusion's modified inswapper, an fp16 build with the same
inputs and outputs): it is then used with a logged warning, and `notices(names)` gives the sentence that callers
put in each run's report.

Downloads go to a staging folder in the models directory, are hashed right after the transfer, and are moved into
place only when the checksum matches. Before any transfer the Hub's host is probed with a short timeout, so an
offline machine fails in seconds with the fix, instead of retrying for half a minute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models.hub_cache import hub_cached_files
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
        log.warning("downloading %s from %s failed: %s", spec.filename, spec.url, exc)
        raise FaceSwapError(
            "model_not_available",
            f"downloading {spec.filename} from {spec.url} failed ({type(exc).__name__}; the server log has details)",
        ) from exc
    return Path(fetched)


def may_download_unasked(settings: Settings) -> bool:
    """Whether a job may download missing models on its own: only with FACESWAP_AUTO_DOWNLOAD=1 (a Space, say),
    and never with HF_HUB_OFFLINE. Otherwise models download when a person asks (`models download`, the UI's
    button: `download_for_user`)."""
    return settings.auto_download and settings.allow_model_download


def fallback_notice(error: FaceSwapError) -> str:
    """The one line a person sees when `auto` ran the classic engine because the neural models are not usable
    (under 200 characters, no paths); `models list` has the details."""
    if error.message.startswith("missing model file"):
        return ("The classic engine ran (offline fallback). The neural engine looks natural once its models are on "
                "the server: `python -m faceswap models download neural`.")
    named = re.search(r"[\w.-]+\.(?:onnx|pth)\b", error.message)
    what = named.group(0) if named else "the neural models"
    return f"The classic engine ran: {what} could not be used. `python -m faceswap models verify` shows why."


@dataclass(frozen=True)
class ModelOffer:
    """One file a person is asked to download: what it is, how big, under which licence."""

    name: str
    filename: str
    size: int | None
    licence: str
    url: str
    present: bool


class ModelStore:
    """The models directory: presence, download and verification of the registry's files."""

    def __init__(self, settings: Settings, *, specs: Mapping[str, ModelSpec] | None = None,
                 downloader: Downloader | None = None) -> None:
        self.settings = settings
        self.specs: Mapping[str, ModelSpec] = specs if specs is not None else REGISTRY
        self.directory = Path(settings.models_dir)
        self._downloader: Downloader = downloader or hub_download
        self._notices: dict[str, str] = {}

    # -- lookup ------------------------------------------------------------------------------------------------
    def spec(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise FaceSwapError("invalid_request", f"unknown model {name!r}; known: {', '.join(self.specs)}",
                                field="models") from None

    def local_path(self, name: str) -> Path:
        """Where the file belongs in the models dir (where a download puts it)."""
        return self.directory / self.spec(name).filename

    def locations(self, name: str) -> list[Path]:
        """Existing copies of the file, in the order they are tried: the models dir's, then the Hub cache's."""
        spec = self.spec(name)
        local = self.local_path(name)
        found = [local] if local.is_file() else []
        if self.settings.hub_cache_dir is not None:
            found += hub_cached_files(spec, Path(self.settings.hub_cache_dir))
        return found

    def path(self, name: str) -> Path:
        """The first copy found (see `locations`), else where a download would put it."""
        return next(iter(self.locations(name)), self.local_path(name))

    def present(self, names: Iterable[str]) -> bool:
        """True when every file is there with the right size (checksums are checked on first use)."""
        return all(self._size_ok(name) for name in names)

    def notices(self, names: Iterable[str]) -> list[str]:
        """What a run's report should say about files used although they failed verification (only when
        `allow_unverified_models` let them through)."""
        return [self._notices[name] for name in names if name in self._notices]

    def offer(self, names: Iterable[str]) -> list[ModelOffer]:
        """The files behind `names`, with size and licence, to show before a person agrees to download them."""
        return [ModelOffer(name, spec.filename, spec.size, spec.licence, spec.url, self.present([name]))
                for name in names for spec in [self.spec(name)]]

    def download_for_user(self, names: Iterable[str]) -> str:
        """Download what is missing of `names` because a person asked (the UI's button, the CLI) and return one
        short line saying what happened; raises `model_not_available` with a short reason when it cannot."""
        names = tuple(names)
        missing = [offer for offer in self.offer(names) if not offer.present]
        for offer in missing:
            log.info("downloading %s on request (licence: %s)", offer.filename, offer.licence)
        self.download(names)
        if not missing:
            return "The models are already downloaded."
        total = sum(offer.size or 0 for offer in missing)
        return f"Downloaded {len(missing)} model file{'s' if len(missing) > 1 else ''}" + (
            f" ({total / 1e6:,.0f} MB)." if total else ".")

    # -- ensure / download -------------------------------------------------------------------------------------
    def ensure(self, names: Iterable[str], *, download: bool) -> dict[str, Path]:
        """Paths of good files for `names`, downloading missing ones when `download` (and settings) allow.

        Raises `model_not_available` naming every missing or damaged file, the directory they belong in, and the
        command that downloads them.
        """
        names = tuple(names)
        failure: FaceSwapError | None = None
        if download:
            fetch = [name for name in names if self._needs_fetch(name)]
            if fetch:
                try:
                    self.download(fetch)
                except FaceSwapError as exc:
                    if exc.code != "model_not_available":
                        raise
                    failure = exc
        missing = [name for name in names if not self.locations(name)]
        if failure is not None:  # why the download failed, then everything the run still lacks
            if len(missing) > 1:
                files = ", ".join(self.spec(name).filename for name in missing)
                raise FaceSwapError("model_not_available", f"{failure.message.rstrip('.')}. All missing: {files} "
                                    f"(`{download_command(missing)}`).")
            raise failure
        if missing:
            raise self._missing_error(missing, download=download)
        return {name: self._checked_path(name) for name in names}

    def download(self, names: Iterable[str], *, force: bool = False) -> dict[str, Path]:
        """Download the files that are missing (all of `names` with `force`), verify them, move them in place.
        A good copy in the Hub cache counts as present; a bad one does not."""
        names = tuple(names)
        todo = [name for name in names if force or self._needs_fetch(name)]
        if todo and not self.settings.allow_model_download:
            raise FaceSwapError(
                "model_not_available",
                f"model downloads are turned off (HF_HUB_OFFLINE is set), and {self._listing(todo)} "
                f"{'is' if len(todo) == 1 else 'are'} not in the models folder (FACESWAP_MODELS_DIR). Copy the files "
                f"there, or unset HF_HUB_OFFLINE and run `{download_command(todo)}`.")
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
                    f"{exc.message}. {spec.filename} is needed in the models folder (FACESWAP_MODELS_DIR): copy it "
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
            self._remember(spec, replace(result, path=target))
            log.info("installed %s (%s)", target, result.message)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _needs_fetch(self, name: str) -> bool:
        """True when the models dir has no copy and no good copy is in the Hub cache (a bad one there is passed
        over, unless unverified files are allowed)."""
        if self.local_path(name).is_file():
            return False
        results = [self._remembered_or_checked(self.spec(name), path) for path in self.locations(name)]
        if any(result.ok for result in results):
            return False
        return not (results and self.settings.allow_unverified_models)

    # -- verification ------------------------------------------------------------------------------------------
    def verify(self, names: Iterable[str]) -> list[VerifyResult]:
        """Hash every file now (ignoring remembered results) and compare with the registry: for each name, the
        first good copy, else the first copy found."""
        results = []
        for name in names:
            spec = self.spec(name)
            checked = []
            for path in self.locations(name):
                result = self._check_file(spec, path)
                self._remember(spec, result)
                checked.append(result)
                if result.ok:
                    break
            if not checked:
                path = self.local_path(name)
                results.append(VerifyResult(name, path, "missing", f"{path} does not exist"))
                continue
            results.append(next((result for result in checked if result.ok), checked[0]))
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
        """The path of the first good copy (checked against the registry on first use, then remembered); else,
        when unverified files are allowed, the first copy, with a warning and a notice for the report."""
        spec = self.spec(name)
        results = []
        for path in self.locations(name):
            result = self._remembered_or_checked(spec, path)
            if result.ok:
                self._notices.pop(name, None)
                return path
            results.append(result)
        if not results:
            raise self._missing_error([name], download=False)
        bad = results[0]
        if self.settings.allow_unverified_models:
            notice = (f"{spec.filename} is not the file the registry names ({bad.message}); it was used anyway "
                      "because FACESWAP_ALLOW_UNVERIFIED_MODELS is set, so results may differ from the reference "
                      "model's.")
            log.warning("using an unverified model file %s: %s", bad.path, bad.message)
            self._notices[name] = notice
            return bad.path
        local = bad.path == self.local_path(name)
        fix = (f"Delete it and run `{download_command([name])}`" if local else
               f"Run `{download_command([name])}` to put the registry's file in the models folder")
        log.warning("model file %s failed verification: %s", bad.path, bad.message)
        raise FaceSwapError(
            "model_not_available",
            f"{bad.message}: the {spec.filename} {'in the models folder' if local else 'in the Hugging Face cache'} "
            f"is damaged or a different build. {fix}, or set FACESWAP_ALLOW_UNVERIFIED_MODELS=1 to use this one "
            "knowingly.")

    def _remembered_or_checked(self, spec: ModelSpec, path: Path) -> VerifyResult:
        """The remembered result while the file is unchanged, else a fresh check (then remembered)."""
        remembered = self._remembered(spec, path)
        if remembered is not None:
            return remembered
        result = self._check_file(spec, path)
        self._remember(spec, result)
        return result

    def _size_ok(self, name: str) -> bool:
        spec = self.spec(name)
        return any(spec.size is None or self.settings.allow_unverified_models or path.stat().st_size == spec.size
                   for path in self.locations(name))

    def _sidecar(self, spec: ModelSpec, path: Path) -> Path:
        """Next to a models-dir file; in the models dir, named after the copy, for a copy elsewhere (the cache
        is not ours to write in)."""
        if path.parent == self.directory:
            return path.with_name(f".{path.name}.verified")
        copy_id = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        return self.directory / f".{spec.filename}.hub-{copy_id}.verified"

    def _remember(self, spec: ModelSpec, result: VerifyResult) -> None:
        if result.status == "missing":
            return
        try:
            stat = result.path.stat()
            record = {"path": str(result.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                      "sha256": result.sha256, "expected": spec.sha256 or spec.crc32, "status": result.status,
                      "message": result.message}
            sidecar = self._sidecar(spec, result.path)
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            tmp = sidecar.with_name(sidecar.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, sidecar)
        except OSError as exc:  # a read-only models dir still works, it just hashes again next time
            log.debug("cannot record verification of %s: %s", result.path, exc)

    def _remembered(self, spec: ModelSpec, path: Path) -> VerifyResult | None:
        try:
            record = json.loads(self._sidecar(spec, path).read_text())
            stat = path.stat()
        except (OSError, ValueError):
            return None
        unchanged = (record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns
                     and record.get("expected") == (spec.sha256 or spec.crc32)
                     and record.get("path", str(path)) == str(path))
        status = record.get("status", "ok")  # records written before statuses were kept were all good files
        if not unchanged or status not in ("ok", "unchecked", "size_mismatch", "checksum_mismatch"):
            return None
        return VerifyResult(spec.name, path, status, record.get("message") or f"{path.name} was verified before",
                            record.get("sha256"))

    # -- messages ----------------------------------------------------------------------------------------------
    def _listing(self, names: Iterable[str]) -> str:
        parts = []
        for name in names:
            spec = self.spec(name)
            size = f", {spec.size / 1e6:,.0f} MB" if spec.size else ""
            parts.append(f"{spec.filename} ({spec.url}{size})")
        return ", ".join(parts)

    def _missing_error(self, names: list[str], *, download: bool) -> FaceSwapError:
        """Which files are missing and the command that gets them; where they were looked for goes to the log
        (and `models list`), never into the message, which reaches clients."""
        cache = self.settings.hub_cache_dir
        log.info("missing model files %s: looked in %s%s", ", ".join(names), self.directory,
                 f" and the Hugging Face cache {cache}" if cache else "")
        files = ", ".join(self.spec(name).filename for name in names)
        return FaceSwapError(
            "model_not_available",
            f"missing model file{'s' if len(names) > 1 else ''}: {files}. Download "
            f"{'them' if len(names) > 1 else 'it'} with `{download_command(names)}` (it shows each licence) or "
            "put the files in the models folder (FACESWAP_MODELS_DIR).")
