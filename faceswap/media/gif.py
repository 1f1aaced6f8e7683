"""GIF output helpers: a palette per frame through FFmpeg's own filters, and the GIF Comment Extension.

Each frame gets its own 255-colour palette (`palettegen=stats_mode=single` feeding `paletteuse=new=1`), so colours
stay faithful when the picture changes, and nothing has to be buffered (a whole-clip palette would need every frame
before the first could be written). FFmpeg's GIF muxer writes no comment, so `add_gif_comment` inserts one.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.filter

from faceswap.faces.types import Frame

GIF_TIME_BASE = Fraction(1, 100)
"""GIF delays are whole centiseconds."""

_EXTENSION = 0x21
_COMMENT_LABEL = 0xFE
_APPLICATION_LABEL = 0xFF


class GifQuantizer:
    """BGR frames in, palettised (pal8) frames out, one palette per frame."""

    def __init__(self, width: int, height: int) -> None:
        graph = av.filter.Graph()
        source = graph.add_buffer(width=width, height=height, format="bgr24", time_base=GIF_TIME_BASE)
        split = graph.add("split")
        palette = graph.add("palettegen", "stats_mode=single")
        use = graph.add("paletteuse", "new=1")
        sink = graph.add("buffersink")
        source.link_to(split)
        split.link_to(use, 0, 0)
        split.link_to(palette, 1, 0)
        palette.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()
        self._graph = graph

    def convert(self, image: Frame, pts: int) -> list[av.VideoFrame]:
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = pts, GIF_TIME_BASE
        self._graph.push(frame)
        return self._drain(pts)

    def _drain(self, pts: int) -> list[av.VideoFrame]:
        out: list[av.VideoFrame] = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            frame.pts, frame.time_base = pts, GIF_TIME_BASE
            out.append(frame)


def comment_block(text: str) -> bytes:
    """A GIF89a Comment Extension: 0x21 0xFE, data sub-blocks of at most 255 bytes, a zero terminator."""
    data = text.encode("ascii", "replace")
    blocks = b"".join(bytes([len(chunk)]) + chunk for chunk in (data[i:i + 255] for i in range(0, len(data), 255)))
    return bytes([_EXTENSION, _COMMENT_LABEL]) + blocks + b"\x00"


def add_gif_comment(source: Path, target: Path, text: str) -> None:
    """Copy the GIF `source` to `target` with a comment block before the first frame (after the global colour table
    and the looping extension, where some decoders insist the latter sits)."""
    with source.open("rb") as src:
        head = src.read(13)
        if len(head) < 13 or head[:6] != b"GIF89a":
            raise ValueError("not a GIF89a file")
        packed = head[10]
        table = 3 * 2 ** ((packed & 0x07) + 1) if packed & 0x80 else 0
        head += src.read(table)
        head += _read_application_extensions(src)
        with target.open("wb") as dst:
            dst.write(head)
            dst.write(comment_block(text))
            shutil.copyfileobj(src, dst, 1024 * 1024)


def _read_application_extensions(src: BinaryIO) -> bytes:
    """The application extensions (NETSCAPE2.0 looping) that follow the colour table, returned verbatim."""
    taken = b""
    while True:
        position = src.tell()
        intro = src.read(2)
        if len(intro) < 2 or intro[0] != _EXTENSION or intro[1] != _APPLICATION_LABEL:
            src.seek(position)
            return taken
        taken += intro
        while True:
            size = src.read(1)
            if not size:
                raise ValueError("truncated GIF extension")
            taken += size + src.read(size[0])
            if size[0] == 0:
                break
