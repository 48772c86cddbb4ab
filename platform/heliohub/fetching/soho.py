"""The SOHO Science Archive: https://ssa.esac.esa.int/ssa-sl-tap

Its TAP table ``soho.mv_observation`` lists each observation file with its instrument, time span, file name and
processing level; a file is downloaded by its ``observation_oid`` (``data?retrieval_type=OBSERVATION&QUERY=WHERE
observation.observation_oid = ...``). Here a dataset is an instrument (``EIT``, ``LASCO``, ``MDI``, ...): the
ingest gives each file its heliohub ID by rule (``SOHO_EIT_195``, ``SOHO_LASCO_C2``, ...; see docs/conventions.md).

An observation may be listed once per processing level. The archive's own web client orders them by
``processing_level_priority`` (lowest first: its preferred level); so does this source, and it fetches only the
preferred level of each observation (same detector, wavelength range and time span).
"""

from __future__ import annotations

import pandas as pd

from .base import Item, matching
from .http import Http, adql_text
from .tap import rows, rows_over_time

_COLUMNS = ("observation_oid", "begin_date", "end_date", "file_name", "detector_name", "wavelength_range",
            "processing_level", "processing_level_priority")


class Soho:
    name = "soho"
    title = "the SOHO Science Archive"
    default_url = "https://ssa.esac.esa.int/ssa-sl-tap"
    setting = "HELIOHUB_SOHO_URL"
    parallel = 3
    empty_statuses: frozenset[int] = frozenset()
    request_limit = None

    def interface(self) -> dict[str, list[str]]:
        return {"soho.mv_observation": ["instrument_name", *_COLUMNS]}

    def probe(self) -> tuple[str, str, str]:
        return "EIT", "2004-03-01T00:00:00", "2004-03-01T00:30:00"

    def datasets(self, http: Http, pattern: str) -> tuple[list[str], list[str]]:
        found = rows(http, "SELECT DISTINCT instrument_name FROM soho.mv_observation")
        return matching(pattern, [r["instrument_name"] for r in found], f"{self.title} ({http.base_url})",
                        "instrument"), []

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        text = "%Y-%m-%d %H:%M:%S"

        def query(first: pd.Timestamp, last: pd.Timestamp) -> str:
            return (f"SELECT {', '.join(_COLUMNS)} FROM soho.mv_observation "
                    f"WHERE instrument_name = {adql_text(dataset_id)} "
                    f"AND begin_date <= {adql_text(last.strftime(text))} "
                    f"AND end_date >= {adql_text(first.strftime(text))}")

        preferred: dict[tuple[str, ...], dict[str, str]] = {}
        for row in rows_over_time(http, query, start, end):
            key = (row["begin_date"], row["end_date"], row.get("detector_name", ""), row.get("wavelength_range", ""))
            rank = (int(row.get("processing_level_priority") or 0), int(row["observation_oid"]))
            kept = preferred.get(key)
            if kept is None or rank < (int(kept.get("processing_level_priority") or 0), int(kept["observation_oid"])):
                preferred[key] = row
        # file_size is not checked: the archive's column does not say whether it counts the compressed file
        return [Item(dataset_id, f"observation_{row['observation_oid']}", "data",
                     {"retrieval_type": "OBSERVATION", "compress": "false",
                      "QUERY": f"WHERE observation.observation_oid = {int(row['observation_oid'])}"},
                     filename=row.get("file_name") or None,
                     start=pd.Timestamp(row["begin_date"]), end=pd.Timestamp(row["end_date"]))
                for row in sorted(preferred.values(), key=lambda r: (r["begin_date"], int(r["observation_oid"])))]

    def split(self, item: Item, parts: int) -> list[Item] | None:
        return None
