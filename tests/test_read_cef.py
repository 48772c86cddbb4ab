"""CEF-2.0 files from the Cluster Science Archive, checked against their own text."""

from __future__ import annotations

import csv
import gzip
import re
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

import heliohub
from heliohub.errors import FileReadError, IncludeNotFoundError

from .conftest import CEF, real_file

FGM = "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"
EFW = "C1_CP_EFW_L3_P__20010201_120000_20010201_120100_V110503.cef.gz"
ASP_EMPTY = "C1_CP_ASP_ACTIVE__20010101_000000_20100101_000000_V081030.cef"
ASP = "C2_CP_ASP_ACTIVE__20010101_000000_20100101_000000_V081030.cef"
AUX = "C3_CP_AUX_SPIN_AXIS__20060301_000000_20060302_000000_V130205.cef"
DWP = "CM_CP_DWP_UT_PIOR__20080202_000000_20080203_000000_V100803.cef"
MAARBLE = "C1_CP_AUX_MAARBLE_ULF_PC1__20010522_202305_20010522_202406_V00.cef.gz"
SPIN = "C1_CP_AUX_SPIN_TIME__20110705_000000_20110706_000000_V05.cef.gz"
CIS = "C1_CP_CIS-CODIF_H1_1D_PEF__20010101_V01.cef.gz"

# (file, records, dataset ID) as data/README.md lists them.
EXPECTED = [
    (FGM, 14772, "C4_CP_FGM_SPIN"),
    (EFW, 15, "C1_CP_EFW_L3_P"),
    (ASP_EMPTY, 0, "C1_CP_ASP_ACTIVE"),
    (ASP, 77, "C2_CP_ASP_ACTIVE"),
    (AUX, 1440, "C3_CP_AUX_SPIN_AXIS"),
    (DWP, 167, "CM_CP_DWP_UT_PIOR"),
    (MAARBLE, 7, "C1_CP_AUX_MAARBLE_ULF_PC1"),
    (SPIN, 0, "C1_CP_AUX_SPIN_TIME"),
    (CIS, 0, "C1_CP_CIS-CODIF_H1_1D_PEF"),
]


def text_of(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode().replace("\r\n", "\n")


def text_records(path: Path, marker: str | None) -> list[list[str]]:
    """An independent, naive reading of the records: the lines after DATA_UNTIL that start with a digit or a
    comma (continuations), joined up to the marker, split with the csv module."""
    lines = text_of(path).split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip().upper().startswith("DATA_UNTIL")) + 1
    kept = [line for line in lines[start:]
            if line.strip()[:1].isdigit() or line.strip()[:1] == "," or (marker and line.strip() == marker)]
    text = " ".join(kept).split(marker) if marker else kept
    return list(csv.reader([r for r in text if r.strip()], skipinitialspace=True))


def read(name: str, cef_headers: list[str]):
    return heliohub.read_file(real_file("cluster", "cef", name), include_paths=cef_headers)


@pytest.mark.parametrize(("name", "records", "dataset_id"), EXPECTED)
def test_every_cef_file_reads_with_its_record_count_and_id(name, records, dataset_id, cef_headers):
    ds = read(name, cef_headers)
    assert ds.sizes["time"] == records
    assert ds.attrs["dataset_id"] == dataset_id
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert ds.attrs["mission"] == "Cluster"
    assert ds.attrs["source_format"] == "CEF-2.0"
    for var in ds.data_vars.values():
        if "time" in var.dims:
            assert var.dims[0] == "time"


def test_fgm_values_equal_the_text(cef_headers):
    ds = read(FGM, cef_headers)
    rows = text_records(real_file("cluster", "cef", FGM), "$")
    assert len(rows) == ds.sizes["time"] == 14772
    table = np.array(rows)
    times = pd.to_datetime(table[:, 0], format="ISO8601").tz_convert(None).to_numpy()
    np.testing.assert_array_equal(ds["time"].values, times)
    b = ds["B_vec_xyz_gse__C4_CP_FGM_SPIN"]
    assert b.dtype == np.float32 and b.shape == (14772, 3)
    np.testing.assert_array_equal(b.values, table[:, 2:5].astype(np.float64).astype(np.float32))
    np.testing.assert_array_equal(ds["sc_pos_xyz_gse__C4_CP_FGM_SPIN"].values[-1],
                                  np.float32([17854.4, 17529.7, 10105.9]))
    assert ds["range__C4_CP_FGM_SPIN"].dtype == np.int32
    np.testing.assert_array_equal(ds["tm__C4_CP_FGM_SPIN"].values, table[:, -1].astype(int))
    assert str(ds["time"][0].values) == "2001-07-06T21:16:10.814000000"
    assert str(ds["time"][-1].values) == "2001-07-09T06:24:01.171000000"


