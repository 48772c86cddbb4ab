"""The archive store: ingest into Zarr (Icechunk repositories) on a real S3 endpoint and in a local folder."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import heliohub
from heliohub.store import access, catalog, layout, location, merge, provenance, time_index
from heliohub.store.ingest import ingest
from heliohub.store.key_index import KeyIndex
from heliohub.store.layout import VARIABLE_ORDER
from heliohub.store.location import BRANCH, StoreLocation

from .conftest import CEF, CEF_HEADERS, DATA, real_file
from .store_helpers import (
    ROOT,
    assert_same_contents,
    assert_time_index,
    chunk_gets,
    contents,
    open_stored,
    requests_seen,
    run_ingest,
    without_provenance,
)

FGM = "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"
# Frames of another size than the first file of their dataset: set aside with that reason (see the store docs).
SIZE_REFUSALS = {"swap_lv1_20140606_000113.fits", "mdi_fd_Ic_6h_01d.5871.0000_s.fits"}


def fgm_parts(folder: Path, parts: int, *, version: str = "01", edit=None) -> list[Path]:
    """The real 3-day FGM CEF file cut into ``parts`` consecutive files, each named as the archive would."""
    text = real_file("cluster", "cef", FGM).read_bytes()
    header_end = text.index(b"\n", text.index(b"DATA_UNTIL")) + 1
    lines = [line for line in text[header_end:].split(b"\r\n") if line.strip()]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(np.array_split(np.arange(len(lines)), parts)):
        body = [lines[i] for i in chunk]
        if edit is not None:
            body = [edit(line) for line in body]
        first, last = (body[i].split(b",")[0].decode()[:19].replace("-", "").replace(":", "").replace("T", "_")
                       for i in (0, -1))
        path = folder / f"C4_CP_FGM_SPIN__{first}_{last}_V{version}.cef"
        path.write_bytes(text[:header_end] + b"\r\n".join(body) + b"\r\n")
        paths.append(path)
        assert index < parts
    return paths


@pytest.fixture(params=["s3", "folder"])
def archive(request, tmp_path):
    """The archive store, on the S3 endpoint and in a local folder."""
    if request.param == "s3":
        return request.getfixturevalue("s3_archive")
    return str(tmp_path / "store")


def test_ingest_everything_and_read_back_what_the_files_hold(archive, cef_headers):
    report = ingest([DATA], archive, include_paths=cef_headers, progress=False)
    refused = {Path(f.path).name for f in report.refused}
    assert refused == SIZE_REFUSALS, report.summary()
    for result in report.refused:
        assert "--dataset-id" in result.reason
    ingested = [f for f in report.files if f.status == "ingested"]
    assert len(ingested) == 22
    entries = catalog.read_catalog(StoreLocation.resolve(archive))
    assert sorted(entries) == report.datasets
    for result in ingested:
        expected = heliohub.read_file(result.path, include_paths=cef_headers)
        stored = open_stored(archive, result.dataset_id)
        assert_time_index(stored)
        _opened_for_merge_as_xarray_decodes_it(archive, result.dataset_id)
        if entries[result.dataset_id]["files"] == 1:
            xr.testing.assert_identical(without_provenance(stored), without_provenance(expected))
            assert without_provenance(stored).attrs == expected.attrs
            assert stored.attrs[VARIABLE_ORDER] == list(expected.variables)
            opened = heliohub.open_dataset(result.dataset_id, archive=archive)
            assert list(opened.variables) == list(expected.variables)  # the file's order, every time
        else:  # C4_CP_FGM_SPIN: a CDF (June 2001) and a CEF file (July 2001) of one dataset
            part = stored.isel(time=np.isin(stored.time.values, expected.time.values))
            xr.testing.assert_equal(part.drop_attrs(), expected.drop_attrs())
    fgm = entries["C4_CP_FGM_SPIN"]
    assert fgm["files"] == 2 and fgm["records"] == 14772 + 897
    assert fgm["start"] == "2001-06-11T20:00:03.912000000" and fgm["end"] == "2001-07-09T06:24:01.171000000"
    assert fgm["mission"] == "Cluster" and fgm["instrument"] and fgm["acknowledgement"]
    b = next(v for v in fgm["variables"] if v["name"] == "B_vec_xyz_gse__C4_CP_FGM_SPIN")
    assert b["units"] == "nT" and b["shape"] == [14772 + 897, 3] and b["description"]
    cdf = "C4_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"
    files = heliohub.store.access.file_table("C4_CP_FGM_SPIN", archive=archive)
    assert set(files["file"]) == {FGM, cdf} and files["current"].all() and set(files["status"]) == {"ingested"}
    assert all(len(c) == 64 for c in files["checksum"]) and (files["size"] > 0).all()
    assert fgm["nbytes"] > 0 and fgm["stored_bytes"] > 0


def _opened_for_merge_as_xarray_decodes_it(archive: str, dataset_id: str) -> None:
    """What a merge opens of a stored group (its times viewed lazily, nothing read) is what xarray's decoding gives."""
    session = StoreLocation.resolve(archive).repository(dataset_id).readonly_session(branch=BRANCH)
    ours = merge.open_for_merge(session.store)
    assert not ours.xindexes
    xarrays = xr.open_zarr(session.store, consolidated=False, chunks=None, create_default_indexes=False,
                           decode_timedelta=xr.coders.CFTimedeltaCoder(decode_via_units=False))
    xr.testing.assert_identical(ours.load(), xarrays.load())
    for name, variable in xarrays.variables.items():
        assert ours[name].encoding.get("units") == variable.encoding.get("units"), name


def test_files_in_any_order_give_one_sorted_dataset(archive, tmp_path, cef_headers, monkeypatch):
    monkeypatch.setattr(layout, "CHUNK_BYTES", 8192)  # many chunks, so merges rewrite from the middle
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)
    parts = fgm_parts(tmp_path / "parts", 6)
    for group in ([parts[4]], [parts[1], parts[5]], [parts[0]], [parts[3], parts[2]]):
        report = ingest(group, archive, include_paths=cef_headers, progress=False)
        assert report.ok, report.summary()
    stored = open_stored(archive, "C4_CP_FGM_SPIN")
    assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    xr.testing.assert_identical(without_provenance(stored).drop_attrs(), whole.drop_attrs())
    assert sorted(e.file for e in stored.encoding["files"]) == sorted(p.name for p in parts)


