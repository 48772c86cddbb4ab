"""Solar images in heliohub datasets back to the solar community's own objects."""

from __future__ import annotations

from typing import Any

import xarray as xr
from astropy.io import fits


def frame_header(dataset: xr.Dataset, time: Any = 0) -> fits.Header:
    """The FITS header of one frame (by position, or by time when given a time) of an image dataset."""
    headers = dataset["fits_header"]
    header = headers.isel(time=time) if isinstance(time, int) else headers.sel(time=time)
    return fits.Header.fromstring(str(header.values.item()), sep="\n")


def frame_to_map(dataset: xr.Dataset, time: Any = 0):
    """One frame of an image dataset as a ``sunpy.map.Map``, rebuilt from its pixels and its FITS header.

    ``time`` is the frame's position (an int) or its observation time. Needs sunpy (``pip install sunpy[map]``).
    """
    try:
        import sunpy.map
    except ImportError as error:
        raise ImportError("frame_to_map needs sunpy: pip install 'sunpy[map]'") from error
    image = dataset["image"]
    frame = image.isel(time=time) if isinstance(time, int) else image.sel(time=time)
    return sunpy.map.Map((frame.values, frame_header(dataset, time)))