def test_fgm_attributes_follow_the_convention(cef_headers):
    ds = read(FGM, cef_headers)
    b = ds["B_vec_xyz_gse__C4_CP_FGM_SPIN"]
    assert b.attrs["UNITS"] == "nT" and b.attrs["units"] == "nT"
    assert b.attrs["long_name"] == "Cluster C4, Magnetic Field Vector, spin resolution in GSE"
    assert b.attrs["COORDINATE_SYSTEM"] == "GSE>Geocentric Solar Ecliptic"
    assert b.attrs["FILLVAL"] == pytest.approx(-1e30)
    labels = ds[b.attrs["LABEL_1"]]
    assert labels.dims == b.dims[1:] and list(labels.values) == ["Bx", "By", "Bz"]
    assert ds["time"].attrs["archive_name"] == "time_tags__C4_CP_FGM_SPIN"
    assert ds["time"].attrs["DELTA_PLUS"] == "half_interval__C4_CP_FGM_SPIN"
    assert ds.attrs["observatory"] == "Cluster-4"
    assert ds.attrs["instrument"] == "FGM4"
    assert ds.attrs["dataset_version"] == "01"
    assert "FGM team" in ds.attrs["acknowledgement"]
    assert ds.attrs["FILE_TIME_SPAN"] == "2001-07-06T21:16:07Z/2001-07-09T06:24:06Z"


def test_gzipped_merged_file_with_end_of_data_and_records_trailer(cef_headers):
    ds = read(EFW, cef_headers)
    rows = text_records(real_file("cluster", "cef", EFW), "$")
    assert ds.sizes["time"] == len(rows) == 15
    values = [name for name in ds.data_vars if ds[name].dtype.kind == "f"]
    first = ds[values[0]].values
    np.testing.assert_array_equal(first, np.array([r[1] for r in rows], dtype=np.float64).astype(first.dtype))
    assert str(ds["time"][0].values) == "2001-02-01T12:00:02.000000000"


def test_iso_time_range_records_and_fill(cef_headers):
    ds = read(ASP, cef_headers)
    rows = text_records(real_file("cluster", "cef", ASP), "$")
    bounds = ds["time_tags__C2_CP_ASP_ACTIVE"]
    assert bounds.shape == (77, 2) and bounds.dtype == np.dtype("datetime64[ns]")
    assert ds["time"].attrs["archive_name"] == "time_tags__C2_CP_ASP_ACTIVE"
    assert ds["time"].attrs["bounds"] == "time_tags__C2_CP_ASP_ACTIVE"
    start, stop = rows[0][0].strip().split("/")
    assert bounds.values[0, 0] == np.datetime64(start[:-1], "ns")
    assert bounds.values[0, 1] == np.datetime64(stop[:-1], "ns")
    np.testing.assert_array_equal(ds["time"].values, bounds.values[:, 0])
    assert bounds.attrs["FILLVAL"] == "9999-12-31T23:59:59Z/9999-12-31T23:59:59Z"


def test_time_range_fill_values_become_nat(cef_headers, tmp_path):
    text = text_of(real_file("cluster", "cef", ASP))
    first = text_records(real_file("cluster", "cef", ASP), "$")[1][0]
    damaged = tmp_path / ASP
    damaged.write_text(text.replace(first, "9999-12-31T23:59:59Z/9999-12-31T23:59:59Z", 1))
    bounds = heliohub.read_file(damaged, include_paths=cef_headers)["time_tags__C2_CP_ASP_ACTIVE"]
    assert np.isnat(bounds.values[1]).all() and not np.isnat(bounds.values[0]).any()


def test_newline_ended_records_and_end_of_file_word(cef_headers):
    ds = read(AUX, cef_headers)
    rows = text_records(real_file("cluster", "cef", AUX), None)
    assert ds.sizes["time"] == len(rows) == 1440
    np.testing.assert_array_equal(ds["sc_long__C3_CP_AUX_SPIN_AXIS"].values,
                                  np.array([r[2] for r in rows], dtype=np.float64).astype(np.float32))
    assert str(ds["time"][-1].values) == "2006-03-01T23:59:30.000000000"


