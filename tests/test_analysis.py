"""Four spacecraft as one dataset and the multi-spacecraft estimates, on the real Cluster FGM hour seen by C1-C4
(data/cluster/cdf) and against analytic fields placed at the real tetrahedron's corners."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import heliohub
from heliohub.analysis import multispacecraft as ms

from .conftest import CEF_HEADERS, real_file
from .store_helpers import ROOT

HOUR = ("2001-06-11T20:00", "2001-06-11T21:00")
FGM = [f"C{n}_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf" for n in (1, 2, 3, 4)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The four FGM hours, the three days of C4 FGM in CEF, and, standing in for the CSA's AUX position datasets
    (none is in data/), each spacecraft's FGM hour again under ``C<n>_CP_AUX_POSGSE_1M``: its ``sc_pos_xyz_gse`` is
    the position such a dataset gives."""
    archive = tmp_path_factory.mktemp("analysis") / "store"
    files = [str(real_file("cluster", "cdf", name)) for name in FGM]
    cef = real_file("cluster", "cef", "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef")
    heliohub.ingest([*files, str(cef)], archive, include_paths=[str(p) for p in CEF_HEADERS], progress=False)
    for n, path in enumerate(files, start=1):
        heliohub.ingest([path], archive, dataset_id=f"C{n}_CP_AUX_POSGSE_1M", progress=False)
    return archive


@pytest.fixture(scope="module")
def tetrahedron() -> np.ndarray:
    """The real positions (km, GSE) of C1-C4 over the hour, on C1's first 100 times: (4, 100, 3)."""
    datasets = [heliohub.read_file(real_file("cluster", "cdf", name)) for name in FGM]
    times = datasets[0].time.values[:100].astype("int64")
    return np.stack([np.stack([np.interp(times, ds.time.values.astype("int64"),
                                         ds[f"sc_pos_xyz_gse__C{n}_CP_FGM_SPIN"].values[:, k].astype("float64"))
                               for k in range(3)], axis=-1) for n, ds in enumerate(datasets, start=1)])


def test_a_uniform_current_is_recovered_exactly_from_the_real_tetrahedron(tetrahedron):
    current = np.array([12.0, -7.5, 30.0])  # nA/m², chosen for the check
    # B = B0 + (mu0/2) J x r is linear with curl B = mu0 J: in nT with r in km, (mu0/2) * 1e-9 * 1e3 * 1e9
    b = np.array([5.0, -3.0, 20.0]) + 0.5 * ms.MU0 * 1e3 * np.cross(current, tetrahedron)
    j, quality = ms.curlometer(b, tetrahedron)
    assert j == pytest.approx(np.broadcast_to(current, j.shape), rel=1e-8)
    assert np.abs(quality).max() < 1e-8
    grad = ms.gradient(b, tetrahedron)
    assert ms.curl(grad) * ms.NANO_AMPERE_PER_M2 == pytest.approx(np.broadcast_to(current, j.shape), rel=1e-8)
    assert np.abs(ms.divergence(grad)).max() < 1e-12


def test_the_gradient_of_any_linear_field_is_exact_and_the_reciprocal_vectors_are_reciprocal(tetrahedron):
    rng = np.random.default_rng(7)
    true = rng.normal(size=(3, 3))  # G[i, j] = dB_j/dx_i
    b = np.einsum("atk,kj->atj", tetrahedron, true) + rng.normal(size=3)
    assert ms.gradient(b, tetrahedron) == pytest.approx(np.broadcast_to(true, (tetrahedron.shape[1], 3, 3)),
                                                        rel=1e-7, abs=1e-9)
    k = ms.reciprocal_vectors(tetrahedron)
    assert np.abs(k.sum(axis=0)).max() < 1e-12
    identity = np.einsum("ati,atj->tij", k, tetrahedron)
    assert identity == pytest.approx(np.broadcast_to(np.eye(3), identity.shape), abs=1e-9)


def test_the_tetrahedrons_shape():
    side = 1000.0
    regular = side * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)[:, None, :]
    shape = ms.tetrahedron_shape(regular)
    assert shape["elongation"] == pytest.approx(0, abs=1e-12) and shape["planarity"] == pytest.approx(0, abs=1e-12)
    assert shape["size"] == pytest.approx(2 * side)  # semiaxis of (±1, ±1, ±1) * side: side
    flat = regular * np.array([1, 1, 1e-3])
    assert ms.tetrahedron_shape(flat)["planarity"] == pytest.approx(1, abs=1e-2)
    with pytest.raises(heliohub.HeliohubError, match="four spacecraft first"):
        ms.reciprocal_vectors(regular[:3])


