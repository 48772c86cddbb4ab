"""``xr.open_dataset("C1_CP_FGM_SPIN", engine="heliohub")``: the archive store as an xarray backend."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

from .store.access import TimeLike, open_dataset


class HeliohubBackendEntrypoint(BackendEntrypoint):
    """Opens a dataset of the archive store by its dataset ID, lazily, optionally over a time range."""

    description = "Open a dataset of the heliohub archive store by its archive dataset ID"
    url = "https://github.com/heliohub/heliohub"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "start", "end", "archive")

    def open_dataset(self, filename_or_obj: Any, *, drop_variables: str | Iterable[str] | None = None,
                     start: TimeLike = None, end: TimeLike = None, archive: str | None = None) -> xr.Dataset:
        ds = open_dataset(str(filename_or_obj), start, end, archive=archive)
        if drop_variables is not None:
            ds = ds.drop_vars([drop_variables] if isinstance(drop_variables, str) else list(drop_variables),
                              errors="ignore")
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        return False  # a dataset ID is not a file: ask for engine="heliohub"
