"""Quicklooks and inventory plots of every dataset in data/ and the demo archive, as PNG and HTML, checked on
the figures themselves (labels, units, time ranges); the PNGs and HTML files are kept in test-artifacts/plots/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
import zarr

import heliohub
from heliohub.plots.figures import quicklook_redrawer
from heliohub.solar import frame_to_map
from heliohub.store.catalog import read_catalog
from heliohub.store.location import BRANCH, StoreLocation
from heliohub.up import demo

from .conftest import CEF_HEADERS, real_file
from .store_helpers import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "plots"
GALLERY = ROOT / "docs" / "gallery"
IMAGES = ["SOHO_EIT_195", "SOHO_EIT_171", "SOHO_LASCO_C2", "SOHO_MDI_CONTINUUM", "PROBA2_SWAP_174"]
EMPTY_RANGE = ("2001-01-01", "2001-01-02")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A folder store holding the demo archive's files (every file of data/, and sunpy's)."""
    found, _ = demo.inputs()
    archive = tmp_path_factory.mktemp("plots") / "store"
    heliohub.ingest(found, archive, include_paths=demo.include_paths(), progress=False)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    return archive


def figure(store, dataset_ids, start=None, end=None):
    """The matplotlib figure that a PNG of the quicklook holds."""
    from heliohub.plots.render import matplotlib_figure

    return matplotlib_figure(heliohub.quicklook(dataset_ids, start, end, archive=store))


def test_every_dataset_draws_as_png_and_html_with_its_labels_units_and_range(store):
    from heliohub.plots import gallery

    entries = read_catalog(StoreLocation.resolve(store))
    assert len(entries) >= 20
    page = gallery.build(GALLERY, archive=store)  # docs/gallery: the PNGs `heliohub quicklook --out` writes
    text = page.read_text()
    for dataset_id, entry in sorted(entries.items()):
        assert f"| {dataset_id} |" in text or f"| [{dataset_id}](#" in text, dataset_id
        if entry["start"]:
            assert (GALLERY / f"{dataset_id}.png").read_bytes()[:4] == b"\x89PNG" and f"({dataset_id}.png)" in text
        start, end = (entry["start"], entry["end"]) if entry["start"] else EMPTY_RANGE
        html = heliohub.save_quicklook(dataset_id, start, end, ARTIFACTS / f"{dataset_id}.html", archive=store)
        text_html = html.read_text()
        assert dataset_id in text_html and not re.search(r"<script[^>]+src=[\"']https?://", text_html), dataset_id
        fig = figure(store, dataset_id, start, end)  # what save_quicklook writes as PNG (tested below)
        assert all(dataset_id in ax.get_title() for ax in fig.axes if ax.get_title()), dataset_id
        ds = heliohub.open_dataset(dataset_id, archive=store)
        images = "image" in ds.variables
        for ax in fig.axes:
            if ax.get_xlabel().startswith("Time (UTC)"):
                low, high = ax.get_xlim()
                expected = mdates.date2num(pd.Timestamp(start)), mdates.date2num(pd.Timestamp(end))
                assert low == pytest.approx(expected[0], abs=1e-6) and high == pytest.approx(expected[1], abs=1e-6), \
                    dataset_id
            elif not images and ax.get_ylabel() and "Energy" not in ax.get_ylabel():
                units = {str(v.attrs.get("units")) for v in ds.data_vars.values() if v.attrs.get("units")}
                assert any(f"({u})" in ax.get_ylabel() for u in units), (dataset_id, ax.get_ylabel())
        if images:  # the colour bar names the image's units
            assert any(ds["image"].attrs["units"] in ax.get_ylabel() for ax in fig.axes), dataset_id


def test_vectors_show_the_archives_component_labels_and_magnitude(store):
    ds = heliohub.open_dataset("C1_CP_FGM_SPIN", archive=store)
    b = ds["B_vec_xyz_gse__C1_CP_FGM_SPIN"]
    fig = figure(store, "C1_CP_FGM_SPIN")
    first = fig.axes[0]
    label = b.attrs["LABLAXIS"]
    assert b.attrs["COORDINATE_SYSTEM"].startswith("GSE>")  # the archive's frame, named on the axis
    assert first.get_ylabel() == f"{label} GSE ({b.attrs['units']})"
    components = [str(v) for v in ds["B_vec_xyz_gse__C1_CP_FGM_SPIN_LABEL_1"].values]
    assert [t.get_text() for t in first.get_legend().get_texts()] == [*components, f"|{label}|"]
    magnitude = first.get_lines()[3]
    assert magnitude.get_color() == "black" and first.get_yscale() == "linear"
    assert np.nanmax(magnitude.get_ydata()) == pytest.approx(
        float(np.sqrt((b.values.astype("float64") ** 2).sum(1)).max()))


