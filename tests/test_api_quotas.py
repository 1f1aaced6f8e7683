"""Upload tickets are limited per key: how many are open at once, the bytes they announce, and the creation rate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from api_helpers import OTHER_KEY, auth, error_of, server_factory


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    with server_factory(tmp_path) as factory:
        yield factory


def ticket(base: str, size: int, key: str | None = None) -> requests.Response:
    return requests.post(f"{base}/api/v3/media/uploads", json={"filename": "clip.mp4", "size": size},
                         headers=auth(key) if key else auth(), timeout=30)


def test_open_tickets_per_key_are_limited_until_one_is_filled(start) -> None:
    server = start(max_open_uploads=3, max_open_upload_bytes=1_000_000)
    tickets = [ticket(server.base, 10) for _ in range(3)]
    assert [resp.status_code for resp in tickets] == [200, 200, 200]
    refused = ticket(server.base, 10)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "3 open upload links" in error_of(refused, "wavespeed")[1]
    assert ticket(server.base, 10, OTHER_KEY).status_code == 200, "the quota is per key"
    upload = tickets[0].json()["data"]["upload"]
    assert requests.put(upload["url"], data=b"0123456789", timeout=30).status_code == 200
    assert ticket(server.base, 10).status_code == 200, "a filled ticket no longer counts"
    assert ticket(server.base, 10).status_code == 429
    broken = tickets[1].json()["data"]["upload"]
    assert requests.put(broken["url"], data=b"0123", timeout=30).status_code == 400
    assert ticket(server.base, 10).status_code == 200, "a failed upload frees its ticket too"


def test_announced_bytes_per_key_are_limited(start) -> None:
    server = start(max_open_uploads=100, max_open_upload_bytes=10_000, max_upload_bytes=6_000)
    assert ticket(server.base, 6_000).status_code == 200
    assert ticket(server.base, 4_000).status_code == 200
    refused = ticket(server.base, 1)
    assert refused.status_code == 429
    message = error_of(refused, "wavespeed")[1]
    assert "announce 10.0 KB" in message and "this 1 bytes file" in message and "10.0 KB this server" in message


def test_a_rate_limited_key_gets_no_more_tickets(start) -> None:
    server = start(rate_limit_per_minute=2, max_open_uploads=100)
    assert [ticket(server.base, 10).status_code for _ in range(2)] == [200, 200]
    limited = ticket(server.base, 10)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_a_hundred_large_tickets_are_not_handed_out(start) -> None:
    server = start(max_upload_bytes=500 * 1024 * 1024)  # the defaults: 10 open tickets, 2 GiB announced
    statuses = [ticket(server.base, 500 * 1024 * 1024).status_code for _ in range(100)]
    assert statuses.count(200) == 4 and statuses.count(429) == 96
