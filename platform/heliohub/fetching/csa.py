"""The Cluster Science Archive (Cluster and Double Star): https://csa.esac.esa.int/csa-sl-tap

Datasets and their inventory come from its TAP service (``csa.v_dataset``, ``csa.v_dataset_inventory``); data
from its product requests (``data?RETRIEVAL_TYPE=PRODUCT&DATASET_ID=...&START_DATE=...&END_DATE=...``), which
answer a ``.tgz`` package of CEF or CDF files. A synchronous request may not exceed 1 GB (compressed), so a range
is asked for in windows (a day by default) and a window the archive refuses as too large is asked for in halves.
"""

from __future__ import annotations

import pandas as pd

from .base import Item, iso, matching, windows
from .http import Http, adql_text

FORMATS = {"CEF": "CEF", "CDF": "CDF", "CDF_ISTP": "CDF_ISTP"}
SMALLEST = pd.Timedelta(hours=1)


class Csa:
    name = "csa"
    title = "the Cluster Science Archive"
    default_url = "https://csa.esac.esa.int/csa-sl-tap"
    setting = "HELIOHUB_CSA_URL"

    def __init__(self, delivery_format: str = "CEF") -> None:
        self.delivery_format = FORMATS[delivery_format.upper()]

    def datasets(self, http: Http, pattern: str) -> list[str]:
        like = pattern.replace("*", "%").replace("?", "_")
        query = "SELECT dataset_id FROM csa.v_dataset"
        rows = http.tap(f"{query} WHERE dataset_id LIKE {adql_text(like)}")
        if not rows:  # say which IDs are close: the whole list is a few thousand short rows
            rows = http.tap(query)
        return matching(pattern, [r["dataset_id"] for r in rows], f"{self.title} ({http.base_url})")

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        rows = http.tap("SELECT start_time, end_time, num_instances FROM csa.v_dataset_inventory "
                        f"WHERE dataset_id = {adql_text(dataset_id)} AND start_time <= {adql_text(iso(end))} "
                        f"AND end_time >= {adql_text(iso(start))} AND num_instances > 0")
        covered = [(pd.Timestamp(r["start_time"]).tz_localize(None), pd.Timestamp(r["end_time"]).tz_localize(None))
                   for r in rows]
        items = []
        for first, last in windows(start, end, window):
            if any(a <= last and b >= first for a, b in covered):
                items.append(self._item(dataset_id, first, last))
        return items

    def _item(self, dataset_id: str, first: pd.Timestamp, last: pd.Timestamp) -> Item:
        return Item(dataset_id, f"{first:%Y%m%dT%H%M%S}_{last:%Y%m%dT%H%M%S}", "data", {
            "RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": dataset_id, "START_DATE": iso(first), "END_DATE": iso(last),
            "DELIVERY_FORMAT": self.delivery_format, "DELIVERY_INTERVAL": "ALL"}, package=True,
            start=first, end=last)

    def halves(self, item: Item) -> list[Item] | None:
        if item.start is None or item.end is None or item.end - item.start <= SMALLEST:
            return None
        middle = item.start + (item.end - item.start) / 2
        return [self._item(item.dataset_id, item.start, middle.floor("s")),
                self._item(item.dataset_id, middle.floor("s"), item.end)]
