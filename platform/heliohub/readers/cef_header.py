"""The header of a CEF-2.0 file: global metadata, variable descriptions and the data-section rules.

See ``docs/conventions.md`` and the CEF-2.0 syntax (DS-QMW-TN-0010). Headers are short (hundreds of lines), so
this is plain line-by-line Python; the data section is parsed in bulk by :mod:`.cef_records`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import fsspec

from ..errors import FileReadError, IncludeNotFoundError
from ..raw_files import parent_of, read_raw_file

MAX_INCLUDE_DEPTH = 16
VALUE_TYPES = ("CHAR", "DOUBLE", "FLOAT", "INT", "BYTE", "ISO_TIME", "ISO_TIME_RANGE")


@dataclass(frozen=True)
class Value:
    """One item of a ``KEY = a, "b", c`` list; ``quoted`` tells text from a bare token."""

    text: str
    quoted: bool


@dataclass
class Variable:
    """A ``START_VARIABLE ... END_VARIABLE`` block."""

    name: str
    path: str
    line: int
    attrs: dict[str, list[Value]] = field(default_factory=dict)

    @property
    def value_type(self) -> str:
        values = self.attrs.get("VALUE_TYPE")
        if not values:
            raise FileReadError(self.path, "VALUE_TYPE is missing", line=self.line, variable=self.name)
        kind = values[0].text.upper()
        if kind not in VALUE_TYPES:
            raise FileReadError(
                self.path, f"unknown VALUE_TYPE {values[0].text!r} (CEF-2.0 knows {', '.join(VALUE_TYPES)})",
                line=self.line, variable=self.name,
            )
        return kind

    @property
    def sizes(self) -> tuple[int, ...]:
        values = self.attrs.get("SIZES")
        if not values:
            return (1,)
        try:
            sizes = tuple(int(v.text) for v in values)
        except ValueError:
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise FileReadError(self.path, f"SIZES must be positive integers, not {_join(values)}",
                                line=self.line, variable=self.name)
        return sizes

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one record's value: ``()`` for a scalar, else ``SIZES``."""
        sizes = self.sizes
        return () if sizes == (1,) else sizes

    @property
    def n_fields(self) -> int:
        return math.prod(self.sizes)

    @property
    def constant(self) -> list[Value] | None:
        """The ``DATA = ...`` values of a variable that does not vary by record, else None."""
        return self.attrs.get("DATA")


@dataclass
class Header:
    """Everything above the data section of a CEF file."""

    path: str
    meta: dict[str, list[Value]] = field(default_factory=dict)
    meta_types: dict[str, str] = field(default_factory=dict)
    variables: list[Variable] = field(default_factory=list)
    record_marker: str | None = None
    data_until: str = "EOF"
    data_offset: int = 0
    """Byte offset of the first line after ``DATA_UNTIL`` in the decompressed file."""
    data_line: int = 1
    """1-based line number of that first data line."""

    def meta_value(self, name: str) -> list[Value] | None:
        """A global metadata block's entries, looked up case-insensitively."""
        wanted = name.upper()
        for key, values in self.meta.items():
            if key.upper() == wanted:
                return values
        return None


def split_values(text: str, path: str, line: int) -> tuple[list[Value], bool]:
    """Split the right-hand side of ``KEY = ...`` into values; also say whether it continues on the next line.

    Quoted strings may hold commas and the other quote character; ``!`` outside quotes starts a comment; a
    trailing ``\\`` after a comma continues the list on the next line.
    """
    values: list[Value] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] == "!":
            return values, False
        if text[i] == "\\":
            return values, True
        if text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:
                raise FileReadError(path, f"unterminated quoted text: {text.strip()!r}", line=line)
            values.append(Value(text[i + 1:end], True))
            i = end + 1
        else:
            end = i
            while end < n and text[end] not in ",!":
                end += 1
            values.append(Value(text[i:end].strip(), False))
            i = end
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ",":
            i += 1
            continue
        if i >= n or text[i] == "!":
            return values, False
        raise FileReadError(path, f"expected ',' between values in {text.strip()!r}", line=line)


