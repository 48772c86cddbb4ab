"""FITS: SOHO (EIT, LASCO, MDI) and PROBA-2 (SWAP) images, PROBA-2 LYRA binary-table light curves.

Images become ``image(time, y, x)`` with one frame, and each frame's full FITS header kept as text in
``fits_header(time)`` so that ``sunpy.map.Map((image, header))`` rebuilds it exactly (see
:func:`heliohub.frame_to_map`). Light curves become one variable per table column along ``time``.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyWarning

from ..errors import DAMAGED_FILE_HINT, FileReadError, ReaderWarning
from ..raw_files import RawFile

_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
# Keywords describing the observation, given as per-frame variables (the full header is kept beside them).
_SINGLE_BAND_INSTRUMENTS = {"MDI"}
_OBSERVABLES = (("continuum", "CONTINUUM"), ("magnet", "MAGNETOGRAM"), ("doppler", "DOPPLERGRAM"))
_FRAME_KEYWORDS = {"WAVELNTH": "wavelength", "EXPTIME": "exposure_time"}


class FitsReader:
    """Reads FITS image files and LYRA binary-table light curves through astropy."""

    name = "FITS"

    def can_read(self, raw_file: RawFile) -> bool:
        """A FITS file starts with the card ``SIMPLE  =``."""
        return raw_file.data.startswith(b"SIMPLE  =")

    def read(self, raw_file: RawFile, *, include_paths: list[str] | None = None) -> xr.Dataset:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)  # astropy's notes on what it fixed or ignores
            hdus, found, problems = _open(raw_file)
            with hdus:
                if found is None:
                    raise FileReadError(raw_file.path, "the FITS file holds neither an image nor a binary table")
                dataset = _image_dataset(found, hdus[0].header, raw_file) if found.is_image else \
                    _table_dataset(found, hdus[0].header, raw_file)
        if problems:
            warnings.warn(ReaderWarning(f"{raw_file.path}: its FITS header breaks the standard where astropy cannot "
                                        f"fix it; read anyway: {' '.join(problems)}"), stacklevel=2)
        return dataset


_BITPIX = {8, 16, 32, 64, -32, -64}
_LAYOUT_KEYS = {"XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "ZBITPIX", "ZNAXIS"}
# A tile-compressed image may expand this much (or to 64 MiB, for small files): far more than real images do.
_MOST_EXPANSION = 100


def check_layout(data: bytes, path: str) -> None:
    """Refuse a file whose headers declare what it cannot hold: astropy trusts NAXIS and the sizes it reads (a
    damaged NAXIS of 2**31 made it loop for minutes; a damaged dimension makes it allocate without bound), so the
    cards that give each HDU's size are checked here first, against the FITS standard and the file's length."""
    offset, number = 0, 0
    while offset < len(data) and (number == 0 or data.startswith(b"XTENSION", offset)):
        cards: dict[str, str] = {}
        end = None
        for start in range(offset, len(data) - 79, 80):
            key = data[start:start + 8].decode("ascii", "replace").strip()
            if key == "END":
                end = start
                break
            if data[start + 8:start + 10] == b"= " and (key in _LAYOUT_KEYS or key.startswith(("NAXIS", "ZNAXIS"))):
                value = data[start + 10:start + 80].decode("ascii", "replace").split("/")[0].strip()
                if cards.setdefault(key, value) != value:
                    raise FileReadError(path, f"HDU {number}: {key} is given twice ({cards[key]} and {value})",
                                        hint=DAMAGED_FILE_HINT)
        if end is None:
            raise FileReadError(path, f"HDU {number}: its header has no END card", hint=DAMAGED_FILE_HINT)
        header_end = -(-(end + 80) // 2880) * 2880
        size = _declared(cards, "", number, path)
        if header_end + size > len(data):
            raise FileReadError(path, f"truncated or damaged FITS: HDU {number} declares {size} bytes of data; the "
                                f"file holds {max(0, len(data) - header_end)} after its header",
                                hint=DAMAGED_FILE_HINT)
        if "ZNAXIS" in cards and _declared(cards, "Z", number, path) > max(64 << 20, _MOST_EXPANSION * len(data)):
            raise FileReadError(path, f"HDU {number}: its compressed image declares a size the file cannot expand "
                                "to (ZNAXISn)", hint=DAMAGED_FILE_HINT)
        offset = header_end + -(-size // 2880) * 2880
        number += 1


def _declared(cards: dict[str, str], prefix: str, number: int, path: str) -> int:
    """The bytes of data the cards declare (the FITS standard's formula; ``Z`` for a compressed image's own)."""
    try:
        bitpix = int(cards.get(f"{prefix}BITPIX", "8"))
        naxis = int(cards.get(f"{prefix}NAXIS", "0"))
        if bitpix not in _BITPIX or not 0 <= naxis <= 999:
            raise ValueError(f"{prefix}BITPIX {bitpix}, {prefix}NAXIS {naxis}")
        axes = [int(cards[f"{prefix}NAXIS{i}"]) for i in range(1, naxis + 1)]
        pcount = int(cards.get("PCOUNT", "0")) if not prefix else 0
        gcount = int(cards.get("GCOUNT", "1")) if not prefix else 1
        if min([*axes, pcount, gcount, 0]) < 0:
            raise ValueError("a negative size")
    except (ValueError, KeyError) as error:
        raise FileReadError(path, f"HDU {number}: its size keywords are not what FITS allows ({error})",
                            hint=DAMAGED_FILE_HINT) from None
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(axes)) if naxis else 0


def _open(raw_file: RawFile) -> tuple[fits.HDUList, fits.ImageHDU | fits.BinTableHDU | None, list[str]]:
    """The file's HDUs (their headers fixed where astropy can), the first image or binary table, its data loaded,
    and what astropy's verification could not fix; a FileReadError when astropy cannot read the file."""
    check_layout(raw_file.data, raw_file.path)
    try:
        hdus = fits.open(io.BytesIO(raw_file.data), memmap=False)
    except (OSError, ValueError, EOFError, IndexError, KeyError) as error:  # what astropy's parser raises
        raise FileReadError(raw_file.path, f"not a readable FITS file: {error}", hint=DAMAGED_FILE_HINT) from error
    try:
        with warnings.catch_warnings(record=True) as unfixed:
            warnings.simplefilter("always", VerifyWarning)
            hdus.verify("silentfix+warn")
        found = next((h for h in hdus if h.is_image and h.data is not None and h.data.ndim >= 2), None) or \
            next((h for h in hdus if isinstance(h, fits.BinTableHDU)), None)
        if found is not None and not found.is_image:
            found.data.columns  # noqa: B018 - the table is decoded here, where its errors are the file's
    except (OSError, ValueError, EOFError, IndexError, KeyError, TypeError, fits.VerifyError) as error:
        hdus.close()
        raise FileReadError(raw_file.path, f"astropy cannot read its data: {error}", hint=DAMAGED_FILE_HINT) from error
    except Exception as error:  # a tile-compressed image's decoder raises astropy's own private exception types
        hdus.close()
        raise FileReadError(raw_file.path, f"astropy cannot decompress its FITS image: {error}",
                            hint=DAMAGED_FILE_HINT) from error
    return hdus, found, [str(w.message).strip() for w in unfixed]


