"""The SOHO Science Archive: https://ssa.esac.esa.int/ssa-sl-tap

Its TAP table ``soho.mv_observation`` lists each observation file with its instrument and time span; a file is
downloaded by its ``observation_oid`` (``data?retrieval_type=OBSERVATION&QUERY=WHERE observation.observation_oid
= ...``). Here a dataset is an instrument (``EIT``, ``LASCO``, ``MDI``, ...): the ingest gives each file its
heliohub ID by rule (``SOHO_EIT_195``, ``SOHO_LASCO_C2``, ...; see docs/conventions.md).
"""

from __future__ import annotations

import pandas as pd

from .base import Item, matching
from .http import Http, adql_text


class Soho:
    name = "soho"
    title = "the SOHO Science Archive"
    default_url = "https://ssa.esac.esa.int/ssa-sl-tap"
    setting = "HELIOHUB_SOHO_URL"

    def datasets(self, http: Http, pattern: str) -> list[str]:
        rows = http.tap("SELECT DISTINCT instrument_name FROM soho.mv_observation")
        return matching(pattern, [r["instrument_name"] for r in rows], f"{self.title} ({http.base_url})",
                        "instrument")

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        text = "%Y-%m-%d %H:%M:%S"
        rows = http.tap("SELECT observation_oid, begin_date, end_date FROM soho.mv_observation "
                        f"WHERE instrument_name = {adql_text(dataset_id)} "
                        f"AND begin_date <= {adql_text(end.strftime(text))} "
                        f"AND end_date >= {adql_text(start.strftime(text))}")
        return [Item(dataset_id, f"observation_{row['observation_oid']}", "data",
                     {"retrieval_type": "OBSERVATION", "compress": "false",
                      "QUERY": f"WHERE observation.observation_oid = {int(row['observation_oid'])}"},
                     start=pd.Timestamp(row["begin_date"]), end=pd.Timestamp(row["end_date"]))
                for row in sorted(rows, key=lambda r: (r["begin_date"], int(r["observation_oid"])))]

    def halves(self, item: Item) -> list[Item] | None:
        return None
