"""`heliohub serve`, the HAPI 3.1 server, run as a real process over the demo archive on the S3 endpoint, read with
hapiclient (the field's Python client) and checked against `open_dataset`, its JSON against the HAPI schema
(tests/fixtures/hapi/), and its refusals against the specification's status codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import requests

import heliohub
from heliohub.up import demo

from .hub_client import free_ports
from .store_helpers import ROOT

SCHEMA = Path(__file__).with_name("fixtures") / "hapi" / "HAPI-data-access-schema-3.1.json"
S3 = {"AWS_ACCESS_KEY_ID": "heliohub-test", "AWS_SECRET_ACCESS_KEY": "heliohub-test", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def archive(s3_endpoint):
    """The demo archive (every real file of data/ and sunpy's), ingested into a bucket of the S3 endpoint."""
    import boto3

    environment = {**S3, "AWS_ENDPOINT_URL": s3_endpoint}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="hapi")
        files, _ = demo.inputs()
        report = heliohub.ingest(files, "s3://hapi/store", include_paths=demo.include_paths(), progress=False)
        assert report.datasets, report.summary()
        yield {"url": "s3://hapi/store", "environment": environment}


class Server:
    """``heliohub serve`` in its own process on 127.0.0.1."""

    def __init__(self, archive: dict, *options: str) -> None:
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}/hapi"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"heliohub-serve-{self.port}.log"
        self._output = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "heliohub.cli", "serve", "--archive", archive["url"], "--port", str(self.port),
             *options], cwd=ROOT, env={**os.environ, **archive["environment"]}, stdout=self._output,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/capabilities", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
            if self.process.poll() is not None:
                self.close()
                raise AssertionError(f"heliohub serve stopped: {self.log.read_text()}")
        self.close()
        raise AssertionError("heliohub serve did not answer within 120 s")

    def get(self, endpoint: str, **params: str) -> requests.Response:
        return requests.get(f"{self.url}/{endpoint}", params=params, timeout=60)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._output.close()


@pytest.fixture(scope="module")
def server(archive):
    running = Server(archive)
    yield running
    running.close()


@pytest.fixture(scope="module")
def validators():
    """A validator per HAPI response kind, from the HAPI project's JSON schema for 3.1."""
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    schema = json.loads(SCHEMA.read_text())
    registry = Registry().with_resources([(part["id"], Resource(contents=part, specification=DRAFT7))
                                          for part in schema.values() if isinstance(part, dict) and "id" in part])
    return {kind: Draft7Validator(schema[kind], registry=registry)
            for kind in ("capabilities", "about", "catalog", "info", "error")}


def _valid(validators, kind: str, body: dict) -> None:
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validators[kind].iter_errors(body)]
    assert not problems, problems


def _stored(archive: dict, dataset_id: str):
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", heliohub.CaveatWarning)
        for name, value in archive["environment"].items():
            patch.setenv(name, value)
        return heliohub.open_dataset(dataset_id, archive=archive["url"]).load()


def test_every_dataset_reads_with_hapiclient_as_open_dataset_gives_it(server, archive, tmp_path):
    from hapiclient import hapi

    catalog = server.get("catalog").json()["catalog"]
    assert len(catalog) >= 15
    for entry in catalog:
        dataset_id = entry["id"]
        info = server.get("info", dataset=dataset_id).json()
        stored = _stored(archive, dataset_id)
        served = [p for p in info["parameters"][1:]]
        assert {p["name"] for p in served} | set(info.get("x_heliohub_not_served", [])) == set(stored.data_vars)
        big = sum(np.prod(p.get("size", [1])) for p in served) > 20_000  # images: binary only
        for answer_format in ["binary"] + ([] if big else ["csv"]):
            data, _ = hapi(server.url, dataset_id, "", info["startDate"], info["stopDate"], format=answer_format,
                              logging=False, cache=False, usecache=False, cachedir=str(tmp_path))
            times = np.array([np.datetime64(t.decode().rstrip("Z"), "ns") for t in data["Time"]])
            np.testing.assert_array_equal(times, stored["time"].values, err_msg=f"{dataset_id} {answer_format}")
            for parameter in served:
                name = parameter["name"]
                expected = stored[name].values
                got = data[name]
                if parameter["type"] == "isotime":
                    expected = np.char.add(np.datetime_as_string(expected, unit="ns"), "Z").astype("S")
                    expected[np.isnat(stored[name].values)] = parameter["fill"].encode()
                np.testing.assert_array_equal(got.reshape(expected.shape), expected,
                                              err_msg=f"{dataset_id} {name} {answer_format}")


def test_the_json_answers_validate_against_the_hapi_schema(server, validators):
    for kind in ("capabilities", "about", "catalog"):
        _valid(validators, kind, server.get(kind).json())
    for entry in server.get("catalog").json()["catalog"]:
        _valid(validators, "info", server.get("info", dataset=entry["id"]).json())
    _valid(validators, "error", server.get("info", dataset="NO_SUCH_DATASET").json())
    # the validator is not blind: an info without its parameters fails it
    broken = server.get("info", dataset="C1_CP_FGM_SPIN").json()
    del broken["parameters"]
    assert list(validators["info"].iter_errors(broken))


