"""A store written by heliohub 0.1 (tests/fixtures/store-0.1.0, made from four real files of data/) opens as it is,
and moves to the present layout by its next ingest or by ``heliohub upgrade``, to what a fresh ingest gives; and
``heliohub upgrade`` splits the manifests of a store written before they were split along time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import heliohub
from heliohub.store import layout, legacy, location
from heliohub.store.access import clear_caches, coverage
from heliohub.store.location import BRANCH, StoreLocation

from .conftest import real_file
from .store_helpers import ROOT, assert_same_contents, assert_time_index, contents, open_stored, without_provenance

FIXTURE = Path(__file__).parent / "fixtures" / "store-0.1.0"
HEADERS = [str(real_file("cluster", "cef", "headers", "irfu")), str(real_file("cluster", "cef", "headers", "irfu",
                                                                               "fgm"))]
FILES = {
    "C1_CP_FGM_SPIN": real_file("cluster", "cdf", "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"),
    "SOHO_EIT_195": real_file("soho", "eit", "efz20040301.000010_s.fits"),
    "C4_CP_FGM_SPIN": real_file("cluster", "cef", "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"),
    "CM_CP_DWP_UT_PIOR": real_file("cluster", "cef", "CM_CP_DWP_UT_PIOR__20080202_000000_20080203_000000_V100803.cef"),
}
C4_JUNE = real_file("cluster", "cdf", "C4_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")


@pytest.fixture
def old_store(tmp_path) -> str:
    target = tmp_path / "old"
    shutil.copytree(FIXTURE, target)
    clear_caches()
    return str(target)


def _fresh(tmp_path: Path, *extra: Path) -> str:
    store = str(tmp_path / "fresh")
    assert heliohub.ingest([*map(str, FILES.values()), *map(str, extra)], store, include_paths=HEADERS,
                           progress=False).ok
    return store


def _is_legacy(store: str, dataset_id: str) -> bool:
    session = StoreLocation.resolve(store).repository(dataset_id).readonly_session(branch=BRANCH)
    return legacy.is_legacy(zarr.open_group(session.store, mode="r").attrs)


def test_a_store_of_0_1_opens_as_it_is(old_store):
    assert all(_is_legacy(old_store, dataset_id) for dataset_id in FILES)
    assert sorted(heliohub.search(archive=old_store)["dataset_id"]) == sorted(FILES)
    for dataset_id, path in FILES.items():
        expected = heliohub.read_file(path, include_paths=HEADERS)
        opened = heliohub.open_dataset(dataset_id, archive=old_store)
        assert not set(opened.attrs) & {legacy.PROVENANCE, legacy.TIME_INDEX}
        xr.testing.assert_identical(without_provenance(opened).drop_attrs(), expected.drop_attrs())
        assert heliohub.describe(dataset_id, archive=old_store)["files"] == 1
        assert list(heliohub.file_table(dataset_id, archive=old_store)["file"]) == [Path(path).name]
    hour = heliohub.open_dataset("C4_CP_FGM_SPIN", "2001-07-08T12:00", "2001-07-08T13:00", archive=old_store)
    expected = heliohub.read_file(FILES["C4_CP_FGM_SPIN"], include_paths=HEADERS)
    xr.testing.assert_identical(hour.load().drop_attrs(),
                                expected.sel(time=slice("2001-07-08T12:00", "2001-07-08T13:00")).drop_attrs())
    intervals = coverage("C4_CP_FGM_SPIN", archive=old_store)
    assert intervals[0][0] == expected.time.values[0] and intervals[-1][1] == expected.time.values[-1]
    assert all(_is_legacy(old_store, dataset_id) for dataset_id in FILES)  # reading changed nothing


def test_the_next_ingest_moves_a_dataset_and_the_catalog_in_its_commits(old_store, tmp_path):
    report = heliohub.ingest([str(C4_JUNE)], old_store, progress=False)
    assert [f.status for f in report.files] == ["ingested"], report.summary()
    assert not _is_legacy(old_store, "C4_CP_FGM_SPIN") and _is_legacy(old_store, "C1_CP_FGM_SPIN")
    fresh = _fresh(tmp_path, C4_JUNE)
    moved, made = open_stored(old_store, "C4_CP_FGM_SPIN"), open_stored(fresh, "C4_CP_FGM_SPIN")
    assert_time_index(moved)
    xr.testing.assert_identical(without_provenance(moved), without_provenance(made))
    assert sorted(e.file for e in moved.encoding["files"]) == sorted(e.file for e in made.encoding["files"])
    clear_caches()
    assert sorted(heliohub.search(archive=old_store)["dataset_id"]) == sorted(FILES)  # the others listed as before
    assert heliohub.describe("C4_CP_FGM_SPIN", archive=old_store)["files"] == 2
    again = heliohub.ingest([str(FILES["C1_CP_FGM_SPIN"])], old_store, progress=False)
    assert [f.status for f in again.files] == ["unchanged"]
    assert not _is_legacy(old_store, "C1_CP_FGM_SPIN")  # moved by an ingest that added nothing, too


def test_heliohub_upgrade_moves_the_whole_store_to_what_a_fresh_ingest_gives(old_store, tmp_path):
    command = [sys.executable, "-m", "heliohub.cli", "upgrade", "--archive", old_store]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert first.returncode == 0 and "4 dataset(s) moved" in first.stdout, first.stderr
    assert not any(_is_legacy(old_store, dataset_id) for dataset_id in FILES)
    before = contents(old_store)
    second = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert second.returncode == 0 and "0 dataset(s) moved" in second.stdout, second.stderr
    assert_same_contents(contents(old_store), before)  # re-runnable: nothing changes
    assert_same_contents(before, contents(_fresh(tmp_path)))
    for dataset_id in FILES:
        assert_time_index(open_stored(old_store, dataset_id))
    files = heliohub.file_table("C4_CP_FGM_SPIN", archive=old_store)
    assert files["ingested"].isna().all() and (files["size"] == -1).all()  # not recorded by 0.1: said so
    assert np.array_equal(files["records"], [14772])


def _largest_manifest(store: str, name: str) -> tuple[str, int]:
    repo = StoreLocation.resolve(store).repository(name)
    tip = repo.lookup_branch(BRANCH)
    return tip, max(m.num_chunk_refs for m in repo.lookup_snapshot(tip).manifests)


def test_heliohub_upgrade_splits_the_manifests_of_a_store_written_before_they_were_split(tmp_path, monkeypatch):
    # A real CEF file in chunks of 8 kB, written as Icechunk does by default (one manifest per array, the whole
    # history in it; MANIFEST_SPLIT_CHUNKS that large does the same), stands for a long history written before
    # location.repository_config split manifests. Arrays no ingest touches again keep such manifests.
    store = str(tmp_path / "store")
    with monkeypatch.context() as patch:
        patch.setattr(layout, "CHUNK_BYTES", 8192)
        patch.setattr(layout, "TIME_CHUNK_RECORDS", 1000)
        patch.setattr(location, "MANIFEST_SPLIT_CHUNKS", 1 << 30)
        assert heliohub.ingest([str(FILES["C4_CP_FGM_SPIN"])], store, include_paths=HEADERS, progress=False).ok
    clear_caches()
    _, largest = _largest_manifest(store, "C4_CP_FGM_SPIN")
    assert largest > location.MANIFEST_SPLIT_CHUNKS
    before = contents(store)
    files = heliohub.file_table("C4_CP_FGM_SPIN", archive=store)

    command = [sys.executable, "-m", "heliohub.cli", "upgrade", "--archive", store]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "0 dataset(s) moved" in first.stdout and "1 repository with manifests split: C4_CP_FGM_SPIN" \
        in first.stdout, first.stdout
    clear_caches()
    tip, largest = _largest_manifest(store, "C4_CP_FGM_SPIN")
    assert largest <= location.MANIFEST_SPLIT_CHUNKS
    assert_same_contents(contents(store), before)
    pd.testing.assert_frame_equal(heliohub.file_table("C4_CP_FGM_SPIN", archive=store), files)
    expected = heliohub.read_file(FILES["C4_CP_FGM_SPIN"], include_paths=HEADERS)
    xr.testing.assert_identical(without_provenance(open_stored(store, "C4_CP_FGM_SPIN")).drop_attrs(),
                                expected.drop_attrs())

    second = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert second.returncode == 0 and "0 repositories with manifests split" in second.stdout, second.stderr
    clear_caches()
    assert _largest_manifest(store, "C4_CP_FGM_SPIN")[0] == tip  # re-runnable: nothing committed
