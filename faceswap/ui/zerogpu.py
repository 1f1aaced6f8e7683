"""Hugging Face ZeroGPU support: wrap GPU work in `spaces.GPU` when the `spaces` package is installed.

On ZeroGPU hardware a GPU is attached only while a function decorated with `@spaces.GPU` runs; elsewhere the
package is absent (or its decorator does nothing), and the function is returned unchanged.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

log = logging.getLogger(__name__)


def on_gpu(fn: F) -> F:
    """`spaces.GPU(fn)` when the `spaces` package is importable, else `fn` itself."""
    if importlib.util.find_spec("spaces") is None:
        return fn
    import spaces

    log.info("ZeroGPU: %s runs under @spaces.GPU", getattr(fn, "__qualname__", fn))
    return spaces.GPU(fn)
