"""``heliohub fetch --check``: ask each archive the few questions the fetchers depend on (its TAP tables and the
columns read from them, the datasets and inventory of a known range, and the download of one file, checked whole)
and say of each whether it holds, has changed, or could not be asked. An interface change (a renamed column, a
new answer format, a moved host) is then named at once, not found later as a failed fetch."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ..errors import FetchError
from .base import ArchiveSource, Item
from .http import Http, Unreachable
from .pipeline import download_item
from .registry import archive_source, source_names
from .tap import rows

HOLDS, CHANGED, UNREACHABLE = "holds", "changed", "unreachable"


@dataclass
class Finding:
    """One question put to one archive, and what came of it."""

    archive: str
    question: str
    verdict: str
    """``holds``, ``changed`` (it answered, not as the fetcher expects) or ``unreachable``."""
    detail: str = ""


def check(names: list[str] | None = None, url: str | None = None, timeout: float = 30.0,
          retries: int = 1) -> list[Finding]:
    """Ask each named archive source (default: every installed one) its questions; ``url`` replaces the base URL
    (with one source named)."""
    findings: list[Finding] = []
    for name in names or source_names():
        source = archive_source(name)
        base = url or os.environ.get(source.setting) or source.default_url
        http = Http(base, f"--url or {source.setting}", timeout=timeout, retries=retries, backoff=1.0)
        findings += _questions(name, source, http)
    return findings


def _ask(archive: str, question: str, answer: Callable[[], str]) -> Finding:
    try:
        return Finding(archive, question, HOLDS, answer())
    except Unreachable as error:
        return Finding(archive, question, UNREACHABLE, str(error))
    except FetchError as error:
        return Finding(archive, question, CHANGED, str(error))


def _columns_there(http: Http, table: str, columns: list[str]) -> str:
    found = rows(http, f"SELECT TOP 1 {', '.join(columns)} FROM {table}", maxrec=2)
    if not found:
        raise FetchError(f"{http.url('tap/sync')}: {table} answered no rows")
    missing = [c for c in columns if c not in found[0]]
    if missing:
        raise FetchError(f"{http.url('tap/sync')}: {table} answered without {', '.join(missing)}")
    return f"{len(columns)} columns answered"


def _listed(source: ArchiveSource, http: Http, dataset: str, start: str, end: str, planned: list[Item]) -> str:
    offered, _ = source.datasets(http, dataset)
    if dataset.upper() not in (d.upper() for d in offered):
        raise FetchError(f"{http.base_url}: {dataset} is not among the datasets it offers")
    planned += source.items(http, offered[0], pd.Timestamp(start), pd.Timestamp(end), pd.Timedelta("1D"))
    if not planned:
        raise FetchError(f"{http.base_url}: no {dataset} data listed from {start} to {end}")
    return f"{len(planned)} download(s) listed"


def _downloaded(source: ArchiveSource, http: Http, item: Item) -> str:
    with tempfile.TemporaryDirectory(prefix="heliohub-check-") as scratch:
        names, wire = download_item(source, http, item, Path(scratch), f"{item.dataset_id} {item.key}")
    if not names:
        raise FetchError(f"{http.url(item.path)}: answered no data for {item.key}")
    return f"{', '.join(names)} ({wire} bytes), checked whole"


def _questions(name: str, source: ArchiveSource, http: Http) -> list[Finding]:
    findings = [_ask(name, f"TAP table {table} ({', '.join(columns)})",
                     functools.partial(_columns_there, http, table, columns))
                for table, columns in source.interface().items()]
    dataset, start, end = source.probe()
    planned: list[Item] = []
    findings.append(_ask(name, f"{dataset} listed from {start} to {end}",
                         functools.partial(_listed, source, http, dataset, start, end, planned)))
    if planned:
        findings.append(_ask(name, f"download of {planned[0].key}", functools.partial(_downloaded, source, http,
                                                                                       planned[0])))
    return findings


def report(findings: list[Finding], as_json: bool = False) -> str:
    """The findings as a table of text (or JSON)."""
    if as_json:
        return json.dumps([asdict(f) for f in findings], indent=2)
    width = max((len(f.question) for f in findings), default=0)
    return "\n".join(f"{f.archive:7} {f.question:{width}}  {f.verdict}" + (f": {f.detail}" if f.detail else "")
                     for f in findings)


def exit_code(findings: list[Finding]) -> int:
    """0: every answer holds; 1: an archive answered as the fetchers do not expect; 3: one could not be asked."""
    verdicts = {f.verdict for f in findings}
    return 1 if CHANGED in verdicts else 3 if UNREACHABLE in verdicts else 0


def main_check(args: object, emit: Callable[[str], object] = print) -> int:
    """``heliohub fetch --check [SOURCE]``: the findings, and :func:`exit_code` (2 when it could not run)."""
    import sys

    try:
        findings = check([args.source] if args.source else None, url=args.url, timeout=args.timeout,
                         retries=args.retries)
    except FetchError as error:
        print(f"heliohub fetch --check: {error}", file=sys.stderr)
        return 2
    emit(report(findings, as_json=args.json))
    return exit_code(findings)
