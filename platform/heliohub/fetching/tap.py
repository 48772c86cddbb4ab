"""ADQL queries on the ESA archives' TAP services (``tap/sync``), answered as VOTables and read by astropy.

TAP 1.1 (IVOA REC-TAP-1.1, section 5) says how an answer ends: an ``INFO name="QUERY_STATUS"`` of ``OK``, of
``ERROR`` (the query failed; its text says why), or a second one of ``OVERFLOW`` after the table when the service
cut the rows at ``MAXREC`` or at its own limit. A cut answer is never used as if whole: :func:`rows_over_time`
splits a query over its time range until no part is cut. A service that ignores ``FORMAT`` and answers CSV is read
too; its cut cannot be seen, so an answer of exactly ``MAXREC`` rows counts as cut.

pyvo's ``TAPService`` would make its own HTTP requests, outside the retries, back-off and ``Retry-After`` of
:mod:`heliohub.fetching.http`; the VOTable reading, which is the part that matters, is astropy's (as in pyvo).
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import FetchError
from .answers import describe, is_html, is_votable
from .http import Http

log = logging.getLogger(__name__)

MAXREC = 20_000
"""Rows asked for at most in one answer; more are fetched by splitting the query."""


class TapOverflow(FetchError):
    """The service cut the answer (QUERY_STATUS OVERFLOW, or MAXREC rows): the query must ask for less."""


def rows(http: Http, query: str, maxrec: int | None = None) -> list[dict[str, str]]:
    """The rows of an ADQL query, each a dictionary of text (empty text for a null); TapOverflow when cut,
    FetchError quoting the answer when it is not a table. ``maxrec`` defaults to :data:`MAXREC`."""
    maxrec = maxrec or MAXREC
    where = http.url("tap/sync")
    body, content_type = http.get("tap/sync", {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable",
                                               "MAXREC": str(maxrec), "QUERY": query})
    if is_votable(body):
        found = _votable_rows(body, where, query)
    elif is_html(body) or not body.strip():
        raise FetchError(f"{where}: the TAP service answered {describe(body)} instead of a table "
                         f"(query: {query})")
    elif "csv" in content_type.lower() or b"," in body.split(b"\n", 1)[0]:
        found = list(csv.DictReader(io.StringIO(body.decode("utf-8", "replace"))))
    else:
        raise FetchError(f"{where}: the TAP service answered {describe(body)}, neither a VOTable nor CSV "
                         f"(query: {query})")
    if len(found) >= maxrec:
        raise TapOverflow(f"{where}: the answer was cut at MAXREC={maxrec} rows (query: {query})")
    return found


def _votable_rows(body: bytes, where: str, query: str) -> list[dict[str, str]]:
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VOWarning)  # archives' VOTables often bend the schema; the data is whole
            document = parse(io.BytesIO(body), verify="ignore")
    except Exception as error:  # astropy raises several kinds on a broken document
        raise FetchError(f"{where}: the TAP answer is not a readable VOTable ({type(error).__name__}: {error}); "
                         f"it begins {describe(body)}") from None
    resources = [r for r in document.resources if r.type == "results"] or list(document.resources)
    infos = [*document.infos, *(i for r in resources for i in r.infos)]
    statuses = [(i.value or "").upper() for i in infos if i.name == "QUERY_STATUS"]
    if "ERROR" in statuses:
        said = " ".join(str(i.content or i.value) for i in infos if i.name == "QUERY_STATUS"
                        and (i.value or "").upper() == "ERROR")
        raise FetchError(f"{where}: the TAP service refused the query: {said!r} (query: {query})")
    if "OVERFLOW" in statuses:
        raise TapOverflow(f"{where}: the TAP service cut the answer (QUERY_STATUS OVERFLOW; query: {query})")
    tables = [t for r in resources for t in r.tables]
    if not tables:
        raise FetchError(f"{where}: the TAP answer holds no table (QUERY_STATUS {statuses or 'absent'}; "
                         f"query: {query})")
    array = tables[0].array
    names = [f.name for f in tables[0].fields]
    return [{name: _text(array[name][index], bool(np.ma.getmaskarray(array[name])[index])) for name in names}
            for index in range(len(array))]


def _text(value: object, masked: bool) -> str:
    if masked:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.bool_ | bool):
        return "true" if value else "false"
    return str(value)


def is_true(text: str) -> bool:
    """A TAP boolean as the archives write it (``true``/``false``, ``t``/``f``, ``1``/``0``)."""
    return text.strip().lower() in ("true", "t", "1", "yes")


def rows_over_time(http: Http, query: Callable[[pd.Timestamp, pd.Timestamp], str], start: pd.Timestamp,
                   end: pd.Timestamp, maxrec: int | None = None) -> list[dict[str, str]]:
    """The rows of ``query(start, end)``, the range split in halves wherever the service cut the answer
    (rows straddling a cut come back from both halves once)."""
    try:
        return rows(http, query(start, end), maxrec)
    except TapOverflow as overflow:
        if end - start <= pd.Timedelta(seconds=1):
            raise FetchError(f"{overflow}: the answer is cut even for one second; ask the archive's operators "
                             "about the limit") from None
        log.info("%s: splitting %s to %s", overflow, start, end)
    middle = (start + (end - start) / 2).floor("s")
    seen: set[tuple[str, ...]] = set()
    found = []
    for part in (rows_over_time(http, query, start, middle, maxrec), rows_over_time(http, query, middle, end, maxrec)):
        for row in part:
            key = tuple(row.values())
            if key not in seen:
                seen.add(key)
                found.append(row)
    return found