def test_the_spacecraft_position_is_written_under_the_time_axis(store):
    from bokeh.models import CustomJSTickFormatter

    ds = heliohub.open_dataset("C1_CP_FGM_SPIN", archive=store)
    position = ds["sc_pos_xyz_gse__C1_CP_FGM_SPIN"]
    assert position.attrs["units"] == "km"
    fig = figure(store, "C1_CP_FGM_SPIN")
    bottom = fig.axes[-1]
    assert "position (Earth radii): X GSE, Y GSE, Z GSE" in bottom.get_xlabel()
    assert not any(position.name in line.get_label() for ax in fig.axes for line in ax.get_lines())  # not a panel
    fig.canvas.draw()
    ticks = [(x, t.get_text().split("\n")) for x, t in zip(bottom.get_xticks(), bottom.get_xticklabels(), strict=True)
             if t.get_text()]
    assert len(ticks) >= 3
    times = ds.time.values.astype("int64")
    for x, (_, *rows) in ticks:
        when = (np.datetime64(mdates.num2date(x).replace(tzinfo=None), "ns")).astype("int64")
        expected = [np.interp(when, times, position.values[:, i].astype("float64")) / 6371.2 for i in range(3)]
        assert [float(r) for r in rows] == pytest.approx(expected, abs=0.051)
    # in the notebook and the HTML file: the same rows, interpolated by the browser as the user zooms
    import holoviews as hv

    plot = hv.render(heliohub.quicklook("C1_CP_FGM_SPIN", archive=store), backend="bokeh")
    formatters = [m for m in plot.references() if isinstance(m, CustomJSTickFormatter)]
    assert len(formatters) == 1 and formatters[0].args["x"][0] == pytest.approx(
        float(position.values[0, 0]) / 6371.2, abs=1e-3)


def test_a_cluster_dataset_without_a_position_takes_its_spacecrafts_aux_position(tmp_path):
    # no CSA AUX position file is in data/: C2's real FGM hour, ingested under C2_CP_AUX_POSGSE_1M, stands in for
    # it (its sc_pos_xyz_gse is the position the AUX dataset gives); C2's ASPOC times carry no position
    archive = tmp_path / "store"
    fgm = real_file("cluster", "cdf", "C2_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf")
    heliohub.ingest([str(fgm)], archive, dataset_id="C2_CP_AUX_POSGSE_1M", progress=False)
    heliohub.ingest([str(real_file("cluster", "cef", "C2_CP_ASP_ACTIVE__20010101_000000_20100101_000000_V081030.cef"))],
                    archive, include_paths=[str(p) for p in CEF_HEADERS], progress=False)
    layout = heliohub.quicklook("C2_CP_ASP_ACTIVE", "2001-06-11T20:00", "2001-06-11T21:00", archive=archive)
    from heliohub.plots.render import matplotlib_figure

    bottom = matplotlib_figure(layout).axes[-1]
    assert "C2_CP_AUX_POSGSE_1M position (Earth radii): X GSE, Y GSE, Z GSE" in bottom.get_xlabel()
    position = heliohub.read_file(fgm)["sc_pos_xyz_gse__C2_CP_FGM_SPIN"].values.astype("float64") / 6371.2
    bottom.figure.canvas.draw()
    rows = [t.get_text().split("\n")[1:] for t in bottom.get_xticklabels() if t.get_text()]
    x_values = [float(r[0]) for r in rows if r and r[0]]
    assert x_values and all(position[:, 0].min() - 0.05 <= x <= position[:, 0].max() + 0.05 for x in x_values)