def test_quoted_char_values_keep_their_spaces(cef_headers):
    ds = read(DWP, cef_headers)
    rows = text_records(real_file("cluster", "cef", DWP), None)
    assert ds.sizes["time"] == len(rows) == 167
    assert list(ds["Mask__CM_CP_DWP_UT_PIOR"].values[:3]) == ["  34", "   2", " 234"]
    assert ds["Content__CM_CP_DWP_UT_PIOR"].values[0] == "HS;"
    assert ds["Content__CM_CP_DWP_UT_PIOR"].values[2] == "U1_168_1  +08:40:00 NM1   18 ---"
    np.testing.assert_array_equal(ds["Content__CM_CP_DWP_UT_PIOR"].values, [r[4] for r in rows])


def test_records_spread_over_lines_with_nested_includes(cef_headers):
    ds = read(MAARBLE, cef_headers)
    rows = text_records(real_file("cluster", "cef", MAARBLE), "$")
    assert len(rows) == ds.sizes["time"] == 7
    assert all(len(r) == 145 for r in rows)
    bb = ds["BB_xxyyzz_fac__C1_CP_AUX_MAARBLE_ULF_PC1"]
    assert bb.dims == ("time", "Frequency__C1_CP_AUX_MAARBLE_ULF_PC1", "BB_xxyyzz_fac__C1_CP_AUX_MAARBLE_ULF_PC1_dim2")
    assert bb.shape == (7, 11, 3) and np.isnan(bb.values).all()  # all fill in this file
    freq = ds["Frequency__C1_CP_AUX_MAARBLE_ULF_PC1"]
    assert freq.dims == ("Frequency__C1_CP_AUX_MAARBLE_ULF_PC1",)
    np.testing.assert_allclose(freq.values[[0, -1]], [1.0742, 4.9806], rtol=1e-6)
    # The header's variables in order give each field's place in a record: check every value of every record.
    flat = np.concatenate([ds[name].values.reshape(7, -1) for name in _record_variables(ds, 7)], axis=1)
    expected = np.array([r[1:] for r in rows], dtype=np.float64)
    expected[expected == -1e31] = np.nan
    np.testing.assert_allclose(flat.astype(np.float64), expected, rtol=1e-6)
    assert ds.attrs["DATASET_ID"] == "C1_CP_AUX_MAARBLE_ULF_PC1"  # from a header two includes deep
    assert ds.attrs["OBSERVATORY"] == "Cluster-1"


def _record_variables(ds, records):
    return [name for name in ds.variables if name != "time" and ds[name].dims[:1] == ("time",)
            and ds[name].shape[0] == records]


def test_file_with_header_only_in_includes(cef_headers):
    ds = read(SPIN, cef_headers)
    assert ds.sizes["time"] == 0
    interval = ds["spin_interval__C1_CP_AUX_SPIN_TIME"]
    assert interval.shape == (0, 2) and interval.dtype == np.dtype("datetime64[ns]")
    assert ds["spin_period__C1_CP_AUX_SPIN_TIME"].dtype == np.float32
    assert ds["algorithm__C1_CP_AUX_SPIN_TIME"].dtype == np.int32
    assert ds.attrs["title"] == "Spin timing"


def test_semicolon_marker_mixed_case_names_and_constant_coordinates(cef_headers):
    ds = read(CIS, cef_headers)
    assert ds.sizes["time"] == 0
    assert ds.attrs["dataset_id"] == "C1_CP_CIS-CODIF_H1_1D_PEF"
    assert ds.attrs["dataset_version"] == "V2.1 - 2010/06/22"
    energy = ds["energy_table__C1_CP_CIS-CODIF_H1_1D_PEF"]
    assert energy.dims == ("energy_table__C1_CP_CIS-CODIF_H1_1D_PEF",)
    assert energy.values[0] == np.float32(35146.64) and energy.values[-1] == np.float32(25.07)
    flux = ds["flux__C1_CP_CIS-CODIF_H1_1D_PEF"]
    assert flux.dims == ("time", "energy_table__C1_CP_CIS-CODIF_H1_1D_PEF")
    delta = ds["delta_plus_energy_table__C1_CP_CIS-CODIF_H1_1D_PEF"]
    assert delta.dims == energy.dims and delta.values[0] == np.float32(3244.34)
    assert ds["time"].attrs["DELTA_PLUS"] == "duration__C1_CP_CIS-CODIF_H1_1D_PEF"
    assert ds["time"].attrs["DELTA_MINUS"] == 0.0