def test_consecutive_files_are_written_chunk_by_chunk_from_their_own_arrays(archive, tmp_path, cef_headers,
                                                                           monkeypatch):
    monkeypatch.setattr(layout, "CHUNK_BYTES", 8192)  # chunks and writes that straddle the files
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)

    def not_merged_in_memory(datasets):
        raise AssertionError("consecutive files were merged in memory")

    monkeypatch.setattr(merge, "combine", not_merged_in_memory)
    parts = fgm_parts(tmp_path / "parts", 5)
    report = ingest(parts[::-1], archive, include_paths=cef_headers, progress=False)
    assert report.ok, report.summary()
    stored = open_stored(archive, "C4_CP_FGM_SPIN")
    assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    xr.testing.assert_identical(without_provenance(stored).drop_attrs(), whole.drop_attrs())
    assert catalog.read_catalog(StoreLocation.resolve(archive))["C4_CP_FGM_SPIN"]["records"] == whole.sizes["time"]


@pytest.mark.slow
def test_files_after_the_stored_records_are_streamed_in_as_a_merge_would_write_them(tmp_path, cef_headers,
                                                                                    monkeypatch):
    # A daily ingest, and every batch after the first of a long one: records later than every stored one are
    # written chunk by chunk from the files' own arrays (the stored last chunk read back), not merged in memory.
    monkeypatch.setattr(layout, "CHUNK_BYTES", 8192)  # chunks that straddle the files and the batches
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)
    parts = fgm_parts(tmp_path / "parts", 6)
    batches = ([parts[0], parts[1]], [parts[2]], [parts[3], parts[4]], [parts[5]])
    with monkeypatch.context() as merging:
        merging.setattr(merge, "after_the_end", lambda *arguments: False)
        for batch in batches:
            assert ingest(batch, tmp_path / "merged", include_paths=cef_headers, progress=False).ok

    def not_merged_in_memory(datasets):
        raise AssertionError("files after the stored records were merged in memory")

    monkeypatch.setattr(merge, "combine", not_merged_in_memory)
    for batch in batches:
        assert ingest(batch, tmp_path / "streamed", include_paths=cef_headers, progress=False).ok
    assert_same_contents(contents(tmp_path / "streamed"), contents(tmp_path / "merged"))
    stored = open_stored(tmp_path / "streamed", "C4_CP_FGM_SPIN")
    assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    xr.testing.assert_identical(without_provenance(stored).drop_attrs(), whole.drop_attrs())


def test_an_append_reads_the_last_chunks_not_the_whole_dataset(s3_archive, tmp_path, cef_headers, monkeypatch):
    # A daily append to a dataset of twenty years must not read its twenty years: the group's time index says
    # where the new records go, and only the chunks they land in are read back.
    monkeypatch.setattr(layout, "CHUNK_BYTES", 8192)
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)
    # the small chunks stand for 4 MB ones, too large to be kept inside a manifest: objects the log can count
    monkeypatch.setattr(location, "INLINE_CHUNK_BYTES", 512)
    parts = fgm_parts(tmp_path / "parts", 6)
    assert ingest(parts[:5], s3_archive, include_paths=cef_headers, progress=False).ok
    stored = open_stored(s3_archive, "C4_CP_FGM_SPIN")
    along = [name for name, v in stored.variables.items() if v.dims[:1] == ("time",)]
    chunks = sum(-(-stored.sizes["time"] // stored[name].encoding["chunks"][0]) for name in along)
    with requests_seen() as appending:
        assert ingest([parts[5]], s3_archive, include_paths=cef_headers, progress=False).ok
    # each array's last, partial chunk (written again whole with the new records), the time index's last chunk
    # and the last stored time: at most two reads per array
    assert chunk_gets(appending) <= 2 * len(along) < chunks / 4, appending
    stored = open_stored(s3_archive, "C4_CP_FGM_SPIN")
    assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    xr.testing.assert_identical(without_provenance(stored).drop_attrs(), whole.drop_attrs())


def test_an_axis_whose_index_does_not_fit_it_is_indexed_anew_at_its_next_merge(tmp_path, cef_headers, monkeypatch):
    # An index that does not describe its axis (written by something else, or damaged): the first merge after
    # indexes the axis whole, and later merges continue from that.
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)
    parts = fgm_parts(tmp_path / "parts", 4)
    assert ingest(parts[:2], tmp_path / "store", include_paths=cef_headers, progress=False).ok
    session = StoreLocation.resolve(tmp_path / "store").repository("C4_CP_FGM_SPIN").writable_session(BRANCH)
    group = zarr.open_group(session.store, mode="r+")
    numbers = group[f"{time_index.index_path('time')}/chunks/numbers"]
    numbers.resize((numbers.shape[0] - 1, numbers.shape[1]))
    session.commit("an index one chunk short")
    for part in parts[2:]:
        assert ingest([part], tmp_path / "store", include_paths=cef_headers, progress=False).ok
        stored = open_stored(tmp_path / "store", "C4_CP_FGM_SPIN")
        assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    xr.testing.assert_identical(without_provenance(stored).drop_attrs(), whole.drop_attrs())


@pytest.mark.slow
def test_an_ingest_and_an_append_in_a_fresh_process_do_not_import_dask(tmp_path, cef_headers):
    # xarray imports dask.array (and scipy) when asked whether a numpy array is a dask one: ~0.5 s of a CLI ingest
    first, second, third = fgm_parts(tmp_path / "parts", 3)
    script = ("import json, sys, heliohub; headers = json.loads(sys.argv[1]); "
              "a = heliohub.ingest(sys.argv[2:4], sys.argv[5], include_paths=headers, progress=False); "
              "b = heliohub.ingest([sys.argv[4]], sys.argv[5], include_paths=headers, progress=False); "
              "print(a.ok and b.ok, 'dask.array' in sys.modules)")
    arguments = [json.dumps(cef_headers), str(first), str(second), str(third), str(tmp_path / "store")]
    result = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "False"]


@pytest.mark.slow
def test_an_ingest_in_batches_gives_the_store_of_one_batch(tmp_path, cef_headers):
    # Memory stays bounded whatever the number of files: what has been read is written once the files' arrays
    # reach the batch size. One file per batch gives what one batch gives.
    commits: list[str] = []
    whole = ingest([DATA], tmp_path / "whole", include_paths=cef_headers, progress=False,
                   on_commit=commits.append)
    assert sorted(commits) == whole.datasets
    commits.clear()
    batched = ingest([DATA], tmp_path / "batched", include_paths=cef_headers, progress=False, batch_bytes=1,
                     on_commit=commits.append)
    assert commits.count("C4_CP_FGM_SPIN") == 2  # its CDF and its CEF file, in two batches
    assert [(f.path, f.status, f.reason) for f in batched.files] == [(f.path, f.status, f.reason) for f in whole.files]
    assert_same_contents(contents(tmp_path / "batched"), contents(tmp_path / "whole"))

    def days_later(days: int):
        def edit(line: bytes) -> bytes:
            stamp, rest = line.split(b",", 1)
            return f"{np.datetime64(stamp.decode().rstrip('Z')) + np.timedelta64(days, 'D')}Z,".encode() + rest
        return edit

    # the real 3-day file, and copies of it 3 and 6 days later: 0.7 MB of arrays each
    files = [fgm_parts(tmp_path / f"later{days}", 1, edit=days_later(days))[0] for days in (0, 3, 6)]
    cli = run_ingest(*map(str, files), "--archive", str(tmp_path / "cli"), "--batch-mb", "1", "--json",
                     *[f"--include-path={p}" for p in cef_headers])
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr.count("committed C4_CP_FGM_SPIN") == 2  # a batch of two files, then one
    unchanged = run_ingest(*map(str, files), "--archive", str(tmp_path / "cli"), "--json",
                           *[f"--include-path={p}" for p in cef_headers])
    assert unchanged.returncode == 0 and "committed" not in unchanged.stderr  # nothing to commit


