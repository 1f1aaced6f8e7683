"""How many threads the video decoder and encoder get, sized from the machine's CPU count.

On a GPU machine the models leave the CPU cores to the codecs: libx264 is then the slowest stage (about 20 frames/s
per busy core at 1080p with `veryfast`, benchmarks/RESULTS.md §7), so it gets every core but a few: the decoder
takes a quarter (at most 4: H.264 decoding at 1080p runs several hundred frames/s on 4 threads) and two are left to
the main thread (align, paste, feeding the GPU). On 4 cores or fewer the codecs keep their own automatic choice
(0), as before: there the models need the cores. FACESWAP_DECODE_THREADS / FACESWAP_ENCODE_THREADS override.
"""

from __future__ import annotations

import os

RESERVED_CORES = 2
"""Cores left to the main thread and the rest of the process when the codecs are sized."""
SMALL_MACHINE = 4
"""At or below this many CPUs the codecs size themselves (0)."""
MAX_DECODE_THREADS = 4


def codec_threads(cpus: int | None = None, *, decode: int = 0, encode: int = 0) -> tuple[int, int]:
    """(decoder threads, encoder threads); 0 = the codec's own automatic choice. `decode`/`encode` > 0 win."""
    count = cpus if cpus is not None else (os.cpu_count() or 1)
    auto_decode = auto_encode = 0
    if count > SMALL_MACHINE:
        auto_decode = min(MAX_DECODE_THREADS, max(1, count // 4))
        auto_encode = max(1, count - auto_decode - RESERVED_CORES)
    return (decode if decode > 0 else auto_decode), (encode if encode > 0 else auto_encode)
