"""A real S3-compatible server on loopback for tests: moto's server mode, one bucket per test."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SECRET = "s3-secret-9f8e7d6c5b4a"  # a fake credential, looked for in every output


@dataclass
class S3:
    endpoint: str
    bucket: str
    server: Any

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS environment a runner would have; nothing goes into mkdocs.yml."""
        return {
            "AWS_ACCESS_KEY_ID": "AKIATESTRUNNER0001",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIATESTRUNNER0001",
            aws_secret_access_key=SECRET,
        )

    def objects(self) -> dict[str, bytes]:
        client = self.client()
        out = {}
        for item in client.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            out[item["Key"]] = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return out


@contextlib.contextmanager
def s3_server(bucket: str = "docs-images") -> Iterator[S3]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3(f"http://{host}:{port}", bucket, server)
    # moto keeps its buckets in process-wide state: start every test from an empty store.
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{s3.endpoint}/moto-api/reset", method="POST"), timeout=10)
    s3.client().create_bucket(Bucket=bucket)
    saved = {k: os.environ.get(k) for k in s3.env}
    try:
        yield s3
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
