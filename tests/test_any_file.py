"""Every real archive file reads, and no file can take a read or an ingest down: the cases real files outside data/
showed, made here from the real files of data/ (each change is said where it is made), and readers found by entry
point."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import heliohub
from heliohub.errors import FileReadError, ReaderWarning
from heliohub.readers import assemble
from heliohub.store import access
from heliohub.store.location import StoreLocation
from heliohub.up import demo

from .conftest import real_file
from .store_helpers import ROOT

FGM = "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"
VECTOR = "B_vec_xyz_gse__C4_CP_FGM_SPIN"


def _fgm_lines() -> list[str]:
    return real_file("cluster", "cef", FGM).read_text().split("\n")


def _write(tmp_path: Path, lines: list[str], name: str = FGM) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return path


def _line_of(lines: list[str], text: str, after: int = 0) -> int:
    return next(i for i, line in enumerate(lines) if i >= after and text in line)


@pytest.mark.parametrize("block", [None, 64])
def test_fill_values_given_per_component_are_masked_per_component(tmp_path, monkeypatch, block):
    # the real FGM file, its vector's FILLVAL given once per component, and four records' values set to fills (the
    # last one in the last block of records when the values are compared a few records at a time: ``block``)
    if block:
        monkeypatch.setattr(assemble, "_MASK_BLOCK", block)
    lines = _fgm_lines()
    start = _line_of(lines, f"START_VARIABLE  =  {VECTOR}")
    fill = _line_of(lines, "FILLVAL", start)
    lines[fill] = "    FILLVAL             = 999.99, 888.88, 777.77"
    first = _line_of(lines, "2001-07-06T21:16:10.814Z")
    last = _line_of(lines, "2001-07-09T06:24:01.171Z")
    for at, component, value in [(first, 0, "999.99"), (first + 1, 1, "888.88"), (first + 2, 0, "888.88"),
                                 (last, 2, "777.77")]:
        fields = lines[at].split(",")
        fields[2 + component] = value
        lines[at] = ",".join(fields)
    ds = heliohub.read_file(_write(tmp_path, lines), include_paths=demo.include_paths())
    vector = ds[VECTOR].values
    assert np.isnan(vector[0, 0]) and np.isfinite(vector[0, 1:]).all()
    assert np.isnan(vector[1, 1]) and np.isfinite(vector[1, [0, 2]]).all()
    assert vector[2, 0] == np.float32(888.88)  # 888.88 is the y component's fill, not the x one's
    assert np.isfinite(vector[3:-1]).all()
    assert np.isnan(vector[-1, 2]) and np.isfinite(vector[-1, :2]).all()
    assert ds[VECTOR].attrs["FILLVAL"] == pytest.approx([999.99, 888.88, 777.77])


def test_a_fill_list_of_the_wrong_length_is_refused_naming_line_and_variable(tmp_path):
    lines = _fgm_lines()
    start = _line_of(lines, f"START_VARIABLE  =  {VECTOR}")
    lines[_line_of(lines, "FILLVAL", start)] = "    FILLVAL             = 999.99, 888.88"
    with pytest.raises(FileReadError, match=rf"line {start + 1}, variable {VECTOR}: FILLVAL has 2 values"):
        heliohub.read_file(_write(tmp_path, lines), include_paths=demo.include_paths())


@pytest.mark.parametrize(("value", "kind"), [("3000000000", "INT"), ("-2147483649", "INT")])
def test_integers_out_of_their_types_range_are_refused_naming_line_and_variable(tmp_path, value, kind):
    # the real FGM file with one record's range (an INT) out of the 32-bit range
    lines = _fgm_lines()
    first = _line_of(lines, "2001-07-06T21:16:14.824Z")
    fields = lines[first].split(",")
    fields[-2] = value
    lines[first] = ",".join(fields)
    with pytest.raises(FileReadError, match=rf"line {first + 1}, variable range__C4_CP_FGM_SPIN: {value} is out of "
                                            rf"the range of {kind}"):
        heliohub.read_file(_write(tmp_path, lines), include_paths=demo.include_paths())


def _with_header(path: Path, change) -> bytes:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's notes on the old headers
        with fits.open(path) as hdus:
            change(hdus[0].header)
            out = io.BytesIO()
            hdus.writeto(out)
    return out.getvalue()


def test_solar_instruments_are_recognised_as_sunpy_recognises_them(tmp_path):
    """Each real FITS file, and copies whose instrument is named only where sunpy's map sources also look (MDI's
    CAMERA, EIT's long TELESCOP), gets the instrument sunpy maps it as, and that instrument's dataset ID."""
    import sunpy.map

    mdi = real_file("soho", "mdi", "mdi_fd_Ic_6h_01d.5871.0000_s.fits")
    eit = real_file("soho", "eit", "efz20040301.000010_s.fits")

    def camera_only(header):
        del header["INSTRUME"]
        header["CAMERA"] = "MDI"

    def telescope_only(header):
        del header["INSTRUME"]
        header["TELESCOP"] = "Extreme-ultraviolet Imaging Telescope (EIT)"

    (tmp_path / "mdi_camera.fits").write_bytes(_with_header(mdi, camera_only))
    (tmp_path / "eit_telescope.fits").write_bytes(_with_header(eit, telescope_only))
    files = [*sorted(p for p in real_file().rglob("*") if p.suffix in (".fits", ".fts") and "lyra" not in p.name),
             tmp_path / "mdi_camera.fits", tmp_path / "eit_telescope.fits"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sunpy's notes on old headers
        for path in files:
            ours = heliohub.read_file(path)
            theirs = sunpy.map.Map(path)
            assert ours.attrs["instrument"].split()[0] == theirs.instrument.split()[0], path.name
            assert ours.attrs["dataset_id"].startswith(f"SOHO_{theirs.instrument.split()[0]}") or \
                ours.attrs["dataset_id"].startswith(f"PROBA2_{theirs.instrument.split()[0]}"), path.name
    assert heliohub.read_file(tmp_path / "mdi_camera.fits").attrs["dataset_id"] == "SOHO_MDI_CONTINUUM"
    assert heliohub.read_file(tmp_path / "eit_telescope.fits").attrs["dataset_id"] == "SOHO_EIT_195"


def test_a_header_astropy_cannot_fix_is_read_with_a_warning_naming_the_card(tmp_path):
    # the real EIT file with a TAB in a HISTORY card, as in a real file: sunpy and astropy read it with a warning
    raw = real_file("soho", "eit", "efz20040301.000010_s.fits").read_bytes()
    at = raw.find(b"HISTORY") + 20
    path = tmp_path / "efz20040301.000010_s.fits"
    path.write_bytes(raw[:at] + b"\t" + raw[at + 1:])
    with pytest.warns(ReaderWarning, match=r"Card 72:.*Unprintable string") as caught:
        ds = heliohub.read_file(path)
    assert str(path) in str(caught[0].message)
    expected = heliohub.read_file(real_file("soho", "eit", "efz20040301.000010_s.fits"))
    np.testing.assert_array_equal(ds["image"].values, expected["image"].values)


def test_a_fits_header_declaring_more_than_the_file_holds_is_refused_before_astropy(tmp_path):
    # a duplicated NAXIS of 2**31 made astropy loop for minutes (found by the fuzz test)
    raw = real_file("soho", "mdi", "mdi.fd_ic.20101015_230100_TAI.data.fits").read_bytes()
    card = b"NAXIS   =           2147483647".ljust(80)
    path = tmp_path / "mdi.fits"
    path.write_bytes(raw[:320] + card + raw[400:])
    with pytest.raises(FileReadError, match="HDU 0: NAXIS is given twice"):
        heliohub.read_file(path)


def test_search_answers_on_an_empty_store_and_on_one_without_a_catalog(tmp_path):
    assert heliohub.search(archive=tmp_path / "empty").empty
    store = StoreLocation.resolve(tmp_path / "no-catalog")
    store.repository("C1_CP_FGM_SPIN", create=True)  # a repository made, nothing committed, no catalog yet
    assert heliohub.search(archive=store).empty
    assert heliohub.search("fgm", archive=store).empty


def test_text_comes_back_from_the_store_as_the_reader_gives_it(tmp_path):
    path = real_file("cluster", "cef", "CM_CP_DWP_UT_PIOR__20080202_000000_20080203_000000_V100803.cef")
    heliohub.ingest([path], tmp_path / "store", progress=False)
    read = heliohub.read_file(path)
    for chunks in (None, {}):
        stored = heliohub.open_dataset("CM_CP_DWP_UT_PIOR", archive=tmp_path / "store", chunks=chunks)
        for name, variable in read.variables.items():
            if variable.dtype == object:
                assert stored[name].dtype == object, name
                assert list(stored[name].values) == list(variable.values), name


def test_caches_are_kept_per_store_identity_and_bounded(tmp_path, monkeypatch):
    same_url = [StoreLocation("s3://bucket/store", {"endpoint_url": e, "key": k, "secret": s})
                for e, k, s in (("http://a", "reader", "x"), ("http://b", "reader", "x"), ("http://a", "other", "x"),
                                ("http://a", "reader", "y"))]
    assert len({store.identity for store in same_url}) == 4
    assert all("x" not in part and "y" not in part for store in same_url for part in store.identity[3:])
    heliohub.ingest([real_file("cluster", "cdf")], tmp_path / "store", progress=False)
    access.clear_caches()
    monkeypatch.setattr(access, "TIME_AXES_CACHE_BYTES", 8000)  # room for one hour of FGM times, not two
    for spacecraft in (1, 2, 3):
        heliohub.open_dataset(f"C{spacecraft}_CP_FGM_SPIN", archive=tmp_path / "store")
    assert 0 < sum(v.nbytes for v in access._time_axes.values()) <= 8000
    assert [key[1] for key in access._time_axes] == ["C3_CP_FGM_SPIN"]
    # opened groups: per snapshot, bounded, and what a caller sets on one is its own
    monkeypatch.setattr(access, "OPENED_GROUPS", 2)
    for spacecraft in (1, 2, 3, 4):
        opened = heliohub.open_dataset(f"C{spacecraft}_CP_FGM_SPIN", archive=tmp_path / "store")
        opened.attrs["title"] = "changed by the caller"
        opened[f"B_mag__C{spacecraft}_CP_FGM_SPIN"].attrs["units"] = "changed"
    assert [key[1] for key in access._groups] == ["C3_CP_FGM_SPIN", "C4_CP_FGM_SPIN"]
    again = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=tmp_path / "store")
    assert again.attrs["title"] != "changed by the caller" and again["B_mag__C4_CP_FGM_SPIN"].attrs["units"] == "nT"


def test_the_s3_check_goes_through_an_https_proxy(monkeypatch):
    """Behind a proxy the endpoint itself cannot be reached: the check connects to the proxy instead."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True).start()
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    store = StoreLocation("s3://bucket/store", {"endpoint_url": "https://s3.unreachable.invalid"})
    with pytest.raises(heliohub.ArchiveError, match=r"cannot connect to s3\.unreachable\.invalid:443"):
        store._check_reachable()
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    store._check_reachable()
    listener.close()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    store = StoreLocation("s3://bucket/store", {"endpoint_url": "https://s3.other.invalid"})
    with pytest.raises(heliohub.ArchiveError, match=r"127\.0\.0\.1:9 \(the proxy to https://s3.other.invalid\)"):
        store._check_reachable()


