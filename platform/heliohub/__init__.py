"""heliohub: ESA's heliophysics archives as lazy xarray datasets, next to the data."""

from .access import describe, open_dataset, search
from .errors import (
    ArchiveError,
    DatasetNotFoundError,
    FileReadError,
    HeliohubError,
    HeliohubWarning,
    IncludeNotFoundError,
    IngestError,
    TimeRangeError,
    UnknownFormatError,
)
from .ingestion import ingest
from .readers import read_file
from .solar import frame_header, frame_to_map

__version__ = "0.1.0"



__all__ = [
    "ArchiveError",
    "DatasetNotFoundError",
    "FileReadError",
    "HeliohubError",
    "HeliohubWarning",
    "IncludeNotFoundError",
    "IngestError",
    "TimeRangeError",
    "UnknownFormatError",
    "__version__",
    "describe",
    "frame_header",
    "frame_to_map",
    "ingest",
    "open_dataset",
    "read_file",
    "search",
]
