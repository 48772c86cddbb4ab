"""A local HTTP server on 127.0.0.1 that answers like the ESA archives heliohub fetches from, serving the real
files in data/ (the real archive files that ship with the repository).

* the Cluster Science Archive: ``/csa-sl-tap/tap/sync`` (``csa.v_dataset``, ``csa.v_dataset_inventory``) and
  ``/csa-sl-tap/data`` (``.tgz`` packages laid out as the archive's, ``CSA_Download_<stamp>/<DATASET_ID>/<file>``
  plus a log). The archive cuts files to the window asked for and inlines CEF headers; this stand-in serves the
  real Cluster files overlapping the window whole, and only those that carry their whole header (the CDFs and the
  CEF files without INCLUDE);
* the Solar Orbiter Archive: ``/soar-sl-tap/tap/sync`` (``v_sc_data_item``) and ``/soar-sl-tap/data``;
* the SOHO Science Archive: ``/ssa-sl-tap/tap/sync`` (``soho.mv_observation``) and ``/ssa-sl-tap/data``;
* the PROBA2 Science Center's tree: ``/proba2/lyra/data/bsd/...`` and ``/proba2/swap/data/bsd/.../`` (index pages).

TAP queries are answered in CSV for the subset of ADQL heliohub sends (``SELECT [DISTINCT] cols FROM table
[WHERE col op value AND ...]``). Failures are injected with :meth:`ArchiveServer.fail`: HTTP errors, answers that
stall past the client's timeout, bodies cut short, empty packages; ``max_window`` makes the CSA refuse longer
windows with HTTP 413.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
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

_SELECT = re.compile(r"^SELECT\s+(DISTINCT\s+)?(.+?)\s+FROM\s+(\S+)(?:\s+WHERE\s+(.+))?$", re.IGNORECASE | re.DOTALL)
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
        self.max_window: pd.Timedelta | None = None
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
        (``"503"``), ``"stall"`` (no answer for ``stall`` seconds), ``"truncate"`` (half the body, then the
        connection closes) or ``"empty"`` (a package with no data file)."""
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
            inventory.append({"dataset_id": dataset_id, "start_time": span[0], "end_time": span[1],
                              "num_instances": ds.sizes.get("time", 0), "inventory_version": "1"})
        datasets = {}
        for row in inventory:
            first, last = datasets.get(row["dataset_id"], (row["start_time"], row["end_time"]))
            datasets[row["dataset_id"]] = (min(first, row["start_time"]), max(last, row["end_time"]))
        self.tables = {
            "csa.v_dataset": [{"dataset_id": d, "title": d, "start_date": a, "end_date": b}
                              for d, (a, b) in sorted(datasets.items())],
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
                          "filesize": path.stat().st_size, "begin_time": span[0], "end_time": span[1]})
        self.tables["v_sc_data_item"] = items
        self.soho_files = {}
        observations = []
        for oid, path in enumerate(sorted((DATA / "soho").glob("*/*.f*ts")), start=190000001):
            ds = heliohub.read_file(path)
            span = _span(ds)
            self.soho_files[oid] = path
            observations.append({"observation_oid": oid, "instrument_name": ds.attrs["instrument"],
                                 "begin_date": span[0], "end_date": span[1]})
        self.tables["soho.mv_observation"] = observations
        self.proba2 = {
            "lyra/data/bsd/2012/01/01/lyra_20120101-000000_lev2_std.fits":
                DATA / "proba2" / "lyra" / "lyra_20120101-000000_lev2_std.fits",
            "swap/data/bsd/2014/06/06/swap_lv1_20140606_000113.fits":
                DATA / "proba2" / "swap" / "swap_lv1_20140606_000113.fits",
        }

    # -- answers --------------------------------------------------------------------------------------------------
    def tap(self, table_prefix: str, query: str) -> tuple[int, bytes]:
        match = _SELECT.match(" ".join(query.split()))
        if not match:
            return 400, b"ERROR: cannot parse the ADQL query"
        distinct, columns, table, where = match.groups()
        rows = self.tables.get(table) or self.tables.get(f"{table_prefix}{table}")
        if rows is None:
            return 400, f"ERROR: no table {table}".encode()
        for condition in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE) if where else []:
            parsed = _CONDITION.match(condition.strip())
            if not parsed:
                return 400, f"ERROR: cannot parse the condition {condition!r}".encode()
            rows = [r for r in rows if _holds(r, *parsed.groups())]
        names = [c.strip() for c in columns.split(",")]
        names = list(rows[0]) if names == ["*"] and rows else names
        lines = [",".join(names)]
        seen = set()
        for row in rows:
            values = tuple(_text(row[n]) for n in names)
            if distinct and values in seen:
                continue
            seen.add(values)
            lines.append(",".join(f'"{v}"' if "," in v else v for v in values))
        return 200, ("\n".join(lines) + "\n").encode()

    def csa_package(self, params: dict[str, str], empty: bool) -> tuple[int, bytes]:
        first = pd.Timestamp(params["START_DATE"]).tz_localize(None)
        last = pd.Timestamp(params["END_DATE"]).tz_localize(None)
        if self.max_window is not None and last - first > self.max_window:
            return 413, b"The request exceeds the synchronous download limit: ask for less, or request it deferred"
        pattern = re.compile(params["DATASET_ID"].replace("*", ".*").replace("?", ".") + "$")
        top = f"CSA_Download_{int(time.time())}"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for dataset_id, a, b, path in self.csa_files if not empty else []:
                if pattern.match(dataset_id) and a <= last and b >= first:
                    tar.add(path, arcname=f"{top}/{dataset_id}/{path.name}")
            log = b"cdf_convert_summary: nothing to convert\n"
            info = tarfile.TarInfo(f"{top}/cdf_convert_summary.log")
            info.size = len(log)
            tar.addfile(info, io.BytesIO(log))
        return 200, buffer.getvalue()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                parsed = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                failure = next((f for f in server.failures if f.times > 0 and f.where in self.path), None)
                if failure is not None:
                    failure.times -= 1
                    if failure.kind.isdigit():
                        return self.answer(int(failure.kind), b"the archive is busy")
                    if failure.kind == "stall":
                        time.sleep(server.stall)
                status, body, name = self.route(parsed.path, params, empty=failure is not None
                                                and failure.kind == "empty")
                self.answer(status, body, name, truncate=failure is not None and failure.kind == "truncate")

            def route(self, path: str, params: dict[str, str], empty: bool) -> tuple[int, bytes, str | None]:
                for prefix, table_prefix in (("/csa-sl-tap", "csa."), ("/soar-sl-tap", ""), ("/ssa-sl-tap", "soho.")):
                    if path == f"{prefix}/tap/sync":
                        return (*server.tap(table_prefix, params.get("QUERY", "")), None)
                if path == "/csa-sl-tap/data":
                    return (*server.csa_package(params, empty), "package.tgz")
                if path == "/soar-sl-tap/data":
                    found = server.soar_files.get(params.get("data_item_id", ""))
                    return (200, found.read_bytes(), found.name) if found else (404, b"no such data item", None)
                if path == "/ssa-sl-tap/data":
                    oid = re.search(r"(\d+)\s*$", params.get("QUERY", ""))
                    found = server.soho_files.get(int(oid[1])) if oid else None
                    return (200, found.read_bytes(), found.name) if found else (404, b"no such observation", None)
                if path.startswith("/proba2/"):
                    relative = path.removeprefix("/proba2/")
                    if relative in server.proba2:
                        return 200, server.proba2[relative].read_bytes(), None
                    inside = [k.rsplit("/", 1)[1] for k in server.proba2 if k.rsplit("/", 1)[0] + "/" == relative]
                    if inside:
                        links = "".join(f'<a href="{n}">{n}</a>\n' for n in inside)
                        return 200, f"<html><body><pre>{links}</pre></body></html>".encode(), None
                return 404, b"Not Found", None

            def answer(self, status: int, body: bytes, name: str | None = None, truncate: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Date", email.utils.formatdate(usegmt=True))
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
