"""HTTP for the archives: retries with jittered back-off (``Retry-After`` honoured), timeouts, and downloads
checked against the length the server announced, counted on the wire (before any ``Content-Encoding`` is undone).

requests does the HTTP; its urllib3 retry support does not cover a body cut short mid-stream or a read timeout
during a download, so the retry loop here covers whole requests, downloads included. One requests session per
thread: downloads run a few at once.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..errors import FetchError
from .answers import describe

log = logging.getLogger(__name__)

_RETRIABLE = {429, 500, 502, 503, 504}
_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)
_TOO_LARGE = re.compile(rb"too large|too big|exceed|reduce (?:the|your) request|size limit", re.IGNORECASE)


class _Retry(Exception):
    """A failure worth another attempt (the message says what happened; ``wait``: the server's Retry-After)."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class HttpError(FetchError):
    """The archive answered with an HTTP error status (``status``) that another attempt would not change."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PackageTooLarge(HttpError):
    """The archive refused a request as larger than it delivers at once (HTTP 413, or an error that says so)."""


class Unreachable(FetchError):
    """The archive did not answer, or answered only with failures worth retrying, every time it was asked."""


@dataclass(frozen=True)
class Download:
    """What a download left: the file name the archive gave (Content-Disposition), the bytes on the wire and on
    disk, and the status (204: no content)."""

    filename: str | None
    wire_bytes: int
    file_bytes: int
    status: int


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class Http:
    """One archive's HTTP endpoint: ``base_url`` and how patiently to talk to it."""

    base_url: str
    setting: str
    """The setting that names the endpoint (named in errors)."""
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 2.0
    """Seconds before the first retry, doubled for each further one, each wait drawn between half and all of it."""
    longest_wait: float = 600.0
    """A server's Retry-After is honoured up to this many seconds."""
    sleep: Callable[[float], None] = time.sleep
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    @property
    def session(self) -> requests.Session:
        """This thread's session (requests sessions are not documented as safe to share between threads)."""
        session = getattr(self._local, "session", None)
        if session is None:
            from .. import __version__

            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = f"heliohub-fetch/{__version__}"
        return session

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _attempts(self, what: str, attempt: Callable[[], Any]) -> Any:
        last = ""
        for number in range(self.retries + 1):
            try:
                return attempt()
            except _Retry as error:
                last = str(error)
                if number == self.retries:
                    break
                if error.wait is not None:
                    wait = min(error.wait, self.longest_wait)
                else:
                    wait = self.backoff * 2 ** number * random.uniform(0.5, 1.0)
                log.info("%s: %s; retrying in %.1f s", what, last, wait)
                self.sleep(wait)
        raise Unreachable(f"{what}: failed {self.retries + 1} times, last: {last}; check that the archive is up "
                          f"(and {self.setting})")

    def _response(self, path: str, params: dict[str, str], *, stream: bool) -> requests.Response:
        try:
            response = self.session.get(self.url(path), params=params, timeout=self.timeout, stream=stream)
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout:.0f} s") from None
        except requests.ConnectionError as error:
            raise _Retry(f"cannot connect ({type(error).__name__})") from None
        status = response.status_code
        if status in _RETRIABLE:
            wait = retry_after(response.headers.get("Retry-After"))
            response.close()
            raise _Retry(f"HTTP {status}" + (f" (Retry-After {wait:.0f} s)" if wait is not None else ""), wait)
        if status >= 400:
            body = response.content
            said = describe(body)
            if status == 413 or _TOO_LARGE.search(body[:4096]):
                raise PackageTooLarge(f"{response.url}: the archive refused the request as too large (HTTP {status}): "
                                      f"{said}", status)
            raise HttpError(f"{response.url}: the archive answered HTTP {status}: {said}", status)
        return response

    def get(self, path: str, params: dict[str, str]) -> tuple[bytes, str]:
        """The body and content type of a GET, retried on timeouts, connection failures and 429/5xx answers."""

        def attempt() -> tuple[bytes, str]:
            response = self._response(path, params, stream=False)
            return response.content, response.headers.get("Content-Type", "")

        return self._attempts(f"GET {self.url(path)}", attempt)

    def text(self, path: str, params: dict[str, str]) -> str:
        """The body of a GET as text (retried as :meth:`get`)."""
        body, _ = self.get(path, params)
        return body.decode("utf-8", "replace")

    def download(self, path: str, params: dict[str, str], target: Path) -> Download:
        """Stream a GET into ``target``, retried as :meth:`get` and also when the body ends before its announced
        length (counted on the wire: with ``Content-Encoding: gzip`` the file holds more bytes than were sent)."""

        def attempt() -> Download:
            response = self._response(path, params, stream=True)
            expected = response.headers.get("Content-Length")
            written = 0
            try:
                with open(target, "wb") as out:
                    for block in response.iter_content(1 << 20):
                        out.write(block)
                        written += len(block)
                wire = response.raw.tell()  # urllib3 counts the bytes read off the connection, before decoding
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as error:
                # the body was cut short (urllib3 checks Content-Length), stalled, or its encoding broke off
                raise _Retry(f"the download broke off after {written} bytes ({type(error).__name__})") from None
            finally:
                response.close()
            if expected is not None and expected.isdigit() and wire != int(expected):
                raise _Retry(f"the download ended after {wire} of {expected} bytes")
            match = _FILENAME.search(response.headers.get("Content-Disposition", ""))
            return Download(Path(match[1]).name if match else None, wire, written, response.status_code)

        return self._attempts(f"GET {self.url(path)}", attempt)


def adql_text(value: str) -> str:
    """A value as an ADQL string literal."""
    return "'" + value.replace("'", "''") + "'"
