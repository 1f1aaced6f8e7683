"""Put a split video back together: the segments' packets stream-copied (no re-encode) into one MP4, with the
input's audio added the way the one-pass writer adds it, and the segments' records merged into one `SwapReport`.

Each segment's timestamps count from its own first frame; adding that frame's place in the input (its `first_pts`
less the first segment's) gives back the one-pass run's timestamps, so the output has the same frames, times and
duration. The audio follows the same window as in one pass (from the first frame to the last frame's end), remuxed
or re-encoded by the same rules (`media.audio`).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av

from faceswap.errors import FaceSwapError
from faceswap.media.audio import AudioTrack
from faceswap.media.encode import PROVENANCE_NOTE
from faceswap.media.probe import VideoInfo
from faceswap.options import SwapOptions
from faceswap.pipeline import _Stats
from faceswap.report import SwapReport

log = logging.getLogger(__name__)


def stitch(parts: Sequence[Path], records: Sequence[dict[str, Any]], info: VideoInfo, output: Path) -> None:
    """Remux `parts` (segment files, in order, with their `process_segment` records) and the input's audio into
    `output`, atomically (a temp file beside it, renamed when complete)."""
    if not parts or len(parts) != len(records):
        raise FaceSwapError("internal_error", "The segments of this video are incomplete; it cannot be stitched.")
    origin = int(records[0]["first_pts"])
    first_time = float(records[0]["first_time"])
    last = records[-1]
    end = float(last["last_time"]) - first_time + float(last["last_duration"])
    temp = output.with_name(f".{output.stem}.{secrets.token_hex(8)}.mp4")
    audio: AudioTrack | None = None
    try:
        with av.open(str(temp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            container.metadata["comment"] = PROVENANCE_NOTE
            container.metadata["description"] = PROVENANCE_NOTE
            video: av.VideoStream | None = None
            for part, record in zip(parts, records, strict=True):
                with av.open(str(part)) as source:
                    stream = source.streams.video[0]
                    if video is None:
                        video = container.add_stream_from_template(stream)
                        video.time_base = stream.time_base
                        if info.has_audio:
                            audio = AudioTrack(info, container, window_start=first_time)
                    shift = round((int(record["first_pts"]) - origin) * info.time_base / stream.time_base)
                    for packet in source.demux(stream):
                        if packet.dts is None or not packet.size:
                            continue
                        time_base = packet.time_base
                        packet.pts = packet.pts + shift if packet.pts is not None else None
                        packet.dts += shift
                        packet.stream = video
                        container.mux(packet)
                        if audio is not None and packet.pts is not None:
                            audio.advance(float(packet.pts * time_base))
            if audio is not None:
                audio.finish(end)
                audio = None
        os.replace(temp, output)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise FaceSwapError("internal_error", f"Joining the segments of the video failed ({exc}).") from exc
    finally:
        if audio is not None:
            audio.close()
        temp.unlink(missing_ok=True)
    log.info("stitched %d segments into %s", len(parts), output.name)


def merged_report(records: Sequence[dict[str, Any]], options: SwapOptions, info: VideoInfo,
                  elapsed_s: float) -> SwapReport:
    """One report for the whole video, as the one-pass run would have written it."""
    stats = _Stats()
    for record in records:
        for faces, swapped, turned in zip(record["faces"], record["swapped"], record["turned"], strict=True):
            stats.add(int(faces), int(swapped))
            stats.frames_skipped_turned += int(turned)
    stats.duration_s = float(records[-1]["last_time"]) - (options.start or 0.0)
    first = records[0]
    notices = list(dict.fromkeys(notice for record in records for notice in record.get("notices", ())))
    return SwapReport(
        engine=first["engine"], provider=first["provider"], frames=stats.frames, frames_swapped=stats.frames_swapped,
        faces_per_frame=stats.face_counts(), width=info.width, height=info.height, fps=float(info.fps),
        duration_s=stats.duration_s, has_audio=info.has_audio, output_format="mp4", restore=options.restore,
        elapsed_s=round(elapsed_s, 3), frames_missed=stats.missed, notices=notices,
        frames_skipped_turned=stats.frames_skipped_turned)
