"""The Cluster Science Archive (Cluster and Double Star): https://csa.esac.esa.int/csa-sl-tap

Datasets and their inventory come from its TAP service (``csa.v_dataset``, ``csa.v_dataset_inventory``); data
from its product requests (``data?RETRIEVAL_TYPE=PRODUCT&DATASET_ID=...&START_DATE=...&END_DATE=...``), which
answer a ``.tgz`` package of CEF or CDF files.

A synchronous request may not exceed 1 GB (the CSA's "data request" documentation: larger requests must be
reduced, or scheduled). Windows are sized before asking: the inventory gives each file's record count, the first
package of a dataset gives its bytes per record, and a window whose estimate passes half the limit is cut into
parts. A window the archive still refuses as too large is asked for in halves.

A dataset is offered only in the formats its ``csa.v_dataset`` row allows: ``is_cef`` for CEF (and for CDF,
which the archive converts from CEF), ``is_istp`` for CDF_ISTP (the filter speasy's CSA inventory uses).
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

from ..errors import FetchError
from .base import Item, iso, matching, windows
from .http import Http, adql_text
from .tap import is_true, rows, rows_over_time

FORMATS = {"CEF": "is_cef", "CDF": "is_cef", "CDF_ISTP": "is_istp"}
"""Each delivery format, and the ``csa.v_dataset`` column that says a dataset can be delivered in it."""
SMALLEST = pd.Timedelta(minutes=1)


class Csa:
    name = "csa"
    title = "the Cluster Science Archive"
    default_url = "https://csa.esac.esa.int/csa-sl-tap"
    setting = "HELIOHUB_CSA_URL"
    parallel = 2
    empty_statuses = frozenset({404})
    request_limit = 1 << 30
    formats = tuple(FORMATS)

    def __init__(self, delivery_format: str = "CEF") -> None:
        if delivery_format.upper() not in FORMATS:
            raise FetchError(f"the Cluster Science Archive delivers {', '.join(FORMATS)}, not {delivery_format!r}")
        self.delivery_format = delivery_format.upper()
        self._inventory: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, float]]] = {}

    def interface(self) -> dict[str, list[str]]:
        return {"csa.v_dataset": ["dataset_id", "is_cef", "is_istp"],
                "csa.v_dataset_inventory": ["dataset_id", "start_time", "end_time", "num_instances"]}

    def probe(self) -> tuple[str, str, str]:
        return "C1_CP_FGM_SPIN", "2001-06-11T20:00:00", "2001-06-11T20:01:00"

    def datasets(self, http: Http, pattern: str) -> tuple[list[str], list[str]]:
        like = pattern.replace("*", "%").replace("?", "_")
        query = "SELECT dataset_id, is_cef, is_istp FROM csa.v_dataset"
        found = rows(http, f"{query} WHERE dataset_id LIKE {adql_text(like)}")
        if not found:  # say which IDs are close: the whole list is a few thousand short rows
            found = rows(http, "SELECT dataset_id FROM csa.v_dataset")
        by_id = {r["dataset_id"]: r for r in found}
        matched = matching(pattern, list(by_id), f"{self.title} ({http.base_url})")
        column = FORMATS[self.delivery_format]
        offered = [d for d in matched if is_true(by_id[d].get(column, ""))]
        notes = [f"{d}: not delivered as {self.delivery_format} ({column} is false in csa.v_dataset)"
                 for d in matched if d not in offered]
        if not offered:
            raise FetchError(f"{self.title} ({http.base_url}) cannot deliver {pattern!r} as {self.delivery_format}"
                             f" ({column} is false for {', '.join(matched)}): ask for another --format")
        return offered, notes

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        def query(first: pd.Timestamp, last: pd.Timestamp) -> str:
            return ("SELECT start_time, end_time, num_instances FROM csa.v_dataset_inventory "
                    f"WHERE dataset_id = {adql_text(dataset_id)} AND start_time <= {adql_text(iso(last))} "
                    f"AND end_time >= {adql_text(iso(first))} AND num_instances > 0")

        covered = [(pd.Timestamp(r["start_time"]).tz_localize(None), pd.Timestamp(r["end_time"]).tz_localize(None),
                    float(r["num_instances"] or 0)) for r in rows_over_time(http, query, start, end)]
        self._inventory[dataset_id] = covered
        return [self._item(dataset_id, first, last) for first, last in windows(start, end, window)
                if any(a <= last and b >= first for a, b, _ in covered)]

    def _records(self, dataset_id: str, first: pd.Timestamp, last: pd.Timestamp) -> float:
        """The inventory's records in a window, each inventory row's spread evenly over its span."""
        total = 0.0
        for a, b, count in self._inventory.get(dataset_id, []):
            overlap = (min(b, last) - max(a, first)).total_seconds()
            if overlap >= 0:
                total += count * (overlap / (b - a).total_seconds() if b > a else 1.0)
        return total

    def _item(self, dataset_id: str, first: pd.Timestamp, last: pd.Timestamp) -> Item:
        return Item(dataset_id, f"{first:%Y%m%dT%H%M%S}_{last:%Y%m%dT%H%M%S}", "data", {
            "RETRIEVAL_TYPE": "PRODUCT", "DATASET_ID": dataset_id, "START_DATE": iso(first), "END_DATE": iso(last),
            "DELIVERY_FORMAT": self.delivery_format, "DELIVERY_INTERVAL": "ALL"}, package=True,
            start=first, end=last, records=self._records(dataset_id, first, last))

    def split(self, item: Item, parts: int) -> list[Item] | None:
        if item.start is None or item.end is None or parts < 2:
            return None
        step = max((item.end - item.start) / parts, SMALLEST).ceil("s")
        if item.end - item.start <= SMALLEST:
            return None
        edges = [item.start + step * k for k in range(math.ceil((item.end - item.start) / step))] + [item.end]
        return [self._item(item.dataset_id, a, b) for a, b in itertools.pairwise(edges) if b > a]
