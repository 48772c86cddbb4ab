"""Checking that a download is whole, and unpacking the archives' ``.tgz`` packages.

A download whose length matches what the server announced can still be cut short (no announced length, or a
server that closed early), so every file is checked by its own structure before anything is unpacked or
ingested: gzip to its end (its CRC and length trailer), tar member by member, CDF record chains, FITS blocks and
headers.
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import FetchError
from ..readers import is_archive_file_name
from .answers import describe, is_html, is_votable


def _gunzipped(data: bytes, what: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise FetchError(f"{what}: the gzip data is truncated or corrupt ({error})") from None


def check_whole(data: bytes, what: str) -> None:
    """Raise FetchError unless ``data`` is a whole archive file: one a heliohub reader recognises by its content
    (CDF, FITS, CEF; gzipped or not), with its structure checked to its end (gzip's CRC and length trailer, CDF
    record chains, FITS blocks and headers; CEF text has nothing beyond gzip's and the announced length). Anything
    else (an HTML error page, a TAP error, a truncated tar) is refused, quoted."""
    from ..errors import UnknownFormatError
    from ..raw_files import RawFile
    from ..readers import reader_for

    if not data:
        raise FetchError(f"{what}: the archive sent an empty file")
    compressed = data[:2] == b"\x1f\x8b"
    content = _gunzipped(data, what) if compressed else data
    try:
        reader = reader_for(RawFile(what, content, compressed))
    except UnknownFormatError:
        raise FetchError(f"{what}: the archive sent {describe(content)}, not a CDF, FITS or CEF file") from None
    if reader.name == "CDF":
        from ..readers.cdf_structure import CdfStructureError, check_cdf

        try:
            check_cdf(content)
        except CdfStructureError as error:
            raise FetchError(f"{what}: the CDF is truncated or damaged ({error})") from None
    elif reader.name == "FITS":
        _check_fits(content, what)


def _check_fits(data: bytes, what: str) -> None:
    import warnings

    from astropy.io import fits

    if len(data) % 2880:
        raise FetchError(f"{what}: {len(data)} bytes is not a whole number of FITS blocks (truncated)")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            with fits.open(io.BytesIO(data), memmap=False) as hdus:
                for hdu in hdus:
                    _ = hdu.data  # astropy warns, then fails, when the data runs past the end
        except Exception as error:  # astropy raises many kinds on a damaged file
            raise FetchError(f"{what}: the FITS file is truncated or damaged ({type(error).__name__}: "
                             f"{error})") from None
    if any("truncated" in str(w.message) for w in seen):
        raise FetchError(f"{what}: the FITS file is truncated")


def unpack(package: Path, into: Path, what: str) -> list[Path]:
    """The archive files of a ``.tgz`` package, each checked whole, written under ``into`` (flat, by file name).

    Logs and other non-data members are left out. A package with no data file gives an empty list (the archive's
    answer when the range holds no data)."""
    raw = package.read_bytes()
    content = _gunzipped(raw, what) if raw[:2] == b"\x1f\x8b" else raw
    files = []
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as tar:
            for member in tar:
                name = PurePosixPath(member.name).name
                if not member.isfile() or not is_archive_file_name(name):
                    continue
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                if len(data) != member.size:
                    raise FetchError(f"{what}: member {member.name} is truncated ({len(data)} of {member.size} bytes)")
                check_whole(data, f"{what}: {member.name}")
                target = into / name
                target.write_bytes(data)
                files.append(target)
    except tarfile.TarError as error:
        said = describe(content) if is_html(content) or is_votable(content) else f"not a whole tar package ({error})"
        raise FetchError(f"{what}: the archive sent {said}") from None
    return files


def replace_folder(source: Path, target: Path) -> None:
    """Put the finished folder ``source`` at ``target`` (rename, so that ``target`` is complete or absent)."""
    if target.exists():
        shutil.rmtree(target)
    source.rename(target)