def _join(values: list[Value]) -> str:
    return ", ".join(v.text for v in values)


class _IncludeResolver:
    """Finds ``INCLUDE`` files through the search path, case-insensitively, caching folder listings."""

    def __init__(self, folders: list[str]) -> None:
        self.folders = folders
        self._listings: dict[str, dict[str, str]] = {}
        self._unreadable: dict[str, str] = {}

    def _listing(self, folder: str) -> dict[str, str]:
        if folder not in self._listings:
            try:
                fs, root = fsspec.core.url_to_fs(folder)
                names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(root, detail=False)]
            except (FileNotFoundError, NotADirectoryError):  # a folder of the search path that is not there
                names = []
            except OSError as error:  # there, but not to be read: said if the include is found nowhere else
                self._unreadable[folder] = str(error)
                names = []
            listing: dict[str, str] = {}
            for name in sorted(names):
                listing.setdefault(name.lower(), name)
            self._listings[folder] = listing
        return self._listings[folder]

    def find(self, name: str, including_file: str, line: int) -> str:
        folders = [*self.folders, parent_of(including_file)]
        searched: list[str] = []
        for folder in folders:
            if folder in searched:
                continue
            searched.append(folder)
            actual = self._listing(folder).get(name.lower())
            if actual is not None:
                return f"{folder.rstrip('/')}/{actual}" if "://" in folder else os.path.join(folder, actual)
        unreadable = [f"{folder} ({reason})" for folder, reason in self._unreadable.items() if folder in searched]
        if unreadable:
            raise FileReadError(including_file, f"INCLUDE {name!r} was not found, and these folders of the search "
                                f"path cannot be read: {', '.join(unreadable)}", line=line,
                                hint="check the folders' permissions (or CEFPATH and include_paths)")
        raise IncludeNotFoundError(including_file, name, searched, line=line)


def search_folders(include_paths: list[str] | None) -> list[str]:
    """The include search path: ``include_paths``, then ``CEFPATH`` (``os.pathsep``-separated)."""
    folders = [os.fspath(p) for p in include_paths or []]
    folders += [p for p in os.environ.get("CEFPATH", "").split(os.pathsep) if p]
    return folders


def parse_header(path: str, data: bytes, include_paths: list[str] | None = None) -> Header:
    """Parse the header of a CEF file whose decompressed bytes are ``data``, following its INCLUDEs."""
    header = Header(path=path)
    resolver = _IncludeResolver(search_folders(include_paths))
    _parse_block(header, path, data, resolver, depth=0, is_main=True)
    for variable in header.variables:
        variable.value_type  # noqa: B018 - validates VALUE_TYPE now, with the variable's line
        variable.sizes  # noqa: B018
    return header


def _lines(data: bytes, path: str):
    """Yield (line number, text, offset just past the line) for each line of ``data``."""
    pos, number, n = 0, 0, len(data)
    while pos < n:
        end = data.find(b"\n", pos)
        nxt = n if end < 0 else end + 1
        raw = data[pos:nxt]
        number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        if "\x00" in text:
            raise FileReadError(path, "binary content where CEF text was expected", line=number,
                                hint="the file is corrupt or not a CEF file")
        yield number, text.rstrip("\r\n"), nxt
        pos = nxt