def test_cef_and_cdf_of_one_dataset_have_the_same_shape(cef_headers):
    cef = read(FGM, cef_headers)
    cdf = heliohub.read_file(real_file("cluster", "cdf", "C4_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"))
    assert set(cef.variables) == set(cdf.variables)
    for name in cef.variables:
        assert cef[name].dims == cdf[name].dims, name
        assert cef[name].dtype == cdf[name].dtype, name
        assert cef[name].attrs.get("units") == cdf[name].attrs.get("units") or name == "time", name
    assert cef.attrs["dataset_id"] == cdf.attrs["dataset_id"]


def test_includes_through_cefpath_case_insensitively(tmp_path, monkeypatch):
    source = real_file("cluster", "cef", "headers", "irfu")
    lower = tmp_path / "headers"
    for folder in (source, source / "fgm"):
        for header in folder.glob("*.ceh"):
            lower.mkdir(exist_ok=True)
            shutil.copy(header, lower / header.name.lower())  # derived copies, renamed to test the case rule
    monkeypatch.setenv("CEFPATH", str(lower))
    ds = heliohub.read_file(real_file("cluster", "cef", FGM))
    assert ds.attrs["MISSION"] == "Cluster"


def test_missing_include_names_the_header_and_the_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("CEFPATH", raising=False)
    with pytest.raises(IncludeNotFoundError) as caught:
        heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=[str(tmp_path)])
    message = str(caught.value)
    assert "CL_CH_MISSION.ceh" in message and str(tmp_path) in message and str(CEF) in message
    assert "line 12" in message and FGM in message and "CEFPATH" in message


def test_fsspec_urls_for_the_file_and_its_headers(cef_headers):
    memory = fsspec.filesystem("memory")
    memory.pipe("/archive/" + MAARBLE, real_file("cluster", "cef", MAARBLE).read_bytes())
    for folder in cef_headers:
        for header in Path(folder).glob("*.ceh"):
            memory.pipe(f"/headers/{header.name}", header.read_bytes())
    ds = heliohub.read_file(f"memory:///archive/{MAARBLE}", include_paths=["memory:///headers"])
    assert ds.sizes["time"] == 7
    assert ds.attrs["source_file"] == MAARBLE.removesuffix(".gz")


def test_times_with_any_number_of_fraction_digits(tmp_path, cef_headers):
    text = text_of(real_file("cluster", "cef", AUX))
    text = text.replace("2006-03-01T00:00:30.000Z", "2006-03-01T00:00:30.123456789Z", 1)
    text = text.replace("2006-03-01T00:01:30.000Z", "2006-03-01T00:01:30Z", 1)
    text = text.replace("2006-03-01T00:02:30.000Z", "2006-03-01T00:02:30.5Z", 1)
    damaged = tmp_path / AUX
    damaged.write_text(text)
    times = heliohub.read_file(damaged, include_paths=cef_headers)["time"].values
    assert str(times[0]) == "2006-03-01T00:00:30.123456789"
    assert str(times[1]) == "2006-03-01T00:01:30.000000000"
    assert str(times[2]) == "2006-03-01T00:02:30.500000000"


def test_reading_a_file_leaves_no_global_state(cef_headers):
    first = read(FGM, cef_headers)
    second = read(FGM, cef_headers)
    assert first.identical(second)


def test_bad_value_names_file_line_and_variable(tmp_path, cef_headers):
    lines = text_of(real_file("cluster", "cef", FGM)).split("\n")
    time, _range, _bx, rest = lines[599].split(",", 3)
    lines[599] = f"{time},{_range},abc,{rest}"
    damaged = tmp_path / FGM
    damaged.write_text("\n".join(lines))
    with pytest.raises(FileReadError) as caught:
        heliohub.read_file(damaged, include_paths=cef_headers)
    assert caught.value.line == 600
    assert caught.value.variable == "B_vec_xyz_gse__C4_CP_FGM_SPIN"
    assert "'abc'" in str(caught.value) and str(damaged) in str(caught.value)


