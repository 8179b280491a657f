"""The remote tier: a warm build that fills an empty local cache from the shared store, against a
build whose local cache is already warm (both on the same site, store on a loopback S3 server)."""

from __future__ import annotations

import logging
import shutil
import urllib.request
from typing import Any

from experiments import Bench
from harness import BenchmarkError, Figure, Pair, build, clean_env, expect_summary, progress

BUCKET = "bench-images"


def run_remote(bench: Bench, repeat: int) -> tuple[list[Figure], dict[str, Any]]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
        )
        env = clean_env(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench-secret",
            AWS_ENDPOINT_URL=endpoint,
            AWS_REGION="us-east-1",
        )
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
        ).create_bucket(Bucket=BUCKET)
        config = bench.site / "mkdocs-remote.yml"
        local = bench.site / ".cache" / "remote-local"
        unique = bench.model.unique_images
        progress(f"remote: filling the store ({unique} images)")
        first = build(config, bench.out("remote-prime"), quiet=False, env=env)
        expect_summary(first, generated=unique, in_use=unique, what="first build with a remote store")

        def fill() -> Any:
            shutil.rmtree(local, ignore_errors=True)
            return build(config, bench.out("remote"), env=env)

        shutil.rmtree(local, ignore_errors=True)
        checked = build(config, bench.out("remote-check"), quiet=False, env=env)
        expect_summary(
            checked, generated=0, in_use=unique, what="build filling the local cache from the store"
        )
        if f"({unique} from the remote cache)" not in checked.output:
            raise BenchmarkError(f"the store did not fill the local cache:\n{checked.output[-2000:]}")
        pair = Pair()
        pair.run("remote fill", repeat, {"fill": fill, "warm": bench.warm})
    finally:
        server.stop()
    figures = [
        Figure(
            "remote_fill_ratio",
            pair.ratio("fill", "warm"),
            None,
            note="build with an empty local cache filled from the S3 store / build with a warm local cache",
        ),
        Figure(
            "remote_fill_cpu_ratio",
            pair.ratio("fill", "warm", cpu=True),
            None,
            note="the same in CPU seconds of the build processes",
        ),
    ]
    return figures, {"fill": pair.describe("fill"), "warm": pair.describe("warm"), "images": unique}
