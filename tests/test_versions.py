"""Pinned data versions, citations and caveats at open, on real Cluster, SOHO and Solar Orbiter files."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import heliohub
from heliohub.store.access import clear_caches

from .conftest import CEF_HEADERS, real_file

HOUR_CDF = "C4_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"
DAYS_CEF = "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """C4 FGM: the hour (CDF) ingested as release 2026.12, then three days (CEF) added by a second ingest."""
    store = tmp_path_factory.mktemp("versions") / "store"
    heliohub.ingest([str(real_file("cluster", "cdf", HOUR_CDF))], store, progress=False, release="2026.12")
    between = pd.Timestamp.now("UTC")
    heliohub.ingest([str(real_file("cluster", "cef", DAYS_CEF))], store,
                    include_paths=[str(p) for p in CEF_HEADERS], progress=False)
    return store, between


def test_a_dataset_opens_as_it_was_by_release_snapshot_or_date(archive):
    store, between = archive
    now = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store)
    then = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version="2026.12")
    hour = heliohub.read_file(real_file("cluster", "cdf", HOUR_CDF))
    assert then.sizes["time"] == hour.sizes["time"] < now.sizes["time"]
    assert (then["time"].values == hour["time"].values).all()
    table = heliohub.versions("C4_CP_FGM_SPIN", archive=store)
    assert table.loc[0, "snapshot_id"] == now.attrs["heliohub_snapshot"]  # newest first
    released = table[table["tags"].map(lambda tags: "2026.12" in tags)]
    assert list(released["snapshot_id"]) == [then.attrs["heliohub_snapshot"]]
    by_id = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version=then.attrs["heliohub_snapshot"])
    by_date = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version=between)
    assert by_id.sizes["time"] == by_date.sizes["time"] == then.sizes["time"]
    assert heliohub.tag_release("2026.12", ["C4_CP_FGM_SPIN"], archive=store) == {
        "C4_CP_FGM_SPIN": then.attrs["heliohub_snapshot"]}  # re-runnable: the tag stays where it was
    with pytest.raises(heliohub.HeliohubError, match="neither a tag"):
        heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version="no such release")
    with pytest.raises(heliohub.HeliohubError, match="did not exist yet"):
        heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version="1999-01-01")
    with pytest.raises(heliohub.HeliohubError, match="has no snapshot"):
        heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version="0" * 20)


def test_cite_names_the_snapshot_the_versions_and_the_acknowledgements(archive):
    store, _ = archive
    then = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store, version="2026.12")
    citation = heliohub.cite(then, archive=store)
    text, bibtex = str(citation), citation.bibtex()
    assert then.attrs["heliohub_snapshot"] in text and "070906" in text and "V01" not in text
    assert then.attrs["acknowledgement"] in text and "Laakso et al., 2010" in text
    assert f"Icechunk snapshot {then.attrs['heliohub_snapshot']}" in bibtex and "@incollection{laakso2010" in bibtex
    latest = str(heliohub.cite("C4_CP_FGM_SPIN", archive=store))
    assert heliohub.versions("C4_CP_FGM_SPIN", archive=store).loc[0, "snapshot_id"] in latest
    assert "070906" in latest and "01" in latest.split("version(s)")[1]
    again = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store,
                                  version=citation.datasets[0].snapshot)  # the same bytes, from the citation
    assert again.identical(then)


def test_caveats_are_in_the_attributes_and_said_once(tmp_path):
    store = tmp_path / "store"
    heliohub.ingest([str(real_file("cluster", "cdf", HOUR_CDF)), str(real_file("soho", "mdi"))], store,
                    progress=False)
    clear_caches()
    with pytest.warns(heliohub.CaveatWarning, match="C4_CP_FGM_SPIN has 6 caveat"):
        ds = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store)
    assert any("Calibration parameters have been estimated" in c for c in ds.attrs["caveats"])
    assert "dataset caveats: see the CSA caveat file C4_CQ_FGM_CAVF" in ds.attrs["caveats"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per dataset and process
        heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store)
    assert heliohub.describe("C4_CP_FGM_SPIN", archive=store)["caveats"] == ds.attrs["caveats"]
    assert "caveats:" in str(heliohub.describe("C4_CP_FGM_SPIN", archive=store))
    mdi = heliohub.describe("SOHO_MDI_CONTINUUM", archive=store)["caveats"]
    assert any("QUALITY" in c for c in mdi)