def test_four_spacecraft_open_as_one_dataset_on_one_spacecrafts_times(store):
    ds = heliohub.open_constellation("C?_CP_FGM_SPIN", *HOUR, on="C1", archive=store)
    assert list(ds["spacecraft"].values) == ["C1", "C2", "C3", "C4"]
    assert "B_vec_xyz_gse" in ds and not any("__C" in str(n) for n in ds.variables)
    assert ds["B_vec_xyz_gse"].attrs["archive_names"] == [f"B_vec_xyz_gse__C{n}_CP_FGM_SPIN" for n in (1, 2, 3, 4)]
    assert "C1" in ds.attrs["time_base"] and "linear" in ds.attrs["interpolation"]
    c1 = heliohub.open_dataset("C1_CP_FGM_SPIN", *HOUR, archive=store)
    assert np.array_equal(ds["time"].values, c1["time"].values)
    assert np.array_equal(ds["B_vec_xyz_gse"].sel(spacecraft="C1").values, c1["B_vec_xyz_gse__C1_CP_FGM_SPIN"].values)
    c3 = heliohub.open_dataset("C3_CP_FGM_SPIN", *HOUR, archive=store)
    own = c3["B_vec_xyz_gse__C3_CP_FGM_SPIN"].values.astype("float64")
    expected = np.interp(ds["time"].values.astype("int64"), c3["time"].values.astype("int64"), own[:, 2],
                         left=np.nan, right=np.nan)
    got = ds["B_vec_xyz_gse"].sel(spacecraft="C3").values[:, 2]
    assert np.allclose(got, expected, equal_nan=True, rtol=1e-6, atol=1e-5)  # float32 values, as stored


def test_a_regular_step_and_no_interpolation_across_gaps(store):
    ds = heliohub.open_constellation(["C4_CP_FGM_SPIN"], "2001-06-11", "2001-07-10", step="10min", archive=store)
    times = ds["time"].values
    assert (np.diff(times) == np.timedelta64(10, "m")).all()
    b = ds["B_vec_xyz_gse"].sel(spacecraft="C4").values[:, 0]
    in_gap = (times > np.datetime64("2001-06-12")) & (times < np.datetime64("2001-07-06"))  # no record there
    assert in_gap.sum() > 3000 and np.isnan(b[in_gap]).all()
    # by definition: a grid time is interpolated when the two records around it are at most five usual steps apart
    records = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store)["time"].values.astype("int64")
    grid = times.astype("int64")
    after = np.clip(np.searchsorted(records, grid), 1, len(records) - 1)
    usual = np.median(np.diff(records))
    close = (records[after] - records[after - 1] <= 5 * usual) & (grid >= records[0]) & (grid <= records[-1])
    assert close.sum() > 100 and np.array_equal(np.isfinite(b), close)
    with pytest.raises(heliohub.HeliohubError, match="either on="):
        heliohub.open_constellation("C?_CP_FGM_SPIN", *HOUR, archive=store)


def test_positions_are_joined_from_the_aux_datasets_when_the_data_has_none(store):
    ds = heliohub.open_constellation("C?_CP_FGM_SPIN", *HOUR, step="4s", variables=["B_vec_xyz_gse"],
                                     archive=store)
    assert "sc_pos_xyz_gse" not in ds
    assert ds["position"].attrs["joined_froms"] == [f"C{n}_CP_AUX_POSGSE_1M" for n in (1, 2, 3, 4)]
    full = heliohub.open_constellation("C?_CP_FGM_SPIN", *HOUR, step="4s", archive=store)
    assert np.allclose(ds["position"].values, full["sc_pos_xyz_gse"].values, equal_nan=True, rtol=1e-6)


def test_the_current_density_of_the_real_hour(store):
    ds = heliohub.open_constellation("C?_CP_FGM_SPIN", *HOUR, step="4s", archive=store)
    result = heliohub.multispacecraft.current_density(ds)
    assert result["J"].attrs["units"] == "nA/m^2" and "GSE" in result["J"].attrs["long_name"]
    assert result.sizes["time"] > 800 and np.isfinite(result["J"].values).all()
    assert float(result["div_B_over_curl_B"].median()) < 1
    assert 1000 < float(result["size"].mean()) < 2000  # km: 2a of the mid-2001 tetrahedron (1479 km when written)
    with pytest.raises(heliohub.HeliohubError, match="four spacecraft"):
        ms.current_density(ds.isel(spacecraft=[0, 1, 2]))


def test_cross_calibration_draws_each_spacecraft_in_its_colour_and_the_differences(store):
    from heliohub.plots import cross_calibration
    from heliohub.plots.render import matplotlib_figure

    layout = cross_calibration("C?_CP_FGM_SPIN", "B_mag", *HOUR, archive=store)
    top, bottom = matplotlib_figure(layout).axes[:2]
    assert [line.get_label() for line in top.get_lines()] == ["C1", "C2", "C3", "C4"]
    assert [line.get_color() for line in top.get_lines()] == ["black", "red", "green", "blue"]
    assert top.get_ylabel() == "B (nT)" and bottom.get_ylabel() == "B − mean (nT)"
    ds = heliohub.open_constellation("C?_CP_FGM_SPIN", *HOUR, on="C1", archive=store)
    b = ds["B_mag"].values.astype("float64")
    c2 = bottom.get_lines()[1].get_ydata()  # under a figure's width, every point is drawn
    assert np.allclose(c2, b[1] - np.nanmean(b, axis=0), equal_nan=True)
    heliohub.save_figure(layout, ROOT / "test-artifacts" / "plots" / "cross-calibration-fgm.png")


