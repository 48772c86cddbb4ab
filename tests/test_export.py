"""`heliohub export` and `heliohub.export` over the demo archive on the S3 endpoint: each file read back by the
field's own readers (cdflib for CDF, xarray for NetCDF, pandas for CSV) and by `heliohub.read_file` (CDF, CEF),
equal to the store, attributes included (as each format can hold them: see heliohub/serving/formats.py and
heliohub/serving/cef_writer.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cdflib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import heliohub
from heliohub.serving.cef_writer import CEFLIB_LIMITS, write_cef
from heliohub.serving.export import _write, export

from .conftest import stored
from .store_helpers import ROOT

RANGE = ("2000-01-01", "2029-12-31")
EXCLUDED = {"heliohub_snapshot", "caveats", "source_file", "source_format"}


@pytest.fixture(scope="module")
def datasets(demo_archive):
    with pytest.MonkeyPatch.context() as patch:
        for name, value in demo_archive["environment"].items():
            patch.setenv(name, value)
        frame = heliohub.search(archive=demo_archive["url"])
    return list(frame[frame["records"] > 0]["dataset_id"])


@pytest.fixture
def environment(demo_archive, monkeypatch):
    for name, value in demo_archive["environment"].items():
        monkeypatch.setenv(name, value)
    return demo_archive


def _text(value) -> str:
    """An attribute as text, without the NUL that stands for an empty text in CDF."""
    if isinstance(value, np.ndarray):  # NetCDF gives several entries as an array
        value = value.tolist()
    if isinstance(value, list | tuple):
        items = [_text(v) for v in value]
        return "" if not any(items) else items[0] if len(items) == 1 else str(items)
    return str(value).replace("\x00", "").strip()


def _same_attribute(expected, got) -> bool:
    a, b = _text(expected), _text(got)
    if a == b or (a.startswith("9999-12-31") and b.startswith("9999-12-31")):  # a time's fill, in CDF as TT2000's
        return True
    try:
        return float(a) == float(b) or np.float32(float(a)) == np.float32(float(b))
    except ValueError:
        return False


def _same_values(expected: np.ndarray, got: np.ndarray) -> bool:
    if expected.dtype.kind == "O" or got.dtype.kind == "O":  # text: CDF's is fixed width, without trailing blanks
        return [str(v).rstrip() for v in expected.ravel()] == [str(v).rstrip() for v in got.ravel()]
    if expected.dtype.kind == "f":
        return np.array_equal(expected.astype(np.float64), got.astype(np.float64), equal_nan=True)
    return np.array_equal(expected, got)


def _assert_same(store: xr.Dataset, back: xr.Dataset, what: str) -> None:
    for name, variable in store.variables.items():
        assert name in back.variables, f"{what}: {name} missing"
        assert back[name].shape == variable.shape, f"{what}: {name} shape"
        named = [d for d in variable.dims if d in store.variables]  # CDF names a dimension only by its coordinate
        assert [d for d in back[name].dims if d in named] == named, f"{what}: {name} dims"
        assert _same_values(variable.values, back[name].values), f"{what}: {name} values"
        for key, value in variable.attrs.items():
            if key == "archive_name" and value in store.data_vars:
                continue  # a CEF time range is a variable and the axis: the axis is Epoch in CDF
            source = back[name].attrs if key in back[name].attrs else back.attrs  # FITS keywords: global in CDF
            assert _same_attribute(value, source.get(key)), f"{what}: {name}.{key} {value!r} {source.get(key)!r}"
    for key, value in store.attrs.items():
        if key not in EXCLUDED:
            assert _same_attribute(value, back.attrs.get(key)), f"{what}: {key} {value!r} {back.attrs.get(key)!r}"


def test_an_exported_cdf_is_the_store_for_cdflib_and_for_heliohub(environment, datasets, tmp_path):
    assert len(datasets) >= 15
    for dataset_id in datasets:
        (written,) = export(dataset_id, *RANGE, format="cdf", out=tmp_path, archive=environment["url"])
        store = stored(environment, dataset_id)
        assert written.records == store.sizes["time"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", heliohub.CaveatWarning)
            _assert_same(store, heliohub.read_file(written.path), f"{dataset_id} CDF")
        cdf = cdflib.CDF(written.path)
        for name, variable in store.data_vars.items():
            if variable.dims[:1] != ("time",) or variable.dtype.kind not in "fiu":
                continue
            attributes = cdf.varattsget(name)
            epoch = attributes["DEPEND_0"]  # ISTP: the record times, by name, in TT2000
            times = cdflib.cdfepoch.to_datetime(cdf.varget(epoch))
            np.testing.assert_array_equal(np.asarray(times, dtype="datetime64[ns]"), store["time"].values)
            values = cdf.varget(name)
            if "FILLVAL" in attributes and variable.dtype.kind == "f":
                assert np.asarray(attributes["FILLVAL"]).dtype == variable.dtype  # ISTP: in the variable's type
                values = np.where(values == attributes["FILLVAL"], np.nan, values)
            assert _same_values(variable.values, np.asarray(values).reshape(variable.shape)), f"{dataset_id} {name}"


def test_an_exported_netcdf_is_the_store_for_xarray(environment, datasets, tmp_path):
    for dataset_id in datasets:
        (written,) = export(dataset_id, *RANGE, format="netcdf", out=tmp_path, archive=environment["url"])
        with xr.open_dataset(written.path, engine="h5netcdf") as back:
            _assert_same(stored(environment, dataset_id), back.load(), f"{dataset_id} NetCDF")


def _cef_attribute(attrs: dict, key: str):
    """An attribute as a CEF file gives it back: by its name, or upper case (CEF keywords are case-insensitive)."""
    return attrs[key] if key in attrs else attrs.get(key.upper())


def test_an_exported_cef_is_the_store_for_heliohub(environment, datasets, tmp_path):
    """Every dataset with records, from CEF, CDF and FITS files alike, as CEF: values, times, dimensions and
    attributes read back equal; only what CEF cannot hold differs, each as cef_writer.py lists it."""
    cluster = [d for d in datasets if d.startswith(("C1_", "C2_", "C3_", "C4_", "CM_"))]
    assert len(cluster) >= 8
    for dataset_id in datasets:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (written,) = export(dataset_id, *RANGE, format="cef", out=tmp_path, archive=environment["url"])
        store = stored(environment, dataset_id)
        assert written.path.endswith(".cef") and written.records == store.sizes["time"]
        other_axes = {d for d in store.dims if d != "time" and d in store.variables and store[d].dtype.kind == "M"}
        left_out = {str(n) for n, v in store.variables.items() if v.dims[:1] and v.dims[0] in other_axes}
        said = [str(w.message) for w in caught if issubclass(w.category, heliohub.HeliohubWarning)
                and "CEF holds one record axis" in str(w.message)]
        assert bool(said) == bool(left_out) and all(n in said[0] for n in left_out), (dataset_id, said)
        left_out |= _named(caught, "; left out of ")  # past what the CSA's CEFLIB reads (tested below)
        attributes_left_out = _named(caught, "; attributes left out of ")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", heliohub.CaveatWarning)
            back = heliohub.read_file(written.path)
        assert back.attrs["dataset_id"] == dataset_id
        for name, variable in store.variables.items():
            if name in left_out:
                continue
            assert name in back.variables and back[name].shape == variable.shape, f"{dataset_id}: {name}"
            named = [d for d in variable.dims if d in store.variables]
            assert [d for d in back[name].dims if d in named] == named, f"{dataset_id}: {name} dims"
            expected = variable.values
            if expected.dtype.kind == "O":  # line breaks in text are spaces in CEF
                expected = np.array([str(v).replace("\n", " ").replace("\x00", "") for v in expected.ravel()],
                                    dtype=object).reshape(expected.shape)
            assert _same_values(expected, back[name].values), f"{dataset_id}: {name} values"
            exact = dataset_id in cluster
            for key, value in variable.attrs.items():
                if key in ("archive_name", "bounds") or (not exact and _text(value) == "") or \
                        f"{name}.{key}" in attributes_left_out:
                    continue
                got = _cef_attribute(back[name].attrs, key)
                if not exact and isinstance(value, str):
                    value, got = value.replace("\n", " "), str(got).replace("\n", " ")
                assert _same_attribute(value, got), f"{dataset_id}: {name}.{key} {value!r} {got!r}"
        for key, value in store.attrs.items():
            if key in EXCLUDED or key.upper() in ("FILE_NAME", "LOGICAL_FILE_ID", "FILE_TIME_SPAN") or \
                    key == "logical_file_id" or _text(value) in ("", "[]") or key in attributes_left_out:
                continue
            assert _same_attribute(value, back.attrs.get(key)), f"{dataset_id}: {key} {value!r}"


def _named(caught: list[warnings.WarningMessage], marker: str) -> set[str]:
    """What the writer's warnings say it left out (``...; left out of FILE: a, b (export as ...)``)."""
    names: set[str] = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, heliohub.HeliohubWarning) and marker in text:
            names |= set(text.split(marker, 1)[1].split(": ", 1)[1].split(" (export as")[0].split(", "))
    return names


