"""Attributes of a stored dataset as the export formats write them."""

from __future__ import annotations

import ast
from typing import Any

NOT_EXPORTED = ("heliohub_snapshot", "caveats")
"""Attributes of an opened dataset that describe the store, not the data (``heliohub.cite`` gives them)."""


def attribute_entries(value: Any) -> list[Any]:
    """An attribute's entries: a text that is a flattened list of texts becomes that list again."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return [value]
        if isinstance(parsed, list) and parsed and all(isinstance(v, str) for v in parsed):
            return parsed
    if isinstance(value, list | tuple):
        return [str(v) for v in value] or [""]
    return [value if isinstance(value, str | int | float) and not isinstance(value, bool) else str(value)]