def _magnetosphere_intervals() -> pd.DataFrame:
    """Intervals of the real C1 hour where |B| stays above 15 nT for 30 s or more (the spacecraft in the
    magnetosphere, between magnetosheath intervals): an event list derived from the data, not made up."""
    ds = heliohub.read_file(real_file("cluster", "cdf", FGM[0]))
    high = ds["B_mag__C1_CP_FGM_SPIN"].values > 15
    edges = np.flatnonzero(np.diff(np.concatenate([[0], high.astype(int), [0]])))
    times = ds["time"].values
    rows = [(times[a], times[b - 1]) for a, b in zip(edges[::2], edges[1::2], strict=True)
            if times[b - 1] - times[a] >= np.timedelta64(30, "s")]
    return pd.DataFrame(rows, columns=["start", "end"])


def test_event_lists_read_in_each_format_the_same(tmp_path):
    from astropy.table import Table

    from heliohub.analysis.events import read_events

    events = _magnetosphere_intervals()
    assert len(events) >= 2
    iso = events.assign(start=events["start"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                        end=events["end"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    (tmp_path / "events.csv").write_text(iso.assign(label="magnetosphere").to_csv(index=False))
    (tmp_path / "events.txt").write_text("# Name: C1 magnetosphere;\n# Historic: derived from C1_CP_FGM_SPIN;\n"
                                         + "".join(f"{a} {b}\n" for a, b in zip(iso["start"], iso["end"],
                                                                                 strict=True)))
    (tmp_path / "events.json").write_text(json.dumps({"result": [
        {"event_starttime": a, "event_endtime": b, "event_type": "XX"} for a, b in zip(iso["start"], iso["end"],
                                                                                      strict=True)]}))
    Table({"TimeStart": list(iso["start"]), "TimeStop": list(iso["end"])}).write(tmp_path / "events.xml",
                                                                                 format="votable")
    for name in ("events.csv", "events.txt", "events.json", "events.xml"):
        read = read_events(tmp_path / name)
        assert read["start"].tolist() == events["start"].tolist(), name
        assert read["end"].tolist() == events["end"].tolist(), name
    assert read_events(tmp_path / "events.csv")["label"].tolist() == ["magnetosphere"] * len(events)
    (tmp_path / "bad.csv").write_text("start,end\n2001-06-11T20:10,2001-06-11T20:00\n")
    with pytest.raises(heliohub.HeliohubError, match=r"bad.csv: event 1 ends .* before it starts"):
        read_events(tmp_path / "bad.csv")
    with pytest.raises(heliohub.HeliohubError, match="cannot be read"):
        read_events(tmp_path / "missing.csv")


def test_events_select_from_a_dataset_and_map_on_a_dask_cluster(store):
    from dask.distributed import Client, LocalCluster

    from heliohub.analysis.events import map_events, select

    events = _magnetosphere_intervals()
    ds = heliohub.open_dataset("C3_CP_FGM_SPIN", *HOUR, archive=store)
    pieces = select(ds, events)
    assert [p["time"].values.min() >= a and p["time"].values.max() <= b
            for p, (a, b) in zip(pieces, events.itertuples(index=False), strict=True)] == [True] * len(events)

    def mean_b(piece):
        return float(piece["B_mag__C3_CP_FGM_SPIN"].mean())

    here = map_events(mean_b, "C3_CP_FGM_SPIN", events, archive=store)
    assert here == pytest.approx([mean_b(p) for p in pieces])
    assert min(here) > 12  # C3 saw the same magnetosphere intervals as C1
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert map_events(mean_b, "C3_CP_FGM_SPIN", events, client=client, archive=store) == pytest.approx(here)
    outside = pd.DataFrame({"start": [pd.Timestamp("2001-06-12")], "end": [pd.Timestamp("2001-06-13")]})
    assert map_events(mean_b, "C3_CP_FGM_SPIN", outside, archive=store) == [None]


@pytest.mark.slow
def test_events_mapped_on_workers_reach_the_store_with_its_settings_not_theirs(s3_archive, monkeypatch):
    """A store given with its S3 settings (here: an endpoint and keys that the workers' environment lacks) is
    opened on the workers with those settings."""
    from dask.distributed import Client, LocalCluster

    from heliohub.analysis.events import map_events
    from heliohub.store.location import StoreLocation

    heliohub.ingest([str(real_file("cluster", "cdf", FGM[2]))], s3_archive, progress=False)
    location = StoreLocation.resolve(s3_archive)
    assert location.storage_options.get("endpoint_url")
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name)
    events = _magnetosphere_intervals()[:2]

    def mean_b(piece):
        return float(piece["B_mag__C3_CP_FGM_SPIN"].mean())

    here = map_events(mean_b, "C3_CP_FGM_SPIN", events, archive=location)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert client.run(lambda: __import__("os").environ.get("AWS_ENDPOINT_URL")) == {
            next(iter(client.scheduler_info()["workers"])): None}  # the worker's environment has no endpoint
        assert map_events(mean_b, "C3_CP_FGM_SPIN", events, client=client, archive=location) == pytest.approx(here)
