"""HTTP for the archives: retries with back-off, timeouts, downloads checked against their announced length, and
TAP queries (the ESA archives' metadata interface, ADQL through ``tap/sync``).

requests does the HTTP; its urllib3 retry support does not cover a body cut short mid-stream or a read timeout
during a download, so the retry loop here covers whole requests, downloads included.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..errors import FetchError

_RETRIABLE = {429, 500, 502, 503, 504}
_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


class _Retry(Exception):
    """A failure worth another attempt (the message says what happened)."""


class PackageTooLarge(FetchError):
    """The archive refused a request as larger than its synchronous limit."""


@dataclass
class Http:
    """One archive's HTTP endpoint: ``base_url`` and how patiently to talk to it."""

    base_url: str
    setting: str
    """The setting that names the endpoint (named in errors)."""
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 2.0
    """Seconds before the first retry; doubled for each further one."""
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "heliohub-fetch"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _attempts(self, what: str, attempt: Callable[[], Any]) -> Any:
        last = ""
        for number in range(self.retries + 1):
            if number:
                self.sleep(self.backoff * 2 ** (number - 1))
            try:
                return attempt()
            except _Retry as error:
                last = str(error)
        raise FetchError(f"{what}: failed {self.retries + 1} times, last: {last}; check that the archive is up "
                         f"(and {self.setting})")

    def _response(self, path: str, params: dict[str, str], *, stream: bool) -> requests.Response:
        try:
            response = self.session.get(self.url(path), params=params, timeout=self.timeout, stream=stream)
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout:.0f} s") from None
        except requests.ConnectionError as error:
            raise _Retry(f"cannot connect ({type(error).__name__})") from None
        if response.status_code in _RETRIABLE:
            response.close()
            raise _Retry(f"HTTP {response.status_code}")
        if response.status_code == 413:
            raise PackageTooLarge(f"{response.url}: the archive says the package is too large (HTTP 413)")
        if response.status_code >= 400:
            body = " ".join(response.text.split())[:300]
            raise FetchError(f"{response.url}: the archive answered HTTP {response.status_code}: {body}")
        return response

    def text(self, path: str, params: dict[str, str]) -> str:
        """The body of a GET, retried on timeouts, connection failures and 5xx answers."""

        def attempt() -> str:
            response = self._response(path, params, stream=False)
            return response.text

        return self._attempts(f"GET {self.url(path)}", attempt)

    def download(self, path: str, params: dict[str, str], target: Path) -> str | None:
        """Stream a GET into ``target``, retried as :meth:`text` and also when the body ends before its announced
        length. Returns the file name the archive gave (Content-Disposition), if any."""

        def attempt() -> str | None:
            response = self._response(path, params, stream=True)
            expected = response.headers.get("Content-Length")
            received = 0
            try:
                with open(target, "wb") as out:
                    for block in response.iter_content(1 << 20):
                        out.write(block)
                        received += len(block)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
                # the body was cut short (urllib3 checks Content-Length) or stalled
                raise _Retry(f"the download broke off after {received} bytes ({type(error).__name__})") from None
            finally:
                response.close()
            if expected is not None and received != int(expected):
                raise _Retry(f"the download ended after {received} of {expected} bytes")
            match = _FILENAME.search(response.headers.get("Content-Disposition", ""))
            return Path(match[1]).name if match else None

        return self._attempts(f"GET {self.url(path)}", attempt)

    def tap(self, query: str) -> list[dict[str, str]]:
        """The rows of an ADQL query on the archive's TAP service, as dictionaries of text."""
        text = self.text("tap/sync", {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "csv", "QUERY": query})
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as error:
            raise FetchError(f"{self.url('tap/sync')}: the TAP answer is not CSV ({error}): {text[:200]!r}") from None
        return rows


def adql_text(value: str) -> str:
    """A value as an ADQL string literal."""
    return "'" + value.replace("'", "''") + "'"
