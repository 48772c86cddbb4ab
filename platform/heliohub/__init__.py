"""heliohub: ESA's heliophysics archives as lazy xarray datasets, next to the data."""

from .errors import FileReadError, HeliohubError, HeliohubWarning, IncludeNotFoundError, UnknownFormatError
from .readers import read_file
from .solar import frame_header, frame_to_map

__version__ = "0.1.0"

__all__ = [
    "FileReadError",
    "HeliohubError",
    "HeliohubWarning",
    "IncludeNotFoundError",
    "UnknownFormatError",
    "__version__",
    "frame_header",
    "frame_to_map",
    "read_file",
]
