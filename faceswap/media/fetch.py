"""Download an input from an http(s) URL without letting the URL reach places it must not (SSRF).

Each hop (the URL and every redirect) is parsed, its host resolved once, and every address checked: loopback,
private, link-local, shared (CGNAT), reserved, multicast and unspecified addresses are refused, in IPv4 and IPv6,
including IPv4 addresses carried inside IPv6 (mapped, 6to4, Teredo, NAT64). The connection then goes to the checked
address itself (the Host header and TLS name stay the URL's), so a second DNS answer cannot swap in another address.
`settings.url_allowlist` names hosts or CIDR blocks that may be reached although private (tests, trusted LANs).
Downloads stop at `settings.max_upload_bytes`; one total deadline (`settings.fetch_timeout_s`) holds for the DNS
lookup and every socket read and write (the socket timeout is cut to what is left, see `media.deadline`), and a
server slower than `settings.fetch_min_bytes_per_s` over a window is dropped, so a trickling server cannot hold a
worker past the deadline.

httpcore (httpx's transport, already a dependency) does the HTTP; the address pinning is ours because no well-kept
library offers it: the URL is rewritten to the IP and the `sni_hostname` extension keeps certificate checks on the
real name.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import re
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit

import httpcore
import httpx

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media.deadline import DeadlineBackend, TooSlow

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_CHUNK = 256 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_MEDIA_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif", ".jpg", ".jpeg", ".png", ".webp",
                   ".bmp", ".tif", ".tiff"}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    """Lower-case host name or IP literal, without brackets."""
    port: int
    path_and_query: str
    host_header: str


def fetch_url(url: str, dest_dir: Path, settings: Settings, *, field: str) -> Path:
    """Download `url` into a new file in `dest_dir` and return its path (the suffix follows the media type)."""
    deadline = time.monotonic() + settings.fetch_timeout_s
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = parse_url(current, field=field)
        addresses = allowed_addresses(target, settings, field=field, deadline=deadline)
        location = _download(target, addresses, dest_dir, settings, field=field, deadline=deadline)
        if isinstance(location, Path):
            return location
        current = urljoin(current, location)
        log.info("%s: following a redirect to %s", field, _shown(current))
    raise FaceSwapError("invalid_request", f"{field}: the URL redirects more than {MAX_REDIRECTS} times.", field=field)


HOST_NAME = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
"""What a URL's host must be when it is not an IP literal (lower case, the final dot removed); `faceswap.api.fields`
documents the same grammar."""


def parse_url(url: str, *, field: str) -> Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FaceSwapError("invalid_request", f"{field}: {_shown(url)} is not a valid URL.", field=field) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FaceSwapError("invalid_request", f"{field}: only http and https URLs can be fetched, not "
                            f"{scheme or 'a bare path'}.", field=field)
    if parts.username is not None or parts.password is not None:
        raise FaceSwapError("invalid_request", f"{field}: URLs with a user name or password are not accepted.",
                            field=field)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FaceSwapError("invalid_request", f"{field}: the URL has no host name.", field=field)
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    target = Target(url, scheme, host, port, path, _host_header(parts, scheme))
    if _ip_literal(host) is None:
        if not HOST_NAME.fullmatch(host):
            raise FaceSwapError("invalid_request", f"{field}: {_shown(url)} does not name a valid host (dot-separated "
                                "labels of letters, digits, '-' and '_'; an international name in its xn-- form).",
                                field=field)
        if host.rsplit(".", 1)[-1].isdigit():
            raise _refused(target, field, "a host name cannot end in a number (IP addresses are taken in dotted "
                                          "decimal or, for IPv6, in brackets)")
    return target


def precheck_url(url: str, settings: Settings, *, field: str) -> None:
    """The checks that need no DNS, for answering a bad URL at once (the worker repeats all of them)."""
    target = parse_url(url, field=field)
    if _allowlisted_host(target.host, settings):
        return
    if target.host == "localhost" or target.host.endswith(".localhost"):
        raise _refused(target, field, "it names this machine (localhost)")
    address = _ip_literal(target.host)
    if address is not None and not _allowlisted_ip(address, settings):
        reason = refusal_reason(address)
        if reason:
            raise _refused(target, field, f"{address} is {reason}")


def refusal_reason(address: IPAddress) -> str | None:
    """Why an address may not be fetched from, or None when it is a public internet address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal_reason(embedded)
            if inner:
                return f"{inner} (carried inside an IPv6 address)"
    checks = (("is_loopback", "a loopback address"), ("is_unspecified", "the unspecified address"),
              ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address"),
              ("is_private", "a private-network address"), ("is_reserved", "a reserved address"))
    for attribute, reason in checks:
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "not a public internet address"
    return None