def test_a_subset_with_its_header_and_day_of_year_times(server, archive):
    response = server.get("data", dataset="C1_CP_FGM_SPIN", parameters="B_mag__C1_CP_FGM_SPIN",
                          start="2001-162T20:00Z", stop="2001-162T20:10Z", include="header")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    lines = response.text.splitlines()
    header = json.loads("\n".join(line[1:] for line in lines if line.startswith("#")))
    info = server.get("info", dataset="C1_CP_FGM_SPIN", parameters="B_mag__C1_CP_FGM_SPIN").json()
    assert header == {**info, "format": "csv"}
    assert [p["name"] for p in header["parameters"]] == ["Time", "B_mag__C1_CP_FGM_SPIN"]
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    stored = _stored(archive, "C1_CP_FGM_SPIN").sel(time=slice("2001-06-11T20:00", "2001-06-11T20:09:59.999999"))
    assert [r[0] for r in rows] == [f"{t}Z" for t in np.datetime_as_string(stored["time"].values, unit="ns")]
    np.testing.assert_array_equal([float(r[1]) for r in rows],
                                  stored["B_mag__C1_CP_FGM_SPIN"].values.astype(np.float64))


def test_a_range_without_records_is_ok_and_empty(server):
    response = server.get("data", dataset="C2_CP_ASP_ACTIVE", start="2001-03-01Z", stop="2001-03-02Z")
    assert response.status_code == 200 and "HAPI 1201" in response.reason and response.content == b""


@pytest.mark.parametrize(("endpoint", "params", "http_status", "code"), [
    ("info", {"dataset": "NO_SUCH_DATASET"}, 404, 1406),
    ("info", {"dataset": "C1_CP_FGM_SPIN", "parameters": "no_such_parameter"}, 404, 1407),
    ("info", {"dataset": "C1_CP_FGM_SPIN", "parameters": "B_mag__C1_CP_FGM_SPIN,half_interval__C1_CP_FGM_SPIN"},
     400, 1411),
    ("info", {"dataset": "C1_CP_FGM_SPIN", "averagingInterval": "5s"}, 400, 1401),
    ("info", {}, 400, 1400),
    ("catalog", {"dataset": "C1_CP_FGM_SPIN"}, 400, 1401),
    ("data", {"dataset": "C1_CP_FGM_SPIN", "start": "yesterday", "stop": "2001-06-12Z"}, 400, 1402),
    ("data", {"dataset": "C1_CP_FGM_SPIN", "start": "2001-06-11Z", "stop": "2001-13-01Z"}, 400, 1403),
    ("data", {"dataset": "C1_CP_FGM_SPIN", "start": "2001-06-12Z", "stop": "2001-06-11Z"}, 400, 1404),
    ("data", {"dataset": "C1_CP_FGM_SPIN", "start": "1990-01-01Z", "stop": "1990-01-02Z"}, 400, 1405),
    ("data", {"dataset": "C1_CP_FGM_SPIN", "start": "2001-06-11Z", "stop": "2001-06-12Z", "format": "json"},
     400, 1409),
    ("data", {"dataset": "C1_CP_FGM_SPIN", "start": "2001-06-11Z", "stop": "2001-06-12Z", "include": "all"},
     400, 1410),
    ("no_such_endpoint", {}, 400, 1400),
])
def test_bad_requests_get_the_specifications_status(server, validators, endpoint, params, http_status, code):
    response = server.get(endpoint, **params)
    body = response.json()
    assert (response.status_code, body["status"]["code"]) == (http_status, code), body
    assert f"HAPI {code}" in response.reason
    _valid(validators, "error", body)
    assert server.get("capabilities").status_code == 200  # still serving


def test_a_request_past_the_operators_limit_is_refused(archive, validators):
    limited = Server(archive, "--max-request-mb", "0.05")
    try:
        response = limited.get("data", dataset="C4_CP_FGM_SPIN", start="2001-06-11Z", stop="2001-07-10Z")
        assert response.status_code == 400 and response.json()["status"]["code"] == 1408
        assert "this server's limit" in response.json()["status"]["message"]
        _valid(validators, "error", response.json())
        small = limited.get("data", dataset="C4_CP_FGM_SPIN", start="2001-06-11T20:00Z", stop="2001-06-11T20:01Z")
        times = _stored(archive, "C4_CP_FGM_SPIN")["time"].values
        expected = ((times >= np.datetime64("2001-06-11T20:00")) & (times < np.datetime64("2001-06-11T20:01"))).sum()
        assert small.status_code == 200 and small.text.count("\n") == expected > 0
    finally:
        limited.close()


def test_a_client_that_goes_away_mid_stream_stops_it_and_the_server_serves_on(server):
    dataset, day = "solo_L2_epd-ept-north-hcad", {"start": "2020-07-13Z", "stop": "2020-07-14Z"}
    info = server.get("info", dataset=dataset).json()
    record = sum({"isotime": p.get("length"), "integer": 4, "double": 8}[p["type"]] * int(np.prod(p.get("size", [1])))
                 for p in info["parameters"])
    request = (f"GET /hapi/data?dataset={dataset}&start={day['start']}&stop={day['stop']}&format=binary "
               f"HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n").encode()
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", server.port))
    client.sendall(request)
    assert client.recv(1024).startswith(b"HTTP/1.1 200")
    client.close()
    deadline = time.monotonic() + 60
    while "the client went away" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "the client went away" in server.log.read_text()
    whole = server.get("data", dataset=dataset, format="binary", **day)
    records = len(whole.content) // record
    assert whole.status_code == 200 and len(whole.content) == records * record > 16 << 20
