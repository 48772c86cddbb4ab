"""`heliohub fetch` against a local server that answers like the ESA archives (tests/archive_server.py), with the
archives' failures injected; and once against the real Cluster Science Archive when it is reachable."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

import heliohub
import heliohub.fetching
import heliohub.fetching.tap
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
    server.max_bytes = None
    server.max_rows = None
    server.gzip_encoding = False
    server.tap_format = None
    server.data_delay = 0.0
    server.refused.clear()
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


ASP = "C2_CP_ASP_ACTIVE"  # 77 records over 18 months: the stand-in cuts its CEF file to each window
ASP_RANGE = ("2001-01-01", "2002-08-01")


def _records(store) -> int:
    return open_stored(store, ASP).sizes["time"]


def test_long_ranges_go_in_windows(server, options):
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", "2001-06-10T12:00", "2001-06-12T12:00", url=csa(server),
                            **options)
    # windows cut at whole days; only the window the inventory says holds data is asked for
    assert [i.key for i in report.items] == ["20010611T000000_20010612T000000"]


def test_a_window_refused_as_too_large_is_asked_for_in_parts(server, options, tmp_path):
    whole = heliohub.fetch("csa", ASP, *ASP_RANGE, url=csa(server), window="600D", ingest_into=tmp_path / "a",
                           **options)
    assert whole.ok and _records(tmp_path / "a") == 77
    # well under the whole window: the package's size varies by a few bytes with the time in its folder name
    server.max_bytes = max(i.wire_bytes for i in whole.items) * 3 // 4
    parts = heliohub.fetch("csa", ASP, *ASP_RANGE, url=csa(server), window="600D", ingest_into=tmp_path / "b",
                           **{**options, "download_dir": tmp_path / "parts"})
    assert parts.ok, parts.summary()
    assert server.refused, "the stand-in did not refuse anything: the test asks for nothing too large"
    assert len(parts.items) > len(whole.items)
    assert _records(tmp_path / "b") == 77  # nothing lost or doubled where windows were cut


def test_windows_are_sized_from_the_inventory_before_asking(server, options, tmp_path):
    window = pd.Timedelta("30D")
    plain = heliohub.fetch("csa", ASP, *ASP_RANGE, url=csa(server), window=window, **options)
    first = plain.items[0].wire_bytes
    server.requests.clear()
    server.max_bytes = 4 * first  # what the archive would refuse: never reached when windows are sized
    sized = heliohub.fetch("csa", ASP, *ASP_RANGE, url=csa(server), window=window, request_limit=3 * first,
                           ingest_into=tmp_path / "store", **{**options, "download_dir": tmp_path / "sized"})
    assert sized.ok, sized.summary()
    assert server.refused == []
    asked = {(q["START_DATE"][0], q["END_DATE"][0]) for q in (parse_qs(urlparse(r).query)
                                                              for r in server.data_requests())}
    assert len(asked) == len(server.data_requests()) > len(plain.items)  # windows cut into parts, each asked once
    assert _records(tmp_path / "store") == 77


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


def test_proba2_day_folders_are_listed_and_days_without_one_hold_no_data(server, options, tmp_path):
    lyra = heliohub.fetch("proba2", "PROBA2_LYRA_LEV2", "2012-01-01", "2012-01-03", url=server.url("proba2"),
                          ingest_into=tmp_path / "store", **options)
    assert lyra.ok and [i.key for i in lyra.items] == ["lyra_20120101-000000_lev2_std.fits"]
    assert lyra.ingest.datasets == ["PROBA2_LYRA_LEV2"]
    assert "/proba2/lyra/data/bsd/2012/01/02/" in server.requests  # asked, answered 404: no data that day
    swap = heliohub.fetch("proba2", "PROBA2_SWAP_*", "2014-06-06", "2014-06-06T23:59", url=server.url("proba2"),
                          **options)
    assert [Path(f).name for i in swap.items for f in i.files] == ["swap_lv1_20140606_000113.fits"]


def test_proba2_takes_the_latest_version_of_a_day(server, options):
    # the real level-2 file, listed a second time under the versioned naming the archive also uses
    # (``_std_v01.fits``): the highest version of the day is the one fetched
    versioned = "lyra/data/bsd/2012/01/01/lyra_20120101-000000_lev2_std_v01.fits"
    server.proba2[versioned] = server.proba2["lyra/data/bsd/2012/01/01/lyra_20120101-000000_lev2_std.fits"]
    try:
        lyra = heliohub.fetch("proba2", "PROBA2_LYRA_LEV2", "2012-01-01", "2012-01-01T23:59",
                              url=server.url("proba2"), **options)
    finally:
        del server.proba2[versioned]
    assert [i.key for i in lyra.items] == ["lyra_20120101-000000_lev2_std_v01.fits"]


@pytest.mark.parametrize("answer_format", ["votable", "csv"])
def test_tap_answers_in_votable_or_csv_and_a_cut_answer_is_asked_for_in_parts(server, options, tmp_path,
                                                                           answer_format, monkeypatch):
    server.tap_format = answer_format if answer_format == "csv" else None
    whole = heliohub.fetch("csa", ASP, *ASP_RANGE, url=csa(server), window="600D", **options)
    assert all("FORMAT=votable" in r for r in server.requests if "/tap/" in r)  # the TAP default, asked for
    if answer_format == "votable":
        server.max_rows = 5  # the service's own limit: the inventory (dozens of rows) comes back cut, flagged
    else:  # a CSV answer cannot say it was cut: one of MAXREC rows counts as cut
        monkeypatch.setattr(heliohub.fetching.tap, "MAXREC", 5)
    server.requests.clear()
    cut = heliohub.fetch("csa", ASP, *ASP_RANGE, url=csa(server), window="600D",
                         **{**options, "download_dir": tmp_path / "cut"})
    assert cut.ok and [i.key for i in cut.items] == [i.key for i in whole.items]
    inventory = [r for r in server.requests if "v_dataset_inventory" in r]
    assert len(inventory) > 5  # split until no part was cut


@pytest.mark.parametrize("kind", ["html", "taperror"])
def test_a_tap_answer_that_is_not_a_table_is_quoted(server, options, kind):
    server.fail("tap/sync", kind)
    said = "Scheduled maintenance" if kind == "html" else "temporarily unable to run queries"
    with pytest.raises(heliohub.FetchError, match=said):
        heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)


def test_an_html_page_for_a_file_is_refused_never_kept_and_a_rerun_fetches_the_file(server, options, tmp_path):
    dataset = "solo_L2_epd-ept-north-hcad"
    server.fail("soar-sl-tap/data", "html", times=1)
    page = heliohub.fetch("soar", dataset, "2020-07-13", "2020-07-14", url=server.url("soar-sl-tap"), **options)
    again = heliohub.fetch("soar", dataset, "2020-07-13", "2020-07-14", url=server.url("soar-sl-tap"), **options)
    assert [i.status for i in page.items] == ["failed"]
    assert "an HTML page: 'ESA Archives - Scheduled maintenance" in page.items[0].reason
    assert [i.status for i in again.items] == ["fetched"]
    (file,) = again.items[0].files
    assert Path(file).read_bytes() == real_file("solar_orbiter", "cdf", Path(file).name).read_bytes()


def test_a_package_that_is_an_html_page_is_refused_with_its_title(server, options):
    server.fail("RETRIEVAL_TYPE=PRODUCT", "html")
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert [i.status for i in report.items] == ["failed"] and "Scheduled maintenance" in report.items[0].reason
    assert not list((Path(options["download_dir"]) / "csa" / "C1_CP_FGM_SPIN").iterdir())


def test_content_encoding_gzip_is_counted_on_the_wire(server, options):
    server.gzip_encoding = True
    csa_report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    soar = heliohub.fetch("soar", "solo_L2_epd-ept-north-hcad", "2020-07-13", "2020-07-14",
                          url=server.url("soar-sl-tap"), **options)
    assert csa_report.ok and soar.ok, csa_report.summary() + soar.summary()
    (file,) = soar.items[0].files
    assert soar.items[0].wire_bytes < Path(file).stat().st_size  # the CDF went compressed on the wire
    assert Path(file).read_bytes() == real_file("solar_orbiter", "cdf", Path(file).name).read_bytes()


def test_retry_after_is_honoured(server, options, caplog):
    server.fail("RETRIEVAL_TYPE=PRODUCT", "503+retry-after", times=1)
    with caplog.at_level(logging.INFO, logger="heliohub.fetching.http"):
        report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert report.ok
    assert any("Retry-After 1 s" in r.message and "retrying in 1.0 s" in r.message for r in caplog.records)


@pytest.mark.parametrize("kind", ["nocontent", "emptybody", "404", "empty"])
def test_the_csas_no_data_answers_are_empty_not_failures(server, options, kind):
    server.fail("RETRIEVAL_TYPE=PRODUCT", kind)
    report = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert report.ok and [i.status for i in report.items] == ["empty"], report.summary()


def test_downloads_run_a_few_at_once(server, options):
    server.data_delay = 0.5
    report = heliohub.fetch("csa", "C?_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert report.ok and len(report.items) == 4
    assert server.most_in_flight == heliohub.fetching.archive_source("csa").parallel == 2
    assert [i.dataset_id for i in report.items] == [f"C{n}_CP_FGM_SPIN" for n in range(1, 5)]


def test_a_kept_download_whose_file_went_missing_is_fetched_again(server, options):
    first = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    Path(first.items[0].files[0]).unlink()
    again = heliohub.fetch("csa", "C1_CP_FGM_SPIN", *HOUR, url=csa(server), **options)
    assert [i.status for i in again.items] == ["fetched"] and Path(again.items[0].files[0]).exists()


def test_csa_datasets_not_delivered_in_the_format_asked_are_left_out(server, options):
    (row,) = [r for r in server.tables["csa.v_dataset"] if r["dataset_id"] == "C2_CP_FGM_SPIN"]
    row["is_istp"] = False
    try:
        report = heliohub.fetch("csa", "C?_CP_FGM_SPIN", *HOUR, url=csa(server), delivery_format="CDF_ISTP",
                                **options)
        with pytest.raises(heliohub.FetchError, match="cannot deliver 'C2_CP_FGM_SPIN' as CDF_ISTP"):
            heliohub.fetch("csa", "C2_CP_FGM_SPIN", *HOUR, url=csa(server), delivery_format="CDF_ISTP", **options)
    finally:
        row["is_istp"] = True
    assert report.datasets == ["C1_CP_FGM_SPIN", "C3_CP_FGM_SPIN", "C4_CP_FGM_SPIN"]
    assert report.notes == ["C2_CP_FGM_SPIN: not delivered as CDF_ISTP (is_istp is false in csa.v_dataset)"]
    assert all("DELIVERY_FORMAT=CDF_ISTP" in r for r in server.data_requests())


def test_soar_files_the_archive_deactivated_are_not_asked_for(server, options):
    rows = server.tables["v_sc_data_item"]
    for row in rows:
        row["is_active"] = False
    try:
        report = heliohub.fetch("soar", "solo_L2_epd-ept-north-hcad", "2020-07-13", "2020-07-14",
                                url=server.url("soar-sl-tap"), **options)
    finally:
        for row in rows:
            row["is_active"] = True
    assert report.ok and report.items == [] and server.data_requests() == []


def test_soho_fetches_the_preferred_processing_level_once_under_its_file_name(server, options):
    observations = server.tables["soho.mv_observation"]
    (eit,) = [r for r in observations if r["instrument_name"] == "EIT"]
    other_level = {**eit, "observation_oid": eit["observation_oid"] + 1000, "processing_level": "L0",
                   "processing_level_priority": 2, "file_name": "efz20040301.000010"}
    observations.append(other_level)
    try:
        report = heliohub.fetch("soho", "EIT", "2004-03-01", "2004-03-02", url=server.url("ssa-sl-tap"), **options)
    finally:
        observations.remove(other_level)
    assert [Path(f).name for i in report.items for f in i.files] == ["efz20040301.000010_s.fits"]
    assert [parse_qs(urlparse(r).query)["QUERY"] for r in server.data_requests()] == [
        [f"WHERE observation.observation_oid = {eit['observation_oid']}"]]


def test_archive_sources_come_from_their_entry_point_group(tmp_path, server):
    assert heliohub.fetching.source_names() == ["csa", "proba2", "soar", "soho"]
    # a third party's source, installed as a distribution with an entry point: the CLI offers and uses it
    (tmp_path / "mirror_source.py").write_text(
        "from heliohub.fetching.csa import Csa\n\n\nclass Mirror(Csa):\n    name = 'mirror'\n"
        "    title = 'a mirror of the Cluster Science Archive'\n    setting = 'MIRROR_URL'\n")
    info = tmp_path / "mirror_source-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mirror-source\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[heliohub.sources]\nmirror = mirror_source:Mirror\n")
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "fetch", "--check", "mirror", "--url",
                             csa(server)], capture_output=True, text=True, cwd=ROOT, timeout=300, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("mirror ") and "holds" in result.stdout


def test_the_live_check_says_what_holds_what_changed_and_what_cannot_be_reached(server, tmp_path):
    def check(source: str, url: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heliohub.cli", "fetch", "--check", source, "--url", url,
                               "--json", "--retries", "0", "--timeout", "5"], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)

    for source, prefix in (("csa", "csa-sl-tap"), ("soar", "soar-sl-tap"), ("soho", "ssa-sl-tap"),
                           ("proba2", "proba2")):
        result = check(source, server.url(prefix))
        assert result.returncode == 0, result.stdout + result.stderr
        findings = json.loads(result.stdout)
        assert {f["verdict"] for f in findings} == {"holds"} and any("download" in f["question"] for f in findings)

    inventory = server.tables["csa.v_dataset_inventory"]
    for row in inventory:  # the archive renames a column
        row["instances"] = row.pop("num_instances")
    try:
        changed = check("csa", csa(server))
    finally:
        for row in inventory:
            row["num_instances"] = row.pop("instances")
    assert changed.returncode == 1
    findings = {f["question"]: f for f in json.loads(changed.stdout)}
    table = next(f for q, f in findings.items() if "csa.v_dataset_inventory" in q)
    assert table["verdict"] == "changed" and "num_instances" in table["detail"]
    assert findings["TAP table csa.v_dataset (dataset_id, is_cef, is_istp)"]["verdict"] == "holds"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = check("csa", f"http://127.0.0.1:{port}/csa-sl-tap")
    assert gone.returncode == 3 and {f["verdict"] for f in json.loads(gone.stdout)} == {"unreachable"}


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
