"""Progress bars on standard error (tqdm), for the commands that run long."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def progress_bar(items: Iterable[Any], progress: bool | None, unit: str, total: int | None = None) -> Iterable[Any]:
    """``items``, with a progress bar on standard error when ``progress`` (None: when it is a terminal)."""
    if progress is False:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, unit=unit, total=total, disable=None if progress is None else not progress, file=sys.stderr)
