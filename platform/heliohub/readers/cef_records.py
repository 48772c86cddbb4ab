"""The data section of a CEF file: records to typed numpy arrays.

The records are comma-separated values, so the bulk of the work is a C CSV tokenizer. Files whose records are one
per line, with no quotes or comments (the bulk of the archive: FGM, EFW, ...), go to pyarrow's multi-threaded CSV
reader, which also parses ISO times; it is about 2.5 times faster than pandas' C reader on FGM records. Everything
else goes through pandas' C reader, after what pandas cannot know about CEF is done on the raw bytes: cutting at
``DATA_UNTIL``, dropping ``!`` comments, and turning end-of-record markers (records may span lines) into one
record per line. Errors are located precisely by a slow, exact pass (:func:`_diagnose`) that runs only when the
fast ones have already failed.
"""

from __future__ import annotations

import concurrent.futures
import csv
import functools
import io
import os
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..errors import FileReadError
from .cef_header import Header, Variable, split_values

_DTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "INT": np.int32, "BYTE": np.int8}
_PARSE = {"FLOAT": np.float64, "DOUBLE": np.float64, "INT": np.int64, "BYTE": np.int64}
_NS_MIN = np.datetime64("1677-09-22", "us")
_NS_MAX = np.datetime64("2262-04-11", "us")
_COMMENT_LINES = re.compile(rb"^[ \t]*![^\n]*\n?", re.MULTILINE)
_COMMENTS = re.compile(rb"![^\n]*")
_ARROW_TYPES = {"FLOAT": pa.float32(), "DOUBLE": pa.float64(), "INT": pa.int32(), "BYTE": pa.int8()}
_ARROW_BLOCK = 16 << 20
_T = TypeVar("_T")
_A_VALUE = re.compile(rb"^[ \t]*[^\s!]", re.MULTILINE)
"""A line holding something other than blanks and a comment."""
WIDE_RECORD = 4096
"""Records with more values than this are parsed by :func:`_wide_fields`."""
_RECORDS_TRAILER = re.compile(rb"^[ \t]*!\s*RECORDS\s*=\s*(\d+)", re.MULTILINE | re.IGNORECASE)


def numpy_dtype(value_type: str) -> np.dtype:
    """The numpy dtype heliohub gives a CEF VALUE_TYPE (FLOAT is single precision, as in the archive's CDFs)."""
    if value_type in _DTYPES:
        return np.dtype(_DTYPES[value_type])
    if value_type in ("ISO_TIME", "ISO_TIME_RANGE"):
        return np.dtype("datetime64[ns]")
    return np.dtype(object)


def data_section(header: Header, data: bytes) -> tuple[int, int, int | None]:
    """Where the records lie in the file (start and end offsets, up to the ``DATA_UNTIL`` line) and the
    ``!RECORDS=`` count if one is given. Offsets rather than a slice: the section can be hundreds of MB."""
    start, end = header.data_offset, len(data)
    if header.data_until.upper() != "EOF":
        until = re.compile(rb"^[ \t]*" + re.escape(header.data_until.encode()) + rb"[ \t]*\r?$",
                           re.MULTILINE | re.IGNORECASE)
        match = until.search(data, start)
        if match is None:
            raise FileReadError(header.path, f"the data never reach their end line {header.data_until!r} "
                                "(DATA_UNTIL)", hint="the file looks truncated; fetch it again")
        end = match.start()
    trailer = _RECORDS_TRAILER.search(data, start, end) if data.find(b"!", start, end) >= 0 else None
    if trailer and not data[trailer.end():end].strip(b" \t\r\n0123456789"):
        end = trailer.start()  # the records end where their count begins
    return start, end, int(trailer.group(1)) if trailer else None


def _normalise(section: bytes, marker: str | None, header: Header) -> bytes:
    """One record per line, no comments, no markers; quoted text converted to CSV's double quotes."""
    if b"\r" in section:
        section = section.replace(b"\r\n", b"\n")
    if b'"' in section or b"'" in section:
        return _normalise_quoted(section, marker, header)
    if b"!" in section:
        section = _COMMENT_LINES.sub(b"", section)
        if b"!" in section:
            section = _COMMENTS.sub(b"", section)
    if marker:
        mark = marker.encode()
        if section[section.rfind(mark) + 1:].strip():
            raise FileReadError(header.path, f"the last record is not ended by {marker!r}",
                                line=_last_line(header, section), hint="the file looks truncated")
        return section.replace(b"\n", b" ").replace(mark, b"\n")
    if section.strip() and not section.endswith(b"\n"):
        raise FileReadError(header.path, "the last record has no end of line", line=_last_line(header, section),
                            hint="the file looks truncated")
    return section


