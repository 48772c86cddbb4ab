"""The PROBA2 Science Center's data tree: https://proba2.oma.be (the layout sunpy's LYRA client reads).

It has no query interface: files sit in daily folders, ``lyra/data/bsd/YYYY/MM/DD/lyra_YYYYMMDD-000000_levN_std.fits``
(one light curve per day and level) and ``swap/data/bsd/YYYY/MM/DD/swap_lv1_YYYYMMDD_HHMMSS.fits`` (listed in the
folder's index page). The datasets are heliohub's IDs for them.
"""

from __future__ import annotations

import re

import pandas as pd

from ..errors import FetchError
from .base import Item, matching
from .http import Http

DATASETS = {"PROBA2_LYRA_LEV1": 1, "PROBA2_LYRA_LEV2": 2, "PROBA2_LYRA_LEV3": 3, "PROBA2_SWAP_174": None}
_SWAP = re.compile(r'href="(?:[^"]*/)?(swap_lv1_(\d{8}_\d{6})\.fits)"')


class Proba2:
    name = "proba2"
    title = "the PROBA2 Science Center"
    default_url = "https://proba2.oma.be"
    setting = "HELIOHUB_PROBA2_URL"

    def datasets(self, http: Http, pattern: str) -> list[str]:
        return matching(pattern, list(DATASETS), f"{self.title} ({http.base_url})")

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        days = pd.date_range(start.normalize(), end.normalize(), freq="D")
        level = DATASETS[dataset_id]
        if level is not None:
            return [Item(dataset_id, name, f"lyra/data/bsd/{day:%Y/%m/%d}/{name}", {}, filename=name,
                         start=day, end=day + pd.Timedelta(days=1), optional=True)
                    for day in days for name in [f"lyra_{day:%Y%m%d}-000000_lev{level}_std.fits"]]
        items = []
        for day in days:
            folder = f"swap/data/bsd/{day:%Y/%m/%d}/"
            try:
                listing = http.text(folder, {})
            except FetchError as error:
                if "HTTP 404" in str(error):  # no folder: no images that day
                    continue
                raise
            for name, stamp in sorted(set(_SWAP.findall(listing))):
                taken = pd.to_datetime(stamp, format="%Y%m%d_%H%M%S")
                if start <= taken <= end:
                    items.append(Item(dataset_id, name, folder + name, {}, filename=name, start=taken, end=taken))
        return items

    def halves(self, item: Item) -> list[Item] | None:
        return None
