"""Where the archive store lives, and its parts: one Icechunk repository per dataset ID, and the catalog.

The store is a folder or an ``s3://bucket/prefix`` URL (S3, MinIO, Ceph). Each dataset ID is a Zarr v3 group
inside its own Icechunk repository ``<root>/<DATASET_ID>``: Icechunk gives Zarr transactions on object storage,
so an ingest publishes all its changes in one atomic commit (a reader sees the old state or the new, never half
of an update), concurrent ingests of one dataset are detected and retried, and a process killed mid-write leaves
only unreferenced objects. The catalog is the repository ``<root>/_catalog``, one entry per dataset in its root
group's attributes.

The location comes from the argument or ``HELIOHUB_ARCHIVE``; S3 settings from the standard ``AWS_*`` variables
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import ParseResult, urlparse

import icechunk

from ..errors import ArchiveError

ENVIRONMENT = "HELIOHUB_ARCHIVE"
# The S3 settings heliohub reads (the AWS SDKs' own names); the platform and the Helm chart set these.
S3_ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                  "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")
CATALOG = "_catalog"
REACHABLE_TIMEOUT = 5.0
"""Seconds to wait for the S3 endpoint to accept a connection before saying it cannot be reached."""
_REACHABLE: set[tuple[str, int]] = set()
_repositories: dict[tuple[tuple[str, ...], str], icechunk.Repository] = {}
"""Repositories opened in this process, by the store's identity and name: opening one on object storage costs
requests (its configuration and refs), and every session of it reads the refs afresh. A repository removed (and
made again) at the same place is opened again by the writer that finds it gone (``lock.write_transaction``)."""
_repositories_lock = threading.Lock()
BRANCH = "main"
INLINE_CHUNK_BYTES = 65_535
"""Encoded chunks up to this size are kept inside the array's manifest rather than as objects of their own
(Icechunk's ``inline_chunk_threshold_bytes``, default 512, at most 65,535). An append rewrites the manifests of the
arrays it changes anyway; the partial last chunks it rewrites with them then cost no request of their own (see
docs/store-layout.md)."""
MANIFEST_SPLIT_CHUNKS = 8
"""Chunks along the first axis (time) per manifest: an append rewrites only the manifest of the last chunks, and
a manifest holds at most this many inlined chunks, whatever the history."""
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def repository_config() -> icechunk.RepositoryConfig:
    """The Icechunk settings every repository of the store is opened with (stores written before them included:
    Icechunk applies them to what it writes from then on, and ``heliohub upgrade`` splits older manifests).

    Manifests are not preloaded: by default Icechunk fetches, as each session starts, every manifest of an array
    named like a coordinate (``time``), which with manifests split along time is the whole history's; heliohub
    finds the time chunks it needs through the time index (:mod:`.time_index`)."""
    along_time = {icechunk.ManifestSplitDimCondition.Axis(0): MANIFEST_SPLIT_CHUNKS}
    splitting = icechunk.ManifestSplittingConfig.from_dict({icechunk.ManifestSplitCondition.AnyArray(): along_time})
    no_preload = icechunk.ManifestPreloadConfig(preload_if=icechunk.ManifestPreloadCondition.false())
    return icechunk.RepositoryConfig(inline_chunk_threshold_bytes=INLINE_CHUNK_BYTES,
                                     manifest=icechunk.ManifestConfig(splitting=splitting, preload=no_preload))


@dataclass(frozen=True)
class StoreLocation:
    """An archive store location and the S3 settings to reach it."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def resolve(cls, archive: str | os.PathLike[str] | StoreLocation | None = None,
                storage_options: dict[str, Any] | None = None) -> StoreLocation:
        """The archive given, or the one ``HELIOHUB_ARCHIVE`` names; S3 settings from ``AWS_*`` unless given."""
        if isinstance(archive, StoreLocation):
            return archive
        url = os.fspath(archive) if archive is not None else os.environ.get(ENVIRONMENT)
        if not url:
            raise ArchiveError(f"no archive store given: pass archive=... or set {ENVIRONMENT} "
                               "(a folder, or s3://bucket/prefix)")
        scheme = urlparse(url).scheme
        if scheme in ("", "file"):
            url = str(Path(url.removeprefix("file://")).expanduser().resolve())
        elif scheme not in ("s3", "s3a"):
            raise ArchiveError(f"archive store {url!r}: only folders and s3:// URLs are supported "
                               f"(check {ENVIRONMENT})")
        options = dict(storage_options) if storage_options is not None else _s3_environment()
        return cls(url, options)

    @property
    def is_s3(self) -> bool:
        return urlparse(self.url).scheme in ("s3", "s3a")

    @property
    def identity(self) -> tuple[str, ...]:
        """What tells this store apart from another as a reader sees it: the URL, the endpoint and the
        credentials (as digests): caches of what was read are kept per identity."""
        options = self.storage_options
        secrets = (options.get("secret"), options.get("token"))
        digest = hashlib.sha256(repr(secrets).encode()).hexdigest()[:16] if any(secrets) else ""
        return (self.url, str(options.get("endpoint_url") or ""), str(options.get("key") or ""), digest)

    def _storage(self, name: str) -> icechunk.Storage:
        if not self.is_s3:
            _quiet_local_warning()
            return icechunk.local_filesystem_storage(str(Path(self.url) / name))
        self._check_reachable()
        parsed = urlparse(self.url)
        prefix = "/".join(p for p in (parsed.path.strip("/"), name) if p)
        options = self.storage_options
        endpoint = options.get("endpoint_url")
        return icechunk.s3_storage(
            bucket=parsed.netloc, prefix=prefix, endpoint_url=endpoint, region=options.get("region"),
            allow_http=bool(endpoint and endpoint.startswith("http://")), force_path_style=bool(endpoint),
            access_key_id=options.get("key"), secret_access_key=options.get("secret"),
            session_token=options.get("token"), anonymous=options.get("anon") or None,
        )

    def repository(self, name: str, *, create: bool = False) -> icechunk.Repository:
        """The Icechunk repository of a dataset ID (or the catalog), created on request; opened once per process
        (see :data:`_repositories`)."""
        check_dataset_id(name, allow_catalog=True)
        key = (self.identity, name)
        with _repositories_lock:
            kept = _repositories.get(key)
        if kept is not None:
            return kept
        storage = self._storage(name)
        try:
            if create:
                try:
                    repo = icechunk.Repository.open_or_create(storage, config=repository_config())
                except icechunk.IcechunkError:
                    # another process created it between our look and our create: open what it made
                    time.sleep(0.5)
                    repo = icechunk.Repository.open(storage, config=repository_config())
            else:
                repo = icechunk.Repository.open(storage, config=repository_config())
        except icechunk.IcechunkError as error:
            raise self.error(f"cannot open {name!r}", error) from None
        with _repositories_lock:
            _repositories[key] = repo
        return repo

    def _check_reachable(self) -> None:
        """Fail fast on an endpoint that does not answer: Icechunk 1.1 takes no retry settings for its first
        requests (``Repository.exists``, the start of ``open``) and retries a refused connection ten times, some
        20 s, before saying so; and it waits without end on a server that accepts a connection and never answers
        (a hung object store, or AWS_ENDPOINT_URL naming the port of a silent service). One connection per endpoint
        and process is checked instead: to the endpoint, which must answer a request (or its part of the TLS
        handshake) within :data:`REACHABLE_TIMEOUT`, or to the proxy that reaches it (``HTTPS_PROXY``/
        ``HTTP_PROXY``, unless ``NO_PROXY`` exempts it), which must accept a connection."""
        endpoint = self.storage_options.get("endpoint_url") or \
            f"https://s3.{self.storage_options.get('region') or 'us-east-1'}.amazonaws.com"
        parsed = urlparse(endpoint)
        proxy = urllib.request.getproxies().get(parsed.scheme)
        through = ""
        if proxy and not urllib.request.proxy_bypass(parsed.hostname or ""):
            parsed, through = urlparse(proxy if "://" in proxy else f"http://{proxy}"), f" (the proxy to {endpoint})"
        address = (parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80))
        if address in _REACHABLE:
            return
        try:
            connection = socket.create_connection(address, timeout=REACHABLE_TIMEOUT)
        except OSError as error:
            raise self.error(f"cannot connect to {address[0]}:{address[1]}{through}", error) from None
        with connection:
            try:
                if not through:
                    _hear(connection, parsed)
            except OSError as error:
                raise self.error(f"{address[0]}:{address[1]} accepts a connection but does not answer as a web "
                                 f"server within {REACHABLE_TIMEOUT:.0f} s", error) from None
        _REACHABLE.add(address)

    def exists(self, name: str) -> bool:
        try:
            return icechunk.Repository.exists(self._storage(name))
        except icechunk.IcechunkError as error:
            raise self.error(f"cannot look for {name!r}", error) from None

    def fsspec(self):
        """An fsspec filesystem and root path for listing the store (S3 through s3fs)."""
        import fsspec

        if not self.is_s3:
            return fsspec.filesystem("file"), self.url
        options = {k: v for k, v in self.storage_options.items() if k in ("key", "secret", "token", "anon")}
        client = {k: v for k, v in (("endpoint_url", self.storage_options.get("endpoint_url")),
                                    ("region_name", self.storage_options.get("region"))) if v}
        parsed = urlparse(self.url)
        return fsspec.filesystem("s3", client_kwargs=client, **options), f"{parsed.netloc}{parsed.path}".rstrip("/")

    def error(self, what: str, cause: Exception) -> ArchiveError:
        """An ArchiveError naming the store and the settings that reach it."""
        endpoint = self.storage_options.get("endpoint_url")
        where = f"{self.url}" + (f" through {endpoint}" if endpoint else "")
        hint = (f"check {ENVIRONMENT}, AWS_ENDPOINT_URL and the AWS credentials" if self.is_s3
                else f"check {ENVIRONMENT} and that the folder exists and is readable")
        return ArchiveError(f"archive store {where}: {what}: {_short(cause)}; {hint}")


