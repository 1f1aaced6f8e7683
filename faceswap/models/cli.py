"""`python -m faceswap models list | download [names] | verify [names]` (+ `--json`).

Names are model names (`inswapper_128`), file names (`inswapper_128.onnx`) or groups (`neural`, `restorers`,
`all`); none means all. Exit status: 0 success, 2 the caller's fault (unknown name, downloads turned off or no
network), 1 ours (a file failed verification, a download was damaged).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from faceswap.config import Settings
from faceswap.errors import FaceSwapError, as_faceswap_error
from faceswap.models.registry import GROUPS, resolve_names
from faceswap.models.store import ModelStore

EXIT_OK, EXIT_OURS, EXIT_CALLER = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add the `models` command to the CLI's subparsers."""
    models = subparsers.add_parser("models", help="list, download or verify the neural and restoration models")
    actions = models.add_subparsers(dest="models_action", required=True, parser_class=type(models))
    names_help = f"model names, file names or groups ({', '.join(GROUPS)}); none means all"
    listing = actions.add_parser("list", help="show every model file, where it goes and whether it is there")
    listing.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    download = actions.add_parser("download", help="download missing model files from the Hugging Face Hub")
    download.add_argument("names", nargs="*", help=names_help)
    download.add_argument("--force", action="store_true", help="download again even when the file is there")
    download.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    verify = actions.add_parser("verify", help="check the files' sha256 (or CRC32 where that is all there is)")
    verify.add_argument("names", nargs="*", help=names_help)
    verify.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    models.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace, *, store: ModelStore | None = None) -> int:
    """Handle `models ...`; returns the exit status. `store` lets tests point at their own registry."""
    as_json = bool(getattr(args, "json", False))
    try:
        store = store or ModelStore(Settings.from_env())
        action = args.models_action
        if action == "list":
            return _list(store, as_json)
        names = resolve_names(getattr(args, "names", []) or [], store.specs)
        if action == "download":
            return _download(store, names, as_json, force=bool(getattr(args, "force", False)))
        if action == "verify":
            return _verify(store, names, as_json)
        raise FaceSwapError("invalid_request", f"unknown models action {action!r}")
    except Exception as exc:
        error = as_faceswap_error(exc)
        if as_json:
            _emit({"error": error.to_dict()})
        else:
            print(f"error [{error.code}]: {error.message}", file=sys.stderr)
        return EXIT_CALLER if error.caller_fault else EXIT_OURS


def _list(store: ModelStore, as_json: bool) -> int:
    from faceswap.models.sessions import SessionFactory

    rows = []
    for name, spec in store.specs.items():
        path = store.path(name)
        rows.append({"name": name, "file": spec.filename, "path": str(path), "present": store.present([name]),
                     "size": spec.size, "sha256": spec.sha256, "checksum": spec.checksum_note, "url": spec.url,
                     "licence": spec.licence, "description": spec.description})
    runtime = SessionFactory(store.settings.providers).provider_report()
    if as_json:
        _emit({"directory": str(store.directory), "models": rows, "onnxruntime": runtime})
        return EXIT_OK
    print(f"models directory: {store.directory}")
    for row in rows:
        size = f"{row['size'] / 1e6:,.1f} MB" if row["size"] else "size unpublished"
        state = "present" if row["present"] else "missing"
        print(f"  {row['name']:<14} {row['file']:<20} {state:<8} {size:<16} {row['checksum']}")
        print(f"  {'':<14} {row['url']}")
        print(f"  {'':<14} licence: {row['licence']}")
    print(f"onnxruntime {runtime['onnxruntime_version']}: providers {', '.join(runtime['providers'])}")
    for notice in runtime["notices"]:
        print(f"note: {notice}")
    return EXIT_OK


def _download(store: ModelStore, names: tuple[str, ...], as_json: bool, *, force: bool) -> int:
    if not as_json:  # what the person is about to get, and under which terms
        for offer in store.offer(names):
            if offer.present and not force:
                continue
            size = f"{offer.size / 1e6:,.1f} MB" if offer.size else "size unpublished"
            print(f"{offer.filename} ({size}) from {offer.url}\n  licence: {offer.licence}", file=sys.stderr)
    paths = store.download(names, force=force)
    if as_json:
        _emit({"directory": str(store.directory), "models": {name: str(path) for name, path in paths.items()}})
    else:
        for name, path in paths.items():
            print(f"{name}: {path}")
    return EXIT_OK


def _verify(store: ModelStore, names: tuple[str, ...], as_json: bool) -> int:
    results = store.verify(names)
    ok = all(result.ok for result in results)
    if as_json:
        _emit({"directory": str(store.directory), "ok": ok, "models": [result.to_dict() for result in results]})
    else:
        for result in results:
            print(f"{result.name:<14} {result.status:<18} {result.message}")
        if not ok:
            bad = [result.name for result in results if not result.ok]
            print(f"fix: delete the bad files and run `python -m faceswap models download {' '.join(bad)}`",
                  file=sys.stderr)
    return EXIT_OK if ok else EXIT_OURS


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()
