"""Event lists as selectors: time tables read into one table of intervals, cut out of lazy datasets, and a
function mapped over the events (on a Dask cluster when given one: the user's Dask Gateway cluster).

Formats, chosen by content:

* CSV with a header: the start and end columns are found by name (``start``/``stop``/``end``, ``tstart``/``tend``,
  ``event_starttime``/``event_endtime``, ...), or the first two columns when they are times;
* AMDA time tables as text (``#`` header lines, then ``start stop`` per line, ISO times), the format AMDA exports and
  speasy reads;
* VOTable (AMDA's and speasy's catalogue exports, and TAP answers), through astropy: the first two time columns,
  or those named as above;
* HEK-style JSON (``{"result": [{"event_starttime": ..., "event_endtime": ...}, ...]}``, or a list of such events).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..errors import HeliohubError, TimeRangeError
from ..store.access import open_dataset
from ..store.location import StoreLocation

log = logging.getLogger(__name__)

STARTS = ("start", "tstart", "start_time", "starttime", "event_starttime", "begin", "t1")
ENDS = ("end", "stop", "tend", "tstop", "end_time", "endtime", "stop_time", "event_endtime", "t2")


def _pick(columns: Iterable[str], names: tuple[str, ...]) -> str | None:
    lowered = {str(c).strip().lower(): str(c) for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _table(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    start, end = _pick(frame.columns, STARTS), _pick(frame.columns, ENDS)
    if start is None or end is None:
        start, end = (str(c) for c in frame.columns[:2]) if len(frame.columns) >= 2 else (None, None)
    if start is None or end is None:
        raise HeliohubError(f"{where}: no start and end columns (expected names such as start/stop or "
                            "event_starttime/event_endtime, or two time columns first)")
    try:
        starts = pd.to_datetime(frame[start], utc=True, format="ISO8601").dt.tz_localize(None)
        ends = pd.to_datetime(frame[end], utc=True, format="ISO8601").dt.tz_localize(None)
    except (ValueError, TypeError) as error:
        raise HeliohubError(f"{where}: columns {start!r} and {end!r} are not ISO times ({error})") from None
    bad = ends < starts
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise HeliohubError(f"{where}: event {row + 1} ends ({ends.iloc[row]}) before it starts ({starts.iloc[row]})")
    others = frame.drop(columns=[start, end])
    out = pd.concat([pd.DataFrame({"start": starts.to_numpy(), "end": ends.to_numpy()}),
                     others.reset_index(drop=True)], axis=1)
    return out.sort_values("start", kind="stable").reset_index(drop=True)


def read_events(source: str | Path | bytes) -> pd.DataFrame:
    """An event list (a path or its bytes) as a table of intervals: ``start``, ``end`` (UTC, naive) and the list's
    other columns, sorted by start. Raises ``HeliohubError`` naming the list and what is wrong."""
    where = "the event list" if isinstance(source, bytes) else str(source)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as error:
        raise HeliohubError(f"{where}: cannot be read ({error.strerror or error})") from None
    text = data.lstrip()
    if text.startswith((b"{", b"[")):
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as error:
            raise HeliohubError(f"{where}: not valid JSON (line {error.lineno}: {error.msg})") from None
        events = parsed.get("result", parsed.get("events")) if isinstance(parsed, dict) else parsed
        if not isinstance(events, list):
            raise HeliohubError(f"{where}: JSON without a list of events (HEK answers hold them in 'result')")
        return _table(pd.DataFrame(events), where)
    if text.startswith(b"<?xml") or b"<VOTABLE" in text[:2000]:
        from astropy.io.votable import parse_single_table

        try:
            table = parse_single_table(io.BytesIO(data)).to_table()
        except Exception as error:  # astropy raises many kinds for a broken VOTable
            raise HeliohubError(f"{where}: not a readable VOTable ({error})") from None
        return _table(table.to_pandas(), where)
    lines = data.decode("utf-8", errors="replace").splitlines()
    body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if body and "," not in body[0] and ";" not in body[0]:  # AMDA's text time table: start stop per line
        rows = [line.split() for line in body]
        return _table(pd.DataFrame({"start": [r[0] for r in rows], "end": [r[1] if len(r) > 1 else "" for r in rows]}),
                      where)
    return _table(pd.read_csv(io.StringIO("\n".join(body)), sep=None, engine="python"), where)


def select(ds: xr.Dataset, events: pd.DataFrame) -> list[xr.Dataset]:
    """Each event's interval of ``ds`` (lazily), in the events' order; an event outside the data gives an empty
    dataset."""
    return [ds.sel(time=slice(row.start, row.end)) for row in events.itertuples()]


def _apply(func: Callable[[xr.Dataset], Any], dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
           archive: StoreLocation) -> Any:
    try:
        ds = open_dataset(dataset_id, start, end, archive=archive)
    except TimeRangeError:  # no record in this event
        return None
    return func(ds)


def map_events(func: Callable[[xr.Dataset], Any], dataset_id: str, events: pd.DataFrame, *, client: Any = None,
               archive: str | StoreLocation | None = None) -> list[Any]:
    """``func`` of each event's interval of ``dataset_id`` (opened from the store for that interval only), in the
    events' order (None for an event without records). With ``client`` (a ``dask.distributed.Client``: the user's
    Dask Gateway cluster), each event is opened and computed on a worker, which must reach the store (``s3://``,
    or a folder the workers share) with the S3 settings the store was resolved with here, not its own."""
    store = StoreLocation.resolve(archive)
    if client is None:
        return [_apply(func, dataset_id, row.start, row.end, store) for row in events.itertuples()]
    futures = client.map(_apply, [func] * len(events), [dataset_id] * len(events), list(events["start"]),
                         list(events["end"]), [store] * len(events), pure=False)
    return client.gather(futures)
