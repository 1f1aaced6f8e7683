"""Live swapping of a camera stream: per-visitor sessions with a cap, frame dropping and a recording."""

from faceswap.live.recorder import Recorder
from faceswap.live.session import TARGETS, LiveConfig, LiveHub, LiveSession, LiveStats

__all__ = ["TARGETS", "LiveConfig", "LiveHub", "LiveSession", "LiveStats", "Recorder"]
