"""`heliohub fetch` against a local server that answers like the ESA archives (tests/archive_server.py), with the
archives' failures injected; and once against the real Cluster Science Archive when it is reachable."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import heliohub
from heliohub.fetching.pipeline import MANIFEST

from .conftest import real_file
from .store_helpers import ROOT, open_stored

C1 = "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"
HOUR = ("2001-06-11T20:00", "2001-06-11T21:00")


@pytest.fixture(scope="module")
def server():
    from .archive_server import ArchiveServer

    real_file("cluster", "cdf")
    archive = ArchiveServer()
    yield archive
    archive.close()


@pytest.fixture
def options(server, tmp_path):
    """fetch() keywords for the local archives: its own download folder, a short timeout and quick retries."""
    server.failures.clear()
    server.max_window = None
    server.requests.clear()
    return {"download_dir": tmp_path / "downloads", "timeout": 2.0, "retries": 3, "backoff": 0.05,
            "progress": False}


def csa(server) -> str:
    return server.url("csa-sl-tap")


def test_csa_fetch_ingests_what_the_files_hold_and_a_rerun_fetches_nothing(server, options, tmp_path):
    store = tmp_path / "store"
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), ingest_into=store, **options)
    assert report.ok, report.summary()
    assert [(i.status, [Path(f).name for f in i.files]) for i in report.items] == [("fetched", [C1])]
    assert [f.status for f in report.ingest.files] == ["ingested"]
    expected = heliohub.read_file(real_file("cluster", "cdf", C1))
    stored = open_stored(store, "C1_CP_FGM_SPIN")
    np.testing.assert_array_equal(stored["B_vec_xyz_gse__C1_CP_FGM_SPIN"].values,
                                  expected["B_vec_xyz_gse__C1_CP_FGM_SPIN"].values)
    np.testing.assert_array_equal(stored["time"].values, expected["time"].values)
    (manifest,) = (Path(options["download_dir"]) / "csa" / "C1_CP_FGM_SPIN").glob(f"*/{MANIFEST}")
    assert json.loads(manifest.read_text())["ingested_into"] == [str(store)]

    server.requests.clear()
    again = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), ingest_into=store, **options)
    assert [i.status for i in again.items] == ["kept"] and again.ingest.files == []
    assert server.data_requests() == [], "a re-run downloaded again"


def test_wildcards_expand_through_the_inventory(server, options):
    report = heliohub.fetch("csa", "C?_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert report.datasets == [f"C{n}_CP_FGM_SPIN" for n in range(1, 5)]
    assert sorted(Path(f).name for i in report.items for f in i.files) == sorted(
        p.name for p in real_file("cluster", "cdf").glob("C?_CP_FGM_SPIN__20010611*.cdf"))


def test_long_ranges_go_in_windows_and_a_refused_window_in_halves(server, options):
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", "2001-06-10T12:00", "2001-06-12T12:00", url=csa(server),
                            **options)
    # windows cut at whole days; only the window the inventory says holds data is asked for
    assert [i.key for i in report.items] == ["20010611T000000_20010612T000000"]
    server.max_window = np.timedelta64(6, "h")
    halves = heliohub.fetch("csa", "C1_CP_FGM_SPIN", "2001-06-11T00:00", "2001-06-11T23:59", url=csa(server),
                            window="1D", **{**options, "download_dir": options["download_dir"] / "halves"})
    assert halves.ok, halves.summary()
    assert all(i.status in ("fetched", "empty") for i in halves.items) and len(halves.items) == 4
    assert any(C1 in f for i in halves.items for f in i.files)


@pytest.mark.parametrize("kind", ["503", "stall", "truncate"])
def test_failures_are_retried(server, options, tmp_path, kind):
    server.stall = 3.0  # longer than the client's timeout
    server.fail("RETRIEVAL_TYPE=PRODUCT", kind, times=2)
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), ingest_into=tmp_path / "store",
                            **options)
    assert report.ok, report.summary()
    assert [i.status for i in report.items] == ["fetched"]
    assert len(server.data_requests()) == 3
    (file,) = report.items[0].files
    assert Path(file).read_bytes() == real_file("cluster", "cdf", C1).read_bytes()


def test_a_download_that_stays_broken_is_never_ingested_and_a_rerun_completes_it(server, options, tmp_path):
    store = tmp_path / "store"
    server.fail("RETRIEVAL_TYPE=PRODUCT", "truncate", times=10)
    broken = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), ingest_into=store, **options)
    assert not broken.ok and [i.status for i in broken.items] == ["failed"]
    assert "failed 4 times" in broken.items[0].reason and "bytes" in broken.items[0].reason
    assert broken.ingest.files == [] and not (store / "C1_CP_FGM_SPIN").exists()
    folder = Path(options["download_dir"]) / "csa" / "C1_CP_FGM_SPIN"
    assert [p.name for p in folder.iterdir()] == [], "a partial download was left behind"

    server.failures.clear()
    fixed = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), ingest_into=store, **options)
    assert fixed.ok and [f.status for f in fixed.ingest.files] == ["ingested"]


def test_empty_results_are_said_not_failed(server, options):
    nothing = heliohub.fetch("csa", "C1_CP_FGM_SPIN", "2005-01-01", "2005-01-02", url=csa(server), **options)
    assert nothing.ok and nothing.items == [] and "nothing to fetch" in nothing.summary()
    server.fail("RETRIEVAL_TYPE=PRODUCT", "empty")
    empty = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert empty.ok and [i.status for i in empty.items] == ["empty"]


def test_an_unknown_dataset_names_the_closest(server, options, tmp_path):
    with pytest.raises(heliohub.FetchError, match=r"no dataset 'C1_CP_FGM_SPINN'.*closest: C1_CP_FGM_SPIN"):
        heliohub.fetch("csa", "C1_CP_FGM_SPINN", *HOUR, url=csa(server), **options)
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "fetch", "csa", "C1_CP_FGM_SPINN",
                             "--start", HOUR[0], "--end", HOUR[1], "--url", csa(server),
                             "--download-dir", str(tmp_path / "d")], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "heliohub fetch: the Cluster Science Archive" in result.stderr


def test_an_unreachable_archive_names_its_url_and_setting(options):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(heliohub.FetchError, match=rf"127.0.0.1:{port}.*cannot connect.*HELIOHUB_CSA_URL"):
        heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=f"http://127.0.0.1:{port}/csa-sl-tap", **options)


def test_the_cli_fetches_and_ingests_with_a_json_summary(server, options, tmp_path):
    store = tmp_path / "store"
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "fetch", "csa", "C2_CP_FGM_SPIN",
                             "--start", HOUR[0], "--end", HOUR[1], "--url", csa(server), "--ingest",
                             "--archive", str(store), "--download-dir", str(tmp_path / "d"), "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"fetched": 1} and summary["ingest"]["datasets"] == ["C2_CP_FGM_SPIN"]


def test_solar_orbiter_files_checked_against_the_inventory(server, options, tmp_path):
    store = tmp_path / "store"
    dataset = "solo_L2_epd-ept-north-hcad"
    report = heliohub.fetch("soar", dataset, "2020-07-13", "2020-07-14", url=server.url("soar-sl-tap"),
                            ingest_into=store, **options)
    assert report.ok, report.summary()
    assert [f.status for f in report.ingest.files] == ["ingested"]
    expected = heliohub.read_file(real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf"))
    assert open_stored(store, dataset).sizes["time"] == expected.sizes["time"]
    with pytest.raises(heliohub.FetchError, match=r"no dataset 'solo_L2_epd-ept-nort'.*closest"):
        heliohub.fetch("soar", "solo_L2_epd-ept-nort", "2020-07-13", "2020-07-14", url=server.url("soar-sl-tap"),
                       **options)
    for row in server.tables["v_sc_data_item"]:
        row["filesize"] += 1
    try:
        wrong = heliohub.fetch("soar", dataset, "2020-07-13", "2020-07-14", url=server.url("soar-sl-tap"),
                               **{**options, "download_dir": tmp_path / "again"})
    finally:
        for row in server.tables["v_sc_data_item"]:
            row["filesize"] -= 1
    assert [i.status for i in wrong.items] == ["failed"] and "the archive's inventory says" in wrong.items[0].reason


def test_soho_observations_go_under_their_rule_ids(server, options, tmp_path):
    store = tmp_path / "store"
    report = heliohub.fetch("soho", "EIT", "2004-03-01", "2004-03-02", url=server.url("ssa-sl-tap"),
                            ingest_into=store, **options)
    assert report.ok, report.summary()
    assert [Path(f).name for i in report.items for f in i.files] == ["efz20040301.000010_s.fits"]
    assert report.ingest.datasets == ["SOHO_EIT_195"]


def test_proba2_days_without_a_file_are_empty_and_swap_folders_are_listed(server, options, tmp_path):
    lyra = heliohub.fetch("proba2", "PROBA2_LYRA_LEV2", "2012-01-01", "2012-01-03", url=server.url("proba2"),
                          ingest_into=tmp_path / "store", **options)
    assert lyra.ok and [i.status for i in lyra.items] == ["fetched", "empty", "empty"]
    assert lyra.ingest.datasets == ["PROBA2_LYRA_LEV2"]
    swap = heliohub.fetch("proba2", "PROBA2_SWAP_*", "2014-06-06", "2014-06-06T23:59", url=server.url("proba2"),
                          **options)
    assert [Path(f).name for i in swap.items for f in i.files] == ["swap_lv1_20140606_000113.fits"]


@pytest.mark.network
def test_the_real_cluster_science_archive(tmp_path):
    """Fetches 10 minutes of C1 FGM spin data from csa.esac.esa.int (skipped when it cannot be reached)."""
    try:
        socket.create_connection(("csa.esac.esa.int", 443), timeout=5).close()
    except OSError as error:
        pytest.skip(f"the Cluster Science Archive (csa.esac.esa.int:443) is not reachable from here: {error}")
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", "2001-06-11T20:00", "2001-06-11T20:10",
                            download_dir=tmp_path / "d", ingest_into=tmp_path / "store", progress=False)
    assert report.ok, report.summary()
    assert heliohub.open_dataset("C1_CP_FGM_SPIN", archive=tmp_path / "store").sizes["time"] > 100