def _normalise_quoted(section: bytes, marker: str | None, header: Header) -> bytes:
    # Quote-aware, so a marker, comma or '!' inside quoted text is left alone. Slower (a callback per token),
    # which is why files without quotes take the plain byte replacements above.
    mark = marker.encode() if marker else None
    pattern = rb"\"[^\"\n]*\"|'[^'\n]*'|![^\n]*|[\"']|\n" + (rb"|" + re.escape(mark) if mark else b"")
    def replace(match: re.Match[bytes]) -> bytes:
        token = match.group()
        if token in (b'"', b"'"):
            line = header.data_line + section.count(b"\n", 0, match.start())
            raise FileReadError(header.path, "unterminated quoted text", line=line,
                                hint="the file is corrupt or truncated")
        if token == b"\n":
            return b" " if mark else b"\n"
        if mark and token == mark:
            return b"\n"
        if token.startswith(b"!"):
            return b""
        if token.startswith(b"'"):
            return b'"' + token[1:-1].replace(b'"', b'""') + b'"'
        return token

    out = re.sub(pattern, replace, section)
    if mark:
        if out[out.rfind(b"\n") + 1:].strip():
            raise FileReadError(header.path, f"the last record is not ended by {marker!r}",
                                line=_last_line(header, section), hint="the file looks truncated")
    elif section.strip() and not section.endswith(b"\n"):
        raise FileReadError(header.path, "the last record has no end of line", line=_last_line(header, section),
                            hint="the file looks truncated")
    return out


def _last_line(header: Header, section: bytes) -> int:
    return header.data_line + section.rstrip(b"\n").count(b"\n")


def parse_records(header: Header, data: bytes) -> dict[str, np.ndarray]:
    """Parse every record-varying variable of the file into an array of shape ``(records, *SIZES)``."""
    columns = [v for v in header.variables if v.constant is None]
    start, end, expected = data_section(header, data)
    per_record = sum(v.n_fields for v in columns)
    has_values = _A_VALUE.search(data, start, end) is not None
    if per_record > (end - start) // 2 + 1 and has_values:
        widest = max(columns, key=lambda v: v.n_fields)
        raise FileReadError(header.path, f"the variables' SIZES need {per_record} values per record; the data "
                            f"section holds {end - start} bytes, too few for one record", line=widest.line,
                            variable=widest.name, hint="the header does not describe the data")
    fields = ([] if not has_values else None if per_record > WIDE_RECORD
              else _arrow_fields(data, start, end, header, columns))
    section = None
    if fields is None:
        section = data[start:end]
        fields = _pandas_fields(section, header, columns)
    records = len(fields[0]) if fields else 0
    if expected is not None and expected != records:
        raise FileReadError(header.path, f"{records} records read but the file's !RECORDS= trailer says "
                            f"{expected}", hint="the file is truncated or corrupt")
    out: dict[str, np.ndarray] = {}
    position = 0
    for var in columns:
        width = var.n_fields
        part = fields[position:position + width]
        if not part or not records:
            block = np.empty((records, width), dtype=object)
        else:
            block = part[0][:, np.newaxis] if width == 1 else np.stack(part, axis=1)
        try:
            out[var.name] = _typed(var, block, records)
        except ValueError as error:
            _diagnose(header, data[start:end] if section is None else section, columns)
            raise FileReadError(header.path, f"a value does not parse: {error}", variable=var.name) from error
        position += width
    return out


def _pandas_fields(section: bytes, header: Header, columns: list[Variable]) -> list[np.ndarray]:
    table = _normalise(section, header.record_marker, header)
    n_fields = sum(v.n_fields for v in columns)
    if not table.strip():
        return [np.empty(0, dtype=object) for _ in range(n_fields)]
    dtypes: dict[int, type] = {}
    position = 0
    for var in columns:
        parse = _PARSE.get(var.value_type, object)
        for k in range(var.n_fields):
            dtypes[position + k] = parse
        position += var.n_fields
    try:
        if n_fields > WIDE_RECORD:
            return _wide_fields(table, columns, n_fields)
        frame = pd.read_csv(
            io.BytesIO(table), header=None, names=range(n_fields), dtype=dtypes, engine="c",
            skipinitialspace=True, na_filter=False, quotechar='"', doublequote=True, index_col=False,
            skip_blank_lines=True,
        )
    except (ValueError, pd.errors.ParserError) as error:
        _diagnose(header, section, columns)
        raise FileReadError(header.path, f"the records do not parse: {error}") from error
    return [frame[i].to_numpy() for i in range(n_fields)]


