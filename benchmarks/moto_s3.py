"""A local S3 endpoint (moto's server on 127.0.0.1) for benchmarks, with the AWS_* variables pointing at it.

The server runs in a process of its own, as an object store does (and as ``heliohub up`` runs it): in the
benchmark's own process it would compete for the GIL with the code being measured.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_START_TIMEOUT = 60.0
_LOGS: dict[str, Path] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def s3_bucket(bucket: str = "bench") -> Iterator[str]:
    """Yield ``s3://<bucket>`` on a fresh moto server; the environment points at it while the block runs."""
    import boto3

    port = _free_port()
    descriptor, name = tempfile.mkstemp(prefix="moto-", suffix=".log")
    log = Path(name)
    with os.fdopen(descriptor, "wb") as sink:  # the server logs one line per request (see requests_seen)
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=sink, stderr=subprocess.STDOUT)
    _LOGS[f"s3://{bucket}"] = log
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_REGION")}
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start on {endpoint}") from None
                time.sleep(0.1)
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_REGION="us-east-1")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        yield f"s3://{bucket}"
    finally:
        _LOGS.pop(f"s3://{bucket}", None)
        log.unlink(missing_ok=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def requests_seen(bucket_url: str) -> Iterator[list[str]]:
    """The request lines the endpoint of ``bucket_url`` (from :func:`s3_bucket`) logs while the block runs."""
    log = _LOGS[bucket_url]
    start = log.stat().st_size
    lines: list[str] = []
    yield lines
    time.sleep(0.2)  # the server logs each request once it has answered it
    with log.open("rb") as handle:
        handle.seek(start)
        text = re.sub(r"\x1b\[[0-9;]*m", "", handle.read().decode(errors="replace"))  # colours of 206, 404 lines
        lines.extend(line for line in text.splitlines() if '"' in line)
