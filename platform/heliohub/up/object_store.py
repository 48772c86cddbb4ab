"""The platform's S3 endpoint (moto's server standing in for S3/MinIO/Ceph), with IAM enforced.

moto checks IAM policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` unauthenticated requests have been made: the first
three create an operator with full rights and its keys; everything after is signed, so the users' keys (allowed
only to list and read the archive bucket) cannot write or delete, exactly as on a real object store.

moto keeps objects in memory, so the archive store's source of truth is a folder in the data folder: each start
uploads it into the bucket (the demo archive is a few MB), and what is written to the bucket while the platform
runs (an operator's ingest or fetch through S3) is copied back to it every minute and at stop
(:func:`download_new`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SETUP_REQUESTS = 3
REGION = "us-east-1"


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str

    def environment(self, endpoint: str) -> dict[str, str]:
        """The standard AWS variables that point s3fs, Icechunk and boto3 at the endpoint with these keys."""
        return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_REGION": REGION}


def start_server(host: str, port: int, log: Path) -> subprocess.Popen:
    """moto's server on host:port, enforcing IAM after the setup requests."""
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    handle = open(log, "ab")  # noqa: SIM115 - the child keeps writing to it
    return subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)], env=env,
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def read_only_policy(bucket: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/*"},
    ]}


def create_accounts(endpoint: str, bucket: str) -> tuple[Keys, Keys]:
    """The operator's keys (everything) and the users' keys (list and read the bucket); creates the bucket."""
    import boto3

    anonymous = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "setup",
                 "aws_secret_access_key": "setup"}
    iam = boto3.client("iam", **anonymous)
    iam.create_user(UserName="heliohub-operator")
    iam.put_user_policy(UserName="heliohub-operator", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    created = iam.create_access_key(UserName="heliohub-operator")["AccessKey"]
    operator = Keys(created["AccessKeyId"], created["SecretAccessKey"])
    signed = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": operator.access_key_id,
              "aws_secret_access_key": operator.secret_access_key}
    iam = boto3.client("iam", **signed)
    iam.create_user(UserName="heliohub-reader")
    iam.put_user_policy(UserName="heliohub-reader", PolicyName="read-archive",
                        PolicyDocument=json.dumps(read_only_policy(bucket)))
    created = iam.create_access_key(UserName="heliohub-reader")["AccessKey"]
    reader = Keys(created["AccessKeyId"], created["SecretAccessKey"])
    boto3.client("s3", **signed).create_bucket(Bucket=bucket)
    return operator, reader


def upload_folder(folder: Path, endpoint: str, keys: Keys, bucket: str, prefix: str) -> int:
    """Upload every file under ``folder`` to ``s3://bucket/prefix/``; returns the number of files."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=keys.access_key_id,
                      aws_secret_access_key=keys.secret_access_key)
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
    """Copy to ``folder`` what the bucket holds under ``prefix`` and the folder lacks, written objects first and
    changed references last (each file renamed into place whole), so that the folder always holds a store whose
    references point at objects it has. Returns the number of files copied."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=keys.access_key_id,
                      aws_secret_access_key=keys.secret_access_key)
    objects = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
               for o in page.get("Contents", [])]
    wanted = []
    for item in objects:
        target = folder / item["Key"][len(prefix) + 1:]
        if not target.exists() or (_mutable(item["Key"]) and target.stat().st_size != item["Size"]) or (
                _mutable(item["Key"]) and f'"{_md5(target)}"' != item["ETag"]):
            wanted.append((item["Key"], target))
    for key, target in sorted(wanted, key=lambda w: _mutable(w[0])):
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.part")
        s3.download_file(bucket, key, str(scratch))
        scratch.replace(target)
    return len(wanted)


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
