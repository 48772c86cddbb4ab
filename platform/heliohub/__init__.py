"""heliohub: ESA's heliophysics archives as lazy xarray datasets, next to the data."""

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
from .readers import read_file
from .solar import frame_header, frame_to_map

__version__ = "0.1.0"



def ingest(*args, **kwargs):  # imported on use: the store's dependencies are not needed to read files
    """Ingest archive files into the archive store; see :func:`heliohub.ingest.ingest`."""
    from .ingest import ingest as _ingest

    return _ingest(*args, **kwargs)


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
    "frame_header",
    "frame_to_map",
    "ingest",
    "read_file",
]
