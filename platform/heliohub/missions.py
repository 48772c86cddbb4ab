"""What heliohub knows of the missions' conventions beyond what their files say: which spacecraft a dataset ID
belongs to, where a Cluster spacecraft's position is kept, how a position variable is named.

Used by the quicklooks (the position under the time axis) and the multi-spacecraft analysis alike.
"""

from __future__ import annotations

import re

import xarray as xr

from .store.layout import record_dims

EARTH_RADIUS_KM = 6371.2
"""The Earth radius positions are divided by: the IGRF reference radius."""
CLUSTER_COLOURS = {"C1": "black", "C2": "red", "C3": "green", "C4": "blue"}
"""The Cluster line colours (C1 Rumba black, C2 Salsa red, C3 Samba green, C4 Tango blue), as the Cluster science
data system's quicklook plots use them (CSDSweb quicklook plot description, RAL)."""
_SPACECRAFT = re.compile(r"^(C[1-4]|D[12]|TC[12])_")
"""Cluster C1-C4, and Double Star TC-1 and TC-2 (``D1_``/``D2_`` in the CSA, ``TC1_``/``TC2_`` in some sources)."""


def spacecraft_of(dataset_id: str) -> str | None:
    """The spacecraft a dataset ID names in its prefix (``C1`` of ``C1_CP_FGM_SPIN``), else None."""
    found = _SPACECRAFT.match(dataset_id)
    return found.group(1) if found else None


def aux_position_id(dataset_id: str) -> str | None:
    """The CSA AUX dataset with the position of a Cluster dataset's spacecraft (``C1_...``: ``C1_CP_AUX_POSGSE_1M``)."""
    spacecraft = spacecraft_of(dataset_id)
    return f"{spacecraft}_CP_AUX_POSGSE_1M" if spacecraft and spacecraft.startswith("C") else None


def _units(variable: xr.DataArray) -> str:
    upper = {k.upper(): v for k, v in variable.attrs.items()}
    return str(upper.get("UNITS") or "").strip()


def position_of(ds: xr.Dataset) -> str | None:
    """The variable holding the spacecraft's position: three components in km or Earth radii, named as a position
    (Cluster's ``sc_pos_xyz_gse``, the CSA AUX datasets' ``sc_r_xyz_gse``)."""
    axes = record_dims(ds)
    for name, variable in ds.data_vars.items():
        lowered = str(name).lower()
        if (axes and variable.dims[:1] == (axes[0],) and variable.ndim == 2 and variable.shape[1] == 3
                and variable.dtype.kind in "fiu" and ("pos" in lowered or lowered.startswith("sc_r_"))
                and _units(variable).lower() in ("km", "re", "r_e")):
            return str(name)
    return None
