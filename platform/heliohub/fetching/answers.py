"""What an archive's answer is, told from its bytes: the archives answer errors and maintenance notices as HTML
pages or TAP error documents with any HTTP status, so a body is never trusted to be what was asked for."""

from __future__ import annotations

import html
import re

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HEADING = re.compile(rb"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_QUERY_STATUS = re.compile(rb"<INFO[^>]*name=\"QUERY_STATUS\"[^>]*value=\"ERROR\"[^>]*>(.*?)</INFO>",
                           re.IGNORECASE | re.DOTALL)


def is_html(body: bytes) -> bool:
    """Whether ``body`` is an HTML page (an archive's error, login or maintenance page)."""
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head


def is_votable(body: bytes) -> bool:
    """Whether ``body`` is a VOTable document (a TAP answer, or a TAP error document)."""
    return b"<VOTABLE" in body[:4096].upper()


def _text(fragment: bytes) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", fragment.decode("utf-8", "replace"))).split())


def describe(body: bytes, limit: int = 300) -> str:
    """A short, quotable account of a body that is not what was asked for: an HTML page's title (and first
    heading), a TAP error document's message, or the first characters of anything else."""
    if not body:
        return "an empty answer"
    if is_html(body):
        parts = [_text(m[1]) for m in (_TITLE.search(body), _HEADING.search(body)) if m]
        said = " / ".join(dict.fromkeys(p for p in parts if p)) or _text(body)[:limit]
        return f"an HTML page: {said[:limit]!r}"
    if is_votable(body):
        error = _QUERY_STATUS.search(body)
        if error:
            return f"a TAP error: {_text(error[1])[:limit]!r}"
    if b"\x00" in body[:limit]:  # binary: its first bytes say what it is (a magic number)
        return f"{len(body)} bytes beginning {body[:16]!r}"
    return repr(" ".join(body[:limit].decode("utf-8", "replace").split()))
