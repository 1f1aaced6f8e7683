"""Model files already in a Hugging Face Hub cache (put there by Spaces' `preload_from_hub` or `hf_hub_download`).

Lookups go through huggingface_hub's own cache functions, so the layout is exactly the one it writes:
`<cache>/models--owner--name/snapshots/<revision>/<path in repo>` (links to `blobs/`), with `refs/main` naming the
revision `main` points to.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.file_download import repo_folder_name

from faceswap.models.registry import ModelSpec

log = logging.getLogger(__name__)


def hub_cached_files(spec: ModelSpec, cache_dir: Path) -> list[Path]:
    """Copies of `spec`'s file in the Hub cache at `cache_dir` (huggingface_hub's layout: `<repo folder>/snapshots/
    <revision>/<path>`, `refs/main`): the one `main` points to first, then other revisions' (a Space may pin one in
    `preload_from_hub`), newest first. Unverified: the caller checks them."""
    try:
        main = try_to_load_from_cache(spec.repo_id, spec.repo_path, cache_dir=cache_dir, repo_type=spec.repo_type)
    except ValueError as exc:  # huggingface_hub's checks on repo ids and file names
        log.debug("no Hub cache lookup for %s: %s", spec.name, exc)
        return []
    found = [Path(main)] if isinstance(main, str) else []
    snapshots = cache_dir / repo_folder_name(repo_id=spec.repo_id, repo_type=spec.repo_type) / "snapshots"
    try:
        revisions = sorted(snapshots.iterdir(), key=lambda folder: folder.stat().st_mtime, reverse=True)
    except OSError:
        revisions = []
    for revision in revisions:
        candidate = revision / spec.repo_path
        if candidate.is_file() and candidate not in found:
            found.append(candidate)
    return found
