"""Shared fixtures: the real archive files in data/ (copied with their provenance, data/README.md), and one
running platform (`heliohub up`) for every test that needs it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

import heliohub

DATA = Path(__file__).resolve().parents[1] / "data"
CEF = DATA / "cluster" / "cef"
CEF_HEADERS = [CEF / "headers" / sub for sub in ("irfu", "irfu/fgm", "caa", "caa/aux2", "caa/cis")]


# The fast core tier (`python3 dev.py test -m core`): readers, layout and the folder store, in under two minutes.
CORE_MODULES = {"test_read_cef", "test_read_cdf", "test_read_fits", "test_lint", "test_any_file", "test_store",
                "test_access"}
OUTSIDE_CORE = {"s3_endpoint", "platform", "browser", "chart"}  # servers and tools the core does without


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        callspec = getattr(item, "callspec", None)
        on_s3 = callspec is not None and callspec.params.get("archive") == "s3"
        slow = item.get_closest_marker("slow") is not None
        if module in CORE_MODULES and not OUTSIDE_CORE & set(getattr(item, "fixturenames", ())) and not on_s3 \
                and not slow:
            item.add_marker(pytest.mark.core)


def real_file(*parts: str) -> Path:
    """A path under data/ (the real archive files that ship with the repository)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the checkout: data/README.md lists the real files")
    return path


@pytest.fixture
def cef_headers() -> list[str]:
    """The folders holding the CEF header (.ceh) files the real CEF files include."""
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
    # one bucket per test (parametrized ones too: the name's end is a digest of the whole test ID)
    name = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    bucket = f"archive-{name}-{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/store"


@pytest.fixture(scope="session")
def demo_archive(s3_endpoint):
    """The demo archive `heliohub up` fills (every real file of data/ and sunpy's), ingested once into a bucket of
    the S3 endpoint: its URL and the environment that reaches it (for subprocesses)."""
    import boto3

    from heliohub.up import demo

    environment = {"AWS_ACCESS_KEY_ID": "heliohub-test", "AWS_SECRET_ACCESS_KEY": "heliohub-test",
                   "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="demo")
        files, _ = demo.inputs()
        report = heliohub.ingest(files, "s3://demo/store", include_paths=demo.include_paths(), progress=False)
        assert report.datasets, report.summary()
    return {"url": "s3://demo/store", "environment": environment}


def stored(archive: dict, dataset_id: str, *range_: str):
    """A dataset of ``demo_archive`` (optionally a range of it), loaded."""
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", heliohub.CaveatWarning)
        for name, value in archive["environment"].items():
            patch.setenv(name, value)
        return heliohub.open_dataset(dataset_id, *range_, archive=archive["url"]).load()


ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "an-admin-password-of-32-characters-at-least"
# Each test user signs up with a password of their own; only these names may use the test platform.
PASSWORDS = {"alice": "alice-password-for-tests", "bob": "bob-password-for-tests",
             "carol": "carol-password-for-tests", "dave": "dave-password-for-tests",
             "erin": "erin-password-for-tests"}
# The test platform's limits (heliohub up's settings), small enough to be reached by the tests.
LIMITS = {"max_servers": 2, "clusters_per_user": 2, "cluster_max_workers": 2, "server_memory": "2G",
          "home_quota": "64M", "worker_memory": "1G"}


def passable_folder(prefix: str) -> Path:
    """A new folder that other system accounts can pass through (pytest's own are closed: 0700), as the users'
    accounts of a `heliohub up` run as root must, to reach their homes."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="session")
def platform():
    """`heliohub up` in a child process, its demo Cluster hour fetched from a stand-in of the Cluster Science
    Archive (tests/archive_server.py); the test users signed up through the hub's form."""
    from .archive_server import ArchiveServer
    from .hub_client import free_ports, sign_up

    data = passable_folder("heliohub-up-")
    hub, api, proxy, gateway, gateway_api, s3, hapi = free_ports(7)
    csa = ArchiveServer()
    env = {**os.environ, "HELIOHUB_ADMIN_PASSWORD": ADMIN_PASSWORD, "HELIOHUB_CSA_URL": csa.url("csa-sl-tap")}
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HELIOHUB_ARCHIVE"):
        env.pop(key, None)
    command = [sys.executable, "-m", "heliohub.cli", "up", f"--data-dir={data}",
               f"--UpSettings.hub_port={hub}", f"--UpSettings.hub_api_port={api}",
               f"--UpSettings.proxy_api_port={proxy}", f"--UpSettings.gateway_port={gateway}",
               f"--UpSettings.gateway_api_port={gateway_api}", f"--UpSettings.s3_port={s3}",
               f"--UpSettings.hapi_port={hapi}",
               f"--UpSettings.users={list(PASSWORDS)!r}",
               *[f"--UpSettings.{name}={value}" for name, value in LIMITS.items()]]
    output = data / "up.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 240
        while b"heliohub is up" not in output.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("heliohub up did not come up:\n" + output.read_text()[-5000:])
            time.sleep(0.5)
        state = json.loads((data / "hub" / "state.json").read_text())
        url = f"http://127.0.0.1:{hub}"
        for name, password in PASSWORDS.items():
            sign_up(url, name, password)
        yield {"url": url, "data": data, "state": state, "output": output,
               "ports": [hub, api, proxy, gateway, gateway_api, s3]}
        # SIGTERM, as a service manager stops it: a test run started as a shell's background job (`&`) hands
        # its children SIGINT ignored, and `heliohub up` would not hear it
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    csa.close()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def alice(platform):
    """alice, logged in, her server running."""
    from .hub_client import HubUser

    user = HubUser(platform["url"], "alice", PASSWORDS["alice"])
    user.spawn()
    yield user
    user.stop()
