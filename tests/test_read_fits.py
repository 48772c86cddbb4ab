"""FITS images and light curves read by heliohub, checked against astropy and sunpy on the real files."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

import heliohub
from heliohub.errors import FileReadError

from .conftest import real_file

IMAGES = [
    (("soho", "eit", "efz20040301.000010_s.fits"), "SOHO_EIT_195", (128, 128), "2004-03-01T00:00:10.515"),
    (("soho", "lasco", "lasco_c2_25299383_s.fts"), "SOHO_LASCO_C2", (128, 128), "2009-02-28T00:05:33.380"),
    (("soho", "mdi", "mdi_fd_Ic_6h_01d.5871.0000_s.fits"), "SOHO_MDI_CONTINUUM", (128, 128),
     "2009-01-28T00:35:32.428"),
    (("soho", "mdi", "mdi.fd_ic.20101015_230100_TAI.data.fits"), "SOHO_MDI_CONTINUUM", (1024, 1024),
     "2010-10-15T23:00:11"),
    (("proba2", "swap", "swap_lv1_20140606_000113.fits"), "PROBA2_SWAP_174", (32, 32), "2014-06-06T00:01:13.567"),
    (("proba2", "swap", "resampled0_swap.fits"), "PROBA2_SWAP_174", (100, 100), "2011-10-04T23:56:41.222"),
]
LYRA = ("proba2", "lyra", "lyra_20120101-000000_lev2_std.fits")


def _astropy_image(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdus:
            return next(h.data for h in hdus if h.is_image and h.data is not None)


@pytest.mark.parametrize(("parts", "dataset_id", "shape", "date_obs"), IMAGES)
def test_images_equal_astropy_with_time_and_id(parts, dataset_id, shape, date_obs):
    path = real_file(*parts)
    ds = heliohub.read_file(path)
    assert ds.attrs["dataset_id"] == dataset_id
    assert ds["image"].dims == ("time", "y", "x")
    assert ds["image"].shape == (1, *shape)
    assert ds.time.values[0] == np.datetime64(pd.Timestamp(date_obs).as_unit("ns").asm8)
    np.testing.assert_array_equal(ds["image"].values[0], _astropy_image(path))
    assert ds.attrs["source_format"] == "FITS"


@pytest.mark.filterwarnings("ignore")  # sunpy's warnings about the files' old-style metadata
@pytest.mark.parametrize(("parts", "dataset_id", "shape", "date_obs"), IMAGES)
def test_each_frame_turns_back_into_the_same_sunpy_map(parts, dataset_id, shape, date_obs):
    sunpy_map = pytest.importorskip("sunpy.map")
    path = real_file(*parts)
    original = sunpy_map.Map(str(path))
    rebuilt = heliohub.frame_to_map(heliohub.read_file(path))
    np.testing.assert_array_equal(rebuilt.data, original.data)
    assert rebuilt.date == original.date
    assert rebuilt.wavelength == original.wavelength
    assert rebuilt.exposure_time == original.exposure_time
    assert rebuilt.reference_coordinate.separation(original.reference_coordinate).arcsec < 1e-6
    assert rebuilt.scale == original.scale
    assert rebuilt.observatory == original.observatory


def test_frame_metadata_as_variables():
    ds = heliohub.read_file(real_file("soho", "eit", "efz20040301.000010_s.fits"))
    assert float(ds["wavelength"][0]) == 195.0
    assert ds["wavelength"].attrs["units"] == "Angstrom"
    assert float(ds["exposure_time"][0]) == 13.0
    header = heliohub.frame_header(ds)
    for keyword in ("CRPIX1", "CRVAL1", "CDELT1", "CTYPE1", "DATE-OBS", "WAVELNTH"):
        assert keyword in header
    assert ds.attrs["observatory"] == "SOHO"
    assert ds.attrs["instrument"] == "EIT"


def test_lyra_light_curve_times_and_channels_equal_the_table():
    path = real_file(*LYRA)
    ds = heliohub.read_file(path)
    with fits.open(path) as hdus:
        table = hdus[1].data
        start = pd.Timestamp(hdus[0].header["DATE-OBS"])
        seconds = np.asarray(table["TIME"], dtype=np.float64)
        channels = {name: np.asarray(table[name]) for name in ("CHANNEL1", "CHANNEL2", "CHANNEL3", "CHANNEL4")}
    assert ds.attrs["dataset_id"] == "PROBA2_LYRA_LEV2"
    assert ds.sizes["time"] == 346
    expected = start.as_unit("ns").asm8 + np.round(seconds * 1e9).astype("timedelta64[ns]")
    np.testing.assert_array_equal(ds.time.values, expected)
    for name, values in channels.items():
        np.testing.assert_array_equal(ds[name].values, values)
        assert ds[name].attrs["units"] == "W m-2"


def test_gzipped_fits_reads_the_same(tmp_path):
    path = real_file("soho", "eit", "efz20040301.000010_s.fits")
    zipped = tmp_path / "efz20040301.000010_s.fits.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert heliohub.read_file(zipped).drop_attrs().identical(heliohub.read_file(path).drop_attrs())


@pytest.mark.parametrize("parts", [IMAGES[0][0], IMAGES[3][0], LYRA])
def test_truncated_fits_is_refused(tmp_path, parts):
    data = real_file(*parts).read_bytes()
    damaged = tmp_path / parts[-1]
    damaged.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(FileReadError, match="truncated or damaged FITS") as caught:
        heliohub.read_file(damaged)
    assert str(damaged) in str(caught.value)


def test_corrupt_fits_header_is_refused(tmp_path):
    data = bytearray(real_file("soho", "eit", "efz20040301.000010_s.fits").read_bytes())
    data[80:2880] = b"\x00" * (2880 - 80)  # every card after SIMPLE, including NAXIS and END
    damaged = tmp_path / "damaged.fits"
    damaged.write_bytes(bytes(data))
    with pytest.raises(FileReadError, match="FITS"):
        heliohub.read_file(damaged)


def test_damaged_tile_compression_is_refused(tmp_path):
    data = bytearray(real_file("soho", "mdi", "mdi.fd_ic.20101015_230100_TAI.data.fits").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20000] = b"\x5a" * 20000
    damaged = tmp_path / "mdi_damaged.fits"
    damaged.write_bytes(bytes(data))
    with pytest.raises(FileReadError, match="FITS"):
        heliohub.read_file(damaged)