def _wide_fields(table: bytes, columns: list[Variable], n_fields: int) -> list[np.ndarray]:
    """The fields of records of thousands of values (an image a record) through the csv module: pandas makes a
    Series of each of the n_fields columns, which takes a minute for a 1024 by 1024 image."""
    rows = [row for row in csv.reader(io.StringIO(table.decode("utf-8", "replace")), skipinitialspace=True) if row]
    for row in rows:
        if len(row) != n_fields:
            raise ValueError(f"a record has {len(row)} values where the variables' SIZES need {n_fields}")
    grid = np.empty((len(rows), n_fields), dtype=object)
    for index, row in enumerate(rows):
        grid[index] = row
    fields: list[np.ndarray] = []
    position = 0
    for var in columns:
        block = grid[:, position:position + var.n_fields]
        parse = _PARSE.get(var.value_type)
        fields.extend((block.astype(parse) if parse else block).T)
        position += var.n_fields
    return fields


def _arrow_fields(data: bytes, start: int, end: int, header: Header,
                  columns: list[Variable]) -> list[np.ndarray] | None:
    """The fields through pyarrow when every record is one plain line; None to take the general path.

    pyarrow is given the records as they are (no copy). Whatever it cannot take as one record per line fails its
    parse or the checks below and goes to the general path: records spread over lines (wrong field count),
    comments and quotes (wrong field count or values, or found in text fields), text after a marker.
    """
    mark = header.record_marker
    names = [f"f{i}" for i in range(sum(v.n_fields for v in columns))]
    types, kinds = {}, []
    for var in columns:
        for _ in range(var.n_fields):
            types[names[len(kinds)]] = _ARROW_TYPES.get(var.value_type, pa.string())
            kinds.append(var)
    if mark:
        types[names[-1]] = pa.string()  # the last field carries the marker: checked and stripped below
    try:
        arrow = pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(data)[start:end]),
            read_options=pa_csv.ReadOptions(column_names=names, block_size=_ARROW_BLOCK),
            parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False),
        )
        # What a text field must not hold: a quote or comment (unless the bytes have none: a scan as fast as memory
        # spares a regular expression over each text column), or a marker. Numbers and times that hold one do not
        # convert.
        quoted = any(data.find(c, start, end) >= 0 for c in (b'"', b"'", b"!"))
        special = "|".join(([r"[\"'!]"] if quoted else []) + ([re.escape(mark)] if mark else [])) or None
        for name, var in zip(names[:-1] if mark else names, kinds, strict=False):  # a marker's field: below
            if special and types[name] == pa.string() and var.value_type != "ISO_TIME" and \
                    _any_match(arrow[name], special):
                return None
        kind = kinds[-1].value_type
        if mark and len(mark) == 1 and kind in _ARROW_TYPES:
            # a number before a one-character marker: each field must hold the marker once, and the conversion
            # of what is left once the marker and the blanks after it are stripped fails for a marker anywhere
            # else: two passes over the column where stripping the blanks, checking and cutting off the marker
            # and stripping again took five
            def number(chunk: pa.Array) -> pa.Array | None:
                markers = pc.min_max(pc.count_substring(chunk, mark)).as_py()
                if len(chunk) and (markers["min"], markers["max"]) != (1, 1):
                    return None
                return pc.cast(pc.utf8_rtrim(chunk, characters=f" \t\r{mark}"), _ARROW_TYPES[kind])

            numbers = _each_chunk(number, arrow.column(names[-1]))
            if any(part is None for part in numbers):
                return None
            arrow = arrow.set_column(len(names) - 1, names[-1], pa.chunked_array(numbers, type=_ARROW_TYPES[kind]))
        elif mark:
            last = pc.utf8_rtrim_whitespace(arrow.column(names[-1]))
            if arrow.num_rows and not pc.all(pc.ends_with(last, mark)).as_py():
                return None
            last = pc.utf8_rtrim_whitespace(pc.utf8_slice_codeunits(last, 0, -len(mark)))
            if special and kind not in _ARROW_TYPES and kind != "ISO_TIME" and _any_match(last, special):
                return None
            arrow = arrow.set_column(len(names) - 1, names[-1],
                                     pc.cast(last, _ARROW_TYPES[kind]) if kind in _ARROW_TYPES else last)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # the general path finds the bad value and names its line
    fields = []
    for name, var in zip(names, kinds, strict=True):
        column = arrow.column(name)
        if var.value_type == "ISO_TIME":
            times = _arrow_times(column, fill_text(var), special)
            if times is None:
                return None
            fields.append(times)
        elif var.value_type in _ARROW_TYPES:
            fields.append(column.to_numpy())
        else:
            fields.append(pc.utf8_trim_whitespace(column).to_numpy(zero_copy_only=False).astype(object))
    return fields


