"""A local HTTP server on 127.0.0.1 that answers like the ESA archives heliohub fetches from, serving the real
files in data/ (the real archive files that ship with the repository).

* the Cluster Science Archive: ``/csa-sl-tap/tap/sync`` (``csa.v_dataset``, ``csa.v_dataset_inventory``) and
  ``/csa-sl-tap/data`` (``.tgz`` packages laid out as the archive's, ``CSA_Download_<stamp>/<DATASET_ID>/<file>``
  plus a log). The archive cuts files to the window asked for, names them by it, and inlines CEF headers; this
  stand-in cuts the plain CEF files the same way (their records from the window's start up to its end, in a file
  named ``<ID>__<start>_<end>_V<version>.cef``), serves the CDFs whole, and serves only files that carry their
  whole header (the CDFs and the CEF files without INCLUDE). Its inventory has a row per run of records without
  an hour's gap, as the archive's lists intervals of data, not files;
* the Solar Orbiter Archive: ``/soar-sl-tap/tap/sync`` (``v_sc_data_item``) and ``/soar-sl-tap/data``;
* the SOHO Science Archive: ``/ssa-sl-tap/tap/sync`` (``soho.mv_observation``) and ``/ssa-sl-tap/data``;
* the PROBA2 Science Center's tree: ``/proba2/lyra/data/bsd/...`` and ``/proba2/swap/data/bsd/.../`` (index pages).

TAP queries (the subset of ADQL heliohub sends: ``SELECT [DISTINCT] [TOP n] cols FROM table [WHERE col op value
AND ...]``) are answered as the ESA TAP services answer them:

* ``FORMAT=votable`` (the TAP default) as a VOTable 1.4 written by astropy, with ``INFO name="QUERY_STATUS"``
  ``OK`` before the table and a second one, ``OVERFLOW``, after it when the rows were cut at ``MAXREC`` or at the
  service's own limit (``max_rows``): IVOA REC-TAP-1.1 section 5, laid out as pyvo's own test fixture
  ``pyvo/dal/tests/data/query/overflowstatus.xml``;
* ``FORMAT=csv`` as CSV with a header row (RFC 4180), as the ESA services write it;
* a query the service cannot run (a bad column or table) as a VOTable error document with HTTP 400,
  ``QUERY_STATUS`` ``ERROR`` and the message as its text (DALI 1.1 section 4.4; pyvo's fixture
  ``errorstatus.xml``).

Failures are injected with :meth:`ArchiveServer.fail`: HTTP errors (with ``Retry-After``), answers that stall past
the client's timeout, bodies cut short, the archives' "no data here" answers (an empty package, 204, an empty
200, 404), an HTML maintenance page with status 200 (what a web front end shows while the service is down), and a
TAP error. ``gzip_encoding`` answers with ``Content-Encoding: gzip`` whenever the client accepts it (as the ESA
front ends do). ``max_bytes`` makes the CSA refuse a package larger than it with HTTP 400 and an HTML page asking
to reduce the request (the CSA documents a 1 GB limit for synchronous requests and that larger ones must be
reduced; the exact page it shows is not published, so the words here are its documented advice).
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import io
import itertools
import re
import socket
import tarfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd

import heliohub
from heliohub.raw_files import read_raw_file

from .conftest import DATA

_SELECT = re.compile(r"^SELECT\s+(DISTINCT\s+)?(?:TOP\s+(\d+)\s+)?(.+?)\s+FROM\s+(\S+)(?:\s+WHERE\s+(.+))?$",
                     re.IGNORECASE | re.DOTALL)
_INCLUDE = re.compile(rb"^\s*INCLUDE\s*=", re.MULTILINE)
_CONDITION = re.compile(r"^(\w+)\s*(<=|>=|=|<|>|LIKE)\s*('(?:[^']|'')*'|-?[\d.]+)$", re.IGNORECASE)


@dataclass
class Failure:
    where: str
    kind: str
    times: int


def _span(ds) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    times = ds["time"].values if "time" in ds.coords else []
    times = [t for t in times if not pd.isna(t)]
    return (pd.Timestamp(min(times)), pd.Timestamp(max(times))) if times else None


def _name_span(name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The span a Cluster file name gives (``__YYYYMMDD_HHMMSS_YYYYMMDD_HHMMSS_V``), or the day it names."""
    stamps = re.findall(r"(\d{8})_(\d{6})", name)
    if len(stamps) >= 2:
        return tuple(pd.to_datetime("".join(s), format="%Y%m%d%H%M%S") for s in stamps[:2])
    day = pd.Timestamp(re.search(r"(\d{8})", name)[1])
    return day, day + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)


