"""heliohub: ESA's heliophysics archives as lazy xarray datasets, next to the data."""

from .errors import FileReadError, HeliohubError, HeliohubWarning, IncludeNotFoundError, UnknownFormatError
from .readers import read_file

__version__ = "0.1.0"

__all__ = [
    "FileReadError",
    "HeliohubError",
    "HeliohubWarning",
    "IncludeNotFoundError",
    "UnknownFormatError",
    "__version__",
    "read_file",
]
