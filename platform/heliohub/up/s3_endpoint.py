"""The platform's S3 endpoint process: moto's S3 backend, and nothing else, on one port, with IAM enforced.

``python -m heliohub.up.s3_endpoint --host H --port P --bucket B --keys FILE``

moto's own server (``moto.server``) serves every AWS service it emulates on its port, IAM included, and its
management API (``/moto-api/``): anyone who can reach the port could read every access key, switch IAM off or wipe
the store. This process serves moto's S3 application alone (``create_backend_app("s3")``, the application moto's
``ThreadedMotoServer`` builds for every service), so the port answers the S3 API only. The accounts are made before
the port opens, in this process, through boto3 with moto's in-process mock (its ``INITIAL_NO_AUTH_ACTION_COUNT``
lets the first three requests through unauthenticated, which makes the operator; everything after is signed and
checked against IAM policies): the operator, with every right, and the reader, who may list and read the archive
bucket. Their keys go to ``FILE`` (mode 0600), read by ``heliohub up``; there is no other way to learn them.

Only moto's public module-level pieces are used (``mock_aws``, ``create_backend_app``, ``MotoRequestHandler``);
pyproject caps moto below 6, and tests/test_platform_security.py checks what the port answers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

# moto reads this when it is imported: the operator's creation (user, policy, key) runs unauthenticated
SETUP_REQUESTS = 3
REGION = "us-east-1"
MANAGEMENT_PREFIXES = ("/moto-api", "/favicon.ico")

log = logging.getLogger(__name__)


def read_only_policy(bucket: str) -> dict:
    """List and read the archive bucket, nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/*"},
    ]}


def make_accounts(bucket: str) -> dict[str, dict[str, str]]:
    """The operator's and the reader's keys, and the bucket, made in this process's moto backends."""
    import boto3
    from moto import mock_aws

    # Left started: stopping the mock resets the backends the S3 application serves.
    mock_aws().start()
    setup = {"region_name": REGION, "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="heliohub-operator")
    iam.put_user_policy(UserName="heliohub-operator", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    made = iam.create_access_key(UserName="heliohub-operator")["AccessKey"]
    operator = {"access_key_id": made["AccessKeyId"], "secret_access_key": made["SecretAccessKey"]}
    signed = {"region_name": REGION, "aws_access_key_id": operator["access_key_id"],
              "aws_secret_access_key": operator["secret_access_key"]}
    iam = boto3.client("iam", **signed)
    iam.create_user(UserName="heliohub-reader")
    iam.put_user_policy(UserName="heliohub-reader", PolicyName="read-archive",
                        PolicyDocument=json.dumps(read_only_policy(bucket)))
    made = iam.create_access_key(UserName="heliohub-reader")["AccessKey"]
    reader = {"access_key_id": made["AccessKeyId"], "secret_access_key": made["SecretAccessKey"]}
    boto3.client("s3", **signed).create_bucket(Bucket=bucket)
    return {"operator": operator, "reader": reader}


def s3_only(app):
    """The S3 application, with moto's management paths answered 403 (the S3 application would read them as a
    bucket's keys)."""
    def guarded(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(MANAGEMENT_PREFIXES):
            body = b"heliohub: this endpoint serves the S3 API only\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)
    return guarded


def serve(host: str, port: int, bucket: str, keys_file: Path) -> None:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_REQUESTS)
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    keys = make_accounts(bucket)
    server = make_server(host, port, s3_only(create_backend_app("s3")), threaded=True,
                         request_handler=MotoRequestHandler)
    scratch = keys_file.with_name(f".{keys_file.name}.part")
    scratch.unlink(missing_ok=True)
    with open(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        json.dump(keys, out)
    scratch.replace(keys_file)  # whole or absent: heliohub up waits for it
    log.info("S3 endpoint on %s:%d (S3 API only, IAM enforced)", host, port)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heliohub.up.s3_endpoint", description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--keys", type=Path, required=True, help="where the accounts' keys are written (0600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    serve(args.host, args.port, args.bucket, args.keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