def test_an_s3_endpoint_that_accepts_and_never_answers_is_named_not_waited_for(monkeypatch):
    """Icechunk waits without end on such a server (a hung object store, or a port of a silent service)."""
    from heliohub.store import location

    monkeypatch.setattr(location, "REACHABLE_TIMEOUT", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # its backlog accepts connections; nothing ever reads or answers them
        port = silent.getsockname()[1]
        for scheme in ("http", "https"):
            store = StoreLocation("s3://bucket/store", {"endpoint_url": f"{scheme}://127.0.0.1:{port}"})
            said = rf"127\.0\.0\.1:{port} accepts a connection but does not answer.*AWS_ENDPOINT_URL"
            with pytest.raises(heliohub.ArchiveError, match=said):
                store._check_reachable()


# A reader of another package, installed as a distribution with an entry point in heliohub.readers: it reads
# "TOY1" files (a made-up format: its own test data), raises a TypeError on "TOY!" files (a bug of its own), and
# gives a dataset no store can hold (an attribute that is not JSON) for "TOY?" files.
THIRD_PARTY = '''
import numpy as np
import xarray as xr


class ToyReader:
    name = "toy"

    def can_read(self, source):
        return source.data[:4] in (b"TOY1", b"TOY!", b"TOY?")

    def read(self, source, *, include_paths=None):
        if source.data.startswith(b"TOY!"):
            raise TypeError("the toy reader's own bug")
        times = np.array(["2001-01-01T00:00", "2001-01-01T00:01"], dtype="datetime64[ns]")
        attrs = {"dataset_id": "TOY_" + source.name.split(".")[0].upper()}
        if source.data.startswith(b"TOY?"):
            attrs["unstorable"] = {1, 2}
        return xr.Dataset({"value": ("time", np.array([1.0, 2.0]))}, coords={"time": times}, attrs=attrs)
'''


@pytest.fixture
def toy_reader(tmp_path):
    site = tmp_path / "site"
    (site / "toy_reader-0.1.dist-info").mkdir(parents=True)
    (site / "toy_reader.py").write_text(THIRD_PARTY)
    (site / "toy_reader-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-reader\n"
                                                               "Version: 0.1\n")
    (site / "toy_reader-0.1.dist-info" / "entry_points.txt").write_text("[heliohub.readers]\n"
                                                                       "toy = toy_reader:ToyReader\n")
    return site


def _python(code: str, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(site)}, timeout=300)


