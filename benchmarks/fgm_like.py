"""FGM-like data for benchmarks, built by repeating the real 3-day C4_CP_FGM_SPIN CEF file with shifted times.

Every value is the real file's; only the time stamps move, by the file's span per copy, so the result reads as one
long, time-sorted series. Nothing here is used by the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FGM_CEF = SHARED_DATA / "cluster" / "cef" / "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"
CEF_HEADERS = [SHARED_DATA / "cluster" / "cef" / "headers" / sub for sub in ("irfu", "irfu/fgm")]


def _split(text: bytes) -> tuple[bytes, list[bytes]]:
    marker = text.index(b"DATA_UNTIL")
    body_start = text.index(b"\n", marker) + 1
    lines = [line for line in text[body_start:].splitlines() if line.strip() and not line.startswith(b"!")]
    return text[:body_start], lines


def shifted_records(copies: int) -> tuple[bytes, list[bytes]]:
    """The FGM file's header and its data lines repeated ``copies`` times, each copy shifted to follow the last."""
    header, lines = _split(FGM_CEF.read_bytes())
    stamps = np.array([line.split(b",", 1)[0].rstrip(b"Z").decode() for line in lines], dtype="datetime64[ms]")
    rests = np.array([line.split(b",", 1)[1] for line in lines], dtype=object)
    span = stamps[-1] - stamps[0] + np.timedelta64(4, "s")
    blocks = []
    for copy in range(copies):
        times = np.datetime_as_string(stamps + copy * span, unit="ms")
        blocks.append(b"".join(t.encode() + b"Z," + r + b"\n" for t, r in zip(times, rests, strict=True)))
    return header, blocks


def write_cef(path: Path, copies: int) -> int:
    """Write a CEF file of ``copies`` shifted copies; returns the number of records."""
    header, blocks = shifted_records(copies)
    with open(path, "wb") as out:
        out.write(header)
        for block in blocks:
            out.write(block)
    return sum(block.count(b"\n") for block in blocks)


def data_block(path: Path) -> bytes:
    """The bytes after DATA_UNTIL: what a CSV reader is given as the baseline."""
    text = path.read_bytes()
    return text[text.index(b"\n", text.index(b"DATA_UNTIL")) + 1:]