def _merged_header(header: fits.Header, primary: fits.Header) -> fits.Header:
    """The extension's header, with the primary header's cards it lacks (the FITS inheritance convention)."""
    merged = header.copy()
    for card in primary.cards:
        if card.keyword and card.keyword not in merged and card.keyword not in ("SIMPLE", "EXTEND", "NAXIS"):
            merged.append(card)
    return merged


def _observation_time(header: fits.Header, path: str) -> np.datetime64:
    text = header.get("DATE-OBS") or header.get("DATE_OBS")
    if not text:
        raise FileReadError(path, "no DATE-OBS (or DATE_OBS) keyword: the observation time is unknown")
    text = str(text).strip()
    if "T" not in text and header.get("TIME-OBS"):
        text = f"{text}T{header['TIME-OBS']}"
    try:
        stamp = pd.Timestamp(text)
    except ValueError as error:
        raise FileReadError(path, f"DATE-OBS {text!r} is not a time") from error
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return np.datetime64(stamp.as_unit("ns").asm8, "ns")


def _header_attrs(header: fits.Header) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if not key or key in ("COMMENT", "HISTORY", "") or key in attrs:
            continue
        value = card.value
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, fits.card.Undefined) or value is None:
            continue
        attrs[key] = value
    return attrs


def _word(value: Any) -> str:
    return _NOT_WORD.sub("_", str(value).strip()).strip("_").upper()


def _observable(header: fits.Header) -> str | None:
    """MDI observes at one wavelength; its products differ by observable, named in CONTENT or DPC_OBSR."""
    text = " ".join(str(header.get(key) or "") for key in ("CONTENT", "DPC_OBSR", "OBS_MODE")).lower()
    return next((name for word, name in _OBSERVABLES if word in text), None)


