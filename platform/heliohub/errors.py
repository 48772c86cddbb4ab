"""heliohub's one vocabulary of errors and warnings.

Every failure a user can cause raises a subclass of :class:`HeliohubError`. The message names the file (and,
where known, the line, dataset, variable or setting) and says what to do, so that no raw parser, zarr or botocore
traceback is ever the first thing a user reads.
"""

from __future__ import annotations

DAMAGED_FILE_HINT = "compare its size and checksum with the archive's, and fetch it again if they differ"
"""What to do about a file a format library cannot decode: it may be damaged, or not (then say so to us)."""


class HeliohubError(Exception):
    """Base class of every error heliohub raises on purpose."""


class HeliohubWarning(UserWarning):
    """Base class of every warning heliohub emits."""


class FileReadError(HeliohubError):
    """An archive file could not be read: corrupt, truncated, unparsable or of an unsupported kind.

    Attributes give the location: ``path`` always, ``line`` (1-based, in the decompressed text) and ``variable``
    where they are known. No partial dataset is ever returned alongside this error.
    """

    def __init__(self, path: str, reason: str, *, line: int | None = None, variable: str | None = None,
                 hint: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        self.variable = variable
        self.hint = hint
        where = self.path if line is None else f"{self.path}, line {line}"
        if variable is not None:
            where += f", variable {variable}"
        message = f"{where}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class UnknownFormatError(FileReadError):
    """No heliohub reader recognises the file."""


class IncludeNotFoundError(FileReadError):
    """A CEF ``INCLUDE`` names a header file that is in none of the folders searched."""

    def __init__(self, path: str, include: str, searched: list[str], *, line: int | None = None) -> None:
        self.include = include
        self.searched = list(searched)
        folders = ", ".join(self.searched) if self.searched else "(no folders)"
        super().__init__(
            path,
            f"INCLUDE {include!r} was not found (searched, case-insensitively: {folders})",
            line=line,
            hint="pass include_paths=[...] or set CEFPATH to the folders holding the .ceh headers",
        )


class ReaderWarning(HeliohubWarning):
    """A file was read, but something in it departs from its format's rules (named in the message)."""


class ArchiveError(HeliohubError):
    """The archive store cannot be reached or used: the message names the URL and the setting to fix."""


class StoreDamagedError(ArchiveError):
    """Something heliohub keeps in the store (a dataset's provenance or time index, the catalog) is not as heliohub
    writes it: the message names the repository and the part. Other datasets are not affected."""


class DatasetNotFoundError(HeliohubError, KeyError):
    """No dataset of that ID is in the archive store; the message names the closest IDs."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TimeRangeError(HeliohubError, ValueError):
    """A requested time range is not a range, or lies outside the dataset's coverage (named in the message)."""


class IngestError(HeliohubError):
    """A file could not go into the archive store; the message names the file, dataset and what to do."""


class FetchError(HeliohubError):
    """An archive could not be asked or did not deliver: the message names the archive URL, the dataset and the
    setting to check."""


class ClusterError(HeliohubError):
    """A Dask cluster could not be started or used: the message names the gateway and the setting to fix."""


class ExportError(HeliohubError):
    """An export that cannot be made: the message names the dataset, the range, the format or the limit."""


class CaveatWarning(HeliohubWarning):
    """A dataset opened from the store carries caveats or quality flags (once per dataset and process; the caveats
    are in ``ds.attrs["caveats"]`` and in ``heliohub.describe``)."""