def test_a_reader_installed_by_another_package_is_found_and_picked(toy_reader, tmp_path):
    (tmp_path / "good.toy").write_bytes(b"TOY1")
    cdf = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    result = _python(f"""
        import heliohub
        from heliohub.readers import readers
        print([r.name for r in readers()])
        print(heliohub.read_file({str(tmp_path / "good.toy")!r}).attrs["dataset_id"])
        print(heliohub.read_file({str(cdf)!r}).attrs["dataset_id"])
        """, toy_reader)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["['CDF', 'FITS', 'CEF-2.0', 'toy']", "TOY_GOOD", "C1_CP_FGM_SPIN"]


def test_a_readers_own_failure_is_a_file_read_error_that_says_whose_it_is(toy_reader, tmp_path):
    (tmp_path / "bug.toy").write_bytes(b"TOY!")
    result = _python(f"""
        import heliohub
        try:
            heliohub.read_file({str(tmp_path / "bug.toy")!r})
        except heliohub.FileReadError as error:
            print(error)
        """, toy_reader)
    assert result.returncode == 0, result.stderr
    assert re.search(r"bug\.toy: heliohub's toy reader failed on it \(TypeError: the toy reader's own bug\) \(this "
                     r"is a fault of heliohub or of a library it uses, not necessarily of the file", result.stdout)


