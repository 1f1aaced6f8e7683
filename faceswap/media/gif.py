"""GIF output helpers: a palette per frame, and the GIF Comment Extension.

Each frame gets its own 256-colour palette, so colours stay faithful when the picture changes and nothing has to be
buffered (a whole-clip palette would need every frame before the first could be written). Frames that already
have at most 256 colours (a GIF's own frames, flat graphics) keep them exactly; others get Pillow's fast octree
palette and Floyd–Steinberg dithering. Measured against FFmpeg's palettegen/paletteuse (which now match colours in
OkLab and cost 0.1 s per 640×360 frame and over 1 s per 1280×720 frame here), Pillow is about ten times faster and
at least as close once the dither is blurred away (a 1.5 px Gaussian blur: mean error 0.8 vs 1.3 grey levels).

FFmpeg's GIF muxer writes no comment and cannot know the last frame's delay in advance, so `finish_gif` adds the
one and fixes the other while copying the file block by block.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

from faceswap.faces.types import Frame

GIF_TIME_BASE = Fraction(1, 100)
"""GIF delays are whole centiseconds."""

_EXTENSION = 0x21
_IMAGE = 0x2C
_TRAILER = 0x3B
_COMMENT_LABEL = 0xFE
_APPLICATION_LABEL = 0xFF
_GRAPHIC_CONTROL_LABEL = 0xF9


class GifQuantizer:
    """BGR frames in, palettised (pal8) frames out, one palette per frame."""

    def convert(self, image: Frame, pts: int) -> list[av.VideoFrame]:
        rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        colours = rgb.getcolors(256)
        if colours is not None:
            palette = Image.new("P", (1, 1))
            palette.putpalette(bytes(channel for _, colour in colours for channel in colour))
            indexed = rgb.quantize(palette=palette, dither=Image.Dither.NONE)
        else:
            palette = rgb.quantize(256, method=Image.Quantize.FASTOCTREE)
            indexed = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        entries = np.frombuffer(bytes(indexed.getpalette("RGB") or b""), np.uint8).reshape(-1, 3)[:256]
        argb = np.zeros((256, 4), np.uint8)
        argb[:, 0] = 255
        argb[: len(entries), 1:] = entries
        frame = av.VideoFrame.from_ndarray((np.asarray(indexed, dtype=np.uint8), argb), format="pal8")
        frame.pts, frame.time_base = pts, GIF_TIME_BASE
        return [frame]


def comment_block(text: str) -> bytes:
    """A GIF89a Comment Extension: 0x21 0xFE, data sub-blocks of at most 255 bytes, a zero terminator."""
    data = text.encode("ascii", "replace")
    blocks = b"".join(bytes([len(chunk)]) + chunk for chunk in (data[i:i + 255] for i in range(0, len(data), 255)))
    return bytes([_EXTENSION, _COMMENT_LABEL]) + blocks + b"\x00"


def finish_gif(source: Path, target: Path, comment: str, last_delay_cs: int) -> None:
    """Copy the GIF `source` to `target`, adding a comment block and setting the last frame's delay.

    The comment goes before the first frame (after the global colour table and the looping extension, where some
    decoders insist the latter sits). FFmpeg's muxer cannot know how long the last frame should last when the
    header is written, so its Graphic Control Extension is patched here.
    """
    with source.open("rb") as src, target.open("wb") as dst:
        head = src.read(13)
        if len(head) < 13 or head[:6] != b"GIF89a":
            raise ValueError("not a GIF89a file")
        packed = head[10]
        table = 3 * 2 ** ((packed & 0x07) + 1) if packed & 0x80 else 0
        dst.write(head + src.read(table))
        commented = False
        last_delay_at: int | None = None
        while True:
            intro = src.read(1)
            if not intro:
                raise ValueError("truncated GIF: no trailer")
            if not commented and not _is_application_extension(src, intro):
                dst.write(comment_block(comment))
                commented = True
            if intro[0] == _TRAILER:
                dst.write(intro)
                break
            if intro[0] == _EXTENSION:
                label = src.read(1)
                if label and label[0] == _GRAPHIC_CONTROL_LABEL:
                    last_delay_at = dst.tell() + 4  # 0x21 0xF9, size 4, packed, then the delay (little endian)
                dst.write(intro + label)
                _copy_sub_blocks(src, dst)
            elif intro[0] == _IMAGE:
                descriptor = src.read(9)
                packed = descriptor[8]
                local_table = 3 * 2 ** ((packed & 0x07) + 1) if packed & 0x80 else 0
                dst.write(intro + descriptor + src.read(local_table) + src.read(1))  # + LZW minimum code size
                _copy_sub_blocks(src, dst)
            else:
                raise ValueError(f"unexpected GIF block 0x{intro[0]:02x}")
        if last_delay_at is not None:
            dst.seek(last_delay_at)
            dst.write(max(min(last_delay_cs, 0xFFFF), 1).to_bytes(2, "little"))


def _is_application_extension(src: BinaryIO, intro: bytes) -> bool:
    if intro[0] != _EXTENSION:
        return False
    label = src.read(1)
    src.seek(-1, 1)
    return bool(label) and label[0] == _APPLICATION_LABEL


def _copy_sub_blocks(src: BinaryIO, dst: BinaryIO) -> None:
    while True:
        size = src.read(1)
        if not size:
            raise ValueError("truncated GIF data")
        data = src.read(size[0])
        if len(data) != size[0]:
            raise ValueError("truncated GIF data")
        dst.write(size + data)
        if size[0] == 0:
            return
