"""What every archive source offers the fetch: its datasets (wildcards expanded through its inventory) and the
downloads that cover a time range."""

from __future__ import annotations

import difflib
import fnmatch
import itertools
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from ..errors import FetchError
from .http import Http


@dataclass(frozen=True)
class Item:
    """One download: a package of files for a time window, or one file."""

    dataset_id: str
    key: str
    """A name for what this download holds, stable from run to run (the folder it is kept in)."""
    path: str
    """Relative to the source's base URL."""
    params: dict[str, str] = field(hash=False)
    package: bool = False
    """A ``.tgz`` of files (unpacked), rather than one file."""
    filename: str | None = None
    """The file's name when the inventory gives it (else the server's Content-Disposition, else the key)."""
    size: int | None = None
    """The file's size in bytes when the inventory gives it (checked)."""
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    records: float | None = None
    """How many records the archive's inventory says the window holds (to size windows before asking)."""


class ArchiveSource(Protocol):
    """An archive heliohub fetches from, registered under the entry point group ``heliohub.sources``."""

    name: str
    title: str
    default_url: str
    setting: str
    """The environment variable that overrides ``default_url``."""
    parallel: int
    """Downloads run at once from this archive (kept low: the archives are shared)."""
    empty_statuses: frozenset[int]
    """HTTP statuses by which this archive says "no data here" for a download (a 204 or an empty body always is)."""
    request_limit: int | None
    """The most bytes the archive delivers in one request (None: no limit, or one item per file)."""
    # a source that offers several delivery formats lists them as ``formats`` and takes one when made

    def datasets(self, http: Http, pattern: str) -> tuple[list[str], list[str]]:
        """The archive's dataset IDs matching ``pattern`` (``*`` and ``?`` as wildcards) that it can deliver, and
        a note for each matching one it cannot (FetchError when none matches, naming the closest)."""
        ...

    def items(self, http: Http, dataset_id: str, start: pd.Timestamp, end: pd.Timestamp,
              window: pd.Timedelta) -> list[Item]:
        """The downloads that cover ``start`` to ``end`` for ``dataset_id`` (empty when it has no data there)."""
        ...

    def split(self, item: Item, parts: int) -> list[Item] | None:
        """The same download as ``parts`` smaller ones, to keep under the archive's limit or after it refused
        the download as too large (None: it cannot be split)."""
        ...

    def probe(self) -> tuple[str, str, str]:
        """A dataset and a short range whose download :mod:`heliohub.fetching.check` asks for."""
        ...

    def interface(self) -> dict[str, list[str]]:
        """The TAP tables this source reads and the columns it reads from each (empty: no TAP service)."""
        ...


def matching(pattern: str, known: list[str], archive: str, what: str = "dataset") -> list[str]:
    """The names of ``known`` matching ``pattern``, or a FetchError naming the closest ones."""
    found = sorted(n for n in known if fnmatch.fnmatchcase(n.upper(), pattern.upper()))
    if found:
        return found
    close = difflib.get_close_matches(pattern.upper(), [n.upper() for n in known], n=5, cutoff=0.5)
    by_upper = {n.upper(): n for n in known}
    hint = f"closest: {', '.join(by_upper[c] for c in close)}" if close else f"it has {len(known)} {what}s"
    raise FetchError(f"{archive} has no {what} {pattern!r} ({hint})")


def iso(stamp: pd.Timestamp) -> str:
    """A time as the ESA archives take it: ``2001-06-11T20:00:00Z``."""
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def windows(start: pd.Timestamp, end: pd.Timestamp, length: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``start`` to ``end`` cut at multiples of ``length`` (counted from 1970), so that runs over overlapping
    ranges cut at the same instants."""
    edges = [start]
    step = pd.Timestamp(0) + ((start - pd.Timestamp(0)) // length + 1) * length
    while step < end:
        edges.append(step)
        step += length
    edges.append(end)
    return list(itertools.pairwise(edges))
