"""Dataset IDs to lazy xarray: open_dataset, the xarray engine, search and describe, against a real S3 endpoint."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from datetime import datetime

import boto3
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import heliohub
from heliohub.errors import ArchiveError, DatasetNotFoundError, TimeRangeError
from heliohub.store import access, layout, location
from heliohub.store.access import clear_caches, timestamp

from .conftest import CEF_HEADERS, real_file
from .store_helpers import chunk_gets, requests_seen
from .test_store import FGM, fgm_parts

FGM_ID = "C4_CP_FGM_SPIN"
B_MAG = "B_mag__C4_CP_FGM_SPIN"
SMALL_CHUNKS = 2048  # bytes of raw values per chunk: the 3-day file becomes ~30 chunks per variable
TIME_CHUNKS = 1024  # times per chunk of the time axis: FGM's 15 669 records in 16 chunks


@pytest.fixture(scope="module")
def store(s3_endpoint, tmp_path_factory):
    """An S3 archive store holding the FGM file (ingested in 3 parts, small chunks), the Cluster CDFs, LYRA and
    EIT; the AWS_* and HELIOHUB_ARCHIVE variables point at it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "heliohub-test",
                            "AWS_SECRET_ACCESS_KEY": "heliohub-test", "AWS_REGION": "us-east-1"}.items():
            patch.setenv(name, value)
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="access")
        url = "s3://access/archive"
        patch.setenv("HELIOHUB_ARCHIVE", url)
        patch.setattr(layout, "CHUNK_BYTES", SMALL_CHUNKS)
        patch.setattr(layout, "TIME_CHUNK_RECORDS", TIME_CHUNKS)
        # the small chunks stand for 4 MB ones, which real data does not compress enough to be kept inside a
        # manifest: as objects of their own (Icechunk's default threshold), the reads below can count them
        patch.setattr(location, "INLINE_CHUNK_BYTES", 512)
        parts = fgm_parts(tmp_path_factory.mktemp("parts"), 3)
        files = [*parts, *sorted(real_file("cluster", "cdf").glob("C*_CP_FGM_SPIN__*.cdf")),
                 real_file("proba2", "lyra", "lyra_20120101-000000_lev2_std.fits"),
                 real_file("soho", "eit", "efz20040301.000010_s.fits")]
        report = heliohub.ingest(files, include_paths=[str(p) for p in CEF_HEADERS], progress=False)
        assert report.ok, report.summary()
        yield url


@pytest.fixture(scope="module")
def fgm_file():
    return heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=[str(p) for p in CEF_HEADERS])


