"""models.heap: what a model load frees inside `compact_heap` goes back to the system, even when long-lived
small blocks are interleaved with the large ones (the heap cannot simply shrink from its top)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceswap.models.heap import _glibc, compact_heap


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def fragmenting_load() -> list[bytes]:
    """150 MB in 2 MB blocks (the size of a model's weight strings) with a small block kept after each."""
    large, kept = [], []
    for index in range(75):
        large.append(bytes([index % 251]) * (2 << 20))
        kept.append(bytes([index % 251]) * 4096)
    del large
    return kept


@pytest.mark.skipif(_glibc() is None or not Path("/proc/self/status").is_file(), reason="glibc on Linux only")
def test_memory_freed_while_loading_is_returned() -> None:
    earlier = bytes(10 << 20)  # freeing a mmapped 10 MB block raises glibc's threshold: 2 MB blocks then stay
    del earlier  # on the heap, and without compact_heap this load leaves all 150 MB resident (measured)
    before = rss_mb()
    with compact_heap():
        kept = fragmenting_load()
    assert len(kept) == 75
    assert rss_mb() - before < 40  # 150 MB were resident at the peak of the load