@pytest.mark.parametrize("dataset_id", IMAGES)
def test_image_frames_are_drawn_as_sunpy_draws_them(store, dataset_id):
    """Colormap, normalisation and axes against ``Map.plot()`` of the same frame (after the quicklook's north-up
    rotation and block averaging, which are sunpy's own ``rotate`` and ``superpixel``)."""
    import matplotlib.pyplot as plt

    from heliohub.plots.images import map_of, quiet_sunpy
    from heliohub.plots.render import IMAGE_PIXELS

    ds = heliohub.open_dataset(dataset_id, archive=store)
    fig = figure(store, dataset_id)
    (ax,) = [a for a in fig.axes if a.images]
    ours = ax.images[0]
    with quiet_sunpy():
        smap = map_of(ds, "image", 0, IMAGE_PIXELS)
        theirs = smap.plot(axes=plt.figure().add_subplot(projection=smap))
        unchanged = frame_to_map(ds, 0)
    if max(unchanged.data.shape) <= IMAGE_PIXELS and dataset_id != "SOHO_LASCO_C2":
        assert np.array_equal(smap.data, unchanged.data, equal_nan=True)  # the very frame sunpy reads
    assert ours.get_cmap().name == theirs.get_cmap().name == unchanged.cmap.name
    valid = np.isfinite(np.ma.filled(theirs.get_array(), np.nan))
    assert valid.mean() > 0.7
    drawn = ours.to_rgba(ours.get_array())
    drawn = drawn if ours.origin == theirs.origin else drawn[::-1]
    assert np.abs(drawn[valid] - theirs.to_rgba(theirs.get_array())[valid]).max() <= 1 / 255
    assert ax.get_xlabel() == "Helioprojective Longitude (Solar-X) (arcsec)"
    assert ax.get_ylabel() == "Helioprojective Latitude (Solar-Y) (arcsec)"
    assert theirs.axes.coords[0].get_format_unit() == theirs.axes.coords[1].get_format_unit() == "arcsec"
    corners = [smap.bottom_left_coord, smap.top_right_coord]
    assert ax.get_xlim() == pytest.approx([c.Tx.to_value("arcsec") for c in corners], rel=1e-6)
    assert ax.get_ylim() == pytest.approx([c.Ty.to_value("arcsec") for c in corners], rel=1e-6)
    title = ax.get_title()
    assert title.startswith(dataset_id) and str(unchanged.date.isot)[:19].replace("T", " ") in title
    if unchanged.wavelength is not None:
        assert f"{unchanged.wavelength.to_value('angstrom'):g} Å" in title
    colorbar = fig.axes[fig.axes.index(ax) + 1]
    assert ds["image"].attrs["units"] in colorbar.get_ylabel()
    plt.close("all")


def test_coronagraph_frames_mark_the_solar_disc_and_the_occulter(store):
    from heliohub.plots.images import OCCULTER_RSUN, quiet_sunpy

    with quiet_sunpy():  # the file does not say the observer or the solar radius: sunpy assumes Earth's
        smap = frame_to_map(heliohub.open_dataset("SOHO_LASCO_C2", archive=store), 0)
        rsun = smap.rsun_obs.to_value("arcsec")
    assert smap.detector == "C2"
    fig = figure(store, "SOHO_LASCO_C2")
    (ax,) = [a for a in fig.axes if a.images]
    radii = sorted(float(np.hypot(*line.get_data()).mean()) for line in ax.get_lines())
    assert radii == pytest.approx([rsun, OCCULTER_RSUN["C2"] * rsun], rel=1e-3)
    assert "solar disc" in ax.get_title() and "occulter" in ax.get_title()
    eit = figure(store, "SOHO_EIT_195")
    assert not [line for a in eit.axes for line in a.get_lines()]  # not on a disc imager


def test_light_curves_name_lyras_channels_on_a_log_axis_when_they_span_decades(store):
    ds = heliohub.open_dataset("PROBA2_LYRA_LEV2", archive=store)
    values = np.concatenate([ds[f"CHANNEL{i}"].values for i in range(1, 5)])
    assert np.nanmin(values) > 0 and np.nanmax(values) / np.nanmin(values) > 100
    (ax,) = figure(store, "PROBA2_LYRA_LEV2").axes
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Lyman alpha (120-123 nm)", "Herzberg cont. (190-222 nm)", "Al filter (17-80 nm + <5 nm)",
        "Zr filter (6-20 nm + <2 nm)"]