class ArchiveServer:
    """The archives on 127.0.0.1; ``url(prefix)`` is a source's base URL."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.failures: list[Failure] = []
        self.max_bytes: int | None = None
        self.max_rows: int | None = None
        self.gzip_encoding = False
        self.tap_format: str | None = None
        """Answer TAP queries in this format whatever FORMAT asks (a service that ignores it)."""
        self.data_delay = 0.0
        self.in_flight = 0
        self.most_in_flight = 0
        """The most data requests answered at once."""
        self._lock = threading.Lock()
        self.refused: list[str] = []
        """The CSA requests refused as too large."""
        self.stall = 5.0
        self.soar_sizes: dict[str, int] = {}
        self._build()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, where: str, kind: str, times: int = 1) -> None:
        """The next ``times`` requests whose path and query contain ``where`` fail as ``kind``: an HTTP status
        (``"503"``; ``"503+retry-after"`` adds ``Retry-After: 1``), ``"stall"`` (no answer for ``stall`` seconds),
        ``"truncate"`` (half the body, then the connection closes), ``"empty"`` (a package with no data file),
        ``"nocontent"`` (204), ``"emptybody"`` (200 with no body), ``"html"`` (a maintenance page with status 200)
        or ``"taperror"`` (a TAP error document)."""
        self.failures.append(Failure(where, kind, times))

    def data_requests(self) -> list[str]:
        return [r for r in self.requests if "/tap/" not in r and not r.endswith("/")]

    # -- the archives' holdings, from the real files ------------------------------------------------------------
    def _build(self) -> None:
        cluster = DATA / "cluster"
        self.csa_files: list[tuple[str, pd.Timestamp, pd.Timestamp, Path]] = []
        inventory = []
        for path in sorted([*cluster.glob("cdf/*.cdf"), *cluster.glob("cef/*.cef*")]):
            if path.suffix != ".cdf" and _INCLUDE.search(read_raw_file(path).data):
                continue
            ds = heliohub.read_file(path)
            span = _span(ds) or _name_span(path.name)
            dataset_id = ds.attrs["dataset_id"]
            self.csa_files.append((dataset_id, *span, path))
            times = sorted(pd.Timestamp(t) for t in (ds["time"].values if "time" in ds.coords else [])
                           if not pd.isna(t))
            runs = [[t] for t in times[:1]]
            for before, after in itertools.pairwise(times):
                if after - before > pd.Timedelta(hours=1):
                    runs.append([])
                runs[-1].append(after)
            for run in runs or [[span[0], span[1]]]:
                inventory.append({"dataset_id": dataset_id, "start_time": run[0], "end_time": run[-1],
                                  "num_instances": len(run) if times else 0, "inventory_version": "1"})
        datasets = {}
        for row in inventory:
            first, last = datasets.get(row["dataset_id"], (row["start_time"], row["end_time"]))
            datasets[row["dataset_id"]] = (min(first, row["start_time"]), max(last, row["end_time"]))
        self.tables = {
            "csa.v_dataset": [{"dataset_id": d, "title": d, "start_date": a, "end_date": b, "is_cef": True,
                               "is_istp": True} for d, (a, b) in sorted(datasets.items())],
            "csa.v_dataset_inventory": inventory,
        }
        self.soar_files = {}
        items = []
        for path in sorted((DATA / "solar_orbiter" / "cdf").glob("*.cdf")):
            match = re.match(r"solo_(L\w)_(.+)_(\d{8})_V\d+\.cdf$", path.name)
            ds = heliohub.read_file(path)
            span = _span(ds) or (pd.Timestamp(match[3]), pd.Timestamp(match[3]) + pd.Timedelta("86399s"))
            item_id = f"solo_{match[1]}_{match[2]}_{match[3]}"
            self.soar_files[item_id] = path
            items.append({"data_item_id": item_id, "level": match[1], "descriptor": match[2], "filename": path.name,
                          "filesize": path.stat().st_size, "begin_time": span[0], "end_time": span[1],
                          "is_active": True})
        self.tables["v_sc_data_item"] = items
        self.soho_files = {}
        observations = []
        for oid, path in enumerate(sorted((DATA / "soho").glob("*/*.f*ts")), start=190000001):
            ds = heliohub.read_file(path)
            span = _span(ds)
            self.soho_files[oid] = path
            observations.append({"observation_oid": oid, "instrument_name": ds.attrs["instrument"],
                                 "begin_date": span[0], "end_date": span[1], "file_name": path.name,
                                 "detector_name": ds.attrs.get("detector", ""),
                                 "wavelength_range": str(ds.attrs.get("wavelength", "")),
                                 "processing_level": "L1", "processing_level_priority": 1})
        self.tables["soho.mv_observation"] = observations
        self.proba2 = {
            "lyra/data/bsd/2012/01/01/lyra_20120101-000000_lev2_std.fits":
                DATA / "proba2" / "lyra" / "lyra_20120101-000000_lev2_std.fits",
            "swap/data/bsd/2014/06/06/swap_lv1_20140606_000113.fits":
                DATA / "proba2" / "swap" / "swap_lv1_20140606_000113.fits",
        }

    # -- answers --------------------------------------------------------------------------------------------------
    def tap(self, table_prefix: str, params: dict[str, str]) -> tuple[int, bytes, str]:
        """A TAP sync answer: status, body and content type."""
        query = params.get("QUERY", "")
        answer_format = (self.tap_format or params.get("FORMAT", "votable")).lower()
        match = _SELECT.match(" ".join(query.split()))
        if not match:
            return _tap_error(f"cannot parse the ADQL query {query!r}")
        distinct, top, columns, table, where = match.groups()
        rows = self.tables.get(table) or self.tables.get(f"{table_prefix}{table}")
        if rows is None:
            return _tap_error(f"Table '{table}' does not exist")
        for condition in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE) if where else []:
            parsed = _CONDITION.match(condition.strip())
            if not parsed:
                return _tap_error(f"cannot parse the condition {condition!r}")
            if rows and parsed[1] not in rows[0]:
                return _tap_error(f"Column '{parsed[1]}' does not exist in table '{table}'")
            rows = [r for r in rows if _holds(r, *parsed.groups())]
        names = [c.strip() for c in columns.split(",")]
        known = list(self.tables.get(table) or self.tables.get(f"{table_prefix}{table}"))[:1]
        unknown = [n for n in names if n != "*" and known and n not in known[0]]
        if unknown:
            return _tap_error(f"Column '{unknown[0]}' does not exist in table '{table}'")
        names = list(rows[0]) if names == ["*"] and rows else names
        seen, found = set(), []
        for row in rows:
            values = tuple(row[n] for n in names)
            if distinct and values in seen:
                continue
            seen.add(values)
            found.append(values)
        limits = [int(v) for v in (top, params.get("MAXREC"), self.max_rows) if v is not None]
        overflow = bool(limits) and len(found) > min(limits) and not (top and int(top) == min(limits))
        found = found[:min(limits)] if limits else found
        if answer_format == "csv":
            lines = [",".join(names)] + [",".join(f'"{v}"' if "," in v else v for v in map(_text, values))
                                         for values in found]
            return 200, ("\n".join(lines) + "\n").encode(), "text/csv;charset=UTF-8"
        return 200, _votable(names, found, overflow), "application/x-votable+xml"

    def csa_package(self, params: dict[str, str], empty: bool) -> tuple[int, bytes]:
        first = pd.Timestamp(params["START_DATE"]).tz_localize(None)
        last = pd.Timestamp(params["END_DATE"]).tz_localize(None)
        pattern = re.compile(params["DATASET_ID"].replace("*", ".*").replace("?", ".") + "$")
        top = f"CSA_Download_{int(time.time())}"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for dataset_id, a, b, path in self.csa_files if not empty else []:
                if pattern.match(dataset_id) and a <= last and b >= first:
                    name, data = _cut(path, first, last)
                    if data is not None:
                        info = tarfile.TarInfo(f"{top}/{dataset_id}/{name}")
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
            log = b"cdf_convert_summary: nothing to convert\n"
            info = tarfile.TarInfo(f"{top}/cdf_convert_summary.log")
            info.size = len(log)
            tar.addfile(info, io.BytesIO(log))
        package = buffer.getvalue()
        if self.max_bytes is not None and len(package) > self.max_bytes:
            self.refused.append(f"{params['START_DATE']}/{params['END_DATE']}")
            return 400, (b"<html><head><title>CSA - Request too large</title></head><body><h1>The requested data "
                         b"exceed the 1 GB limit of a synchronous download</h1><p>Please reduce your request, or "
                         b"submit it as a scheduled (asynchronous) request.</p></body></html>")
        return 200, package

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                parsed = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                failure = next((f for f in server.failures if f.times > 0 and f.where in self.path), None)
                kind = failure.kind if failure is not None else ""
                if failure is not None:
                    failure.times -= 1
                    status = kind.split("+")[0]
                    if status.isdigit() and status != "404":
                        headers = {"Retry-After": "1"} if kind.endswith("+retry-after") else {}
                        return self.answer(int(status), _MAINTENANCE, content_type="text/html", headers=headers)
                    if kind == "stall":
                        time.sleep(server.stall)
                if kind == "html":
                    return self.answer(200, _MAINTENANCE, content_type="text/html")
                if kind == "taperror":
                    return self.answer(*_tap_error("Service temporarily unable to run queries"))
                if kind == "404":
                    return self.answer(404, b"<html><head><title>404 Not Found</title></head></html>",
                                       content_type="text/html")
                if kind == "nocontent":
                    return self.answer(204, b"")
                if kind == "emptybody":
                    return self.answer(200, b"", content_type="application/x-gzip")
                data = "/tap/" not in parsed.path
                if data:
                    with server._lock:
                        server.in_flight += 1
                        server.most_in_flight = max(server.most_in_flight, server.in_flight)
                    time.sleep(server.data_delay)
                try:
                    status, body, name, content_type = self.route(parsed.path, params, empty=kind == "empty")
                    self.answer(status, body, content_type=content_type, name=name, truncate=kind == "truncate")
                finally:
                    if data:
                        with server._lock:
                            server.in_flight -= 1

            def route(self, path: str, params: dict[str, str],
                      empty: bool) -> tuple[int, bytes, str | None, str]:
                for prefix, table_prefix in (("/csa-sl-tap", "csa."), ("/soar-sl-tap", ""), ("/ssa-sl-tap", "soho.")):
                    if path == f"{prefix}/tap/sync":
                        status, body, content_type = server.tap(table_prefix, params)
                        return status, body, None, content_type
                if path == "/csa-sl-tap/data":
                    status, body = server.csa_package(params, empty)
                    return (status, body, "package.tgz", "application/x-gzip") if status == 200 else \
                        (status, body, None, "text/html")
                if path == "/soar-sl-tap/data":
                    found = server.soar_files.get(params.get("data_item_id", ""))
                    return (200, found.read_bytes(), found.name, "application/octet-stream") if found else \
                        (404, b"no such data item", None, "text/plain")
                if path == "/ssa-sl-tap/data":  # the SOHO archive names no file (no Content-Disposition)
                    oid = re.search(r"(\d+)\s*$", params.get("QUERY", ""))
                    found = server.soho_files.get(int(oid[1])) if oid else None
                    return (200, found.read_bytes(), None, "application/octet-stream") if found else \
                        (404, b"no such observation", None, "text/plain")
                if path.startswith("/proba2/"):
                    relative = path.removeprefix("/proba2/")
                    if relative in server.proba2:
                        return 200, server.proba2[relative].read_bytes(), None, "application/fits"
                    inside = [k.rsplit("/", 1)[1] for k in server.proba2 if k.rsplit("/", 1)[0] + "/" == relative]
                    if inside:
                        links = "".join(f'<a href="{n}">{n}</a>\n' for n in inside)
                        return 200, f"<html><body><pre>{links}</pre></body></html>".encode(), None, "text/html"
                return 404, b"<html><head><title>404 Not Found</title></head></html>", None, "text/html"

            def answer(self, status: int, body: bytes, content_type: str = "text/plain", name: str | None = None,
                       truncate: bool = False, headers: dict[str, str] | None = None) -> None:
                encoded = server.gzip_encoding and "gzip" in self.headers.get("Accept-Encoding", "") and body
                if encoded:
                    body = gzip.compress(body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if status != 204:
                    self.send_header("Content-Length", str(len(body)))
                if encoded:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Date", email.utils.formatdate(usegmt=True))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if name and status == 200:
                    self.send_header("Content-Disposition", f'attachment; filename="{name}"')
                self.end_headers()
                if truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


_MAINTENANCE = (b"<!DOCTYPE html><html><head><title>ESA Archives - Scheduled maintenance</title></head><body>"
                b"<h1>The archive is down for maintenance</h1><p>Please try again later.</p></body></html>")


def _tap_error(message: str) -> tuple[int, bytes, str]:
    """A TAP error document (DALI 1.1 section 4.4) with HTTP 400."""
    text = message.replace("&", "&amp;").replace("<", "&lt;")
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<VOTABLE version="1.4" '
            'xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n <RESOURCE type="results">\n'
            f'  <INFO name="QUERY_STATUS" value="ERROR">{text}</INFO>\n </RESOURCE>\n</VOTABLE>\n')
    return 400, body.encode(), "application/x-votable+xml"


def _votable(names: list[str], rows: list[tuple], overflow: bool) -> bytes:
    """Rows as a VOTable 1.4 written by astropy, with QUERY_STATUS OK before the table and OVERFLOW after it."""
    from astropy.io.votable import from_table
    from astropy.table import Table

    columns = {n: [_text(r[i]) if not isinstance(r[i], bool | int | float) else r[i] for r in rows]
               for i, n in enumerate(names)}
    table = Table({n: values if values else [""][:0] for n, values in columns.items()}, names=names) if rows else \
        Table(names=names, dtype=["U1"] * len(names))
    document = from_table(table)
    buffer = io.BytesIO()
    document.to_xml(buffer)
    text = buffer.getvalue().decode()
    text = text.replace("<RESOURCE", '<RESOURCE type="results"', 1) if 'type="results"' not in text else text
    text = re.sub(r"(<RESOURCE[^>]*>)", r'\1\n  <INFO name="QUERY_STATUS" value="OK"/>', text, count=1)
    if overflow:
        text = text.replace("</TABLE>", '</TABLE>\n  <INFO name="QUERY_STATUS" value="OVERFLOW"/>', 1)
    return text.encode()


_RECORD_TIME = re.compile(rb"^\s*(\d{4}-\d\d-\d\dT[\d:.]+Z?)")


def _cut(path: Path, first: pd.Timestamp, last: pd.Timestamp) -> tuple[str, bytes | None]:
    """A file as the CSA delivers it for a window: a plain CEF file cut to the records from ``first`` up to
    ``last`` and named by the window (None when none is left); anything else whole, under its own name."""
    data = path.read_bytes()
    if path.suffix != ".cef":
        return path.name, data
    header, marker, body = data.partition(b'DATA_UNTIL = "END_OF_DATA"\n')
    kept = []
    for line in body.splitlines(keepends=True):
        stamp = _RECORD_TIME.match(line)
        if stamp is None or first <= pd.Timestamp(stamp[1].decode()).tz_localize(None) < last:
            kept.append(line)
    count = sum(1 for line in kept if _RECORD_TIME.match(line))
    if not count:
        return path.name, None
    kept = [re.sub(rb"^!RECORDS=\s*\d+", b"!RECORDS= %d" % count, line) for line in kept]
    dataset_id, version = re.match(r"(.+?)__.*_V(\w+)\.cef$", path.name).groups()
    return f"{dataset_id}__{first:%Y%m%d_%H%M%S}_{last:%Y%m%d_%H%M%S}_V{version}.cef", header + marker + b"".join(kept)


def _text(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return str(value)


def _holds(row: dict, column: str, op: str, literal: str) -> bool:
    value = row[column]
    wanted = literal[1:-1].replace("''", "'") if literal.startswith("'") else float(literal)
    if op.upper() == "LIKE":
        pattern = re.escape(str(wanted)).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, str(value), re.IGNORECASE) is not None
    if isinstance(value, pd.Timestamp):
        wanted = pd.Timestamp(wanted).tz_localize(None) if pd.Timestamp(wanted).tzinfo else pd.Timestamp(wanted)
    elif isinstance(wanted, float):
        value = float(value)
    return {"=": value == wanted, "<=": value <= wanted, ">=": value >= wanted, "<": value < wanted,
            ">": value > wanted}[op]
