"""`heliohub serve`, the HAPI 3.1 server and the CSA-style product requests, run as a real process over the demo
archive on the S3 endpoint: read with hapiclient (the field's Python client) and checked against `open_dataset`, its
JSON against the HAPI schema (tests/fixtures/hapi/), its refusals against the specification's status codes; the
product requests with the CSA's wget line, unpacked as heliohub's CSA fetcher unpacks the archive's packages."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import requests

import heliohub

from .conftest import stored as _stored
from .serve_helpers import Server

SCHEMA = Path(__file__).with_name("fixtures") / "hapi" / "HAPI-data-access-schema-3.1.json"


@pytest.fixture(scope="module")
def server(demo_archive):
    running = Server(demo_archive)
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




def test_every_dataset_reads_with_hapiclient_as_open_dataset_gives_it(server, demo_archive, tmp_path):
    from hapiclient import hapi

    catalog = server.get("catalog").json()["catalog"]
    assert len(catalog) >= 15
    for entry in catalog:
        dataset_id = entry["id"]
        info = server.get("info", dataset=dataset_id).json()
        stored = _stored(demo_archive, dataset_id)
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


def test_a_subset_with_its_header_and_day_of_year_times(server, demo_archive):
    response = server.get("data", dataset="C1_CP_FGM_SPIN", parameters="B_mag__C1_CP_FGM_SPIN",
                          start="2001-162T20:00Z", stop="2001-162T20:10Z", include="header")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    lines = response.text.splitlines()
    header = json.loads("\n".join(line[1:] for line in lines if line.startswith("#")))
    info = server.get("info", dataset="C1_CP_FGM_SPIN", parameters="B_mag__C1_CP_FGM_SPIN").json()
    assert header == {**info, "format": "csv"}
    assert [p["name"] for p in header["parameters"]] == ["Time", "B_mag__C1_CP_FGM_SPIN"]
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    stored = _stored(demo_archive, "C1_CP_FGM_SPIN").sel(time=slice("2001-06-11T20:00", "2001-06-11T20:09:59.999999"))
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


def test_a_request_past_the_operators_limit_is_refused(demo_archive, validators):
    limited = Server(demo_archive, "--max-request-mb", "0.05")
    try:
        response = limited.get("data", dataset="C4_CP_FGM_SPIN", start="2001-06-11Z", stop="2001-07-10Z")
        assert response.status_code == 400 and response.json()["status"]["code"] == 1408
        assert "this server's limit" in response.json()["status"]["message"]
        _valid(validators, "error", response.json())
        too_large = requests.get(f"http://127.0.0.1:{limited.port}/csa/data", timeout=60, params={
            "RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": "C4_CP_FGM_SPIN", "START_DATE": "2001-06-11T00:00:00Z",
            "END_DATE": "2001-07-10T00:00:00Z", "DELIVERY_FORMAT": "CDF"})
        assert too_large.status_code == 413 and "reduce your request" in too_large.text
        small = limited.get("data", dataset="C4_CP_FGM_SPIN", start="2001-06-11T20:00Z", stop="2001-06-11T20:01Z")
        times = _stored(demo_archive, "C4_CP_FGM_SPIN")["time"].values
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


PRODUCT = ("RETRIEVAL_TYPE=PRODUCT&DATASET_ID=C1_CP_FGM_SPIN,C2_CP_FGM_SPIN&START_DATE=2001-06-11T20:00:00Z"
           "&END_DATE=2001-06-11T21:00:00Z&DELIVERY_FORMAT=CDF&DELIVERY_INTERVAL=ALL&NON_BROWSER")


def _package_files(data: bytes, into: Path) -> dict[str, Path]:
    """A CSA package unpacked as heliohub's CSA fetcher unpacks the archive's own (each file checked whole)."""
    from heliohub.fetching.packages import unpack

    into.mkdir(parents=True, exist_ok=True)
    package = into / "package.tgz"
    package.write_bytes(data)
    with tarfile.open(package) as tar:
        layout = sorted(m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile())
    assert all(m.split("/")[1].startswith(m.split("/")[0] + "__") for m in layout), layout  # <ID>/<ID>__...
    return {path.name: path for path in unpack(package, into, "the platform's package")}


def _two_fgm_files(files: dict[str, Path], demo_archive: dict, suffix: str) -> None:
    """The package of C1's and C2's FGM hour: its two files, read back by heliohub as the store holds them."""
    assert sorted(files) == [f"C{k}_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906{suffix}" for k in (1, 2)]
    for name, path in files.items():
        dataset_id = name.split("__")[0]
        back, store = heliohub.read_file(path), _stored(demo_archive, dataset_id)
        np.testing.assert_array_equal(back["time"].values, store["time"].values)
        vector = f"B_vec_xyz_gse__{dataset_id}"
        np.testing.assert_array_equal(back[vector].values, store[vector].values)
        assert back[vector].attrs["LABEL_1"] == store[vector].attrs["LABEL_1"]


def test_the_csas_wget_line_gets_a_csa_package_of_the_store(server, demo_archive, tmp_path):
    url = f"http://127.0.0.1:{server.port}/csa/data?{PRODUCT}"
    target = tmp_path / "csa.tgz"
    if shutil.which("wget"):  # the README's line, as a CSA user runs it
        subprocess.run(["wget", "-q", "-O", str(target), url], check=True, timeout=120)
    else:
        target.write_bytes(requests.get(url, timeout=120).content)
    _two_fgm_files(_package_files(target.read_bytes(), tmp_path), demo_archive, ".cdf")


def test_daily_delivery_and_refusals_as_the_csa_gives_them(server, demo_archive, tmp_path):
    daily = requests.get(f"http://127.0.0.1:{server.port}/csa/data", timeout=120, params={
        "RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": "C4_CP_FGM_SPIN", "START_DATE": "2001-06-11T00:00:00Z",
        "END_DATE": "2001-07-10T00:00:00Z", "DELIVERY_FORMAT": "CDF_ISTP", "DELIVERY_INTERVAL": "DAILY"})
    assert daily.status_code == 200 and daily.headers["Content-Type"] == "application/x-gzip"
    files = _package_files(daily.content, tmp_path)
    assert sorted(n[16:24] for n in files) == ["20010611", "20010706", "20010707", "20010708", "20010709"]
    records = sum(heliohub.read_file(p).sizes["time"] for p in files.values())
    assert records == _stored(demo_archive, "C4_CP_FGM_SPIN").sizes["time"]
    outside = requests.get(f"http://127.0.0.1:{server.port}/csa/data", timeout=60, params={
        "RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": "C1_CP_FGM_SPIN", "START_DATE": "1990-01-01T00:00:00Z",
        "END_DATE": "1990-01-02T00:00:00Z", "DELIVERY_FORMAT": "CDF"})
    assert outside.status_code == 200 and _package_files(outside.content, tmp_path / "none") == {}  # no data there
    base = {"RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": "C1_CP_FGM_SPIN", "START_DATE": "2001-06-11T20:00:00Z",
            "END_DATE": "2001-06-11T21:00:00Z"}
    for change, status, said in (({"DELIVERY_FORMAT": "NASA_CDF"}, 400, "use CEF, CDF or CDF_ISTP"),
                                 ({"RETRIEVAL_ACCESS": "STREAMED", "DATASET_ID": "C?_CP_FGM_SPIN"}, 400,
                                  "one dataset (no wildcards) as CEF"),
                                 ({"DATASET_ID": "X?_NOTHING"}, 404, "matches no dataset"),
                                 ({"DATASET_ID": "NO_SUCH_DATASET"}, 404, "NO_SUCH_DATASET"),
                                 ({"END_DATE": "2001-06-11T19:00:00Z"}, 400, "is not before END_DATE"),
                                 ({"DELIVERY_INTERVAL": "WEEKLY"}, 400, "use ALL, DAILY, HOURLY"),
                                 ({"AVERAGING": "5s"}, 400, "unknown parameter(s) AVERAGING")):
        refused = requests.get(f"http://127.0.0.1:{server.port}/csa/data", params={**base, **change}, timeout=60)
        assert refused.status_code == status and said in refused.text, refused.text


def test_a_cef_package_as_pyspedas_asks_for_it(server, demo_archive, tmp_path):
    """pySPEDAS's load_csa request as it sends it (lower-case RETRIEVAL_TYPE, DATASET_ID repeated, NON_BROWSER
    without a value), here for CEF: the package's CEF files read back by heliohub as the store; a wildcard asks for
    the four spacecraft."""
    query = ("retrieval_type=PRODUCT&START_DATE=2001-06-11T20:00:00Z&END_DATE=2001-06-11T21:00:00Z"
             "&DELIVERY_FORMAT=CEF&DELIVERY_INTERVAL=ALL&NON_BROWSER&DATASET_ID=C1_CP_FGM_SPIN"
             "&DATASET_ID=C2_CP_FGM_SPIN")
    answer = requests.get(f"http://127.0.0.1:{server.port}/csa/data?{query}", timeout=120)
    assert answer.status_code == 200, answer.text
    _two_fgm_files(_package_files(answer.content, tmp_path), demo_archive, ".cef")
    every = requests.get(f"http://127.0.0.1:{server.port}/csa/data", timeout=120, params={
        "RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": "C?_CP_FGM_SPIN", "START_DATE": "2001-06-11T20:00:00Z",
        "END_DATE": "2001-06-11T21:00:00Z", "DELIVERY_FORMAT": "CDF_ISTP"})
    assert sorted(n[:14] for n in _package_files(every.content, tmp_path / "all")) == [
        f"C{k}_CP_FGM_SPIN" for k in (1, 2, 3, 4)]


def test_a_streamed_cef_file_as_the_csas_streamed_requests_give_it(server, demo_archive, tmp_path):
    """RETRIEVAL_ACCESS=STREAMED: one CEF file, gzipped with GZIP=1, named by the range; equal to the store."""
    for gzipped in ("0", "1"):
        answer = requests.get(f"http://127.0.0.1:{server.port}/csa/data", timeout=120, params={
            "RETRIEVAL_TYPE": "product", "RETRIEVAL_ACCESS": "streamed", "DATASET_ID": "C4_CP_FGM_SPIN",
            "START_DATE": "2001-06-11T00:00:00Z", "END_DATE": "2001-07-10T00:00:00Z", "GZIP": gzipped})
        assert answer.status_code == 200, answer.text
        name = "C4_CP_FGM_SPIN__20010611_000000_20010710_000000_V01.cef" + (".gz" if gzipped == "1" else "")
        assert name in answer.headers["Content-Disposition"]
        path = tmp_path / name
        path.write_bytes(answer.content)
        back = heliohub.read_file(path, include_paths=[])
        store = _stored(demo_archive, "C4_CP_FGM_SPIN")
        assert back.sizes["time"] == store.sizes["time"]
        np.testing.assert_array_equal(back["B_mag__C4_CP_FGM_SPIN"].values, store["B_mag__C4_CP_FGM_SPIN"].values)


def test_a_package_is_made_a_file_at_a_time(demo_archive):
    """The answer's bytes come a file at a time (a DAILY package of five days: five blocks and the end), so the
    server holds one file of a package, not the package; a CEF file comes a block of records at a time."""
    from heliohub.serving.cef_writer import cef_blocks
    from heliohub.serving.products import product
    from heliohub.store.location import StoreLocation

    pairs = [("RETRIEVAL_TYPE", "PRODUCT"), ("DATASET_ID", "C4_CP_FGM_SPIN"), ("START_DATE", "2001-06-11"),
             ("END_DATE", "2001-07-10"), ("DELIVERY_FORMAT", "CEF"), ("DELIVERY_INTERVAL", "DAILY")]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in demo_archive["environment"].items():
            patch.setenv(name, value)
        answer = product(pairs, StoreLocation.resolve(demo_archive["url"]), 1 << 30)
        assert len(answer.files) == 5
        blocks = [len(b) for b in answer.blocks]
    assert len(blocks) == 6 and all(blocks[:5])  # a block of the package for each file, then its end
    fgm = _stored(demo_archive, "C4_CP_FGM_SPIN")
    parts = list(cef_blocks(fgm, "C4.cef", records_per_block=1000))
    assert len(parts) == 2 + -(-fgm.sizes["time"] // 1000)  # the header, the blocks of records, the end