def test_shuffled_and_repeated_input_gives_the_identical_store(tmp_path, cef_headers):
    parts = fgm_parts(tmp_path / "parts", 4)
    files = [*parts, *sorted((DATA / "cluster" / "cdf").glob("*.cdf")), *parts[:2]]
    ingest(files, tmp_path / "a", include_paths=cef_headers, progress=False)
    shuffled = files + files[::2]
    random.Random(3).shuffle(shuffled)
    half = len(shuffled) // 2
    ingest(shuffled[:half], tmp_path / "b", include_paths=cef_headers, progress=False)
    report = ingest(shuffled[half:], tmp_path / "b", include_paths=cef_headers, progress=False)
    assert report.ok
    again = ingest(files, tmp_path / "b", include_paths=cef_headers, progress=False)
    assert {f.status for f in again.files} == {"unchanged"}
    assert_same_contents(contents(tmp_path / "a"), contents(tmp_path / "b"))


def test_a_newer_version_replaces_the_older_records(archive, tmp_path, cef_headers):
    old = fgm_parts(tmp_path / "v1", 3)
    ingest(old, archive, include_paths=cef_headers, progress=False)
    # Version 02 of the middle delivery: every field magnitude 1 nT larger (the file is made here from the real one).
    def bump(line: bytes) -> bytes:
        fields = line.split(b",")
        fields[5] = b"%.3f" % (float(fields[5]) + 1)
        return b",".join(fields)

    new = fgm_parts(tmp_path / "v2", 3, version="02", edit=bump)[1]
    report = ingest([new], archive, include_paths=cef_headers, progress=False)
    assert [f.status for f in report.files] == ["replaced"]
    stored = open_stored(archive, "C4_CP_FGM_SPIN")
    assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    middle = heliohub.read_file(new, include_paths=cef_headers).time.values
    inside = np.isin(stored.time.values, middle)
    assert stored.sizes["time"] == whole.sizes["time"] and inside.sum() == middle.size
    magnitude = "B_mag__C4_CP_FGM_SPIN"
    np.testing.assert_allclose(stored[magnitude].values[inside], whole[magnitude].values[inside] + 1, rtol=1e-6)
    np.testing.assert_array_equal(stored[magnitude].values[~inside], whole[magnitude].values[~inside])
    files = sorted(e.file for e in stored.encoding["files"])
    assert files == sorted([old[0].name, new.name, old[2].name])
    again = ingest([old[1]], archive, include_paths=cef_headers, progress=False)
    assert again.refused and "already holds version 02" in again.refused[0].reason
    # What an ingest reads of the provenance (without decoding every row) agrees with the whole table's current rows.
    session = StoreLocation.resolve(archive).repository("C4_CP_FGM_SPIN").readonly_session(branch=BRANCH)
    root = zarr.open_group(session.store, mode="r")
    current = provenance.current(root, "C4")
    asked = {new.name.split("_V")[0], "no such delivery"}
    known = provenance.known_files(root, "C4", asked)
    assert known.count == len(current) == 3
    assert known.by_key == {e.key: e for e in current if e.key in asked} and len(known.by_key) == 1
    ranks = sorted(provenance.rank(e) for e in current)
    assert known.newest(set()) == ranks[-1]
    assert known.newest({e.key for e in current if provenance.rank(e) == ranks[-1]}) == ranks[-2]


def _delivery(day: int, version: int, shift_hours: int = 0) -> provenance.FileEntry:
    """A provenance entry of a daily file (its start moved by ``shift_hours``), as an ingest makes it: made up, as
    only the table's bookkeeping is under test here."""
    start = np.datetime64("2001-01-01T00", "h") + np.timedelta64(24 * day + shift_hours, "h")
    key = f"C1_CP_FGM_DAILY__{day:05d}"
    return provenance.FileEntry(file=f"{key}_V{version:02d}.cdf", key=key, version=f"{version:02d}",
                                checksum=f"{day:032x}{version:032x}", records=24,
                                spans={"time": (str(start), str(start + np.timedelta64(23, "h")))}, size=1000)


@pytest.mark.slow
def test_what_an_ingest_reads_of_the_provenance_agrees_with_every_row():
    """known_files, through the key index and the newest files kept in the table's attributes, gives what reading
    every row gives, after each of many appends: new deliveries, new versions (some newer in time, some older, so
    that the newest kept files leave), many at once (the index rebuilt larger), for random sets of deliveries."""
    rng = random.Random(19)
    root = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    versions: dict[int, int] = {}
    newest_days: list[int] = []
    for step in range(60):
        if step % 4 == 3:  # the newest deliveries again, now starting two months earlier: they leave the newest
            days, shift = newest_days[:rng.choice([3, 10, 20])], -24 * 60
        elif step % 3:
            days, shift = rng.sample(range(max(1, 40 * step)), min(20, max(1, 40 * step))), 0
        else:
            days, shift = list(range(40 * step, 40 * step + (900 if step == 30 else 40))), 0
        entries = []
        for day in days:
            versions[day] = versions.get(day, 0) + 1
            status = "replaced" if versions[day] > 1 else "ingested"
            entries.append((_delivery(day, versions[day], shift or rng.choice([-30, 0, 0, 30])), status))
        provenance.append(root, entries, None, len(versions))
        table = provenance._table(root)
        ranked = provenance._known_by_reading(table, "the test's table", set()).ranked
        newest_days = [int(key.rsplit("__", 1)[1]) for _, (key, _, _) in ranked[:24]]
        asked = {"C1_CP_FGM_DAILY__99999"} | {f"C1_CP_FGM_DAILY__{d:05d}" for d in
                                              rng.sample(sorted(versions), min(30, len(versions)))}
        asked |= {key for _, (key, _, _) in ranked[:rng.choice([0, 5, 16, 24])]}
        fast = provenance.known_files(root, "the test's table", asked)
        whole = provenance._known_by_reading(table, "the test's table", asked)
        assert fast.count == whole.count == len(versions)
        assert fast.by_key == whole.by_key
        for leaving_out in (set(), set(list(asked)[:5]), asked, {r[1][0] for r in ranked[:16]} & asked):
            assert fast.newest(leaving_out) == whole.newest(leaving_out), (step, leaving_out)
    index = root[provenance.INDEX]
    assert index.shape[0] > 1024 and int(index.attrs["rows"]) == len(provenance.current(root, "t") or []) + sum(
        v - 1 for v in versions.values())  # rebuilt larger once the 900 came


