"""CDF files read by heliohub, checked against cdflib (an independent CDF decoder) on the real files."""

from __future__ import annotations

import gc
import gzip
import struct
import subprocess
import sys
import zlib

import cdflib
import numpy as np
import pycdfpp
import pytest
import xarray as xr
from cdflib.cdfwrite import CDF as CdfWriter

import heliohub
from heliohub.errors import FileReadError, UnknownFormatError
from heliohub.raw_files import read_raw_file
from heliohub.readers import cdf_structure, reader_for
from heliohub.readers.cdf_structure import CdfStructureError, check_cdf, checked_cdf

from .conftest import real_file

CLUSTER_CDF = [
    (f"C{n}_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf", f"C{n}_CP_FGM_SPIN", records)
    for n, records in ((1, 880), (2, 900), (3, 899), (4, 897))
] + [("C4_CP_EFW_L1_P34__20010226_051830_20010226_051836_V110503.cdf", "C4_CP_EFW_L1_P34", 2700)]


def _cdflib_times(cdf: cdflib.CDF, name: str) -> np.ndarray:
    return np.asarray(cdflib.cdfepoch.to_datetime(cdf.varget(name)), dtype="datetime64[ns]")


@pytest.mark.parametrize(("name", "dataset_id", "records"), CLUSTER_CDF)
def test_cluster_cdf_values_and_times_equal_cdflib(name, dataset_id, records):
    path = real_file("cluster", "cdf", name)
    ds = heliohub.read_file(path)
    reference = cdflib.CDF(str(path))
    assert ds.attrs["dataset_id"] == dataset_id
    assert ds.sizes["time"] == records
    time_name = ds.time.attrs["archive_name"]
    np.testing.assert_array_equal(ds.time.values, _cdflib_times(reference, time_name))
    for variable in reference.cdf_info().zVariables:
        if variable == time_name or reference.varinq(variable).Data_Type_Description.startswith("CDF_EPOCH"):
            continue
        expected = reference.varget(variable)
        got = ds[variable].values
        if got.dtype.kind == "f":
            fill = reference.varattsget(variable).get("FILLVAL")
            expected = np.where(expected == fill, np.nan, expected) if fill is not None else expected
            np.testing.assert_array_equal(got, expected, err_msg=variable)
        elif got.dtype.kind != "O":
            np.testing.assert_array_equal(got, expected, err_msg=variable)


def test_epoch16_keeps_sub_microsecond_times():
    ds = heliohub.read_file(real_file("cluster", "cdf", CLUSTER_CDF[-1][0]))
    assert str(ds.time.values[0]) == "2001-02-26T05:18:30.002201000"
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert ds.time.attrs["FILLVAL"] == "9999-12-31T23:59:59.000000000"


def test_fgm_cdf_labels_units_and_globals():
    ds = heliohub.read_file(real_file("cluster", "cdf", CLUSTER_CDF[0][0]))
    b = ds["B_vec_xyz_gse__C1_CP_FGM_SPIN"]
    assert b.dims == ("time", "B_vec_xyz_gse__C1_CP_FGM_SPIN_dim1")
    assert b.attrs["units"] == "nT"
    assert b.attrs["COORDINATE_SYSTEM"] == "GSE>Geocentric Solar Ecliptic"
    labels = ds["B_vec_xyz_gse__C1_CP_FGM_SPIN_REPRESENTATION_1"].values.tolist()
    assert [str(v).strip() for v in labels] == ["x", "y", "z"]
    assert ds.attrs["mission"] == "Cluster"
    assert ds.attrs["source_format"] == "CDF"
    assert ds.attrs["observatory"] == "Cluster-1"