def allowed_addresses(target: Target, settings: Settings, *, field: str, deadline: float) -> list[IPAddress]:
    """The addresses of the target's host that may be connected to, in resolver order; refuses if none may."""
    host_allowed = _allowlisted_host(target.host, settings)
    literal = _ip_literal(target.host)
    addresses = [literal] if literal is not None else _resolve(target, field=field, deadline=deadline)
    allowed: list[IPAddress] = []
    reasons: list[str] = []
    for address in addresses:
        reason = None if host_allowed or _allowlisted_ip(address, settings) else refusal_reason(address)
        if reason:
            reasons.append(f"{address} is {reason}")
        else:
            allowed.append(address)
    if not allowed:
        raise _refused(target, field, "; ".join(dict.fromkeys(reasons)))
    return allowed


def _download(target: Target, addresses: list[IPAddress], dest_dir: Path, settings: Settings, *, field: str,
              deadline: float) -> Path | str:
    """Fetch one hop: the saved file, or the Location of a redirect."""
    last_error: Exception | None = None
    backend = DeadlineBackend(deadline, min_bytes_per_s=settings.fetch_min_bytes_per_s,
                              window_s=settings.fetch_rate_window_s)
    for address in addresses:
        remaining = _remaining(deadline, target, field, settings)
        ip_host = f"[{address}]" if address.version == 6 else str(address)
        request_url = f"{target.scheme}://{ip_host}:{target.port}{target.path_and_query}"
        headers = [(b"Host", target.host_header.encode("idna" if not target.host_header.isascii() else "ascii")),
                   (b"User-Agent", b"faceswap-fetch/1"), (b"Accept", b"*/*"), (b"Accept-Encoding", b"identity")]
        extensions: dict[str, object] = {"timeout": {"connect": min(remaining, 10.0), "read": remaining,
                                                     "write": remaining, "pool": remaining}}
        if target.scheme == "https" and _ip_literal(target.host) is None:
            extensions["sni_hostname"] = target.host
        try:
            with httpcore.ConnectionPool(ssl_context=ssl.create_default_context(), network_backend=backend) as pool, \
                    pool.stream("GET", request_url, headers=headers, extensions=extensions) as response:
                return _handle(response, target, dest_dir, settings, field=field, deadline=deadline)
        except TooSlow as exc:
            raise FaceSwapError("upstream_timeout", f"{field}: {_shown(target.url)} sent data too slowly ({exc}; "
                                f"at least {settings.fetch_min_bytes_per_s / 1024:g} KB/s is needed).",
                                field=field) from exc
        except httpcore.ConnectError as exc:
            last_error = exc
            continue
        except httpcore.TimeoutException as exc:
            raise _timed_out(target, field, settings) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, ssl.SSLError, ValueError) as exc:
            raise FaceSwapError("invalid_request", f"{field}: downloading {_shown(target.url)} failed: "
                                f"{_describe(exc)}.", field=field) from exc
    raise FaceSwapError("invalid_request", f"{field}: could not connect to {target.host}: "
                        f"{_describe(last_error)}.", field=field) from last_error