def test_a_renamed_copy_is_a_delivery_of_its_own_whose_records_are_kept_once(tmp_path):
    """"Unchanged" means a delivery stored with the same content; the same bytes under another delivery's name go
    in as that delivery (a row of their own), and their records, repeats, are kept once."""
    good = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    copy = tmp_path / "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_COPY_V070906.cdf"
    shutil.copyfile(good, copy)
    store = tmp_path / "store"
    assert [f.status for f in ingest([good], store, progress=False).files] == ["ingested"]
    assert [f.status for f in ingest([good], store, progress=False).files] == ["unchanged"]
    assert [f.status for f in ingest([copy], store, progress=False).files] == ["ingested"]
    stored = heliohub.open_dataset("C1_CP_FGM_SPIN", archive=store)
    assert stored.sizes["time"] == heliohub.read_file(good).sizes["time"]
    assert len(heliohub.file_table("C1_CP_FGM_SPIN", archive=store)) == 2


def _one_delivery_stored_and_a_copy(tmp_path: Path) -> tuple[Path, Path, Path, object]:
    """A real Cluster FGM file ingested into a folder store, a copy of it under another delivery's name, the store
    and the dataset's repository."""
    good = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    copy = tmp_path / "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_COPY_V070906.cdf"
    shutil.copyfile(good, copy)
    store = tmp_path / "store"
    assert ingest([good], store, progress=False).ok
    return good, copy, store, StoreLocation.resolve(store).repository("C1_CP_FGM_SPIN")