def test_values_equal_the_files(store, fgm_file):
    ds = heliohub.open_dataset(FGM_ID).sel(time=slice(fgm_file.time.values[0], None))
    xr.testing.assert_equal(ds.load().drop_attrs(), fgm_file.drop_attrs())
    for n in (1, 2, 3):
        path = real_file("cluster", "cdf", f"C{n}_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
        xr.testing.assert_equal(heliohub.open_dataset(f"C{n}_CP_FGM_SPIN").load().drop_attrs(),
                                heliohub.read_file(path).drop_attrs())
    eit = heliohub.open_dataset("SOHO_EIT_195")
    np.testing.assert_array_equal(heliohub.frame_to_map(eit).data,
                                  heliohub.read_file(real_file("soho", "eit", "efz20040301.000010_s.fits"))["image"][0])


@pytest.mark.parametrize("kind", ["text", "datetime", "numpy"])
def test_time_range_in_any_form(store, fgm_file, kind):
    start, end = "2001-07-08T12:00", "2001-07-08T13:00"
    given = {"text": (start, end), "datetime": (datetime(2001, 7, 8, 12), datetime(2001, 7, 8, 13)),
             "numpy": (np.datetime64(start), np.datetime64(end))}[kind]
    ds = heliohub.open_dataset(FGM_ID, *given, variables=[B_MAG])
    expected = fgm_file[B_MAG].sel(time=slice(*given))  # strings: xarray's partial-string semantics
    assert list(ds.data_vars) == [B_MAG]
    assert ds.sizes["time"] == expected.sizes["time"] > 800
    np.testing.assert_array_equal(ds[B_MAG].values, expected.values)


def test_open_reads_metadata_only_and_an_hour_reads_only_its_chunks(store):
    clear_caches()
    with requests_seen() as at_open:
        ds = heliohub.open_dataset(FGM_ID, "2001-07-08T12:00", "2001-07-08T13:00")
    # the time chunks the hour overlaps, found from the group's index of them, and nothing of the data variables
    time_chunks = int(np.ceil(heliohub.describe(FGM_ID)["records"] / TIME_CHUNKS))
    assert time_chunks >= 10
    assert 1 <= chunk_gets(at_open) <= 2, at_open
    with requests_seen() as whole:
        heliohub.open_dataset(FGM_ID)
    assert chunk_gets(whole) == time_chunks, whole
    with requests_seen() as again:
        heliohub.open_dataset(FGM_ID)
        heliohub.open_dataset(FGM_ID, "2001-07-08T12:00", "2001-07-08T13:00")
    assert chunk_gets(again) == 0, again  # the time axis of this snapshot is kept
    total_chunks = int(np.ceil(heliohub.open_dataset(FGM_ID).sizes["time"] / (SMALL_CHUNKS // 4)))
    with requests_seen() as reading:
        value = float(ds[B_MAG].mean())
    assert np.isfinite(value)
    assert total_chunks >= 25
    assert 1 <= chunk_gets(reading) <= 3, f"{chunk_gets(reading)} chunk reads of {total_chunks}"


@pytest.mark.parametrize("chunks", [None, {}])
def test_a_range_read_from_the_time_index_is_what_xarray_selects_on_the_whole_axis(store, chunks):
    whole = heliohub.open_dataset(FGM_ID).load()
    times = whole.time.values
    boundary = TIME_CHUNKS * 5  # the first record of a time chunk
    ranges = [
        ("2001-07-08T12:00", "2001-07-08T13:00"), ("2001-07-07", "2001-07-07"), ("2001-06", None),
        (None, "2001-06-11T20:30"), (times[boundary - 1], times[boundary]), (times[boundary], times[boundary + 3]),
        (times[boundary - 1] + np.timedelta64(1, "ns"), times[boundary] - np.timedelta64(1, "ns")),
        (times[10], times[-10]), (datetime(2001, 7, 8, 6), datetime(2001, 7, 8, 6, 0, 30)),
        ("2001-06-11T22:00", "2001-07-06"),  # between the June hour and the July days
    ]
    for start, end in ranges:
        clear_caches()  # no time axis kept: each open reads its chunks through the index
        ds = heliohub.open_dataset(FGM_ID, start, end, chunks=chunks)
        given = [v if isinstance(v, str) or v is None else np.datetime64(v, "ns") for v in (start, end)]
        xr.testing.assert_identical(ds.load(), whole.sel(time=slice(*given)))
    clear_caches()
    with pytest.raises(TimeRangeError, match=r"covers 2001-06-11T20:00:03\.912"):
        heliohub.open_dataset(FGM_ID, "2002-01-01", "2002-02-01")


def test_a_range_is_found_by_binary_search_as_pandas_finds_it():
    """open_dataset finds a range's records itself (pandas hashes a whole index under a million values to slice
    it): the same records as pandas' slice_indexer, for text of every resolution (partial-string semantics),
    datetimes and numpy times; None (then xarray selects) where the axis is unsorted or holds NaT, or the text
    names a time zone."""
    rng = np.random.default_rng(7)
    times = np.datetime64("2001-07-08", "ns") + np.cumsum(rng.integers(0, 3 * 10**9, 20_000)).astype("m8[ns]")
    index = pd.DatetimeIndex(times)  # steps of 0 to 3 s: repeated times too
    ranges = [("2001-07-08T01:00", "2001-07-08T02:00"), ("2001-07-08", "2001-07-08"), ("2001-07-08T03", None),
              ("2001-07-08T03:00:05", "2001-07-08T03:00:05"), ("2001-07-08T03:00:05.5", "2001-07-08T03:00:06.25"),
              (None, "2001-07-08 05"), ("2001-07", "2001-07"), ("2001", "2002"), ("1999", "2000"),
              ("20010708T0100", "20010708T0200"), (str(times[500]), str(times[900])),
              (datetime(2001, 7, 8, 1), datetime(2001, 7, 8, 2)), (np.datetime64("2001-07-08T01"), times[4000]),
              ("2001-07-08T01:00", np.datetime64("2001-07-08T02:00")), ("2001-07-09", "2001-07-10")]
    for start, end in ranges:
        rows = access._sorted_rows(times, start, timestamp(start, "start"), end, timestamp(end, "end"))
        expected = index.slice_indexer(start, end)
        first = expected.start or 0
        assert rows == slice(first, max(first, len(times) if expected.stop is None else expected.stop)), (start, end)
    for axis, start in ((times[::-1], "2001-07-08T01:00"), (np.concatenate([[np.datetime64("NaT", "ns")], times]),
                                                           "2001-07-08T01:00"), (times, "2001-07-08T01:00Z")):
        assert access._sorted_rows(axis, start, timestamp(start, "start"), None, None) is None


def test_a_dataset_removed_after_it_was_opened_is_not_found(tmp_path):
    """Repositories once opened are not looked for again at each open; one removed since is found gone."""
    good = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    assert heliohub.ingest([good], tmp_path / "store", progress=False).ok
    assert heliohub.open_dataset("C1_CP_FGM_SPIN", archive=tmp_path / "store").sizes["time"] > 0
    shutil.rmtree(tmp_path / "store" / "C1_CP_FGM_SPIN")
    with pytest.raises(DatasetNotFoundError, match="C1_CP_FGM_SPIN"):
        heliohub.open_dataset("C1_CP_FGM_SPIN", archive=tmp_path / "store")


def test_a_time_index_that_does_not_fit_its_axis_is_not_used(tmp_path, monkeypatch, fgm_file):
    import zarr

    from heliohub.store import time_index
    from heliohub.store.location import BRANCH, StoreLocation

    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", TIME_CHUNKS)
    archive = str(tmp_path / "store")
    heliohub.ingest([real_file("cluster", "cef", FGM)], archive, include_paths=[str(p) for p in CEF_HEADERS],
                    progress=False)
    repo = StoreLocation.resolve(archive).repository(FGM_ID)
    session = repo.writable_session(BRANCH)
    numbers = zarr.open_group(session.store, mode="r+")[f"{time_index.index_path('time')}/chunks/numbers"]
    numbers.resize((numbers.shape[0] - 1, numbers.shape[1]))  # as a damaged or foreign writer might leave it
    session.commit("a time index that does not fit")
    clear_caches()
    ds = heliohub.open_dataset(FGM_ID, "2001-07-08T12:00", "2001-07-08T13:00", archive=archive)
    xr.testing.assert_identical(ds.drop_attrs(), fgm_file.sel(time=slice("2001-07-08T12:00", "2001-07-08T13:00"))
                                .drop_attrs())


def test_a_first_open_in_a_fresh_process_does_not_import_dask(store):
    # xarray imports dask.array (and scipy) when asked whether a numpy array is a dask one: ~0.5 s of a first open
    script = ("import sys, heliohub; ds = heliohub.open_dataset('C4_CP_FGM_SPIN', '2001-07-08T12:00', "
              "'2001-07-08T13:00').load(); print(ds.sizes['time'], 'dask.array' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    records, dask_imported = result.stdout.split()
    assert int(records) > 800 and dask_imported == "False"


def test_dask_chunks_follow_xarray(store, fgm_file):
    ds = heliohub.open_dataset(FGM_ID, chunks={})
    assert ds[B_MAG].chunks is not None
    assert ds[B_MAG].data.chunksize[0] == SMALL_CHUNKS // 4
    whole = float(ds[B_MAG].sel(time=slice(fgm_file.time.values[0], None)).mean().compute())
    assert whole == pytest.approx(float(fgm_file[B_MAG].mean()), rel=1e-6)


def test_the_xarray_engine_with_a_time_range(store):
    via_xarray = xr.open_dataset(FGM_ID, engine="heliohub", start="2001-07-08T12:00", end="2001-07-08T13:00")
    direct = heliohub.open_dataset(FGM_ID, "2001-07-08T12:00", "2001-07-08T13:00")
    xr.testing.assert_identical(via_xarray.load(), direct.load())
    chunked = xr.open_dataset(FGM_ID, engine="heliohub", chunks={}, drop_variables=["tm__C4_CP_FGM_SPIN"])
    assert chunked[B_MAG].chunks is not None and "tm__C4_CP_FGM_SPIN" not in chunked


def test_search_by_words_fields_and_time(store):
    found = heliohub.search("fgm")
    assert list(found["dataset_id"]) == ["C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN", "C3_CP_FGM_SPIN", FGM_ID]
    assert {"dataset_id", "title", "start", "end", "size"} <= set(found.columns)
    assert list(heliohub.search(instrument="lyra")["dataset_id"]) == ["PROBA2_LYRA_LEV2"]
    assert list(heliohub.search(mission="soho")["dataset_id"]) == ["SOHO_EIT_195"]
    assert list(heliohub.search("spin", start="2001-07-07", end="2001-07-08")["dataset_id"]) == [FGM_ID]
    assert heliohub.search("no such words").empty
    for _ in range(50):  # as a search box would, keystroke after keystroke
        heliohub.search("magnetic fi")


def test_describe(store):
    about = heliohub.describe(FGM_ID)
    assert about["start"] == "2001-06-11T20:00:03.912000000" and about["end"] == "2001-07-09T06:24:01.171000000"
    assert about["files"] == 4 and about["acknowledgement"].startswith("Please acknowledge")
    b = next(v for v in about["variables"] if v["name"] == B_MAG)
    assert b["units"] == "nT" and "Magnitude" in b["description"]
    text = str(about)
    first_part = "C4_CP_FGM_SPIN__20010706_211610_20010708_025346_V01.cef"
    assert "B_mag__C4_CP_FGM_SPIN" in text and first_part not in text  # the files only when asked for
    with_files = heliohub.describe(FGM_ID, files=True)
    assert first_part in str(with_files) and len(with_files["file_table"]) == 4
    table = with_files["file_table"]
    assert table["current"].all() and (table["records"] > 0).all() and table["ingested"].notna().all()
    july_7 = heliohub.describe(FGM_ID, files=True, start="2001-07-07T00:00", end="2001-07-07T01:00")["file_table"]
    assert list(july_7["file"]) == [first_part]
    assert (july_7["start"] <= pd.Timestamp("2001-07-07T01:00")).all() and (july_7["end"] >= "2001-07-07").all()


def test_unknown_id_names_the_closest(store):
    with pytest.raises(DatasetNotFoundError, match="closest: C4_CP_FGM_SPIN") as caught:
        heliohub.open_dataset("C4_CP_FGM_SPN")
    assert caught.value.__cause__ is None
    with pytest.raises(DatasetNotFoundError, match="closest"):
        heliohub.describe("c4_cp_fgm")
    with pytest.raises(DatasetNotFoundError):
        xr.open_dataset("NO_SUCH_ID", engine="heliohub")


def test_a_range_outside_the_coverage_says_the_coverage(store):
    with pytest.raises(TimeRangeError, match=r"covers 2001-06-11T20:00:03.912.* to 2001-07-09T06:24:01.171"):
        heliohub.open_dataset(FGM_ID, "2005-01-01", "2005-01-02")
    with pytest.raises(TimeRangeError, match="after end"):
        heliohub.open_dataset(FGM_ID, "2001-07-08", "2001-07-07")
    with pytest.raises(TimeRangeError, match="not a time"):
        heliohub.open_dataset(FGM_ID, "yesterday-ish")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_store_names_the_url_and_the_setting(store, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ArchiveError, match="AWS_ENDPOINT_URL") as caught:
        heliohub.open_dataset(FGM_ID, archive="s3://elsewhere/archive")
    assert "s3://elsewhere/archive" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_bucket_or_no_setting_is_named(store, monkeypatch):
    with pytest.raises((ArchiveError, DatasetNotFoundError), match="no-such-bucket"):
        heliohub.open_dataset(FGM_ID, archive="s3://no-such-bucket/archive")
    monkeypatch.delenv("HELIOHUB_ARCHIVE")
    with pytest.raises(ArchiveError, match="HELIOHUB_ARCHIVE"):
        heliohub.open_dataset(FGM_ID)


def test_times_come_back_as_utc_datetimes(store):
    ds = heliohub.open_dataset("PROBA2_LYRA_LEV2")
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2012-01-01T00:00:00.118")
