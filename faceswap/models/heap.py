"""Keep model loading from leaving hundreds of MB of freed heap resident (glibc only; a no-op elsewhere).

Building an onnxruntime session parses the whole ONNX protobuf (one string per weight tensor, up to tens of MB
each), copies the weights into tensors and frees the protobuf. glibc's malloc raises its mmap threshold each time
a large mmapped block is freed (up to 32 MB), so the next weight strings land on the heap, and a heap freed in the
middle is not given back: measured on the w600k_r50 cost twin alone, 540 MB resident after building a session
whose weights are 175 MB (225 MB after `malloc_trim`), and 0.5 GB more on a neural worker's peak. While sessions
are built, `compact_heap` pins the threshold low (large blocks are mmapped and unmapped when freed); afterwards
it restores glibc's top threshold and returns the free heap to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's malloc.h
LOADING_THRESHOLD = 1 << 20
RUNNING_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where its dynamic threshold ends up


def _glibc() -> Any | None:
    """The C library when it is glibc (it has `malloc_trim`), else None. dlopen of the loaded libc is cheap."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # musl, macOS, Windows: nothing to tune
        return None
    return libc


@contextmanager
def compact_heap() -> Iterator[None]:
    """Around a model load: large blocks bypass the heap, and what the load freed goes back to the system."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, LOADING_THRESHOLD)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, RUNNING_THRESHOLD)
            libc.malloc_trim(0)
