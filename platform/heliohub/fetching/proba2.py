"""The PROBA2 Science Center's data tree: https://proba2.sidc.be (the host sunpy's ``LYRAClient`` reads since the
data centre moved from ``proba2.oma.be`` to the SIDC's domain; sunpy's client docstring and URL pattern say
``https://proba2.sidc.be/lyra/data/bsd/...``).

It has no query interface: files sit in daily folders, each with an index page, ``lyra/data/bsd/YYYY/MM/DD/``
(one light curve per day and level, ``lyra_YYYYMMDD-000000_levN_std.fits``; level 1 also as
``..._lev1_std_v01.fits``, the FILENAME the archive's level-1 page gives, https://proba2.sidc.be/data/LYRA/level1,
and later versions, of which the highest is taken) and ``swap/data/bsd/YYYY/MM/DD/``
(``swap_lv1_YYYYMMDD_HHMMSS.fits``). A day's folder that does not exist (HTTP 404) holds no data. The datasets are
heliohub's IDs for them.
"""

from __future__ import annotations

import re

import pandas as pd

from .base import Item, matching
from .http import Http, HttpError

DATASETS = {"PROBA2_LYRA_LEV1": 1, "PROBA2_LYRA_LEV2": 2, "PROBA2_LYRA_LEV3": 3, "PROBA2_SWAP_174": None}
_SWAP = re.compile(r'href="(?:[^"]*/)?(swap_lv1_(\d{8}_\d{6})\.fits)"')
_LYRA = re.compile(r'href="(?:[^"]*/)?(lyra_(\d{8})-(\d{6})_lev(\d)_std(?:_v(\d+))?\.fits)"')


class Proba2:
    name = "proba2"
    title = "the PROBA2 Science Center"
    default_url = "https://proba2.sidc.be"
    setting = "HELIOHUB_PROBA2_URL"
    parallel = 2
    empty_statuses = frozenset({404})
    request_limit = None

    def interface(self) -> dict[str, list[str]]:
        return {}

    def probe(self) -> tuple[str, str, str]:
        return "PROBA2_LYRA_LEV2", "2012-01-01T00:00:00", "2012-01-01T23:59:59"

    def datasets(self, http: Http, pattern: str) -> tuple[list[str], list[str]]:
        return matching(pattern, list(DATASETS), f"{self.title} ({http.base_url})"), []

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        level = DATASETS[dataset_id]
        items = []
        for day in pd.date_range(start.normalize(), end.normalize(), freq="D"):
            folder = f"{'lyra' if level else 'swap'}/data/bsd/{day:%Y/%m/%d}/"
            try:
                listing = http.text(folder, {})
            except HttpError as error:
                if error.status == 404:  # no folder: no data that day
                    continue
                raise
            if level is not None:
                versions = {}
                for name, _, _, file_level, version in _LYRA.findall(listing):
                    if int(file_level) == level:
                        versions[name] = int(version or 0)
                if versions:
                    name = max(versions, key=lambda n: (versions[n], n))
                    items.append(Item(dataset_id, name, folder + name, {}, filename=name, start=day,
                                      end=day + pd.Timedelta(days=1)))
                continue
            for name, stamp in sorted(set(_SWAP.findall(listing))):
                taken = pd.to_datetime(stamp, format="%Y%m%d_%H%M%S")
                if start <= taken <= end:
                    items.append(Item(dataset_id, name, folder + name, {}, filename=name, start=taken, end=taken))
        return items

    def split(self, item: Item, parts: int) -> list[Item] | None:
        return None
