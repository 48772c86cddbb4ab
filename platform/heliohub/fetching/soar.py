"""The Solar Orbiter Archive: https://soar.esac.esa.int/soar-sl-tap

heliohub's ID of a Solar Orbiter dataset is the files' ISTP logical source, ``solo_<level>_<descriptor>`` (for
example ``solo_L2_epd-ept-north-hcad``). The TAP table ``v_sc_data_item`` lists the science files with their level,
descriptor, time span, name and size; each file is one download
(``data?retrieval_type=LAST_PRODUCT&product_type=SCIENCE&data_item_id=...``), its latest version.
"""

from __future__ import annotations

import re

import pandas as pd

from ..errors import FetchError
from .base import Item, iso, matching
from .http import Http, adql_text

_ID = re.compile(r"^solo_(?P<level>[^_]+)_(?P<descriptor>.+)$", re.IGNORECASE)


class Soar:
    name = "soar"
    title = "the Solar Orbiter Archive"
    default_url = "https://soar.esac.esa.int/soar-sl-tap"
    setting = "HELIOHUB_SOAR_URL"

    def datasets(self, http: Http, pattern: str) -> list[str]:
        match = _ID.match(pattern)
        if not match:
            raise FetchError(f"{pattern!r} is not a Solar Orbiter dataset ID: use solo_<level>_<descriptor>, "
                             "for example solo_L2_epd-ept-north-hcad (wildcards * and ? allowed)")
        rows = http.tap("SELECT DISTINCT level, descriptor FROM v_sc_data_item WHERE descriptor LIKE "
                        f"{adql_text(match['descriptor'].replace('*', '%').replace('?', '_'))}")
        known = [f"solo_{r['level']}_{r['descriptor']}" for r in rows]
        if not known:
            known = [f"solo_{r['level']}_{r['descriptor']}"
                     for r in http.tap("SELECT DISTINCT level, descriptor FROM v_sc_data_item")]
        return matching(pattern, known, f"{self.title} ({http.base_url})")

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        match = _ID.match(dataset_id)
        rows = http.tap("SELECT data_item_id, filename, filesize, begin_time, end_time FROM v_sc_data_item "
                        f"WHERE level = {adql_text(match['level'])} AND descriptor = {adql_text(match['descriptor'])} "
                        f"AND begin_time <= {adql_text(iso(end))} AND end_time >= {adql_text(iso(start))}")
        return [Item(dataset_id, row["filename"], "data",
                     {"retrieval_type": "LAST_PRODUCT", "product_type": "SCIENCE", "data_item_id": row["data_item_id"]},
                     filename=row["filename"], size=int(row["filesize"]) if row.get("filesize") else None,
                     start=pd.Timestamp(row["begin_time"]), end=pd.Timestamp(row["end_time"]))
                for row in sorted(rows, key=lambda r: r["filename"])]

    def halves(self, item: Item) -> list[Item] | None:
        return None