def test_record_with_too_few_values_names_its_line(tmp_path, cef_headers):
    lines = text_of(real_file("cluster", "cef", AUX)).split("\n")
    number = next(i for i, line in enumerate(lines) if line.startswith("2006-03-01T00:10:30")) + 1
    lines[number - 1] = lines[number - 1].rsplit(",", 1)[0]
    damaged = tmp_path / AUX
    damaged.write_text("\n".join(lines))
    with pytest.raises(FileReadError) as caught:
        heliohub.read_file(damaged, include_paths=cef_headers)
    assert caught.value.line == number and "2 values" in str(caught.value)


@pytest.mark.parametrize("name", [FGM, AUX, DWP, MAARBLE])
def test_truncated_text_is_refused(tmp_path, cef_headers, name):
    text = text_of(real_file("cluster", "cef", name))
    damaged = tmp_path / name.removesuffix(".gz")
    damaged.write_text(text[: int(len(text) * 0.9) + 7])
    with pytest.raises(FileReadError, match="truncated"):
        heliohub.read_file(damaged, include_paths=cef_headers)


def test_truncated_and_corrupt_gzip_are_refused(tmp_path, cef_headers):
    raw = real_file("cluster", "cef", EFW).read_bytes()
    cut = tmp_path / "cut.cef.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileReadError, match="gzip"):
        heliohub.read_file(cut, include_paths=cef_headers)
    flipped = bytearray(raw)
    for i in range(200, 260):
        flipped[i] ^= 0x5A
    bad = tmp_path / "bad.cef.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(FileReadError, match="gzip"):
        heliohub.read_file(bad, include_paths=cef_headers)


def test_records_trailer_mismatch_is_refused(tmp_path, cef_headers):
    text = text_of(real_file("cluster", "cef", EFW)).replace("!RECORDS= 15", "!RECORDS= 16")
    damaged = tmp_path / "efw.cef"
    damaged.write_text(text)
    with pytest.raises(FileReadError, match="16"):
        heliohub.read_file(damaged, include_paths=cef_headers)


def test_unknown_value_type_names_the_variable(tmp_path, cef_headers):
    text = text_of(real_file("cluster", "cef", AUX))
    text = text.replace("VALUE_TYPE          = FLOAT", "VALUE_TYPE          = QUATERNION", 1)
    damaged = tmp_path / AUX
    damaged.write_text(text)
    with pytest.raises(FileReadError) as caught:
        heliohub.read_file(damaged, include_paths=cef_headers)
    assert "QUATERNION" in str(caught.value) and caught.value.variable == "sc_lat__C3_CP_AUX_SPIN_AXIS"
    assert caught.value.line is not None


def test_corrupt_header_line_is_refused_with_its_line(tmp_path, cef_headers):
    lines = text_of(real_file("cluster", "cef", AUX)).split("\n")
    lines[7] = "this is not CEF"
    damaged = tmp_path / AUX
    damaged.write_text("\n".join(lines))
    with pytest.raises(FileReadError) as caught:
        heliohub.read_file(damaged, include_paths=cef_headers)
    assert caught.value.line == 8


@pytest.mark.parametrize("edit", ["comment after a marker", "record over two lines", "comment line", "blank lines",
                                  "time without Z", "spaces after commas", "two records on one line",
                                  "blanks around times"])
def test_every_record_layout_reads_the_same_values(tmp_path, cef_headers, edit):
    """The one-record-per-line fast path and the general path give the same dataset, whatever the layout."""
    original = real_file("cluster", "cef", FGM)
    text = original.read_bytes()
    header_end = text.index(b"\n", text.index(b"DATA_UNTIL")) + 1
    lines = text[header_end:].split(b"\r\n")
    if edit == "comment after a marker":
        lines[3] += b" ! checked by hand"
    elif edit == "record over two lines":
        lines[5] = lines[5].replace(b",", b",\r\n", 1)
    elif edit == "comment line":
        lines.insert(7, b"! a comment line in the data")
    elif edit == "blank lines":
        lines.insert(7, b"")
        lines.insert(7, b"   ")
    elif edit == "time without Z":
        lines[9] = lines[9].replace(b"Z,", b",", 1)
    elif edit == "two records on one line":
        lines[3:5] = [lines[3] + b" " + lines[4]]
    elif edit == "blanks around times":
        lines = [b"  " + line.replace(b"Z,", b"Z ,", 1) if line[:2].isdigit() else line for line in lines]
    else:
        lines = [line.replace(b",", b",  ") for line in lines]
    edited = tmp_path / FGM
    edited.write_bytes(text[:header_end] + b"\r\n".join(lines))
    got = heliohub.read_file(edited, include_paths=cef_headers)
    expected = read(FGM, cef_headers)
    xr_testing = pytest.importorskip("xarray.testing")
    xr_testing.assert_identical(got.drop_attrs(deep=False), expected.drop_attrs(deep=False))


