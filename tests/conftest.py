"""Shared fixtures: the real archive files in ../shared/data (never copied into the project)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CEF = SHARED_DATA / "cluster" / "cef"
CEF_HEADERS = [CEF / "headers" / sub for sub in ("irfu", "irfu/fgm", "caa", "caa/aux2", "caa/cis")]


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real archive files are not here: {SHARED_DATA} is absent (see tests/README.md)")
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent from ../shared/data")
    return path


@pytest.fixture
def cef_headers() -> list[str]:
    """The folders holding the CEF header (.ceh) files the real CEF files include."""
    shared("cluster", "cef", "headers")
    return [str(p) for p in CEF_HEADERS]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint (moto's server) on 127.0.0.1 and a free port, for the whole test session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_archive(s3_endpoint, monkeypatch, request):
    """An empty bucket on the S3 endpoint; the AWS_* variables point at it (and reach subprocesses)."""
    import boto3

    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "heliohub-test",
                        "AWS_SECRET_ACCESS_KEY": "heliohub-test", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HELIOHUB_ARCHIVE", raising=False)
    bucket = "archive-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/store"
