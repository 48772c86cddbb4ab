"""The Solar Orbiter Archive: https://soar.esac.esa.int/soar-sl-tap

heliohub's ID of a Solar Orbiter dataset is the files' ISTP logical source, ``solo_<level>_<descriptor>`` (for
example ``solo_L2_epd-ept-north-hcad``). The TAP table ``v_sc_data_item`` lists the science files with their level,
descriptor, time span, name, size and whether the archive still serves them (``is_active``: a file the archive
has deactivated, superseded or withdrawn, is not asked for); each file is one download
(``data?retrieval_type=LAST_PRODUCT&product_type=SCIENCE&data_item_id=...``), its latest version.
"""

from __future__ import annotations

import re

import pandas as pd

from ..errors import FetchError
from .base import Item, iso, matching
from .http import Http, adql_text
from .tap import is_true, rows, rows_over_time

_ID = re.compile(r"^solo_(?P<level>[^_]+)_(?P<descriptor>.+)$", re.IGNORECASE)


class Soar:
    name = "soar"
    title = "the Solar Orbiter Archive"
    default_url = "https://soar.esac.esa.int/soar-sl-tap"
    setting = "HELIOHUB_SOAR_URL"
    parallel = 3
    empty_statuses: frozenset[int] = frozenset()
    request_limit = None

    def interface(self) -> dict[str, list[str]]:
        return {"v_sc_data_item": ["data_item_id", "filename", "filesize", "begin_time", "end_time", "level",
                                   "descriptor", "is_active"]}

    def probe(self) -> tuple[str, str, str]:
        return "solo_L2_epd-ept-north-hcad", "2020-07-13T00:00:00", "2020-07-13T23:59:59"

    def datasets(self, http: Http, pattern: str) -> tuple[list[str], list[str]]:
        match = _ID.match(pattern)
        if not match:
            raise FetchError(f"{pattern!r} is not a Solar Orbiter dataset ID: use solo_<level>_<descriptor>, "
                             "for example solo_L2_epd-ept-north-hcad (wildcards * and ? allowed)")
        found = rows(http, "SELECT DISTINCT level, descriptor FROM v_sc_data_item WHERE descriptor LIKE "
                     f"{adql_text(match['descriptor'].replace('*', '%').replace('?', '_'))}")
        known = [f"solo_{r['level']}_{r['descriptor']}" for r in found]
        if not known:
            known = [f"solo_{r['level']}_{r['descriptor']}"
                     for r in rows(http, "SELECT DISTINCT level, descriptor FROM v_sc_data_item")]
        return matching(pattern, known, f"{self.title} ({http.base_url})"), []

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        match = _ID.match(dataset_id)

        def query(first: pd.Timestamp, last: pd.Timestamp) -> str:
            return ("SELECT data_item_id, filename, filesize, begin_time, end_time, is_active FROM v_sc_data_item "
                    f"WHERE level = {adql_text(match['level'])} AND descriptor = {adql_text(match['descriptor'])} "
                    f"AND begin_time <= {adql_text(iso(last))} AND end_time >= {adql_text(iso(first))}")

        served = [r for r in rows_over_time(http, query, start, end) if is_true(r.get("is_active", "true"))]
        return [Item(dataset_id, row["filename"], "data",
                     {"retrieval_type": "LAST_PRODUCT", "product_type": "SCIENCE", "data_item_id": row["data_item_id"]},
                     filename=row["filename"], size=int(row["filesize"]) if row.get("filesize") else None,
                     start=pd.Timestamp(row["begin_time"]), end=pd.Timestamp(row["end_time"]))
                for row in sorted(served, key=lambda r: r["filename"])]

    def split(self, item: Item, parts: int) -> list[Item] | None:
        return None
