"""A dataset's caveats, as its archive gives them: the CSA's ``*_CAVEATS`` metadata (mission, observatory,
experiment, instrument, dataset and file caveats: text, or ``*NAME``, a reference to the CSA caveat dataset
``NAME``), a non-zero FITS ``QUALITY`` keyword, and the dataset's quality-flag variables.

``open_dataset`` puts them in ``ds.attrs["caveats"]`` and says so once per dataset with a ``CaveatWarning``;
``describe`` lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

_LEVELS = ("MISSION", "OBSERVATORY", "EXPERIMENT", "INSTRUMENT", "DATASET", "FILE")
_NONE = ("", "none", "validated data - no caveats", "tbw")


def _lines(value: Any) -> list[str]:
    lines = [str(v).strip() for v in value] if isinstance(value, list | tuple) else [str(value).strip()]
    return [line for line in lines if line]


def caveats(attrs: Mapping[str, Any], variables: list[str]) -> list[str]:
    """The caveats of a dataset with these global ``attrs`` and these variable names, one text per caveat."""
    upper = {str(k).upper(): v for k, v in attrs.items()}
    found, referenced = [], []  # the caveats written out first, then those only named
    for level in _LEVELS:
        lines = _lines(upper.get(f"{level}_CAVEATS", ""))
        text = [line for line in lines if not line.startswith("*")]
        if text and " ".join(text).lower() not in _NONE:
            found.append(f"{level.lower()} caveats: " + " ".join(text))
        referenced += [f"{level.lower()} caveats: see the CSA caveat file {line[1:]}" for line in lines
                       if line.startswith("*") and line[1:].strip()]
    found += referenced
    quality = upper.get("QUALITY")
    if isinstance(quality, int | float) and not isinstance(quality, bool) and quality != 0:
        found.append(f"FITS QUALITY = {quality:g} (non-zero: see the instrument's documentation of its bits)")
    flags = [v for v in variables if "quality" in v.lower() or v.lower().endswith("_flag")]
    if flags:
        found.append(f"quality flags in variable(s) {', '.join(flags)}: check them before using the values")
    return found