@pytest.mark.parametrize(("name", "records"), [(ASP, 77), (ASP_EMPTY, 0)])
def test_records_without_a_marker_end_at_the_records_trailer(tmp_path, cef_headers, name, records):
    """The ASPOC files with their end-of-record marker taken out (newlines end records, as CEF allows): the
    ``!RECORDS=`` line after one column of time ranges is the count, not a record; no records is no records."""
    text = text_of(real_file("cluster", "cef", name))
    text = text.replace('END_OF_RECORD_MARKER = "$"', "").replace(" $\n", "\n").replace("$\n", "\n")
    edited = tmp_path / name
    edited.write_text(text)
    got = heliohub.read_file(edited, include_paths=cef_headers)
    assert got.sizes["time"] == records
    np.testing.assert_array_equal(got["time"].values, read(name, cef_headers)["time"].values)


def test_quoted_text_in_the_last_field_loses_its_quotes(tmp_path, cef_headers):
    """The DWP file with only its last field (Content) left quoted: with no marker after it, its values are
    text without their quotes, as in the file as delivered (the fast path must not take them as they are)."""
    text = text_of(real_file("cluster", "cef", DWP))
    head, _, records = text.partition("DATA_UNTIL = EOF\n")
    kept = [i for i, line in enumerate(records.split("\n")) if line.count(",") == 4 and not re.search("['!$]", line)]
    lines = [re.sub(r'"\s*([^",]*?)\s*",', r"\1,", records.split("\n")[i]) for i in kept]
    assert lines[0] == '2008-02-02T00:11:00Z, SEQ, 34, 04_NM109B000, "HS;"' and len(lines) > 50
    edited = tmp_path / DWP
    edited.write_text(head + "DATA_UNTIL = EOF\n" + "\n".join(lines) + "\n")
    got = heliohub.read_file(edited, include_paths=cef_headers)
    content = "Content__CM_CP_DWP_UT_PIOR"
    np.testing.assert_array_equal(got[content].values, read(DWP, cef_headers)[content].values[kept])


def test_records_of_many_values_read_as_their_text(tmp_path, cef_headers):
    """The FGM file's vectors made one record of 44,316 values (every record's B vector in one SIZES): the path
    for wide records gives the same numbers."""
    fgm = read(FGM, cef_headers)
    vectors = fgm["B_vec_xyz_gse__C4_CP_FGM_SPIN"].values
    text = text_of(real_file("cluster", "cef", FGM))
    rows = text_records(real_file("cluster", "cef", FGM), "$")
    flat = ", ".join(value for row in rows for value in row[2:5])
    header = (f'FILE_NAME = "wide.cef"\nFILE_FORMAT_VERSION = "CEF-2.0"\nSTART_VARIABLE = epoch\n'
              f"  VALUE_TYPE = ISO_TIME\n  FILLVAL = 9999-12-31T23:59:59Z\nEND_VARIABLE = epoch\n"
              f"START_VARIABLE = B\n  SIZES = {vectors.size}\n  VALUE_TYPE = FLOAT\n  FILLVAL = -1e+30\n"
              f"  DEPEND_0 = epoch\nEND_VARIABLE = B\nDATA_UNTIL = EOF\n")
    assert "B_vec_xyz_gse__C4_CP_FGM_SPIN" in text and len(rows) == len(vectors)
    wide = tmp_path / "wide.cef"
    wide.write_text(header + f"{rows[0][0]}, {flat}\n")
    got = heliohub.read_file(wide)
    assert got["B"].shape == (1, vectors.size)
    np.testing.assert_array_equal(got["B"].values[0], vectors.ravel())
