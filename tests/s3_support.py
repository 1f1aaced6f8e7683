"""A real S3 endpoint on loopback for the blob store's tests: moto's server (HTTP, the S3 REST protocol), not its
in-process patching, so boto3 goes through its whole stack (signing, multipart, conditional writes)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "faceswap-test", "AWS_SECRET_ACCESS_KEY": "faceswap-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Endpoint:
    url: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url)

    def new_bucket(self) -> str:
        name = f"faceswap-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def open_multipart_uploads(self, bucket: str) -> list[str]:
        return [upload["Key"] for upload in self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", ())]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server on a free 127.0.0.1 port for this module, with test credentials in the environment (boto3
    reads them as it would real ones). Each test takes its own bucket."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield S3Endpoint(f"http://{host}:{port}")
        finally:
            server.stop()