def test_compressed_tt2000_spectra_equal_cdflib():
    path = real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf")
    ds = heliohub.read_file(path)
    reference = cdflib.CDF(str(path))
    assert ds.sizes["time"] == 39784
    np.testing.assert_array_equal(ds.time.values, _cdflib_times(reference, "EPOCH"))
    assert str(ds.time.values[0]) == "2020-07-13T00:00:00.248983040"
    flux = reference.varget("Ion_Flux")
    fill = reference.varattsget("Ion_Flux")["FILLVAL"]
    np.testing.assert_array_equal(ds["Ion_Flux"].values, np.where(flux == fill, np.nan, flux))
    assert ds["Ion_Flux"].dims == ("time", "Ion_Bins_Low_Energy")
    np.testing.assert_array_equal(ds["Ion_Bins_Low_Energy"].values, reference.varget("Ion_Bins_Low_Energy")[0]
                                  if reference.varget("Ion_Bins_Low_Energy").ndim == 2
                                  else reference.varget("Ion_Bins_Low_Energy"))
    np.testing.assert_array_equal(ds["EPOCH_1"].values, _cdflib_times(reference, "EPOCH_1"))
    assert ds.attrs["dataset_id"] == "solo_L2_epd-ept-north-hcad"
    assert ds["Ion_Flux"].attrs["units"] == ds["Ion_Flux"].attrs["UNITS"]


EPD = "solo_L2_epd-ept-north-hcad_20200713_V02.cdf"  # a real CDF 3 file under whole-file GZIP compression


def _with_member(source: bytes, member: bytes, promised: int | None = None) -> bytes:
    """The real compressed CDF with another GZIP member in its compressed-file record (CCR), and its
    uncompressed size (``promised``) changed if given; the compression parameters record follows, moved."""
    _, _, cpr, uncompressed = struct.unpack_from(">qiqq", source, 8)
    cpr_size = struct.unpack_from(">q", source, cpr)[0]
    head = 8 + 8 + 4 + 8 + 8 + 4
    record = struct.pack(">qiqqi", head - 8 + len(member), 10, 8 + head - 8 + len(member),
                         uncompressed if promised is None else promised, 0)
    return source[:8] + record + member + source[cpr:cpr + cpr_size]


def _member_of(source: bytes) -> bytes:
    size = struct.unpack_from(">q", source, 8)[0]
    return source[8 + 8 + 4 + 8 + 8 + 4:8 + size]