def test_a_damaged_key_index_is_read_around_and_built_again(tmp_path, caplog):
    """The key index is derived from the provenance table: chunks of it that do not decode (damage written through
    the store's own API) make an ingest read every row, saying so, and the next append builds it again."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    good, copy, store, repo = _one_delivery_stored_and_a_copy(tmp_path)
    session = repo.writable_session(BRANCH)
    chunk = next(k for k in sync(_listed(session.store, provenance.INDEX)) if "/c/" in k)
    sync(session.store.set(chunk, default_buffer_prototype().buffer.from_bytes(b"not zstd at all")))
    session.commit("a damaged chunk of the key index")
    with caplog.at_level("WARNING", logger="heliohub.store.provenance"):
        assert [f.status for f in ingest([good], store, progress=False).files] == ["unchanged"]
        assert "does not read" in caplog.text
        assert [f.status for f in ingest([copy], store, progress=False).files] == ["ingested"]
    root = zarr.open_group(repo.readonly_session(branch=BRANCH).store, mode="r")
    known = provenance.known_files(root, "C1", {copy.name[:-12], "absent"})
    assert set(known.by_key) == {copy.name[:-12]} and known.count == 2
    index = KeyIndex.open(root, provenance.INDEX, 2)  # built again, whole
    assert index is not None and index.row(good.name[:-12]) == 0 and index.row(copy.name[:-12]) == 1


def test_a_table_written_before_the_key_index_takes_ingests_and_gains_it(tmp_path):
    """A provenance table as the release before the key index wrote it (no index, no kept newest files): an ingest
    reads it whole, and its append adds both."""
    good, copy, store, repo = _one_delivery_stored_and_a_copy(tmp_path)
    session = repo.writable_session(BRANCH)
    root = zarr.open_group(session.store, mode="r+")
    del root[provenance.INDEX]
    del root[provenance.FILES].attrs[provenance.NEWEST]
    session.commit("the table as the release before the index wrote it")
    assert [f.status for f in ingest([good], store, progress=False).files] == ["unchanged"]
    assert [f.status for f in ingest([copy], store, progress=False).files] == ["ingested"]
    root = zarr.open_group(repo.readonly_session(branch=BRANCH).store, mode="r")
    assert KeyIndex.open(root, provenance.INDEX, 2) is not None
    assert [item[1] for item in root[provenance.FILES].attrs[provenance.NEWEST]] == sorted(
        [good.name[:-12], copy.name[:-12]], reverse=True)  # one start: the later key ranks first


async def _listed(store: object, prefix: str) -> list[str]:
    return [key async for key in store.list_prefix(prefix)]


def test_a_store_removed_and_made_again_in_one_process_takes_ingests(tmp_path):
    """Repositories are opened once per process (location.repository): one removed since is opened again."""
    good = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    for _ in range(2):
        assert ingest([good], tmp_path / "store", progress=False).ok
        assert list(heliohub.search(archive=tmp_path / "store")["dataset_id"]) == ["C1_CP_FGM_SPIN"]
        shutil.rmtree(tmp_path / "store")


def test_bad_files_are_set_aside_and_the_rest_go_in(tmp_path, s3_archive, cef_headers):
    good = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    data = good.read_bytes()
    truncated = tmp_path / "C2_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"
    truncated.write_bytes(data[: len(data) // 2])
    bad_gzip = tmp_path / "C3_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf.gz"
    bad_gzip.write_bytes(gzip.compress(data)[:-100])
    notes = tmp_path / "notes.cdf"
    notes.write_text("not a CDF at all\n")
    result = run_ingest(str(good), str(truncated), str(bad_gzip), str(notes), "--archive", s3_archive, "--json")
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    statuses = {Path(f["path"]).name: (f["status"], f["reason"]) for f in summary["files"]}
    assert statuses[good.name][0] == "ingested"
    assert "corrupt or truncated CDF" in statuses[truncated.name][1]
    assert "gzip" in statuses[bad_gzip.name][1]
    assert "not a file heliohub can read" in statuses[notes.name][1]
    assert summary["counts"] == {"ingested": 1, "refused": 3}
    assert list(catalog.read_catalog(StoreLocation.resolve(s3_archive))) == ["C1_CP_FGM_SPIN"]


def _kill_after(args: list[str], commits: int) -> None:
    """Start ``heliohub ingest`` and SIGKILL it once it reports ``commits`` commits (0: once it starts writing its
    first batch, before any commit)."""
    process = subprocess.Popen([sys.executable, "-m", "heliohub.cli", "--verbose", "ingest", *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = 0
    for line in process.stderr:
        seen += line.startswith("heliohub ingest: committed")
        if seen >= commits and (commits or "writing a batch" in line):
            break
    else:
        pytest.fail(f"heliohub ingest ended before {commits} commit(s) (exit {process.wait()})")
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()


@pytest.fixture(scope="module")
def kill_inputs(tmp_path_factory, s3_endpoint):
    """The ingest the kill tests interrupt, and the store an uninterrupted run of it gives (made once)."""
    import boto3

    real_file("cluster")
    parts = fgm_parts(tmp_path_factory.mktemp("parts"), 3)
    inputs = [str(p) for p in parts] + [str(DATA / "cluster"), str(DATA / "solar_orbiter")]
    headers = [str(p) for p in CEF_HEADERS]
    options = [*inputs, *[arg for folder in headers for arg in ("--include-path", folder)]]
    env = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "heliohub-test",
           "AWS_SECRET_ACCESS_KEY": "heliohub-test", "AWS_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="heliohub-test",
                 aws_secret_access_key="heliohub-test").create_bucket(Bucket="archive-kill-clean")
    clean = "s3://archive-kill-clean/store"
    assert run_ingest(*options, "--archive", clean, env=env).returncode == 0
    return options, clean


@pytest.mark.parametrize("commits", [0, 1, 4, 9])
def test_a_killed_ingest_completes_on_rerun_to_what_a_clean_run_gives(s3_archive, kill_inputs, commits):
    options, clean = kill_inputs
    _kill_after([*options, "--archive", s3_archive], commits)
    # whatever the moment of the kill, the catalog lists exactly the datasets that were committed
    store = StoreLocation.resolve(s3_archive)
    fs, root = store.fsspec()
    names = [path.rsplit("/", 1)[-1] for path in fs.ls(root, refresh=True)] if fs.exists(root) else []
    committed = {name for name in names if name != "_catalog" and catalog.dataset_row(store, name) is not None}
    access.clear_caches()
    assert set(heliohub.search(archive=store)["dataset_id"]) == committed
    assert len(committed) >= commits
    rerun = run_ingest(*options, "--archive", s3_archive)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_same_contents(contents(s3_archive), contents(clean))


def test_concurrent_ingests_of_one_dataset_are_serialised(archive, tmp_path, cef_headers):
    parts = fgm_parts(tmp_path / "parts", 6)
    headers = [arg for folder in cef_headers for arg in ("--include-path", folder)]
    processes = [subprocess.Popen([sys.executable, "-m", "heliohub.cli", "ingest", *map(str, group), *headers,
                                   "--archive", archive, "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for group in (parts[0::2], parts[1::2])]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n---\n".join(o[1][-3000:] for o in outputs)
    stored = open_stored(archive, "C4_CP_FGM_SPIN")
    assert_time_index(stored)
    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=cef_headers)
    xr.testing.assert_identical(without_provenance(stored).drop_attrs(), whole.drop_attrs())
    assert len(stored.encoding["files"]) == 6
    assert catalog.read_catalog(StoreLocation.resolve(archive))["C4_CP_FGM_SPIN"]["files"] == 6


def test_concurrent_ingests_of_different_datasets_both_go_in(archive, tmp_path):
    # each dataset is a repository of its own, written under its own lock; the catalog's rows are committed
    # one after the other (a commit that lost the race is made again)
    cdfs = sorted((DATA / "cluster" / "cdf").glob("C[12]_CP_FGM_SPIN*.cdf"))
    processes = [subprocess.Popen([sys.executable, "-m", "heliohub.cli", "ingest", str(path), "--archive", archive,
                                   "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for path in cdfs]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n---\n".join(o[1][-3000:] for o in outputs)
    entries = catalog.read_catalog(StoreLocation.resolve(archive))
    assert sorted(entries) == ["C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN"]
    for path in cdfs:
        dataset_id = path.name.split("__")[0]
        stored = open_stored(archive, dataset_id)
        xr.testing.assert_identical(without_provenance(stored).drop_attrs(), heliohub.read_file(path).drop_attrs())
        assert entries[dataset_id]["files"] == 1


def test_archive_location_from_the_environment(s3_archive, monkeypatch):
    monkeypatch.setenv("HELIOHUB_ARCHIVE", s3_archive)
    path = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    assert ingest([path], progress=False).ok
    assert "C1_CP_FGM_SPIN" in catalog.read_catalog(StoreLocation.resolve(None))


def test_no_archive_or_a_wrong_one_says_which_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("HELIOHUB_ARCHIVE", raising=False)
    with pytest.raises(heliohub.HeliohubError, match="HELIOHUB_ARCHIVE"):
        ingest([CEF], progress=False)
    with pytest.raises(heliohub.HeliohubError, match="only folders and s3:// URLs"):
        ingest([CEF], "gs://somewhere", progress=False)


def _cluster(distributed):
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None)


@pytest.mark.slow
def test_files_are_read_in_parallel_on_a_dask_cluster(tmp_path, cef_headers):
    distributed = pytest.importorskip("dask.distributed")
    parts = fgm_parts(tmp_path / "parts", 4)
    # the later parts first: the earlier ones then land before the stored records (fetched, merged by the client)
    ingests = (parts[2:], [*parts[:2], *sorted((DATA / "cluster" / "cdf").glob("*.cdf"))])
    with _cluster(distributed) as cluster, distributed.Client(cluster) as client:
        # batches of about two files, handed on in the files' order whatever order the workers finish in
        reports = [ingest(files, tmp_path / "parallel", include_paths=cef_headers, client=client, progress=False,
                          batch_bytes=400_000) for files in ingests]
        workers = client.run(lambda: True)
    assert all(report.ok for report in reports) and len(workers) == 2
    for files in ingests:
        ingest(files, tmp_path / "serial", include_paths=cef_headers, progress=False)
    assert_same_contents(contents(tmp_path / "parallel"), contents(tmp_path / "serial"))


@pytest.mark.slow
def test_appends_read_on_a_cluster_are_written_by_its_workers(s3_archive, tmp_path, cef_headers, monkeypatch,
                                                              caplog):
    # Icechunk's distributed writes: every batch after a dataset's first goes in as parts (runs of whole chunks of
    # one array) that the workers write into forks of the client's session; the client merges them, writes the
    # time index and provenance, and commits once. It writes no chunk itself, and the store is the serial one.
    # On the S3 endpoint, which the workers write to as well.
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setattr(layout, "CHUNK_BYTES", 8192)  # several chunks per array and batch: several parts each
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)
    parts = fgm_parts(tmp_path / "parts", 6)
    for store in (tmp_path / "serial", s3_archive):
        assert ingest(parts[:1], store, include_paths=cef_headers, progress=False).ok
    assert ingest(parts[1:], tmp_path / "serial", include_paths=cef_headers, progress=False).ok

    def written_here(chunks):
        raise AssertionError("the client wrote chunks of files read on the cluster")

    monkeypatch.setattr(merge, "set_whole_chunks", written_here)  # here only: the workers are other processes
    caplog.set_level("INFO", logger="heliohub.store.distributed")
    with _cluster(distributed) as cluster, distributed.Client(cluster) as client:
        report = ingest(parts[1:], s3_archive, include_paths=cef_headers, client=client, progress=False,
                        batch_bytes=400_000)
    assert report.ok, report.summary()
    written = [r.getMessage() for r in caplog.records if "written on 2 worker thread(s)" in r.getMessage()]
    assert len(written) >= 2 and all(int(message.split()[0]) > 7 for message in written), written  # 7 arrays
    assert_same_contents(contents(s3_archive), contents(tmp_path / "serial"))
    assert_time_index(open_stored(s3_archive, "C4_CP_FGM_SPIN"))


@pytest.mark.slow
def test_a_worker_killed_during_a_distributed_ingest_loses_nothing(tmp_path, cef_headers):
    # One of the two workers dies once the first batch is committed, holding files of the next batches read
    # ahead: Dask reads them again, the parts are written, and the store is what a serial ingest gives.
    distributed = pytest.importorskip("dask.distributed")
    parts = fgm_parts(tmp_path / "parts", 6)
    assert ingest(parts, tmp_path / "serial", include_paths=cef_headers, progress=False).ok
    with _cluster(distributed) as cluster, distributed.Client(cluster) as client:
        killed = []

        def kill_a_worker(dataset_id):
            if not killed:
                killed.append(min(client.run(os.getpid).values()))
                os.kill(killed[0], signal.SIGKILL)

        report = ingest(parts, tmp_path / "cluster", include_paths=cef_headers, client=client, progress=False,
                        batch_bytes=400_000, on_commit=kill_a_worker)
        assert killed and killed[0] not in client.run(os.getpid).values()
    assert report.ok, report.summary()
    assert_same_contents(contents(tmp_path / "cluster"), contents(tmp_path / "serial"))


def test_an_explicit_dataset_id_overrides_the_files(tmp_path):
    small = real_file("soho", "mdi", "mdi_fd_Ic_6h_01d.5871.0000_s.fits")
    result = run_ingest(str(small), "--archive", str(tmp_path / "store"), "--dataset-id", "SOHO_MDI_CONTINUUM_128",
                        "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["datasets"] == ["SOHO_MDI_CONTINUUM_128"]
    stored = open_stored(tmp_path / "store", "SOHO_MDI_CONTINUUM_128")
    assert stored["image"].shape == (1, 128, 128)
    bad = run_ingest(str(small), "--archive", str(tmp_path / "store"), "--dataset-id", "no/slashes", "--json")
    assert bad.returncode == 1 and "not a usable dataset ID" in json.loads(bad.stdout)["files"][0]["reason"]


def test_inputs_that_match_nothing_are_named(tmp_path):
    result = run_ingest(str(tmp_path / "nothing-*.cdf"), "--archive", str(tmp_path / "store"))
    assert result.returncode == 2
    assert "nothing-*.cdf: no file matches this pattern" in result.stderr and "Traceback" not in result.stderr


def test_s3_folders_and_globs_are_ingested_and_empty_ones_named(s3_archive):
    import boto3

    bucket = s3_archive.removeprefix("s3://").split("/")[0]
    s3 = boto3.client("s3")
    for name in ("C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf",
                 "C2_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"):
        s3.upload_file(str(real_file("cluster", "cdf", name)), bucket, f"incoming/cluster/{name}")
    s3.put_object(Bucket=bucket, Key="incoming/cluster/README.txt", Body=b"not an archive file")
    folder = run_ingest(f"s3://{bucket}/incoming/", "--archive", s3_archive, "--json")
    assert folder.returncode == 0, folder.stderr
    assert sorted(json.loads(folder.stdout)["datasets"]) == ["C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN"]
    pattern = run_ingest(f"s3://{bucket}/incoming/**/C1_*.cdf", "--archive", s3_archive, "--json")
    assert [f["status"] for f in json.loads(pattern.stdout)["files"]] == ["unchanged"]
    empty = run_ingest(f"s3://{bucket}/nothing/", "--archive", s3_archive)
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert f"s3://{bucket}/nothing/: no archive file" in empty.stderr


def test_a_gateway_ingest_without_a_gateway_says_which_setting(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY")}
    efw = real_file("cluster", "cdf", "C4_CP_EFW_L1_P34__20010226_051830_20010226_051836_V110503.cdf")
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "ingest", "--gateway-workers", "2",
                             "--archive", str(tmp_path / "store"), str(efw)],
                            capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot start a Dask Gateway cluster at (DASK_GATEWAY__ADDRESS is not set)" in result.stderr



def test_the_time_index_gives_each_chunks_earliest_and_latest_time_or_nothing():
    # small arrays made here: no real file has NaT in its time axis or chunks that overlap in time
    times = np.array(["2001-01-01T00:00", "2001-01-01T00:02", "2001-01-01T00:01", "2001-01-01T00:03", "NaT"],
                     dtype="datetime64[ns]")
    stamps = times.view("int64")
    entry = time_index.time_chunk_index(times, 3)
    assert (entry["chunk"], entry["records"]) == (3, 5)
    assert entry["first"] == [stamps[0], stamps[3]] and entry["last"] == [stamps[1], stamps[3]]  # NaT left out
    assert entry["coverage"] == [["2001-01-01T00:00:00.000000000", "2001-01-01T00:03:00.000000000"]]
    assert time_index.time_chunk_index(times, 2) is None  # the last chunk holds only NaT
    assert time_index.time_chunk_index(times[[3, 0, 1, 2]], 2) is None  # chunks overlap: read the axis whole


def _index_by_definition(times: np.ndarray, chunk: int) -> dict | None:
    """The time index's definition, computed on the whole axis at once, chunk after chunk: each chunk's times in
    order without NaT, its gaps (steps from the time before it or within it wider than five times its usual step
    and than a minute, the 999 widest), and the coverage cut at the 999 widest gaps of all. The oracle for the
    tests below."""
    stamps = times.astype("datetime64[ns]").view("int64")
    nat, widest = np.iinfo(np.int64).min, time_index.COVERAGE_INTERVALS - 1
    firsts, lasts, gaps = [], [], []
    for start in range(0, stamps.size, chunk):
        known = np.sort(stamps[start:start + chunk])
        known = known[known != nat]
        if not known.size or (lasts and known[0] < lasts[-1]):
            return None
        timeline = np.concatenate([np.array(lasts[-1:], dtype=np.int64), known])
        steps = np.diff(timeline)
        usual = np.median(steps[::max(1, steps.size // 100_000)]) if steps.size else np.inf
        found = [(int(timeline[i]), int(timeline[i + 1])) for i in np.flatnonzero(steps > max(5 * usual, 60e9))]
        gaps.append([list(g) for g in sorted(sorted(found, key=lambda g: (g[0] - g[1], g[0]))[:widest])])
        firsts.append(int(known[0]))
        lasts.append(int(known[-1]))
    if not firsts:
        return None
    cuts = sorted(sorted((g for chunk_gaps in gaps for g in chunk_gaps), key=lambda g: (g[0] - g[1], g[0]))[:widest])
    edges = np.array([firsts[0], *(t for g in cuts for t in g), lasts[-1]]).view("datetime64[ns]")
    return {"chunk": chunk, "records": stamps.size, "first": firsts, "last": lasts, "gaps": gaps,
            "coverage": [[str(edges[i]), str(edges[i + 1])] for i in range(0, len(edges), 2)]}


@pytest.mark.slow
def test_the_time_index_of_an_axis_in_parts_or_from_a_kept_prefix_is_the_index_of_the_whole_axis():
    # The writer gives the axis as its files' arrays (no concatenated copy), and after a merge only the records
    # from the first chunk it changed on, with the index of the chunks before it: every way gives the same entry.
    # Real axes (FGM with its gaps, EPD) and small ones made here for what no real file has: NaT, disorder, more
    # gaps than the catalog keeps (in one chunk and over many), a change of cadence.
    fgm = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=[str(p) for p in CEF_HEADERS]).time.values
    epd = heliohub.read_file(
        real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf")).time.values
    start = np.datetime64("2001-01-01", "ns")
    steps = np.full((3000, 4), 4)
    steps[:, 3] = 120 + np.arange(3000) * 37 % 500  # 3 000 gaps of 2-10 minutes, six of each width
    gappy = start + np.cumsum(steps.ravel()).astype("timedelta64[s]").astype("timedelta64[ns]")
    cadences = start + np.cumsum(np.repeat([4, 64, 4], 3000)).astype("timedelta64[s]").astype("timedelta64[ns]")
    with_nat, nat_first, nat_tail = fgm.copy(), fgm.copy(), fgm.copy()
    with_nat[[0, 17, 5000, 14771]] = nat_first[0] = nat_tail[-1500:] = np.datetime64("NaT")
    inside_chunks = fgm.reshape(-1, 12)[:, ::-1].ravel()  # out of order within each chunk of 12 (or of 1 000 +)
    disordered = np.concatenate([fgm[7000:], fgm[:7000]])
    rng = np.random.default_rng(3)
    # steps of 10-30 s and, one in five hundred, of 90-110 s: around five times the usual step, so that which steps
    # the usual one is the median of decides which are gaps
    irregular = start + np.cumsum(np.where(rng.random(600_000) < 0.002, rng.integers(90_000, 110_000, 600_000),
                                           rng.integers(10_000, 30_000, 600_000))).astype("<m8[ms]").astype("<m8[ns]")
    axes = [(times, (12, 1000, 4096, 1 << 19)) for times in (
        fgm, epd, gappy, cadences, with_nat, nat_first, nat_tail, inside_chunks, disordered, fgm[:1], fgm[:0])]
    for times, chunks in [*axes, (irregular, (1 << 18,))]:  # chunks of over 100 000 steps: a sample of them
        for chunk in chunks:
            whole = time_index.time_chunk_index(times, chunk)
            assert whole == _index_by_definition(times, chunk)
            for _ in range(3):
                cuts = np.sort(rng.integers(0, times.size + 1, size=rng.integers(1, 40)))
                assert time_index.time_chunk_index(np.split(times, cuts), chunk) == whole  # empty parts included
            if whole is None:
                continue
            for kept in {0, 1, len(whole["first"]) // 2, len(whole["first"]) - 1, len(whole["first"])} & set(
                    range(times.size // chunk + 1)):  # whole chunks only
                prefix = time_index.index_prefix(whole, kept)
                assert time_index.time_chunk_index([times[kept * chunk:]], chunk, prefix) == whole
        sorted_known = np.sort(times[~np.isnat(times)])
        expected = _index_by_definition(sorted_known, 1 << 19) if sorted_known.size else None
        assert time_index.coverage(times) == (expected["coverage"] if expected else [])
    older = {**time_index.time_chunk_index(fgm, 1000), "gaps": None}  # an index of before gaps were kept
    assert time_index.index_prefix(older, 3) is None
    assert len(time_index.coverage(gappy)) == time_index.COVERAGE_INTERVALS  # one chunk: its 999 widest gaps
    # twelve chunks: the 999 widest of all
    assert len(time_index.coverage(gappy, 1000)) == time_index.COVERAGE_INTERVALS
    assert time_index.coverage(cadences, 3000) == [[str(cadences[0]), str(cadences[-1])]]  # each chunk its own step


def test_whole_chunks_are_stored_as_zarr_stores_them():
    # chunks.py encodes through zarr's internals (capped zarr version): what it stores must be what zarr.Array
    # stores for the same values, chunk for chunk, the short last chunk padded as zarr pads it. Real FGM values.
    from heliohub.store.chunks import set_whole_chunks

    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=[str(p) for p in CEF_HEADERS])
    for name in ("B_vec_xyz_gse__C4_CP_FGM_SPIN", "range__C4_CP_FGM_SPIN", "time"):
        values = np.asarray(whole[name].values)
        values = values.view("int64") if values.dtype.kind == "M" else values
        stores = [zarr.storage.MemoryStore(), zarr.storage.MemoryStore()]
        arrays = [zarr.create_array(s, shape=values.shape, dtype=values.dtype, chunks=(1000, *values.shape[1:]),
                                    compressors=layout.encoding(whole[[name]])[name]["compressors"])
                  for s in stores]
        arrays[0][:] = values
        parts = np.array_split(values, 7)  # parts that straddle chunks, as a batch's files do
        offsets = np.cumsum([0, *map(len, parts)])
        set_whole_chunks([(arrays[1], i, time_index.pieces(parts, offsets, i * 1000, min(len(values), (i + 1) * 1000)))
                          for i in range(-(-len(values) // 1000))])
        assert stores[0]._store_dict.keys() == stores[1]._store_dict.keys()
        for key, value in stores[0]._store_dict.items():
            assert stores[1]._store_dict[key].to_bytes() == value.to_bytes(), (name, key)


@pytest.mark.parametrize("written_before", [False, True], ids=["new", "written-before-the-settings"])
def test_an_append_rewrites_one_manifest_and_stores_small_chunks_inside_it(tmp_path, written_before):
    # location.repository_config: chunks up to INLINE_CHUNK_BYTES go inside the manifest, and manifests are split
    # every MANIFEST_SPLIT_CHUNKS chunks along time, so an append writes one small manifest per array it changes
    # (not one holding the whole history) and no chunk object for a short chunk. Real FGM values, in chunks of
    # 100 records (2.4 kB: above Icechunk's default of 512 bytes), so that a short history spans several
    # manifests; a repository made with Icechunk's defaults stands for a store written before these settings.
    import icechunk

    whole = heliohub.read_file(real_file("cluster", "cef", FGM), include_paths=[str(p) for p in CEF_HEADERS])
    values = np.asarray(whole["B_vec_xyz_gse__C4_CP_FGM_SPIN"].values[:4050])
    store = StoreLocation.resolve(tmp_path / "store")
    if written_before:
        old = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "store" / "X_TEST")))
        session = old.writable_session(BRANCH)
        zarr.create_array(session.store, name="b", shape=(0, 3), dtype=values.dtype, chunks=(100, 3))
        session.commit("made with Icechunk's defaults")
    repo = store.repository("X_TEST", create=True)
    session = repo.writable_session(BRANCH)
    array = zarr.open_group(session.store, mode="a").require_array("b", shape=(0, 3), dtype=values.dtype,
                                                                   chunks=(100, 3))
    array.resize((4000, 3))
    array[:] = values[:4000]
    first = session.commit("history: 40 chunks")
    chunk_objects = sorted((tmp_path / "store" / "X_TEST" / "chunks").glob("*"))
    manifests = repo.lookup_snapshot(first).manifests
    assert chunk_objects == [] and len(manifests) == 40 // location.MANIFEST_SPLIT_CHUNKS
    assert all(m.num_chunk_refs == location.MANIFEST_SPLIT_CHUNKS for m in manifests)

    session = repo.writable_session(BRANCH)
    array = zarr.open_array(session.store, path="b", mode="r+")
    array.resize((4050, 3))
    array[4000:] = values[4000:]
    appended = session.commit("one short chunk more")
    written = [m for m in repo.lookup_snapshot(appended).manifests if m.id not in {m.id for m in manifests}]
    assert [m.num_chunk_refs for m in written] == [1]
    assert written[0].size_bytes < location.INLINE_CHUNK_BYTES
    assert sorted((tmp_path / "store" / "X_TEST" / "chunks").glob("*")) == []
    access.clear_caches()
    reread = zarr.open_array(store.repository("X_TEST").readonly_session(BRANCH).store, path="b", mode="r")
    np.testing.assert_array_equal(reread[:], values)


def test_an_hour_opened_reads_one_manifest_of_a_long_time_axis(s3_archive, monkeypatch, cef_headers):
    # Icechunk preloads, by default, every manifest of an array named like a coordinate ("time") when a session
    # starts: with manifests split along time (location.repository_config), one GET per 8 chunks of the whole
    # history at every open and every append. heliohub finds the time chunks it needs through the time index, so
    # the preload is off. The real FGM file, its time axis in 62 chunks of 256 times: 8 manifests of them.
    monkeypatch.setattr(layout, "TIME_CHUNK_RECORDS", 256)
    assert ingest([real_file("cluster", "cef", FGM)], s3_archive, include_paths=cef_headers, progress=False).ok
    access.clear_caches()
    with requests_seen() as opening:
        hour = heliohub.open_dataset("C4_CP_FGM_SPIN", "2001-07-08T12:00", "2001-07-08T13:00", archive=s3_archive)
    assert hour.sizes["time"] > 800
    manifests = [line for line in opening if re.search(r"GET \S*/manifests/", line)]
    # those of the time index's table and of the one or two time chunks the hour overlaps
    assert 1 <= len(manifests) <= 3, manifests


def test_search_reads_only_the_catalog_whatever_the_number_of_files(s3_archive, tmp_path, cef_headers):
    parts = fgm_parts(tmp_path / "parts", 6)
    for part in parts:  # six ingests, six files
        assert ingest([part], s3_archive, include_paths=cef_headers, progress=False).ok
    access.clear_caches()
    with requests_seen() as searching:
        found = heliohub.search(archive=s3_archive)
    assert list(found["dataset_id"]) == ["C4_CP_FGM_SPIN"] and found["records"][0] == 14772
    paths = [re.search(r"(?:GET|HEAD) (\S+)", line)[1] for line in searching if re.search(r"(?:GET|HEAD) ", line)]
    assert paths and all("/_catalog/" in p for p in paths), paths
    location = StoreLocation.resolve(s3_archive)
    session = location.repository("_catalog").readonly_session(branch=BRANCH)
    table = zarr.open_group(session.store, mode="r")["datasets"]
    assert {name: a.shape for name, a in table.arrays()} == {  # one row per dataset, no file lists
        name: (1, len(columns)) for name, columns in catalog.LAYOUT.items()}


def test_a_damaged_table_is_named_and_other_datasets_are_unaffected(tmp_path, cef_headers):
    archive = tmp_path / "store"
    fgm = real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    pior = real_file("cluster", "cef", "CM_CP_DWP_UT_PIOR__20080202_000000_20080203_000000_V100803.cef")
    assert ingest([fgm, pior], archive, include_paths=cef_headers, progress=False).ok
    location = StoreLocation.resolve(archive)
    session = location.repository("C1_CP_FGM_SPIN").writable_session(BRANCH)
    files = zarr.open_group(session.store, mode="r+")["heliohub/files"]
    del files["text"]  # as a foreign writer or a lost object might leave it
    session.commit("a damaged provenance table")
    with pytest.raises(heliohub.StoreDamagedError, match=r"provenance table of C1_CP_FGM_SPIN.*checksum"):
        heliohub.file_table("C1_CP_FGM_SPIN", archive=archive)
    report = ingest([fgm.with_name(fgm.name)], archive, progress=False)
    assert report.refused and "C1_CP_FGM_SPIN" in report.refused[0].reason and "checksum" in report.refused[0].reason
    access.clear_caches()
    assert heliohub.open_dataset("CM_CP_DWP_UT_PIOR", archive=archive).sizes["time"] == 167
    assert heliohub.open_dataset("C1_CP_FGM_SPIN", archive=archive).sizes["time"] == 880  # its records are whole
    session = location.repository("_catalog").writable_session(BRANCH)
    table = zarr.open_group(session.store, mode="r+")["datasets"]
    table["text_about"].resize((0, len(catalog.LAYOUT["text_about"])))
    session.commit("a damaged catalog")
    access.clear_caches()
    with pytest.raises(heliohub.StoreDamagedError, match=r"catalog.*different lengths"):
        heliohub.search(archive=archive)
    assert heliohub.open_dataset("CM_CP_DWP_UT_PIOR", archive=archive).sizes["time"] == 167
    # an ingest cannot mark its datasets pending in a damaged catalog: it stops, naming it, and commits nothing
    c2 = real_file("cluster", "cdf", "C2_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    with pytest.raises(heliohub.StoreDamagedError, match=r"catalog"):
        ingest([c2], archive, progress=False)
    if location.exists("C2_CP_FGM_SPIN"):  # made by the write that then waited for the mark: nothing committed
        assert len(list(location.repository("C2_CP_FGM_SPIN").ancestry(branch=BRANCH))) == 1