def _within_ceflib(path: str) -> None:
    """The file keeps to what CESR CEFLIB 1.8.5, the CSA's CEF reader, takes (cef_writer.CEFLIB_LIMITS)."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    assert max(len(line) + 1 for line in lines) <= CEFLIB_LIMITS["line_bytes"], path
    header = data.split(b'DATA_UNTIL = "END_OF_DATA"')[0].decode()
    assert header.count("\nSTART_META = ") <= CEFLIB_LIMITS["meta"], path
    assert header.count("\nSTART_VARIABLE = ") <= CEFLIB_LIMITS["variables"], path
    sizes = [line.split("=", 1)[1].split(",") for line in header.splitlines() if line.strip().startswith("SIZES =")]
    assert sizes and max(map(len, sizes)) <= CEFLIB_LIMITS["sizes"], path
    for text in re.findall(rb'"([^"\n]*)"|\'([^\'\n]*)\'', data):  # every quoted value, header and records
        assert len(text[0] or text[1]) <= CEFLIB_LIMITS["value_bytes"], path


def test_an_exported_cef_keeps_to_what_the_csas_reader_takes(environment, datasets, tmp_path):
    """Every dataset of the demo archive as CEF stays within CEFLIB's limits; what would not fit is named. The
    PROBA2 SWAP frame has 115 global attributes (108 of them FITS keywords) and a FITS header of 11 kB of text; the
    MDI frame's 1024 x 1024 values cannot be one line of 1 MiB."""
    for dataset_id in datasets:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (written,) = export(dataset_id, *RANGE, format="cef", out=tmp_path, archive=environment["url"])
        _within_ceflib(written.path)
        if dataset_id == "PROBA2_SWAP_174":
            left_out = _named(caught, "; attributes left out of ")
            header = Path(written.path).read_text().split("DATA_UNTIL")[0]
            assert header.count("START_META = ") == CEFLIB_LIMITS["meta"] and len(left_out) == 15
            assert {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "CHECKSUM", "DATASUM"} <= left_out
            assert "START_META = DATASET_ID" in header and not any(f"START_META = {k}\n" in header
                                                                   for k in left_out)
            assert _named(caught, "; left out of ") == {"fits_header"}
        if dataset_id == "SOHO_MDI_CONTINUUM":
            assert {"image", "fits_header"} <= _named(caught, "; left out of ")