def _parse_block(header: Header, path: str, data: bytes, resolver: _IncludeResolver, *, depth: int,
                 is_main: bool) -> None:
    meta_name: str | None = None
    meta_line = 0
    meta_entries: list[Value] = []
    meta_type: str | None = None
    variable: Variable | None = None
    pending: tuple[str, list[Value], int] | None = None  # a value list continued with "\"

    for number, text, end in _lines(data, path):
        if pending is not None:
            values, continued = split_values(text, path, number)
            key, previous, first_line = pending
            pending = None
            values = previous + values
            if continued:
                pending = (key, values, first_line)
                continue
            stripped_key = key
        else:
            stripped = text.strip()
            if not stripped or stripped.startswith("!"):
                continue
            if "=" not in stripped:
                raise FileReadError(path, f"expected 'KEYWORD = value', found {stripped[:80]!r}", line=number,
                                    hint="the header is corrupt or the file is not CEF")
            key_text, _, rest = stripped.partition("=")
            stripped_key = key_text.strip().upper()
            if stripped_key == "DATA_UNTIL" and is_main:
                if meta_name or variable:
                    raise FileReadError(path, "DATA_UNTIL inside an unfinished META or VARIABLE block",
                                        line=number)
                values, _ = split_values(rest, path, number)
                header.data_until = values[0].text if values else "EOF"
                header.data_offset = end
                header.data_line = number + 1
                return
            values, continued = split_values(rest, path, number)
            if continued:
                pending = (stripped_key, values, number)
                continue
        key = stripped_key

        if key == "START_META":
            if meta_name or variable:
                raise FileReadError(path, "START_META inside an unfinished block", line=number)
            meta_name, meta_line, meta_entries, meta_type = _single(values, path, number, key), number, [], None
        elif key == "END_META":
            if meta_name is None:
                raise FileReadError(path, "END_META without START_META", line=number)
            header.meta[meta_name] = meta_entries
            if meta_type:
                header.meta_types[meta_name] = meta_type
            meta_name = None
        elif meta_name is not None:
            if key == "ENTRY":
                meta_entries.extend(values)
            elif key == "VALUE_TYPE":
                meta_type = _single(values, path, number, key).upper()
            else:
                raise FileReadError(path, f"unexpected {key} in metadata block {meta_name} "
                                    f"(started on line {meta_line})", line=number)
        elif key == "START_VARIABLE":
            if variable:
                raise FileReadError(path, "START_VARIABLE inside an unfinished variable", line=number)
            variable = Variable(_single(values, path, number, key), path, number)
        elif key == "END_VARIABLE":
            if variable is None:
                raise FileReadError(path, "END_VARIABLE without START_VARIABLE", line=number)
            header.variables.append(variable)
            variable = None
        elif variable is not None:
            variable.attrs[key] = values
        elif key == "INCLUDE":
            if depth >= MAX_INCLUDE_DEPTH:
                raise FileReadError(path, f"INCLUDEs nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)",
                                    line=number)
            name = _single(values, path, number, key)
            included = resolver.find(name, path, number)
            raw_file = read_raw_file(included)
            _parse_block(header, raw_file.path, raw_file.data, resolver, depth=depth + 1, is_main=False)
        elif key == "END_OF_RECORD_MARKER":
            marker = _single(values, path, number, key)
            if len(marker) != 1 or marker in "!&\n\r\"'," or marker.isspace():
                raise FileReadError(path, f"END_OF_RECORD_MARKER {marker!r} is not a usable one-character marker",
                                    line=number)
            header.record_marker = marker
        else:
            # FILE_NAME, FILE_FORMAT_VERSION and any other top-level keyword: kept as global metadata.
            header.meta[key] = values

    if meta_name or variable:
        what = f"metadata block {meta_name}" if meta_name else f"variable {variable.name}"  # type: ignore[union-attr]
        raise FileReadError(path, f"the file ends inside {what}", hint="the file looks truncated")
    if pending is not None:
        raise FileReadError(path, "the file ends inside a continued value list", line=pending[2])
    if is_main:
        raise FileReadError(path, "no DATA_UNTIL line: the header never ends",
                            hint="the file is truncated or not a CEF-2.0 file")


def _single(values: list[Value], path: str, line: int, key: str) -> str:
    if len(values) != 1 or not values[0].text:
        raise FileReadError(path, f"{key} takes exactly one value, found {_join(values)!r}", line=line)
    return values[0].text