def test_spectra_are_spectrograms_with_the_archives_axes_and_log_scales(store):
    fig = figure(store, "solo_L2_epd-ept-north-hcad")
    spectrograms = [ax for ax in fig.axes if ax.get_ylabel().startswith("Energy")]
    assert len(spectrograms) == 2
    for ax in spectrograms:
        assert ax.get_yscale() == "log" and ax.get_ylabel() == "Energy [MeV]"
    colorbars = [ax.get_ylabel() for ax in fig.axes if "Flux" in ax.get_ylabel()]
    # in the file's order: the EPT file lists its ion variables before its electron ones
    assert colorbars == ["Ion Flux (particles / (s cm^2 sr MeV))", "Electron Flux (particles / (s cm^2 sr MeV))"]


def test_images_are_frames_with_a_time_slider(tmp_path):
    import holoviews as hv

    # no dataset of the real files has two frames: the demo's two EIT images (195 and 171 A) under one ID do
    found, _ = demo.inputs()
    eit = [f for f in found if "/EIT/" in f]
    if len(eit) < 2:
        pytest.skip("sunpy's two EIT test images are not installed")
    heliohub.ingest(eit, tmp_path / "store", dataset_id="EIT_FRAMES", progress=False)
    layout = heliohub.quicklook("EIT_FRAMES", archive=tmp_path / "store")
    (frames,) = layout
    assert isinstance(frames, hv.HoloMap) and list(frames.keys()) == ["2004-03-01T00:00:10", "2004-03-01T01:00:16"]
    html = heliohub.save_figure(layout, ARTIFACTS / "EIT_FRAMES-slider.html").read_text()
    assert "Slider" in html
    heliohub.save_figure(layout, ARTIFACTS / "EIT_FRAMES.png")


def test_several_datasets_stack_on_one_linked_time_axis(store):
    import holoviews as hv
    from bokeh.models import GridPlot

    layout = heliohub.quicklook(["C?_CP_FGM_SPIN", "C4_CP_EFW_L1_P34"], "2001-06-11T20:00", "2001-06-11T21:00",
                                archive=store)
    assert [panel.opts.get().kwargs["title"] for panel in layout] == [
        "C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN", "C3_CP_FGM_SPIN", "C4_CP_FGM_SPIN", "C4_CP_EFW_L1_P34"]
    plot = hv.render(layout, backend="bokeh")
    grid = plot if isinstance(plot, GridPlot) else plot.children[0]
    figures = [child[0] for child in grid.children]
    assert len({id(f.x_range) for f in figures}) == 1, "the panels' time axes are not linked"
    heliohub.save_figure(layout, ARTIFACTS / "four-fgm.png")
    heliohub.save_figure(layout, ARTIFACTS / "four-fgm.html")


def test_long_series_are_reduced_to_the_figure_width_keeping_their_extremes(store):
    from heliohub.plots.render import WIDTH

    ds = heliohub.open_dataset("C4_CP_FGM_SPIN", archive=store)
    assert ds.sizes["time"] > 4 * WIDTH
    layout = heliohub.quicklook("C4_CP_FGM_SPIN", archive=store)
    b = ds["B_vec_xyz_gse__C4_CP_FGM_SPIN"].values.astype("float64")
    curves = layout[0].values()
    for i, curve in enumerate(curves[:3]):
        values = curve.dimension_values(1)
        assert len(values) <= 2 * WIDTH
        assert np.nanmin(values) == np.nanmin(b[:, i]) and np.nanmax(values) == np.nanmax(b[:, i])