def _hear(connection: socket.socket, endpoint: ParseResult) -> None:
    """Raise OSError (TimeoutError when it stays silent) unless the server at the other end of ``connection`` says
    something: any answer to a HEAD request, or its part of a TLS handshake."""
    if endpoint.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # whether it answers, only: Icechunk checks the certificate itself
        with contextlib.suppress(ssl.SSLError):  # it answered, with something TLS refuses: Icechunk's error says what
            context.wrap_socket(connection, server_hostname=endpoint.hostname).close()
        return
    connection.sendall(f"HEAD / HTTP/1.1\r\nHost: {endpoint.netloc}\r\nConnection: close\r\n\r\n".encode())
    if not connection.recv(1):
        raise ConnectionError("it closed the connection without answering")


def _quiet_local_warning() -> None:
    """Icechunk warns on every local repository that local folders are unsafe for concurrent commits: heliohub
    serialises them itself (:mod:`heliohub.store.lock`), so that warning is silenced; others are kept."""
    icechunk.set_logs_filter("warn,icechunk::storage::object_store=error")


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _s3_environment() -> dict[str, Any]:
    env = {name: os.environ[name] for name in S3_ENVIRONMENT if os.environ.get(name)}
    options = {
        "endpoint_url": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
        "key": env.get("AWS_ACCESS_KEY_ID"),
        "secret": env.get("AWS_SECRET_ACCESS_KEY"),
        "token": env.get("AWS_SESSION_TOKEN"),
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
    }
    return {k: v for k, v in options.items() if v}


def check_dataset_id(name: str, *, allow_catalog: bool = False) -> str:
    """A dataset ID usable as a store key (letters, digits, ``_ . + -``), or an ArchiveError saying why not."""
    if (allow_catalog and name == CATALOG) or _ID.match(name or ""):
        return name
    raise ArchiveError(f"{name!r} is not a usable dataset ID: use letters, digits and _ . + - "
                       "(give one with --dataset-id)")


def opened_repository(location: StoreLocation, name: str) -> icechunk.Repository | None:
    """The repository ``name`` of ``location`` as this process opened it, or None when it has not (nothing is
    asked of the store)."""
    with _repositories_lock:
        return _repositories.get((location.identity, str(name)))


def forget_repositories(location: StoreLocation | None = None, name: str | None = None) -> None:
    """Forget the repositories opened so far, or the one ``name`` of ``location`` (the next use opens it again)."""
    with _repositories_lock:
        if location is None:
            _repositories.clear()
        else:
            _repositories.pop((location.identity, str(name)), None)
