"""heliohub: ESA's heliophysics archives as lazy xarray datasets, next to the data.

``open_dataset``, ``search``, ``describe`` and ``file_table`` read the archive store; ``read_file`` reads an archive
file; ``ingest`` fills the store; ``fetch`` gets files from the ESA archives (and ingests them); ``quicklook`` and
``inventory`` plot the store; ``open_constellation`` and ``multispacecraft`` analyse several spacecraft at once,
``events`` selects event lists from datasets;
``versions``, ``tag_release`` and ``cite`` pin and cite what a result was made from; ``export`` writes a time range
of datasets as CDF, NetCDF-4 or CSV files.
Each is imported on first use: ``import heliohub`` costs what its errors module costs, a notebook that only opens
datasets does not pay for astropy, pyarrow and the CDF and FITS readers, and one that only reads files does not pay
for Icechunk.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from .errors import (
    ArchiveError,
    CaveatWarning,
    ClusterError,
    DatasetNotFoundError,
    ExportError,
    FetchError,
    FileReadError,
    HeliohubError,
    HeliohubWarning,
    IncludeNotFoundError,
    IngestError,
    ReaderWarning,
    StoreDamagedError,
    TimeRangeError,
    UnknownFormatError,
)

__version__ = "0.1.0"

_LAZY = {"open_dataset": ".store.access", "search": ".store.access", "describe": ".store.access",
         "file_table": ".store.access",
         "read_file": ".readers", "ingest": ".store.ingest", "fetch": ".fetching", "frame_to_map": ".solar",
         "frame_header": ".solar", "quicklook": ".plots", "inventory": ".plots", "save_figure": ".plots",
         "save_quicklook": ".plots", "open_constellation": ".analysis.constellation",
         "cite": ".analysis.citation", "versions": ".store.versions", "tag_release": ".store.versions",
         "export": ".serving.export"}
_MODULES = {"multispacecraft": ".analysis.multispacecraft", "events": ".analysis.events"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return import_module(_MODULES[name], __name__)
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:  # a submodule, as after an import
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'heliohub' has no attribute {name!r}")


__all__ = [
    "ArchiveError",
    "CaveatWarning",
    "ClusterError",
    "DatasetNotFoundError",
    "ExportError",
    "FetchError",
    "FileReadError",
    "HeliohubError",
    "HeliohubWarning",
    "IncludeNotFoundError",
    "IngestError",
    "ReaderWarning",
    "StoreDamagedError",
    "TimeRangeError",
    "UnknownFormatError",
    "__version__",
    "cite",
    "describe",
    "events",
    "export",
    "fetch",
    "file_table",
    "frame_header",
    "frame_to_map",
    "ingest",
    "inventory",
    "multispacecraft",
    "open_constellation",
    "open_dataset",
    "quicklook",
    "read_file",
    "save_figure",
    "save_quicklook",
    "search",
    "tag_release",
    "versions",
]
