"""Copy the input's audio into an MP4 output, trimmed to the video's window and shifted by the same offset.

Two ways, chosen when the writer sees its first frame:

* **Remux** (no re-encoding) when the window starts at the beginning of the file and MP4 can hold the codec
  (AAC, MP3, ALAC, Opus, FLAC, AC-3, E-AC-3). Packets are whole codec frames, so the end is cut at a packet
  boundary: the audio stops within one audio frame (about 21 ms for AAC) of the video's end.
* **Re-encode to AAC** otherwise: codecs MP4 cannot hold (PCM from MKV, Vorbis from WebM), and every window that
  starts later than the file does, because a copied stream cannot start mid-packet without drifting out of sync by
  up to a packet and an MP4 edit list is not written here. Re-encoding cuts both ends to the sample.

Audio is muxed while the video is written (`advance` after each frame), so the output is interleaved and memory
stays flat. The track reads from its own handle on the input file, independent of the decoder's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.container
import numpy as np

from faceswap.errors import FaceSwapError
from faceswap.media.probe import VideoInfo
from faceswap.media.streams import audio_stream, codec_name, open_input

log = logging.getLogger(__name__)

MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"})
AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AT_START_S = 1e-3
_SEEK_MARGIN_S = 1.0


@dataclass
class _Chunk:
    samples: np.ndarray
    """(channels, n) float32, planar."""
    start: float
    """Output seconds of the first sample."""
    rate: int

    @property
    def end(self) -> float:
        return self.start + self.samples.shape[1] / self.rate


class AudioTrack:
    """Feeds one output audio stream from the input's first audio stream, up to a moving limit."""

    def __init__(self, info: VideoInfo, output: av.container.OutputContainer, window_start: float) -> None:
        self._path = info.path
        self._input = open_input(info.path)
        try:
            source = audio_stream(self._input)
            if source is None or source.codec_context is None:
                raise FaceSwapError("unsupported_media", f"The audio track of '{info.path.name}' cannot be read.")
            self._shift = info.start_time + window_start
            """Input seconds that land at output time 0."""
            self.remuxed = window_start < _AT_START_S and codec_name(source) in MP4_AUDIO_CODECS
            self._done = False
            if self.remuxed:
                self._out = output.add_stream_from_template(source)
                self._packets = self._input.demux(source)
                self._pending_packet: av.Packet | None = None
            else:
                self._setup_reencode(source, output, window_start)
        except BaseException:
            self._input.close()
            raise
        log.debug("audio of %s: %s", info.path.name, "remuxed" if self.remuxed else "re-encoded to AAC")

    @property
    def codec(self) -> str:
        return codec_name(self._out)

    def _setup_reencode(self, source: av.AudioStream, output: av.container.OutputContainer,
                        window_start: float) -> None:
        context = source.codec_context
        channels = context.channels or 2
        self._rate = context.sample_rate if context.sample_rate in AAC_SAMPLE_RATES else 48000
        self._layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(channels, "stereo")
        self._out = output.add_stream("aac", rate=self._rate, layout=self._layout)
        self._out.bit_rate = min(96_000 * self._out.codec_context.channels, 384_000)
        self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
        seek_to = self._shift - _SEEK_MARGIN_S
        if seek_to > 0 and source.time_base:
            try:
                self._input.seek(int(seek_to / source.time_base), stream=source, backward=True)
            except av.error.FFmpegError as exc:
                log.info("cannot seek the audio of %s (%s); reading from the start", self._path.name, exc)
        self._chunks = self._resampled(source)
        self._pending_chunk: _Chunk | None = None
        self._next_pts: int | None = None

    def advance(self, until: float) -> None:
        """Mux every piece of audio that ends by `until` (output seconds): keeps the file interleaved."""
        self._pump(until, final=False)

    def finish(self, end: float) -> None:
        """Mux the rest of the audio that starts before `end` (output seconds), flush, and release the input."""
        try:
            self._pump(end, final=True)
            if not self.remuxed:
                self._mux(self._out.encode(None))
        finally:
            self.close()

    def close(self) -> None:
        self._done = True
        self._input.close()

    def _pump(self, limit: float, *, final: bool) -> None:
        if self._done:
            return
        if self.remuxed:
            self._pump_packets(limit, final)
        else:
            self._pump_chunks(limit, final)

    # -- remux -------------------------------------------------------------------------------------------------

    def _pump_packets(self, limit: float, final: bool) -> None:
        while True:
            packet = self._pending_packet or self._next_packet()
            self._pending_packet = None
            if packet is None:
                return
            time_base = packet.time_base
            stamp = packet.pts if packet.pts is not None else packet.dts
            start = float(stamp * time_base) - self._shift
            end = start + float((packet.duration or 0) * time_base)
            # Packets before 0 are kept: the window starts with the file, so they are the codec's priming (AAC's
            # first packet sits at -1024 samples), which the output's edit list hides again, as in the input.
            if final and start >= limit - 1e-6:
                return
            if not final and end > limit:
                self._pending_packet = packet
                return
            shift = round(self._shift / time_base)
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self._out
            self._mux([packet])

    def _next_packet(self) -> av.Packet | None:
        while True:
            try:
                packet = next(self._packets, None)
            except av.error.FFmpegError as exc:
                raise self._damaged(exc) from exc
            if packet is None:
                return None
            if packet.dts is not None and packet.size:
                return packet

    # -- re-encode ---------------------------------------------------------------------------------------------

    def _pump_chunks(self, limit: float, final: bool) -> None:
        while True:
            chunk = self._pending_chunk or next(self._chunks, None)
            self._pending_chunk = None
            if chunk is None:
                return
            if chunk.end <= 0:
                continue
            if final and chunk.start >= limit - 1e-6:
                return
            if not final and chunk.end > limit:
                self._pending_chunk = chunk
                return
            samples = chunk.samples
            if chunk.start < 0:
                samples = samples[:, round(-chunk.start * self._rate):]
            if final and chunk.end > limit:
                keep = round((limit - max(chunk.start, 0.0)) * self._rate)
                samples = samples[:, :max(keep, 0)]
            if samples.shape[1]:
                self._encode(samples, max(chunk.start, 0.0))

    def _encode(self, samples: np.ndarray, start: float) -> None:
        if self._next_pts is None:
            self._next_pts = round(start * self._rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=self._layout)
        frame.sample_rate = self._rate
        frame.pts = self._next_pts
        self._next_pts += samples.shape[1]
        self._mux(self._out.encode(frame))

    def _resampled(self, source: av.AudioStream) -> Iterator[_Chunk]:
        """Decoded audio as float planar chunks on the output clock; continuous from the first sample decoded."""
        clock: float | None = None
        frames = self._input.decode(source)
        while True:
            try:
                frame = next(frames, None)
            except av.error.FFmpegError as exc:
                raise self._damaged(exc, at=clock) from exc
            if clock is None and frame is not None and frame.pts is not None and frame.time_base is not None:
                clock = float(frame.pts * frame.time_base) - self._shift
            for out in self._resampler.resample(frame):
                samples = out.to_ndarray()
                chunk = _Chunk(samples, -self._shift if clock is None else clock, self._rate)
                clock = chunk.end
                yield chunk
            if frame is None:
                return

    # -- shared ------------------------------------------------------------------------------------------------

    def _mux(self, packets: list[av.Packet]) -> None:
        if packets:
            self._out.container.mux(packets)

    def _damaged(self, exc: BaseException, at: float | None = None) -> FaceSwapError:
        where = "" if at is None or math.isinf(at) else f" near {at + self._shift:.1f} s"
        return FaceSwapError(
            "unsupported_media",
            f"The audio track of '{self._path.name}' is damaged{where} ({exc}); it cannot be copied.",
        )