def test_no_file_takes_an_ingest_down(toy_reader, tmp_path):
    """A folder of good files with a file whose reader fails, one the store cannot hold, and one no reader knows:
    those are refused, with their reasons; every good file is committed, and the catalog lists them."""
    folder = tmp_path / "files"
    folder.mkdir()
    for name, content in (("bug.cdf", b"TOY!"), ("unstorable.cdf", b"TOY?"), ("good.cdf", b"TOY1"),
                          ("unknown.cdf", b"not a format at all")):
        (folder / name).write_bytes(content)
    for path in real_file("cluster", "cdf").glob("C?_CP_FGM_SPIN*.cdf"):
        (folder / path.name).write_bytes(path.read_bytes())
    result = _python(f"""
        import json
        import heliohub
        report = heliohub.ingest([{str(folder)!r}], {str(tmp_path / "store")!r}, progress=False, batch_bytes=1)
        print(json.dumps(json.loads(report.to_json())))
        print(json.dumps(sorted(heliohub.search(archive={str(tmp_path / "store")!r})["dataset_id"])))
        """, toy_reader)
    assert result.returncode == 0, result.stderr
    report_text, listed = result.stdout.strip().split("\n")[-2:]
    files = {Path(f["path"]).name: f for f in json.loads(report_text)["files"]}
    assert files["bug.cdf"]["status"] == "refused" and "toy reader failed" in files["bug.cdf"]["reason"]
    assert files["unstorable.cdf"]["status"] == "refused"
    assert "writing it into TOY_UNSTORABLE failed" in files["unstorable.cdf"]["reason"]
    assert files["unknown.cdf"]["status"] == "refused" and "not a file heliohub can read" in \
        files["unknown.cdf"]["reason"]
    good = [name for name in files if name.startswith("C") or name == "good.cdf"]
    assert all(files[name]["status"] == "ingested" for name in good)
    assert json.loads(listed) == ["C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN", "C3_CP_FGM_SPIN", "C4_CP_FGM_SPIN", "TOY_GOOD"]