# The instruments sunpy's map and timeseries sources recognise (their ``is_datasource_for``), by the keywords they
# look at, and the observatory each is on (which some files do not name).
_EIT_TELESCOPE = "Extreme-ultraviolet Imaging Telescope (EIT)"
LYRA_CHANNELS = {"CHANNEL1": "Lyman alpha (120-123 nm)", "CHANNEL2": "Herzberg cont. (190-222 nm)",
                 "CHANNEL3": "Al filter (17-80 nm + <5 nm)", "CHANNEL4": "Zr filter (6-20 nm + <2 nm)"}
"""LYRA's four channels by the names and passbands sunpy's ``LYRALightCurve`` gives them (sunpy/timeseries/sources/
lyra.py, after Dominique et al. 2013, Solar Physics 286, 21); the files name them CHANNEL1 to CHANNEL4 only."""
_OBSERVATORIES = {"EIT": "SOHO", "LASCO": "SOHO", "MDI": "SOHO", "SWAP": "PROBA2", "LYRA": "PROBA2"}


def instrument_of(header: fits.Header) -> tuple[str, str]:
    """(observatory, instrument) as sunpy's sources read them: INSTRUME; for MDI also CAMERA; for EIT also its
    TELESCOP; the observatory from TELESCOP (or OBSRVTRY), else the instrument's own."""
    instrument = str(header.get("INSTRUME") or "").strip()
    telescope = str(header.get("TELESCOP") or header.get("OBSRVTRY") or "").strip()
    if not instrument:
        if str(header.get("CAMERA") or "").strip().upper().startswith("MDI"):
            instrument = "MDI"
        elif telescope == _EIT_TELESCOPE:
            instrument = "EIT"
    if instrument.upper() in _OBSERVATORIES and (not telescope or telescope == _EIT_TELESCOPE):
        telescope = _OBSERVATORIES[instrument.upper()]
    return telescope, instrument


def fits_dataset_id(header: fits.Header, *, table: bool = False) -> str:
    """The documented dataset ID rule for files with no ID of their own.

    Images: ``<TELESCOP>_<INSTRUME>[_<DETECTOR>]_<band>`` where DETECTOR appears when it differs from INSTRUME
    and the band is the observable for single-wavelength instruments (MDI: ``CONTINUUM``, ``MAGNETOGRAM``,
    ``DOPPLERGRAM``), else WAVELNTH as an integer when given. Light curves: ``<TELESCOP>_<INSTRUME>_LEV<LEVEL>``.
    All upper case: SOHO_EIT_195, SOHO_LASCO_C2, SOHO_MDI_CONTINUUM, PROBA2_SWAP_174, PROBA2_LYRA_LEV2.
    """
    observatory, instrument = instrument_of(header)
    parts = [_word(observatory or "UNKNOWN"), _word(instrument or "UNKNOWN")]
    if table:
        level = header.get("LEVEL")
        if level is not None and str(level).strip():
            parts.append(f"LEV{_word(level)}")
        return "_".join(parts)
    detector = header.get("DETECTOR")
    if detector and _word(detector) not in parts:
        parts.append(_word(detector))
    wavelength = header.get("WAVELNTH")
    observable = _observable(header) if parts[1] in _SINGLE_BAND_INSTRUMENTS else None
    if observable:
        parts.append(observable)
    elif isinstance(wavelength, (int, float)) and not isinstance(wavelength, bool) and wavelength > 0:
        parts.append(str(round(wavelength)))
    return "_".join(parts)


def _normalised(header: fits.Header, raw_file: RawFile, dataset_id: str) -> dict[str, Any]:
    observatory, instrument = instrument_of(header)
    detector = str(header.get("DETECTOR") or "").strip()
    if detector and detector != instrument:
        instrument = f"{instrument} {detector}".strip()
    wavelength = header.get("WAVELNTH")
    band = f"{wavelength} {header.get('WAVEUNIT', 'Angstrom')}" if wavelength else ""
    return {
        "dataset_id": dataset_id,
        "mission": observatory,
        "observatory": observatory,
        "instrument": instrument,
        "title": " ".join(p for p in (observatory, instrument, band) if p),
        "source_file": raw_file.name,
        "source_format": "FITS",
    }


