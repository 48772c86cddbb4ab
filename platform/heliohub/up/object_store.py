"""The platform's S3 endpoint (moto's S3 backend standing in for S3/MinIO/Ceph): its process, its two accounts,
and the copy of what the operator writes to it back into the store folder.

The endpoint serves the S3 API only, with IAM enforced (``heliohub.up.s3_endpoint``): the operator's keys may do
anything, the users' keys (the reader's) may only list and read the archive bucket.

moto keeps objects in memory, so the archive store's source of truth is a folder in the data folder: each start
uploads it into the bucket (the demo archive is a few MB), and what the operator writes to the bucket while the
platform runs (an ingest or fetch through S3) is copied back to it every minute and at stop (:func:`download_new`),
references last and only once Icechunk opens the repository they point into.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .s3_endpoint import REGION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str

    def environment(self, endpoint: str) -> dict[str, str]:
        """The standard AWS variables that point s3fs, Icechunk and boto3 at the endpoint with these keys."""
        return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_REGION": REGION}

    def client(self, endpoint: str):
        import boto3

        return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key)


def start_server(host: str, port: int, bucket: str, keys_file: Path, log_file: Path,
                 env: dict[str, str]) -> subprocess.Popen:
    """The S3 endpoint on host:port; it writes the operator's and the reader's keys to ``keys_file`` once up."""
    keys_file.unlink(missing_ok=True)
    handle = open(log_file, "ab")  # noqa: SIM115 - the child keeps writing to it
    return subprocess.Popen([sys.executable, "-m", "heliohub.up.s3_endpoint", "--host", host, "--port", str(port),
                             "--bucket", bucket, "--keys", str(keys_file)], env=env, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_keys(keys_file: Path, process: subprocess.Popen, timeout: float = 90) -> tuple[Keys, Keys]:
    """The operator's and the reader's keys, once the endpoint has written them (it listens by then)."""
    deadline = time.monotonic() + timeout
    while not keys_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the S3 endpoint exited at start (code {process.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the S3 endpoint did not start within {timeout:.0f} s")
        time.sleep(0.1)
    keys = json.loads(keys_file.read_text())
    return Keys(**keys["operator"]), Keys(**keys["reader"])


def upload_folder(folder: Path, endpoint: str, keys: Keys, bucket: str, prefix: str) -> int:
    """Upload every file under ``folder`` to ``s3://bucket/prefix/``; returns the number of files."""
    s3 = keys.client(endpoint)
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".locks" not in path.parts:
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
            count += 1
    return count


def _mutable(key: str) -> bool:
    """Icechunk rewrites only its references and configuration; chunks, manifests, snapshots and transaction logs
    are written once under content-derived names."""
    name = key.rsplit("/", 1)[-1]
    return "/refs/" in f"/{key}" or name in ("config.yaml", "repo")


def download_new(endpoint: str, keys: Keys, bucket: str, prefix: str, folder: Path) -> int:
    """Copy to ``folder`` what the bucket holds under ``prefix`` and the folder lacks: written objects first, then
    each repository's changed references and configuration, kept only if Icechunk then opens the repository and
    Zarr its root group (else the folder's are put back, and the repository is named in the log). So the folder
    always holds repositories whose references point at snapshots it has. Returns the number of files kept."""
    s3 = keys.client(endpoint)
    objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
               for o in page.get("Contents", [])]
    immutable: list[tuple[str, Path]] = []
    changed: dict[str, list[tuple[str, Path]]] = {}
    for item in objects:
        relative = item["Key"][len(prefix) + 1:]
        target = folder / relative
        if not _mutable(item["Key"]):
            if not target.exists():
                immutable.append((item["Key"], target))
        elif not target.exists() or target.stat().st_size != item["Size"] or f'"{_md5(target)}"' != item["ETag"]:
            changed.setdefault(relative.split("/", 1)[0], []).append((item["Key"], target))
    for key, target in immutable:
        _download(s3, bucket, key, target)
    kept = len(immutable)
    for repository, files in sorted(changed.items()):
        previous = {target: target.read_bytes() if target.exists() else None for _, target in files}
        for key, target in files:
            _download(s3, bucket, key, target)
        problem = _unreadable(folder, repository)
        if problem is None:
            kept += len(files)
            continue
        log.error("the S3 archive's repository %s was not kept in %s: %s; the folder keeps its previous state",
                  repository, folder, problem)
        for target, content in previous.items():
            if content is None:
                target.unlink(missing_ok=True)
            else:
                _write_whole(target, content)
    return kept


def _download(s3, bucket: str, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.part")
    s3.download_file(bucket, key, str(scratch))
    scratch.replace(target)


def _write_whole(target: Path, content: bytes) -> None:
    scratch = target.with_name(f".{target.name}.part")
    scratch.write_bytes(content)
    scratch.replace(target)


def _unreadable(folder: Path, repository: str) -> str | None:
    """Why the repository in the store folder does not open (None: it opens, and its root group reads)."""
    import icechunk
    import zarr

    from ..errors import ArchiveError
    from ..store.location import BRANCH, StoreLocation

    try:
        session = StoreLocation.resolve(folder).repository(repository).readonly_session(branch=BRANCH)
        zarr.open_group(session.store, mode="r").attrs.asdict()
    except (ArchiveError, icechunk.IcechunkError, zarr.errors.BaseZarrError, ValueError, KeyError) as error:
        return f"{type(error).__name__}: {str(error).strip()[:300]}"
    return None


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