def _any_match(column: pa.ChunkedArray, pattern: str) -> bool:
    return bool(len(column)) and pc.any(pc.match_substring_regex(column, pattern)).as_py()


def _arrow_times(column: pa.ChunkedArray, fill: str, special: str | None) -> np.ndarray | None:
    direct = not fill or fill.startswith("9999")  # such a fill is out of datetime64[ns]'s range: never a time
    if direct:
        try:  # times with no blanks around them (most files'): a pass over the column fewer
            return _timestamps(column)
        except pa.ArrowInvalid:
            pass  # blanks (cast again once trimmed, below), or what arrow does not read
    text = pc.utf8_trim_whitespace(column)
    if direct:
        try:
            return _timestamps(text)
        except pa.ArrowInvalid:
            pass  # fills, or times arrow does not read (more than 9 fraction digits, no 'Z'): pandas reads them
    if special and _any_match(text, special):
        return None
    return parse_times(text.to_numpy(zero_copy_only=False).astype(object), fill)


def _timestamps(text: pa.ChunkedArray) -> np.ndarray:
    kind = pa.timestamp("ns", tz="UTC")
    times = pa.chunked_array(_each_chunk(lambda chunk: pc.cast(chunk, kind), text), type=kind)
    return times.to_numpy().astype("datetime64[ns]", copy=False)


@functools.cache
def _pool(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    """Threads for :func:`_each_chunk` (by pid: a forked process makes its own)."""
    return concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="heliohub-cef")


def _each_chunk(function: Callable[[pa.Array], _T], column: pa.ChunkedArray) -> list[_T]:
    """``function`` of each chunk of ``column`` (one per block of the CSV reader), side by side on the cores:
    Arrow's compute functions let go of the GIL, but run each call on one core."""
    if column.num_chunks < 2:
        return [function(chunk) for chunk in column.chunks]
    return list(_pool(os.getpid()).map(function, column.chunks))


def _typed(var: Variable, block: np.ndarray, records: int) -> np.ndarray:
    kind = var.value_type
    shape = (records, *var.shape)
    if kind in ("INT", "BYTE") and block.size:
        limits = np.iinfo(_DTYPES[kind])
        if block.min() < limits.min or block.max() > limits.max:
            raise ValueError(f"a value is out of the range of {kind} ({limits.min} to {limits.max})")
    if kind in _DTYPES:
        return block.astype(_DTYPES[kind], copy=False).reshape(shape)
    if block.dtype.kind == "M":
        return block.reshape(shape)
    fill = fill_text(var)
    if kind == "ISO_TIME":
        return parse_times(block.ravel(), fill).reshape(shape)
    if kind == "ISO_TIME_RANGE":
        if records == 0:
            return np.empty((*shape, 2), dtype="datetime64[ns]")
        parts = np.char.partition(block.ravel().astype(str), "/")
        if (parts[:, 1] != "/").any():
            raise ValueError("a time range without '/'")
        start = parse_times(parts[:, 0], fill.partition("/")[0])
        stop = parse_times(parts[:, 2], fill.partition("/")[2])
        return np.stack([start, stop], axis=-1).reshape((*shape, 2))
    if block.size and any(isinstance(v, float) for v in block[:, -1]):
        raise ValueError("a record has too few values")
    return block.astype(object).reshape(shape)


def fill_text(var: Variable) -> str:
    """The variable's FILLVAL as written (without quotes)."""
    values = var.attrs.get("FILLVAL")
    return values[0].text.strip() if values else ""


