"""The archive sources heliohub can fetch from, found through the entry point group ``heliohub.sources`` (heliohub's
own too, as readers are found through ``heliohub.readers``): a package that installs an entry point
``name = module:Class`` there adds an archive to ``heliohub fetch`` and ``heliohub fetch --check``."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import FetchError

if TYPE_CHECKING:
    from .base import ArchiveSource

ENTRY_POINTS = "heliohub.sources"


def source_names() -> list[str]:
    """The names of the installed archive sources, without importing them (the CLI's choices)."""
    return sorted(e.name for e in entry_points(group=ENTRY_POINTS))


def archive_source(name: str, delivery_format: str | None = None) -> ArchiveSource:
    """The archive source registered as ``name``; ``delivery_format`` goes to a source that offers several
    (one that lists them as ``formats``)."""
    found = [e for e in entry_points(group=ENTRY_POINTS) if e.name == name]
    if not found:
        raise FetchError(f"no archive source {name!r}: use one of {', '.join(source_names())} (entry point group "
                         f"{ENTRY_POINTS})")
    cls = found[0].load()
    if hasattr(cls, "formats"):
        return cls(delivery_format) if delivery_format is not None else cls()
    if delivery_format is not None:
        raise FetchError(f"{cls.title} has one delivery format: leave out the format ({delivery_format!r})")
    return cls()
