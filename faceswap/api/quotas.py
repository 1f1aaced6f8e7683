"""Per-caller quotas on upload tickets: how many may be open (issued, not yet filled) and how many bytes they
announce in total (`settings.max_open_uploads`, `settings.max_open_upload_bytes`).

A ticket counts from the moment it is issued until its PUT finishes (filled or failed) or retention drops it. The
count lives in this process's memory, like the rate limiter's buckets: after a restart nobody holds a ticket it
can still fill for long, since retention sweeps pending uploads too.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from faceswap.api.common import RateLimited


class QuotaExceeded(RateLimited):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(retry_after)
        self.message = message
        self.args = (message,)


@dataclass
class UploadQuota:
    max_open: int
    max_bytes: int
    lifetime_s: float
    clock: Any = time.monotonic
    _open: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)
    """caller → ticket id → (announced bytes, expiry)"""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, caller: str, size: int) -> str:
        """Count a new ticket of `size` bytes against the caller's quota and return a handle for it (`bind` it to
        the ticket's id once issued, `closed` it when the ticket could not be made); refuses with 429
        `rate_limited` when the quota would be passed."""
        now = self.clock()
        with self._lock:
            tickets = self._live(caller, now)
            held = sum(announced for announced, _ in tickets.values())
            retry = min((expiry for _, expiry in tickets.values()), default=now + 1) - now
            if self.max_open > 0 and len(tickets) >= self.max_open:
                raise QuotaExceeded(f"You already hold {len(tickets)} open upload links, the most this server "
                                    "allows; send their files (or let them expire) before asking for more.", retry)
            if self.max_bytes > 0 and held + size > self.max_bytes:
                raise QuotaExceeded(f"Your open upload links already announce {_size(held)}; with this "
                                    f"{_size(size)} file that would pass the {_size(self.max_bytes)} this server "
                                    "allows at once. Send those files first.", retry)
            handle = f"pending-{secrets.token_hex(8)}"
            self._open.setdefault(caller, {})[handle] = (size, now + self.lifetime_s)
            return handle

    def bind(self, handle: str, ticket_id: str) -> None:
        with self._lock:
            for tickets in self._open.values():
                if handle in tickets:
                    tickets[ticket_id] = tickets.pop(handle)

    def closed(self, ticket_id: str) -> None:
        with self._lock:
            for caller, tickets in list(self._open.items()):
                if tickets.pop(ticket_id, None) is not None and not tickets:
                    del self._open[caller]

    def _live(self, caller: str, now: float) -> dict[str, tuple[int, float]]:
        tickets = {key: value for key, value in self._open.get(caller, {}).items() if value[1] > now}
        if tickets:
            self._open[caller] = tickets
        else:
            self._open.pop(caller, None)
        return tickets


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