def _handle(response: httpcore.Response, target: Target, dest_dir: Path, settings: Settings, *, field: str,
            deadline: float) -> Path | str:
    headers = httpx.Headers(response.headers)
    if response.status in (301, 302, 303, 307, 308):
        location = headers.get("location")
        if not location:
            raise FaceSwapError("invalid_request", f"{field}: {_shown(target.url)} redirects without a Location.",
                                field=field)
        return location
    if response.status != 200:
        raise FaceSwapError("invalid_request", f"{field}: downloading {_shown(target.url)} failed with HTTP "
                            f"{response.status}.", field=field)
    limit = settings.max_upload_bytes
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(field, target, limit)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{field}-{secrets.token_hex(8)}{_suffix(target, headers)}"
    received = 0
    try:
        with path.open("wb") as out:
            for chunk in response.iter_stream():  # one network read at a time, each under the deadline
                received += len(chunk)
                if received > limit:
                    raise _too_large(field, target, limit)
                out.write(chunk)
                _remaining(deadline, target, field, settings)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if received == 0:
        path.unlink(missing_ok=True)
        raise FaceSwapError("invalid_request", f"{field}: {_shown(target.url)} answered with an empty body.",
                            field=field)
    return path


def _resolve(target: Target, *, field: str, deadline: float) -> list[IPAddress]:
    """getaddrinfo under the fetch's time limit (it has no timeout of its own, so it runs in a helper thread)."""
    outcome: dict[str, object] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=lookup, name="faceswap-dns", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise FaceSwapError("upstream_timeout", f"{field}: looking up {target.host} timed out.", field=field)
    if "error" in outcome:
        raise FaceSwapError("invalid_request", f"{field}: the host {target.host} could not be found.",
                            field=field) from outcome["error"]
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in outcome["infos"]:  # type: ignore[union-attr]
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FaceSwapError("invalid_request", f"{field}: the host {target.host} has no address.", field=field)
    return addresses


def _allowlisted_host(host: str, settings: Settings) -> bool:
    return any(entry.strip().lower().rstrip(".") == host for entry in settings.url_allowlist)


def _allowlisted_ip(address: IPAddress, settings: Settings) -> bool:
    for entry in settings.url_allowlist:
        try:
            network = ipaddress.ip_network(entry.strip().strip("[]"), strict=False)
        except ValueError:
            continue  # a host name entry
        if address.version == network.version and address in network:
            return True
    return False


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _host_header(parts: SplitResult, scheme: str) -> str:
    netloc = parts.netloc.rsplit("@", 1)[-1]
    default = ":443" if scheme == "https" else ":80"
    return netloc[: -len(default)] if netloc.endswith(default) else netloc


def _suffix(target: Target, headers: httpx.Headers) -> str:
    path_suffix = Path(target.path_and_query.split("?", 1)[0]).suffix.lower()
    if path_suffix in _MEDIA_SUFFIXES:
        return path_suffix
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    guessed = mimetypes.guess_extension(content_type) if content_type else None
    return guessed if guessed in _MEDIA_SUFFIXES else ".bin"


def _remaining(deadline: float, target: Target, field: str, settings: Settings) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(target, field, settings)
    return remaining


def _timed_out(target: Target, field: str, settings: Settings) -> FaceSwapError:
    return FaceSwapError("upstream_timeout", f"{field}: downloading {_shown(target.url)} took longer than "
                         f"{settings.fetch_timeout_s:g} s.", field=field)


def _refused(target: Target, field: str, reason: str) -> FaceSwapError:
    return FaceSwapError("invalid_request", f"{field}: the URL {_shown(target.url)} is not allowed: {reason}. "
                         "Inputs must come from public internet addresses.", field=field)


def _too_large(field: str, target: Target, limit: int) -> FaceSwapError:
    return FaceSwapError("media_too_large", f"{field}: {_shown(target.url)} is larger than the "
                         f"{limit / 1e6:.1f} MB this server accepts.", field=field)


def _shown(url: str) -> str:
    text = url if len(url) <= 120 else url[:117] + "..."
    return repr(text)


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "no address to connect to"
    text = str(exc).strip()
    return text or type(exc).__name__
