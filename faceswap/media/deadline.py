"""A network backend for httpcore that holds every socket operation of one download to a total deadline and a
minimum transfer rate.

httpcore passes a timeout to each `read`/`write`; here it is cut to what is left of the deadline (so the socket
timeout itself ends the download on time, however slowly a server trickles bytes, in the headers or the body), and
the bytes received are counted per window of `window_s` seconds: a window that brings fewer than
`min_bytes_per_s * window_s` bytes stops the download. Errors are httpcore's timeout exceptions carrying the reason.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore


class TooSlow(httpcore.ReadTimeout):
    """The server sent less than the minimum rate over a whole window."""


class DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float, *, min_bytes_per_s: int = 0, window_s: float = 10.0,
                 clock: Any = time.monotonic) -> None:
        self.deadline = deadline
        self.min_bytes_per_s = min_bytes_per_s
        self.window_s = window_s
        self.clock = clock
        self._inner = httpcore.SyncBackend()

    def remaining(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise error("the total time limit was reached")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, self.remaining(timeout, httpcore.ConnectTimeout),
                                         local_address=local_address, socket_options=socket_options)
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, max(0.0, self.deadline - self.clock())))


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend
        self._window_start = backend.clock()
        self._window_bytes = 0

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        backend = self._backend
        timeout = backend.remaining(timeout, httpcore.ReadTimeout)
        window_left = self._window_left()
        try:
            data = self._inner.read(max_bytes, timeout if window_left is None else min(timeout, window_left))
        except httpcore.ReadTimeout:
            if window_left is not None and window_left < timeout:  # nothing came for the rest of the window
                raise TooSlow(f"{self._window_bytes / backend.window_s:,.0f} bytes/s") from None
            raise
        self._count(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        stream = self._inner.start_tls(ssl_context, server_hostname,
                                       self._backend.remaining(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def _window_left(self) -> float | None:
        """Seconds until the current window must have brought its share, or None when it already has (or no
        minimum rate applies)."""
        backend = self._backend
        if backend.min_bytes_per_s <= 0 or self._window_bytes >= backend.min_bytes_per_s * backend.window_s:
            return None
        return max(0.01, self._window_start + backend.window_s - backend.clock())

    def _count(self, received: int) -> None:
        backend = self._backend
        self._window_bytes += received
        if backend.min_bytes_per_s <= 0:
            return
        now = backend.clock()
        elapsed = now - self._window_start
        if elapsed < backend.window_s:
            return
        rate = self._window_bytes / elapsed
        if rate < backend.min_bytes_per_s:
            raise TooSlow(f"{rate:,.0f} bytes/s")
        self._window_start, self._window_bytes = now, 0
