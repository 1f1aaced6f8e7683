"""Make the UI's example inputs from public-domain photos, so the repository ships no one else's pictures.

- scikit-image's `astronaut`: Eileen Collins, a NASA photograph (public domain).
- matplotlib's `grace_hopper.jpg`: Rear Admiral Grace Hopper, a U.S. Navy photograph (public domain).

Outputs (committed, a few hundred KB in all) go to `assets/examples/`:
- `two_people.mp4`: 2 s, 640x360, 12 fps, both faces drifting gently side by side, with a quiet 440 Hz tone
  (so the example shows audio coming through);
- `astronaut.jpg` and `grace_hopper.jpg`: face photos to put in.

Run from the repository root: `python assets/make_examples.py` (needs scikit-image, matplotlib, PyAV, OpenCV).
"""

from __future__ import annotations

import fractions
import logging
from pathlib import Path

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

OUT_DIR = Path(__file__).resolve().parent / "examples"
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 12, 2
PATCH = 200
AUDIO_RATE = 48_000

# Face boxes (x1, y1, x2, y2) found once with dlib's HOG detector; the patches are centred on them.
ASTRONAUT_FACE = (175, 76, 265, 166)
HOPPER_FACE = (180, 139, 366, 325)


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    return cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def square_around(photo: np.ndarray, box: tuple[int, int, int, int], size: int, margin: float) -> np.ndarray:
    """A `size`-pixel square crop, `margin` times the face box and centred on it; edges replicate."""
    x1, y1, x2, y2 = box
    scale = size / (max(x2 - x1, y2 - y1) * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    matrix = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], dtype=np.float64)
    return cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def backdrop() -> np.ndarray:
    """A soft blue-grey gradient (a flat colour encodes oddly small and looks unlike footage)."""
    ramp = np.linspace(0, 1, WIDTH, dtype=np.float32)[None, :, None]
    low, high = np.array([90, 80, 70], np.float32), np.array([150, 130, 110], np.float32)
    return np.repeat((low + (high - low) * ramp).astype(np.uint8), HEIGHT, axis=0)


def frames(patches: list[np.ndarray]) -> list[np.ndarray]:
    base = backdrop()
    gap = (WIDTH - len(patches) * PATCH) // (len(patches) + 1)
    out = []
    for index in range(FPS * SECONDS):
        frame = base.copy()
        for slot, patch in enumerate(patches):
            x = gap + slot * (PATCH + gap) + round(8 * np.sin(index / 4 + slot))
            y = (HEIGHT - PATCH) // 2 + round(6 * np.cos(index / 5 + slot))
            frame[y:y + PATCH, x:x + PATCH] = patch
        out.append(frame)
    return out


def write_clip(path: Path, video_frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "26", "preset": "slow"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        for frame in video_frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(video.encode())
        chunk = 1024
        total = AUDIO_RATE * SECONDS
        for start in range(0, total, chunk):
            t = np.arange(start, min(start + chunk, total)) / AUDIO_RATE
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            block = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            block.sample_rate, block.pts, block.time_base = AUDIO_RATE, start, fractions.Fraction(1, AUDIO_RATE)
            container.mux(audio.encode(block))
        container.mux(audio.encode())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    eileen, grace = astronaut(), grace_hopper()
    write_clip(OUT_DIR / "two_people.mp4", frames([square_around(eileen, ASTRONAUT_FACE, PATCH, 2.2),
                                                   square_around(grace, HOPPER_FACE, PATCH, 1.8)]))
    cv2.imwrite(str(OUT_DIR / "astronaut.jpg"), square_around(eileen, ASTRONAUT_FACE, 256, 2.4),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    cv2.imwrite(str(OUT_DIR / "grace_hopper.jpg"), square_around(grace, HOPPER_FACE, 256, 2.0),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    for path in sorted(OUT_DIR.iterdir()):
        log.info("%s: %.1f KB", path.relative_to(OUT_DIR.parent.parent), path.stat().st_size / 1024)


if __name__ == "__main__":
    main()