def test_what_a_cef_cannot_hold_for_ceflib_is_left_out_by_name_or_refused(environment, tmp_path):
    """Cases past each of CEFLIB's limits, made from the stored C4 FGM hour and the stored MDI frame (real values,
    variables copied or reshaped to pass a limit; no such dataset exists in the demo archive)."""
    fgm = stored(environment, "C4_CP_FGM_SPIN", "2001-06-11T20:00", "2001-06-11T20:05")
    vector = fgm["B_vec_xyz_gse__C4_CP_FGM_SPIN"]
    many = fgm.assign({f"copy_{k:03d}": vector.copy() for k in range(120)})
    many["six_sizes"] = xr.Variable(("time", "a", "b", "c", "d", "e", "f"),
                                    np.broadcast_to(vector.values[:, :1, None, None, None, None, None],
                                                    (fgm.sizes["time"], 1, 1, 1, 1, 1, 2)))
    many["B_vec_xyz_gse__C4_CP_FGM_SPIN"].attrs["CATDESC"] = "x" * 1024
    path = tmp_path / "C4_CP_FGM_SPIN__many.cef"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_cef(many, path, path.name)
    _within_ceflib(str(path))
    assert "six_sizes" in _named(caught, "; left out of ")
    assert len([n for n in _named(caught, "; left out of ") if n.startswith("copy_")]) == \
        len(many.data_vars) - 1 - (CEFLIB_LIMITS["variables"] - 1)  # the time tags are one of the 100
    assert _named(caught, "; attributes left out of ") == {"B_vec_xyz_gse__C4_CP_FGM_SPIN.CATDESC"}
    back = heliohub.read_file(path)
    assert back.sizes["time"] == fgm.sizes["time"]
    np.testing.assert_array_equal(back["B_vec_xyz_gse__C4_CP_FGM_SPIN"].values, vector.values)

    mdi = stored(environment, "SOHO_MDI_CONTINUUM")
    image = mdi["image"].values.reshape(mdi.sizes["time"], -1)[:, :300_000]  # 900,000 bytes at least, 2.6 MB here
    wide = mdi.drop_vars([v for v in mdi.data_vars]).assign(part=(("time", "value"), image))
    with pytest.raises(heliohub.ExportError, match=r"record of .* takes [\d,]+ bytes of text, past the 1,048,575"):
        _write("SOHO_MDI_CONTINUUM", wide, "wide.cef", "cef", str(tmp_path / "out"), {})
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written left behind


