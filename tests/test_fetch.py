"""Safe URL fetching: SSRF refusals (IPv4, IPv6, IPv4 inside IPv6), the allow-list, redirects re-checked, size and
time limits, and the address pinning (one DNS lookup, the connection goes to the checked address)."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import file_server, serve_handler

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.media.fetch import fetch_url, precheck_url, refusal_reason
from faceswap.media.inputs import resolve_input

INSIGHTFACE_T1 = Path(__import__("insightface").__file__).parent / "data" / "images" / "t1.jpg"


@pytest.fixture
def served(tmp_path: Path) -> Path:
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "face.jpg").write_bytes(INSIGHTFACE_T1.read_bytes())
    (folder / "big.bin").write_bytes(b"x" * 5000)
    return folder


def settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", fetch_timeout_s=10).with_(**changes)


PROBES = [
    "http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://localhost/", "http://LOCALHOST./", "http://10.0.0.1/",
    "http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://0.0.0.0/", "http://[::]/",
    "http://224.0.0.1/", "http://100.64.0.1/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/", "http://2130706433/", "http://0x7f000001/", "https://127.0.0.1:443/face.jpg",
]


@pytest.mark.parametrize("url", PROBES)
def test_internal_addresses_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(FaceSwapError) as caught:
        fetch_url(url, tmp_path, settings(tmp_path), field="video")
    assert caught.value.code == "invalid_request"
    assert "not allowed" in caught.value.message and caught.value.field == "video"
    assert not list(tmp_path.glob("video-*")), "nothing was written"


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://localhost:8000/x", "http://[::1]/", "http://10.0.0.1/",
                                 "http://169.254.169.254/", "http://[::ffff:10.1.1.1]/"])
def test_the_precheck_refuses_literals_and_localhost_without_dns(tmp_path: Path, url: str) -> None:
    with pytest.raises(FaceSwapError, match="not allowed"):
        precheck_url(url, settings(tmp_path), field="video")


def test_the_precheck_leaves_public_names_to_the_worker(tmp_path: Path) -> None:
    precheck_url("https://example.com/video.mp4", settings(tmp_path), field="video")
    precheck_url("http://93.184.215.14/video.mp4", settings(tmp_path), field="video")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "/etc/passwd", "gopher://x/",
                                 "http://user:pw@example.com/x", "http:///nohost", "http://[::1/"])
def test_only_plain_http_urls_are_fetched(tmp_path: Path, url: str) -> None:
    with pytest.raises(FaceSwapError) as caught:
        fetch_url(url, tmp_path, settings(tmp_path), field="face")
    assert caught.value.code == "invalid_request"


def test_reasons_name_the_kind_of_address() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1")) == "a loopback address"
    assert refusal_reason(ipaddress.ip_address("169.254.169.254")) == "a link-local address"
    assert refusal_reason(ipaddress.ip_address("10.0.0.1")) == "a private-network address"
    assert "inside an IPv6" in refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert refusal_reason(ipaddress.ip_address("8.8.8.8")) is None
    assert refusal_reason(ipaddress.ip_address("2001:4860:4860::8888")) is None


def test_an_allowlisted_server_is_fetched_byte_for_byte(tmp_path: Path, served: Path) -> None:
    with file_server(served) as base:
        path = fetch_url(f"{base}/face.jpg", tmp_path / "out", settings(tmp_path, url_allowlist=("127.0.0.1",)),
                         field="face")
    assert path.suffix == ".jpg" and path.read_bytes() == INSIGHTFACE_T1.read_bytes()


def test_resolve_input_fetches_urls(tmp_path: Path, served: Path) -> None:
    with file_server(served) as base:
        path = resolve_input(f"{base}/face.jpg", tmp_path / "out", settings(tmp_path, url_allowlist=("127.0.0.0/8",)),
                             field="face")
    assert path.read_bytes() == INSIGHTFACE_T1.read_bytes()


def test_redirects_are_checked_again(tmp_path: Path, served: Path) -> None:
    allow_localhost = settings(tmp_path, url_allowlist=("localhost",))
    with file_server(served) as target, file_server(served, redirects={
        "/to-loopback": f"{target}/face.jpg",
        "/to-ipv6-loopback": "http://[::1]:9/face.jpg",
        "/to-metadata": "http://169.254.169.254/latest/meta-data/",
        "/relative": "/face.jpg",
    }) as redirector:
        port = redirector.rsplit(":", 1)[1]
        local = f"http://localhost:{port}"
        assert fetch_url(f"{local}/relative", tmp_path, allow_localhost, field="video").read_bytes() == \
            INSIGHTFACE_T1.read_bytes(), "a redirect within the allow-listed host is followed"
        for path in ("/to-loopback", "/to-ipv6-loopback", "/to-metadata"):
            with pytest.raises(FaceSwapError, match="not allowed") as caught:
                fetch_url(f"{local}{path}", tmp_path, allow_localhost, field="video")
            assert caught.value.code == "invalid_request"


def test_too_many_redirects(tmp_path: Path, served: Path) -> None:
    with file_server(served, redirects={"/loop": "/loop"}) as base, pytest.raises(FaceSwapError, match="redirects"):
        fetch_url(f"{base}/loop", tmp_path, settings(tmp_path, url_allowlist=("127.0.0.1",)), field="video")


def test_size_limit_by_header_and_while_streaming(tmp_path: Path, served: Path) -> None:
    small = settings(tmp_path, url_allowlist=("127.0.0.1",), max_upload_bytes=1000)
    with file_server(served, streams={"/stream": b"y" * 5000}) as base:
        for path in ("/big.bin", "/stream"):
            with pytest.raises(FaceSwapError) as caught:
                fetch_url(f"{base}{path}", tmp_path / "out", small, field="video")
            assert caught.value.code == "media_too_large"
        assert not list((tmp_path / "out").glob("*")), "a partial download is deleted"


def test_time_limit(tmp_path: Path, served: Path) -> None:
    quick = settings(tmp_path, url_allowlist=("127.0.0.1",), fetch_timeout_s=0.5)
    with file_server(served, slow=frozenset({"/face.jpg"})) as base, pytest.raises(FaceSwapError) as caught:
        fetch_url(f"{base}/face.jpg", tmp_path, quick, field="video")
    assert caught.value.code == "upstream_timeout"


def test_http_errors_and_unknown_hosts(tmp_path: Path, served: Path) -> None:
    allowed = settings(tmp_path, url_allowlist=("127.0.0.1",))
    with file_server(served) as base, pytest.raises(FaceSwapError, match="HTTP 404"):
        fetch_url(f"{base}/missing.mp4", tmp_path, allowed, field="video")
    with pytest.raises(FaceSwapError, match="could not be found"):
        fetch_url("http://no-such-host.invalid/x.mp4", tmp_path, allowed, field="video")


def test_dns_is_resolved_once_and_the_checked_address_is_used(tmp_path: Path, served: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "media.example":
            lookups.append(host)
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    hosts: list[str] = []
    with file_server(served, seen_hosts=hosts) as base:
        port = base.rsplit(":", 1)[1]
        with pytest.raises(FaceSwapError, match="loopback"):
            fetch_url(f"http://media.example:{port}/face.jpg", tmp_path, settings(tmp_path), field="face")
        lookups.clear()
        allowed = settings(tmp_path, url_allowlist=("127.0.0.0/8",))
        path = fetch_url(f"http://media.example:{port}/face.jpg", tmp_path, allowed, field="face")
    assert path.read_bytes() == INSIGHTFACE_T1.read_bytes()
    assert lookups == ["media.example"], "one lookup per hop; the connection uses the checked address"
    assert hosts == [f"media.example:{port}"], "the Host header keeps the URL's name"


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Sends its answer one byte per `interval` seconds: the whole response on /headers, the body on /body."""

    interval = 1.0
    total = 30

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {self.total}\r\n\r\n".encode()
        payload = (head if self.path == "/headers" else b"") + b"x" * self.total
        if self.path != "/headers":
            self.wfile.write(head)
            self.wfile.flush()
        try:
            for byte in payload:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.interval)
        except OSError:  # the client gave up, as it should
            pass


