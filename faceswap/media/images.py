"""Load the face photo: BGR uint8, turned the way its EXIF orientation says, alpha dropped, GIF → first frame.

Pillow reads the header before the pixels, so the pixel limit is checked before anything large is decoded, and it
applies EXIF orientation (`ImageOps.exif_transpose`), which phone photos rely on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.faces.types import Frame
from faceswap.media.units import check_input_file

log = logging.getLogger(__name__)

_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""The only Pillow readers a face photo is opened with, chosen by Pillow from the content (the JPEG reader also
opens a phone's MPO pictures). Formats that hand the data to another program (EPS → Ghostscript) or read other files are
never tried."""


def image_format(path: Path) -> str | None:
    """The accepted image format of the file at `path` ("JPEG", "PNG", ...), from its header alone; None if it is
    not one."""
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            return image.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


def load_image(path: Path, settings: Settings) -> Frame:
    """The image at `path` as an upright BGR uint8 HxWx3 array, or the catalog error a person can act on."""
    path = Path(path)
    check_input_file(path, settings, kind="image", field="face")
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            width, height = image.size
            if width * height > settings.max_pixels:
                raise FaceSwapError("media_too_large", f"The image '{path.name}' is {width}×{height} pixels; this "
                                    f"server accepts at most {settings.max_pixels:,} pixels.", field="face")
            return _to_bgr(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as exc:
        raise FaceSwapError("media_too_large", f"The image '{path.name}' has far too many pixels.",
                            field="face") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise FaceSwapError(
            "unsupported_media",
            f"The image file '{path.name}' could not be read: it is not an image format this service understands "
            "(JPEG, PNG, WebP, GIF, BMP, TIFF) or it is damaged.",
            field="face",
        ) from exc


def _to_bgr(image: Image.Image) -> Frame:
    if image.mode in _HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float64)
        peak = values.max() or 1.0
        gray = np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])