def _image_dataset(hdu: fits.ImageHDU, primary: fits.Header, raw_file: RawFile) -> xr.Dataset:
    header = _merged_header(hdu.header, primary) if hdu.header is not primary else hdu.header
    data = np.asarray(hdu.data)
    if data.ndim > 2:
        data = data.reshape(-1, *data.shape[-2:])[0] if data.shape[:-2] == (1,) * (data.ndim - 2) else data
    if data.ndim != 2:
        raise FileReadError(raw_file.path, f"a {data.ndim}-dimensional image; heliohub reads 2-D frames")
    blank = header.get("BLANK")
    if data.dtype.kind == "f":
        data = data.astype(np.float32 if data.dtype.itemsize <= 4 else np.float64, copy=False)
    frame_attrs = {"units": str(header["BUNIT"]).strip()} if header.get("BUNIT") else {}
    if blank is not None:
        frame_attrs["BLANK"] = blank
    frame_attrs["long_name"] = f"{instrument_of(header)[1]} image".strip()
    time = _observation_time(header, raw_file.path)
    dataset_id = fits_dataset_id(header)
    variables: dict[str, xr.Variable] = {
        "image": xr.Variable(("time", "y", "x"), data[np.newaxis], frame_attrs),
        "fits_header": xr.Variable(("time",), np.array([header.tostring(sep="\n")], dtype=object),
                                   {"long_name": "the frame's FITS header", "description":
                                    "pass with the frame to sunpy.map.Map((image, header)) to rebuild the map"}),
    }
    for keyword, name in _FRAME_KEYWORDS.items():
        if isinstance(header.get(keyword), (int, float)) and not isinstance(header.get(keyword), bool):
            units = {"WAVELNTH": str(header.get("WAVEUNIT", "Angstrom")), "EXPTIME": "s"}[keyword]
            variables[name] = xr.Variable(("time",), np.array([float(header[keyword])]),
                                          {"units": units, "FITS_KEYWORD": keyword})
    attrs = _header_attrs(header)
    attrs.update({k: v for k, v in _normalised(header, raw_file, dataset_id).items() if v})
    coords = {"time": xr.Variable(("time",), np.array([time]), {"long_name": "observation time (DATE-OBS)"})}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _table_dataset(hdu: fits.BinTableHDU, primary: fits.Header, raw_file: RawFile) -> xr.Dataset:
    header = _merged_header(hdu.header, primary)
    table = hdu.data
    names = list(table.columns.names)
    if not names or names[0].upper() != "TIME":
        raise FileReadError(raw_file.path, f"a binary table whose first column is {names[:1]}, not TIME; "
                            "heliohub reads LYRA-style light curves")
    start = _observation_time(primary if primary.get("DATE-OBS") else header, raw_file.path)
    unit = str(header.get("TUNIT1", "")).strip().lower()
    level = str(header.get("LEVEL", "")).strip()
    if unit in ("", "s") and not (unit == "" and level == "3"):
        scale = 1e9
    elif unit == "min" or (unit == "" and level == "3"):
        scale = 60e9
    else:
        raise FileReadError(raw_file.path, f"TIME column in unknown unit {header.get('TUNIT1')!r}",
                            hint="LYRA level 2 gives seconds, level 3 minutes")
    offsets = np.asarray(table.field(0), dtype=np.float64)
    times = start + np.round(offsets * scale).astype("timedelta64[ns]")
    variables: dict[str, xr.Variable] = {}
    for index, name in enumerate(names[1:], start=2):
        column = np.asarray(table.field(index - 1))
        if column.dtype.kind in "SU":
            column = column.astype(str).astype(object)
        elif column.dtype.byteorder == ">":
            column = column.astype(column.dtype.newbyteorder("="))
        attrs: dict[str, Any] = {"FITS_COLUMN": name}
        unit_text = header.get(f"TUNIT{index}")
        if unit_text:
            attrs["units"] = str(unit_text).strip()
        elif name.upper().startswith("CHANNEL") and instrument_of(header)[1] == "LYRA":
            attrs["units"] = "W m-2"  # LYRA's irradiance unit; its level 2 tables do not say it
        if instrument_of(header)[1] == "LYRA" and name.upper() in LYRA_CHANNELS:
            attrs["long_name"] = LYRA_CHANNELS[name.upper()]
        variables[name] = xr.Variable(("time",), column, attrs)
    dataset_id = fits_dataset_id(header, table=True)
    attrs = _header_attrs(header)
    attrs.update({k: v for k, v in _normalised(header, raw_file, dataset_id).items() if v})
    time_attrs = {"long_name": "DATE-OBS + TIME column", "TIME_UNIT": "min" if scale == 60e9 else "s"}
    return xr.Dataset(variables, coords={"time": xr.Variable(("time",), times, time_attrs)}, attrs=attrs)