@contextlib.contextmanager
def trickle_server() -> Iterator[str]:
    with serve_handler(_Trickle, daemon_threads=True) as base:
        yield base


@pytest.mark.parametrize("path", ["/body", "/headers"])
def test_a_one_byte_per_second_server_is_dropped_at_the_deadline(tmp_path: Path, path: str) -> None:
    quick = settings(tmp_path, url_allowlist=("127.0.0.1",), fetch_timeout_s=2.0, fetch_min_bytes_per_s=0)
    with trickle_server() as base:
        started = time.monotonic()
        with pytest.raises(FaceSwapError) as caught:
            fetch_url(f"{base}{path}", tmp_path / "out", quick, field="video")
        took = time.monotonic() - started
    print(f"1 byte/s on {path}: refused after {took:.2f} s (deadline 2 s)")
    assert caught.value.code == "upstream_timeout" and "longer than 2 s" in caught.value.message
    assert 1.9 <= took < 2.6, f"refused after {took:.2f} s; the deadline is 2 s"
    assert not list((tmp_path / "out").glob("*")), "the partial download is deleted"


def test_a_server_below_the_minimum_rate_is_dropped_before_the_deadline(tmp_path: Path) -> None:
    strict = settings(tmp_path, url_allowlist=("127.0.0.1",), fetch_timeout_s=60.0, fetch_min_bytes_per_s=1024,
                      fetch_rate_window_s=1.0)
    with trickle_server() as base:
        started = time.monotonic()
        with pytest.raises(FaceSwapError) as caught:
            fetch_url(f"{base}/body", tmp_path / "out", strict, field="video")
        took = time.monotonic() - started
    print(f"1 byte/s with a 1 KB/s minimum: refused after {took:.2f} s")
    assert caught.value.code == "upstream_timeout" and "too slowly" in caught.value.message
    assert took < 2.5, f"refused after {took:.2f} s; a 1 s window should end it within about 1-2 s"


def test_a_fast_server_passes_the_rate_check(tmp_path: Path, served: Path) -> None:
    strict = settings(tmp_path, url_allowlist=("127.0.0.1",), fetch_min_bytes_per_s=1024, fetch_rate_window_s=0.2)
    with file_server(served) as base:
        path = fetch_url(f"{base}/face.jpg", tmp_path / "out", strict, field="face")
    assert path.read_bytes() == INSIGHTFACE_T1.read_bytes()


@pytest.mark.parametrize("url", ["http://0.aa*/", "http://bad host.example/", "http://a.123/", "http://-a.example/",
                                 "http://ex\u00e4mple.com/"])
def test_a_url_whose_host_is_no_host_name_is_refused_at_once(tmp_path: Path, url: str) -> None:
    with pytest.raises(FaceSwapError) as caught:
        precheck_url(url, settings(tmp_path), field="video")
    assert caught.value.code == "invalid_request" and caught.value.field == "video"