def test_a_compressed_cdf_is_checked_inside_and_read_whatever_its_gzip_header_holds(tmp_path):
    source = real_file("solar_orbiter", "cdf", EPD).read_bytes()
    member = _member_of(source)
    assert member[:4] == b"\x1f\x8b\x08\x00"  # the file's own member has no optional fields
    body = gzip.decompress(member)
    # the same body in a member with every optional field of RFC 1952 (extra field, name, comment, header CRC)
    header = b"\x1f\x8b\x08" + bytes([4 | 8 | 16 | 2]) + member[4:10] + b"\x03\x00abc" + b"body\x00" + b"x\x00"
    fields = header + struct.pack("<H", zlib.crc32(header) & 0xFFFF) + member[10:]
    expected = heliohub.read_file(real_file("solar_orbiter", "cdf", EPD))
    path = tmp_path / EPD
    path.write_bytes(_with_member(source, fields))
    xr.testing.assert_identical(heliohub.read_file(path), expected)
    damaged = bytearray(member)
    damaged[len(member) // 2] ^= 0x40
    crc = len(member) - 8  # the trailer's CRC-32
    cases = {"does not decompress|fails its CRC check|gives": _with_member(source, bytes(damaged)),
             "fails its CRC check": _with_member(source, member[:crc] + bytes([member[crc] ^ 1]) + member[crc + 1:]),
             "gives 14559553 bytes, its header promises 14559554": _with_member(source, member, len(body) + 1),
             "cannot hold the 1000000000000 bytes": _with_member(source, member, 10**12),
             "not a GZIP member": _with_member(source, b"\x1f\x8c" + member[2:])}
    for message, content in cases.items():
        path.write_bytes(content)
        with pytest.raises(FileReadError, match=f"corrupt or truncated CDF: .*({message})"):
            heliohub.read_file(path)


def test_a_gzip_compressed_cdf_is_handed_to_pycdfpp_decompressed_and_decodes_the_same():
    """The check decompresses a GZIP-compressed file once and pycdfpp decodes that; what pycdfpp decodes from it
    must be what it decodes from the compressed file itself, every variable and attribute."""
    source = real_file("solar_orbiter", "cdf", EPD).read_bytes()
    inner = checked_cdf(source)
    assert inner[:8] == source[:4] + b"\x00\x00\xff\xff"  # marked uncompressed
    assert len(inner) == 8 + len(gzip.decompress(_member_of(source)))
    compressed, decompressed = pycdfpp.load(source, lazy_load=False), pycdfpp.load(inner, lazy_load=False)
    assert compressed.compression == pycdfpp.CompressionType.gzip_compression
    assert decompressed.compression == pycdfpp.CompressionType.no_compression
    assert [name for name, _ in compressed.items()] == [name for name, _ in decompressed.items()]
    for name, variable in compressed.items():
        other = decompressed[name]
        assert (variable.type, variable.shape, variable.is_nrv) == (other.type, other.shape, other.is_nrv), name
        np.testing.assert_array_equal(np.asarray(other.values), np.asarray(variable.values), err_msg=name)
        assert {key: attr.value for key, attr in variable.attributes.items()} == {
            key: attr.value for key, attr in other.attributes.items()}, name
    assert {key: list(attr) for key, attr in compressed.attributes.items()} == {
        key: list(attr) for key, attr in decompressed.attributes.items()}
    plain = real_file("cluster", "cdf", CLUSTER_CDF[0][0]).read_bytes()
    assert checked_cdf(plain) is plain  # an uncompressed file is decoded as it came


def test_a_very_large_compressed_cdf_is_left_for_pycdfpp_to_decompress(monkeypatch):
    """Two copies of a very large decompressed file are never held at once: the check's is dropped and pycdfpp
    decompresses the file again (here with the bound lowered below the real EPD file's 14.6 MB)."""
    path = real_file("solar_orbiter", "cdf", EPD)
    expected = heliohub.read_file(path)
    monkeypatch.setattr(cdf_structure, "_MOST_COPIED", 1 << 20)
    source = path.read_bytes()
    assert checked_cdf(source) is source
    xr.testing.assert_identical(heliohub.read_file(path), expected)
    # still checked inside: the same file with its descriptor record pointing past its end, compressed again
    body = bytearray(gzip.decompress(_member_of(source)))
    body[12:20] = struct.pack(">q", 1 << 40)  # the CDR (the body's first record): the GDR's offset
    damaged = _with_member(source, gzip.compress(bytes(body), mtime=0))
    for check in (checked_cdf, check_cdf):  # check_cdf: the fetch check's, which hands nothing on
        with pytest.raises(CdfStructureError, match=r"global descriptor record .* lies outside the file"):
            check(damaged)


def test_zero_record_cdf_gives_an_empty_time_axis():
    ds = heliohub.read_file(real_file("solar_orbiter", "cdf", "solo_L1_swa-pas-mom_20200706_V01.cdf"))
    assert ds.sizes["time"] == 0
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert ds["velocity"].shape == (0, 3)


def test_master_cdf_keeps_its_matrix_shape_and_axes():
    ds = heliohub.read_file(real_file("ulysses", "cdf", "uy_proton-distributions_swoops_00000000_v01.cdf"))
    assert ds["Matrix"].dims == ("time", "v_par_index", "v_per_index")
    assert ds["Matrix"].shape == (0, 50, 25)
    np.testing.assert_array_equal(ds["v_par_index"].values, np.arange(1, 51))
    assert ds.attrs["dataset_id"] == "uy_proton-distributions_swoops"


def test_column_major_cdf_reads_in_c_order(tmp_path):
    """No real file in data/ is column-major, so this one is written here with cdflib's writer.

    cdflib's writer stores the bytes it is given, so each record goes in transposed: the file then holds the
    matrix in column-major order, as a Fortran-written CDF would.
    """
    path = tmp_path / "column_major.cdf"
    times = cdflib.cdfepoch.compute_tt2000([[2020, 1, 1, 0, 0, s, 0, 0, 0] for s in range(4)])
    matrix = np.arange(4 * 2 * 3, dtype=np.float64).reshape(4, 2, 3)
    writer = CdfWriter(str(path), cdf_spec={"Majority": "column_major", "Compressed": 0})
    writer.write_globalattrs({"Logical_source": {0: "test_column_major"}})
    base = {"Num_Elements": 1, "Rec_Vary": True, "Compress": 0}
    writer.write_var({**base, "Variable": "Epoch", "Data_Type": cdflib.cdfwrite.CDF.CDF_TIME_TT2000,
                      "Dim_Sizes": []}, {"FILLVAL": -9223372036854775808}, times)
    writer.write_var({**base, "Variable": "M", "Data_Type": cdflib.cdfwrite.CDF.CDF_DOUBLE, "Dim_Sizes": [2, 3]},
                     {"DEPEND_0": "Epoch", "FILLVAL": -1e31, "UNITS": "nT"},
                     np.ascontiguousarray(matrix.transpose(0, 2, 1)).reshape(matrix.shape))
    writer.close()
    assert cdflib.CDF(str(path)).cdf_info().Majority == "Column_major"
    np.testing.assert_array_equal(cdflib.CDF(str(path)).varget("M"), matrix)
    ds = heliohub.read_file(path)
    np.testing.assert_array_equal(ds["M"].values, matrix)
    assert ds["M"].dims == ("time", "M_dim1", "M_dim2")
    assert str(ds.time.values[3]) == "2020-01-01T00:00:03.000000000"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_cdf_is_refused(tmp_path, keep):
    source = real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf").read_bytes()
    damaged = tmp_path / "solo_L2_epd-ept-north-hcad_20200713_V02.cdf"
    damaged.write_bytes(source[: int(len(source) * keep)])
    with pytest.raises(FileReadError, match="corrupt or truncated CDF") as caught:
        heliohub.read_file(damaged)
    assert str(damaged) in str(caught.value)
    assert "fetch it again" in str(caught.value)


def test_corrupt_cdf_is_refused(tmp_path):
    source = bytearray(real_file("cluster", "cdf", CLUSTER_CDF[0][0]).read_bytes())
    source[8:400] = b"\xff" * 392  # the CDF descriptor record and what follows
    damaged = tmp_path / "damaged.cdf"
    damaged.write_bytes(bytes(source))
    with pytest.raises(FileReadError, match="corrupt or truncated CDF"):
        heliohub.read_file(damaged)


def test_file_of_no_known_format_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an archive file\n")
    with pytest.raises(UnknownFormatError) as caught:
        heliohub.read_file(path)
    assert str(path) in str(caught.value)
    for format_name in ("CDF", "FITS", "CEF"):
        assert format_name in str(caught.value)


_DAMAGE_SWEEP = """
import random, sys
import fsspec
import heliohub
from heliohub.errors import FileReadError
random.seed(7)
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    copies = [data[:cut] for cut in range(8, len(data), max(1, len(data) // 16))]
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(5):
            damaged[random.randrange(8, min(len(data), 4000))] = random.randrange(256)
        copies.append(bytes(damaged))
    for copy in copies:
        with fsspec.open("memory://damaged.cdf", "wb") as out:
            out.write(copy)
        try:
            heliohub.read_file("memory://damaged.cdf")
        except FileReadError:
            pass
print("survived")
"""


def test_damaged_copies_never_crash_the_process():
    """pycdfpp crashes the interpreter on truncated or damaged CDFs; heliohub must refuse them instead.

    Runs in a child process so that a crash fails this test rather than the whole run.
    """
    files = [real_file("cluster", "cdf", CLUSTER_CDF[0][0]), real_file("cluster", "cdf", CLUSTER_CDF[-1][0]),
             real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf"),
             real_file("ulysses", "cdf", "uy_proton-distributions_swoops_00000000_v01.cdf")]
    result = subprocess.run([sys.executable, "-c", _DAMAGE_SWEEP, *map(str, files)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "survived", result.stderr[-2000:]


def test_a_read_keeps_none_of_the_files_bytes():
    # pycdfpp's lazy loading kept a file's bytes for as long as any of its arrays lived: twice the memory of the
    # data, for every file an ingest holds
    source = read_raw_file(real_file("cluster", "cdf", CLUSTER_CDF[0][0]))
    before = sys.getrefcount(source.data)
    ds = reader_for(source).read(source)
    gc.collect()
    after = sys.getrefcount(source.data)  # outside the assert: pytest's rewriting of it holds one more reference
    assert after == before
    assert ds.sizes["time"] == CLUSTER_CDF[0][2] and np.isfinite(ds["B_mag__C1_CP_FGM_SPIN"].values).any()