def test_an_exported_csv_is_the_store_for_pandas(environment, tmp_path):
    (written,) = export("C1_CP_FGM_SPIN", "2001-06-11T20:00", "2001-06-11T20:30", format="csv", out=tmp_path,
                        archive=environment["url"])
    table = pd.read_csv(written.path)
    store = stored(environment, "C1_CP_FGM_SPIN", "2001-06-11T20:00", "2001-06-11T20:30")
    np.testing.assert_array_equal(pd.to_datetime(table["time"].str.rstrip("Z")).values, store["time"].values)
    vector = store["B_vec_xyz_gse__C1_CP_FGM_SPIN"].values
    for k in range(3):  # written at the stored precision (float32's shortest text), read back to it exactly
        np.testing.assert_array_equal(table[f"B_vec_xyz_gse__C1_CP_FGM_SPIN[{k}]"].values.astype(vector.dtype),
                                      vector[:, k])
    assert Path(written.path).name == "C1_CP_FGM_SPIN__20010611_200000_20010611_203000_V070906.csv"


def test_several_ids_to_the_users_own_bucket(environment, s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="my-exports")
    written = export(["C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN"], "2001-06-11T20:00", "2001-06-11T21:00",
                     format="netcdf", out="s3://my-exports/hour", archive=environment["url"])
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="my-exports")["Contents"])
    assert keys == sorted(f"hour/{Path(e.path).name}" for e in written) and len(keys) == 2


def test_the_cli_exports_and_refuses_what_it_cannot_do_leaving_nothing(environment, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heliohub.cli", "export", *args, "--archive",
                               environment["url"], "--out", str(tmp_path / "out")], capture_output=True, text=True,
                              cwd=ROOT, timeout=300, env={**os.environ, **environment["environment"]})

    ok = run("C1_CP_FGM_SPIN", "C4_CP_EFW_L1_P34", "--start", "2001-01-01", "--end", "2001-12-31", "--json")
    assert ok.returncode == 0, ok.stderr
    assert [e["dataset_id"] for e in json.loads(ok.stdout)] == ["C1_CP_FGM_SPIN", "C4_CP_EFW_L1_P34"]
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    for args, said in ((["C1_CP_FGM_SPIN", "--start", "2001-01-01", "--end", "2002-01-01", "--format", "xls"],
                        "invalid choice"),
                       (["C1_CP_FGM_SPIN", "--start", "2002-01-01", "--end", "2001-01-01"], "start before end"),
                       (["NO_SUCH_DATASET", "--start", "2001-01-01", "--end", "2002-01-01"], "NO_SUCH_DATASET"),
                       (["C4_CP_FGM_SPIN", "--start", "2001-01-01", "--end", "2002-01-01", "--max-mb", "0.1"],
                        "more than the 0 MB an export writes at once")):
        refused = run(*args)
        assert refused.returncode == 2 and said in refused.stderr and "Traceback" not in refused.stderr, \
            refused.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before  # nothing half-written left