def test_an_include_folder_that_cannot_be_read_is_named_not_reported_missing(tmp_path):
    """As an account that may not read a header folder (root reads every folder: the read runs as nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to read as another account")
    from heliohub.up import runtime
    from heliohub.up.settings import UpSettings

    from .conftest import passable_folder

    python = runtime.ensure(Path(UpSettings().runtime_dir), print) / "python"  # a Python every account may run
    folder = passable_folder("heliohub-include-")
    try:
        shutil.copy(real_file("cluster", "cef", FGM), folder / FGM)
        shutil.copytree(real_file("cluster", "cef", "headers"), folder / "headers")
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (folder / "headers" / "irfu").chmod(0o000)
        code = (f"import heliohub\ntry:\n    heliohub.read_file({str(folder / FGM)!r}, include_paths="
                f"[{str(folder / 'headers' / 'irfu')!r}, {str(folder / 'headers' / 'irfu' / 'fgm')!r}])\n"
                "except heliohub.FileReadError as error:\n    print(error)\n")
        result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120,
                                user=65534, group=65534, extra_groups=[], cwd="/")
        assert result.returncode == 0, result.stderr
        assert "cannot be read" in result.stdout and "headers/irfu (" in result.stdout and "Permission denied" in \
            result.stdout, result.stdout
    finally:
        (folder / "headers" / "irfu").chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def _public_dataset(dataset) -> object:
    """What xarray's public constructor builds from a dataset's variables, as the readers hand them over."""
    import xarray as xr

    def base(name):
        return dataset.variables[name].to_base_variable()
    return xr.Dataset({name: base(name) for name in dataset.data_vars},
                      coords={name: base(name) for name in dataset.coords}, attrs=dict(dataset.attrs))


def _same_build(built, expected) -> None:
    import xarray as xr

    xr.testing.assert_identical(built, expected)
    assert list(built.variables) == list(expected.variables)
    assert list(built.coords) == list(expected.coords) and list(built.sizes.items()) == list(expected.sizes.items())
    assert {name: (type(index), index.equals(expected.xindexes[name])) for name, index in built.xindexes.items()} \
        == {name: (type(index), True) for name, index in expected.xindexes.items()}
    assert all(type(built.variables[n]) is type(expected.variables[n]) for n in expected.variables)


def test_every_real_file_reads_into_what_xarrays_constructor_builds():
    """The readers put their datasets together through an internal of xarray's (readers/dataset_construction.py,
    for its speed): every real CEF and CDF file gives what ``xr.Dataset(...)`` gives from the same variables."""
    files = sorted(p for p in real_file().rglob("*") if p.is_file() and (".cdf" in p.name or ".cef" in p.name))
    assert len(files) >= 15
    for path in files:
        dataset = heliohub.read_file(path, include_paths=demo.include_paths())
        _same_build(dataset, _public_dataset(dataset))


def test_what_the_fast_construction_does_not_handle_is_left_to_xarrays_constructor():
    import xarray as xr

    from heliohub.readers.dataset_construction import build_dataset

    time = xr.Variable(("time",), np.array(["2001-01-01", "2001-01-02"], dtype="datetime64[ns]"))
    label = xr.Variable(("component",), np.array(["x", "y", "z"], dtype=object), {"long_name": "axis"})
    field_ = xr.Variable(("time", "component"), np.ones((2, 3), "f4"), {"units": "nT"})
    cases = [({"B": field_, "component": label}, {"time": time}),  # a data variable named as its dimension
             ({"B": field_}, {"time": time, "component": label}),
             ({}, {"time": time}),
             ({"time2": time, "time": field_}, {})]  # a variable named as its dimension, not one-dimensional
    for data_vars, coords in cases:
        _same_build(build_dataset(dict(data_vars), dict(coords), {"a": 1}),
                    xr.Dataset(data_vars, coords=coords, attrs={"a": 1}))
    wrong = [({"B": xr.Variable(("time",), np.ones(3))}, {"time": time}),  # sizes in conflict
             ({"time": time}, {"time": time})]  # a name given twice
    for data_vars, coords in wrong:
        with pytest.raises(ValueError) as public:
            xr.Dataset(data_vars, coords=coords)
        with pytest.raises(ValueError) as fast:
            build_dataset(dict(data_vars), dict(coords), {})
        assert str(fast.value) == str(public.value)