def test_ingest_pregenerates_quicklooks_that_quicklook_uses_and_a_new_version_redraws(store, tmp_path):
    archive = tmp_path / "store"
    source = real_file("cluster", "cef", "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef")
    headers = [str(p) for p in CEF_HEADERS]
    redraw = quicklook_redrawer(["24h"])
    heliohub.ingest([str(source)], archive, include_paths=headers, before_commit=redraw, progress=False)
    stored = _pregenerated(archive, "C4_CP_FGM_SPIN", "24h")
    assert sorted(stored) == ["20010706T000000", "20010707T000000", "20010708T000000", "20010709T000000"]
    out = heliohub.save_quicklook("C4_CP_FGM_SPIN", "2001-07-07", "2001-07-08", tmp_path / "day.png",
                                  archive=archive)
    assert out.read_bytes() == stored["20010707T000000"]

    # a newer version of the delivery, one value changed in the record at 2001-07-08T12:00:0x (made here)
    text = source.read_text()
    line = next(x for x in text.splitlines() if x.startswith("2001-07-08T12:00:0"))
    fields = line.split(",")
    fields[2] = "99.000"  # Bx (after the time and the half interval)
    newer = tmp_path / source.name.replace("_V01.cef", "_V02.cef")
    newer.write_text(text.replace(line, ",".join(fields), 1))
    report = heliohub.ingest([str(newer)], archive, include_paths=headers, before_commit=redraw, progress=False)
    assert [f.status for f in report.files] == ["replaced"]
    redrawn = _pregenerated(archive, "C4_CP_FGM_SPIN", "24h")
    assert sorted(redrawn) == sorted(stored)
    assert redrawn["20010708T000000"] != stored["20010708T000000"]
    assert heliohub.open_dataset("C4_CP_FGM_SPIN", "2001-07-08T12:00", "2001-07-08T12:00:10", archive=archive)[
        "B_vec_xyz_gse__C4_CP_FGM_SPIN"].values.max() == pytest.approx(99.0)


def _pregenerated(archive: Path, dataset_id: str, period: str) -> dict[str, bytes]:
    session = StoreLocation.resolve(archive).repository(dataset_id).readonly_session(branch=BRANCH)
    group = zarr.open_group(session.store, mode="r")[f"quicklooks/{period}"]
    return {key: bytes(np.asarray(array[:]).tobytes()) for key, array in group.arrays()}


def test_inventory_reads_the_catalog_only(s3_archive):
    from .test_access import chunk_gets, requests_seen

    files = [real_file("cluster", "cdf", n) for n in ("C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf",
                                                   "C4_CP_EFW_L1_P34__20010226_051830_20010226_051836_V110503.cdf")]
    heliohub.ingest([str(f) for f in files], s3_archive, progress=False)
    heliohub.store.access.clear_caches()
    with requests_seen() as lines:
        overlay = heliohub.inventory(archive=s3_archive)
    assert chunk_gets([line for line in lines if "_catalog" not in line]) == 0, lines
    rows = {dataset_id: curve for (_, dataset_id), curve in zip(overlay.opts.get().kwargs["yticks"],
                                                               overlay.values(), strict=True)}
    times = rows["C1_CP_FGM_SPIN"].dimension_values(0)
    ds = heliohub.read_file(files[0])
    assert times.min() <= ds.time.values.min() and times.max() >= ds.time.values.max()
    heliohub.save_figure(overlay, ARTIFACTS / "inventory-s3.png")


def test_the_cli_writes_png_without_a_display_and_names_bad_requests(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    run = {"capture_output": True, "text": True, "cwd": ROOT, "timeout": 300, "env": env}
    png = tmp_path / "inventory.png"
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "inventory", "C?_CP_FGM_SPIN", "--out", str(png),
                             "--archive", str(store)], **run)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    shutil.copy(png, ARTIFACTS / "inventory-fgm.png")
    quicklook = tmp_path / "quicklook.png"
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "quicklook", "solo_L2_epd-ept-north-hcad",
                             "--out", str(quicklook), "--archive", str(store)], **run)
    assert result.returncode == 0, result.stderr
    assert quicklook.read_bytes()[:4] == b"\x89PNG"
    unknown = subprocess.run([sys.executable, "-m", "heliohub.cli", "quicklook", "C1_CP_FGM_SPINN", "--out",
                              str(tmp_path / "x.png"), "--archive", str(store)], **run)
    assert unknown.returncode == 2 and "closest: C1_CP_FGM_SPIN" in unknown.stderr and "Traceback" not in unknown.stderr
    wrong = subprocess.run([sys.executable, "-m", "heliohub.cli", "quicklook", "C1_CP_FGM_SPIN", "--out",
                            str(tmp_path / "x.txt"), "--archive", str(store)], **run)
    assert wrong.returncode == 2 and "x.txt: a quicklook is written as .png or .html" in wrong.stderr
    ingest = subprocess.run([sys.executable, "-m", "heliohub.cli", "ingest", "--quicklooks", "2h", "--json",
                             str(real_file("cluster", "cdf")), "--archive", str(tmp_path / "s")], **run)
    assert ingest.returncode == 2 and "unknown quicklook period(s) 2h" in ingest.stderr