@pytest.fixture(scope="module")
def cluster(demo_archive):
    """A real Dask cluster of two worker processes (the platform's Gateway clusters are tested in
    test_platform.py), started with the demo archive's environment."""
    from dask.distributed import Client, LocalCluster

    with pytest.MonkeyPatch.context() as patch:
        for name, value in demo_archive["environment"].items():
            patch.setenv(name, value)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local, \
                Client(local) as client:
            yield client


def _objects(client, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_a_large_export_is_a_job_whose_workers_write_the_users_bucket(environment, cluster, s3_endpoint):
    """Daily CEF files of C4's month, written by the workers into the user's own bucket: one per day that holds
    records, together the store's records; past the job's size limit, refused before anything is written."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="my-job")
    written = export("C4_CP_FGM_SPIN", "2001-06-01", "2001-07-31", format="cef", out="s3://my-job/days",
                     archive=environment["url"], client=cluster, interval="daily", progress=False)
    assert [Path(e.path).name[16:24] for e in written] == ["20010611", "20010706", "20010707", "20010708",
                                                          "20010709"]
    assert _objects(s3, "my-job", "days/") == sorted(f"days/{Path(e.path).name}" for e in written)
    store = stored(environment, "C4_CP_FGM_SPIN")
    assert sum(e.records for e in written) == store.sizes["time"]
    parts = []
    for entry in written:
        body = s3.get_object(Bucket="my-job", Key=f"days/{Path(entry.path).name}")["Body"].read()
        local = Path(os.environ.get("TMPDIR", "/tmp")) / f"job-{os.getpid()}-{Path(entry.path).name}"
        local.write_bytes(body)
        parts.append(heliohub.read_file(local))
        local.unlink()
    joined = xr.concat(parts, dim="time")
    np.testing.assert_array_equal(joined["time"].values, store["time"].values)
    np.testing.assert_array_equal(joined["B_mag__C4_CP_FGM_SPIN"].values, store["B_mag__C4_CP_FGM_SPIN"].values)
    with pytest.raises(heliohub.ExportError, match="an export job writes at once"):
        export("C4_CP_FGM_SPIN", "2001-06-01", "2001-07-31", out="s3://my-job/refused", archive=environment["url"],
               client=cluster, max_job_bytes=1000)
    assert _objects(s3, "my-job", "refused/") == []


def test_a_job_past_its_time_limit_is_stopped_and_leaves_nothing(environment, cluster, tmp_path):
    """Hourly files of everything C4 holds, with a limit of half a second: the job is stopped, the files it wrote
    are removed, and none appears afterwards (those running when it stopped are removed by their writers)."""
    out = tmp_path / "hours"
    with pytest.raises(heliohub.ExportError, match=r"ran past 0\.5 s") as caught:
        export("C4_CP_FGM_SPIN", "2001-06-01", "2001-07-31", format="cef", out=out, archive=environment["url"],
               client=cluster, interval="hourly", max_seconds=0.5, progress=False)
    assert "were removed" in str(caught.value)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # cancelled tasks still running finish on their worker threads
        busy = cluster.run(lambda dask_worker: dask_worker.state.executing_count)
        if not any(busy.values()):
            break
        time.sleep(0.2)
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []


def test_the_cli_exports_as_a_job_on_a_scheduler(environment, cluster, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "heliohub.cli", "export", "C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN", "--start",
         "2001-06-11T20:00", "--end", "2001-06-11T21:00", "--format", "netcdf", "--dask", cluster.scheduler.address,
         "--archive", environment["url"], "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, **environment["environment"]})
    assert result.returncode == 0, result.stderr
    assert [e["dataset_id"] for e in json.loads(result.stdout)] == ["C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.nc",
        "C2_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.nc"]