def parse_times(strings: np.ndarray, fill: str) -> np.ndarray:
    """ISO times (any number of fraction digits, trailing Z) to UTC datetime64[ns]; fill values to NaT.

    A value is fill when it equals ``fill``, or when ``fill`` is in the year 9999 (the archive's convention, and
    beyond datetime64[ns] anyway) and the value is too. Anything else that is not a time raises ValueError.
    """
    if strings.size == 0:
        return np.empty(0, dtype="datetime64[ns]")
    parsed = pd.to_datetime(pd.Series(strings, dtype=object), format="ISO8601", utc=True, errors="coerce")
    # pandas picks the resolution it needs (microseconds for year 9999), so check the range before going to ns.
    values = parsed.dt.tz_convert(None).to_numpy()
    bad_mask = np.isnat(values) | (values < _NS_MIN) | (values > _NS_MAX)
    year_9999 = fill.startswith("9999")
    for index in np.flatnonzero(bad_mask):
        text = str(strings[index]).strip()
        if text != fill and not (year_9999 and text.startswith("9999")):
            raise ValueError(f"{text!r} is not an ISO time within 1678-2261")
    if bad_mask.any():
        values = values.copy()
        values[bad_mask] = np.datetime64("NaT")
    return values.astype("datetime64[ns]")


def iter_records(header: Header, section: bytes) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, field texts) for each record, exactly and slowly; for locating errors."""
    marker = header.record_marker
    pending: list[str] = []
    start = None
    text = section.decode("utf-8", "replace")
    for offset, line in enumerate(text.split("\n")):
        number = header.data_line + offset
        body, ended = _strip_line(line, marker, header.path, number)
        if not body.strip() and not pending:
            if ended:
                raise FileReadError(header.path, "an empty record", line=number)
            continue
        if start is None:
            start = number
        pending.append(body)
        if marker is None or ended:
            values, _ = split_values(" ".join(pending), header.path, start)
            yield start, [v.text for v in values]
            pending, start = [], None
    if pending and " ".join(pending).strip():
        raise FileReadError(header.path, "the last record is not ended", line=start,
                            hint="the file looks truncated")


def _strip_line(line: str, marker: str | None, path: str, number: int) -> tuple[str, bool]:
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "!":
            return line[:i], False
        elif marker is not None and char == marker:
            if line[i + 1:].strip() and not line[i + 1:].strip().startswith("!"):
                raise FileReadError(path, f"text after the end-of-record marker {marker!r}", line=number)
            return line[:i], True
    if quote:
        raise FileReadError(path, "unterminated quoted text", line=number)
    return line, False


def _diagnose(header: Header, section: bytes, columns: list[Variable]) -> None:
    """Find the first bad record or value and raise a FileReadError naming its line and variable."""
    expected = sum(v.n_fields for v in columns)
    for line, fields in iter_records(header, section):
        if len(fields) != expected:
            raise FileReadError(header.path, f"a record has {len(fields)} values where the header's variables "
                                f"need {expected}", line=line,
                                hint="the record is truncated, or the header does not describe the data")
        position = 0
        for var in columns:
            for text in fields[position:position + var.n_fields]:
                    _check_value(header.path, var, text, line)
            position += var.n_fields


def _check_value(path: str, var: Variable, text: str, line: int) -> None:
    kind = var.value_type
    fill = fill_text(var)
    try:
        if kind in ("FLOAT", "DOUBLE"):
            float(text)
        elif kind in ("INT", "BYTE"):
            limits = np.iinfo(_DTYPES[kind])
            if not limits.min <= int(text) <= limits.max:
                raise FileReadError(path, f"{text.strip()} is out of the range of {kind} ({limits.min} to "
                                    f"{limits.max})", line=line, variable=var.name,
                                    hint="the header's VALUE_TYPE does not fit the data")
        elif kind == "ISO_TIME":
            parse_times(np.array([text], dtype=object), fill)
        elif kind == "ISO_TIME_RANGE":
            start, slash, stop = text.partition("/")
            if not slash:
                raise ValueError(text)
            parse_times(np.array([start], dtype=object), fill.partition("/")[0])
            parse_times(np.array([stop], dtype=object), fill.partition("/")[2])
    except ValueError as error:
        raise FileReadError(path, f"{text!r} is not a valid {kind} value", line=line,
                            variable=var.name) from error
