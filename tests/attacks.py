"""What a hostile user tries, from their own kernel and from a worker of their own Dask cluster.

This file is sent as source to a user's kernel (and from there, with cloudpickle, to a worker of that user's
cluster) by tests/test_platform_security.py; it needs only the standard library and what every user has (boto3,
requests, pyzmq). ``attempts(target)`` runs every attempt against the platform and the other user (``target``:
addresses, process ids and paths the test gathered as root) and returns, per attempt, "refused: <how>" or
"SUCCEEDED: <what>". Nothing here may need the attacker to be root; nothing sends a real signal (signal 0 checks
the same permission).
"""

from __future__ import annotations

import json
import os
import time


def _refused_if(error: BaseException) -> str:
    return f"refused: {type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"


def _http(method: str, url: str, **kwargs):
    import requests

    return requests.request(method, url, timeout=20, allow_redirects=False, **kwargs)


def _s3(target: dict, **keys):
    import boto3

    keys = keys or {"aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
                    "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client("s3", endpoint_url=target["s3_url"], region_name="us-east-1", **keys)


def management_api_keys(target: dict) -> str:
    answer = _http("GET", f"{target['s3_url']}/moto-api/data.json")
    if answer.status_code == 200 or "AccessKeyId" in answer.text or "SecretAccessKey" in answer.text:
        return f"SUCCEEDED: {answer.status_code} {answer.text[:80]}"
    return f"refused: {answer.status_code}"


def management_api_reset_auth_then_write(target: dict) -> str:
    answer = _http("POST", f"{target['s3_url']}/moto-api/reset-auth")
    try:
        _s3(target).put_object(Bucket=target["bucket"], Key=f"{target['prefix']}/intruder", Body=b"x")
    except Exception as error:  # botocore's ClientError
        return f"refused: reset-auth {answer.status_code}, then {_refused_if(error)}"
    return f"SUCCEEDED: reset-auth {answer.status_code}, then wrote to the archive"


def management_api_reset(target: dict) -> str:
    answer = _http("POST", f"{target['s3_url']}/moto-api/reset")
    listed = _s3(target).list_objects_v2(Bucket=target["bucket"], Prefix=f"{target['prefix']}/_catalog/")
    if not listed.get("KeyCount"):
        return f"SUCCEEDED: reset {answer.status_code}, the catalog is gone"
    return f"refused: {answer.status_code}, the archive is whole"


def write_and_delete_with_the_users_keys(target: dict) -> str:
    s3 = _s3(target)
    key = s3.list_objects_v2(Bucket=target["bucket"], MaxKeys=1)["Contents"][0]["Key"]
    outcomes = []
    for what, attempt in (("put", lambda: s3.put_object(Bucket=target["bucket"], Key=key, Body=b"x")),
                          ("delete", lambda: s3.delete_object(Bucket=target["bucket"], Key=key)),
                          ("policy", lambda: s3.put_bucket_policy(Bucket=target["bucket"], Policy="{}")),
                          ("acl", lambda: s3.put_bucket_acl(Bucket=target["bucket"], ACL="public-read-write"))):
        try:
            attempt()
            return f"SUCCEEDED: {what} with read-only keys"
        except Exception as error:  # botocore's ClientError
            outcomes.append(f"{what} {_refused_if(error)}")
    return "refused: " + "; ".join(outcomes)


def made_up_keys_and_iam(target: dict) -> str:
    import boto3

    try:
        _s3(target, aws_access_key_id="AKIAMADEUP", aws_secret_access_key="x").list_objects_v2(
            Bucket=target["bucket"])
        return "SUCCEEDED: made-up keys listed the archive"
    except Exception as error:  # botocore's ClientError
        first = _refused_if(error)
    iam = boto3.client("iam", endpoint_url=target["s3_url"], region_name="us-east-1")
    try:
        made = iam.create_access_key(UserName="heliohub-operator")
        return f"SUCCEEDED: IAM made a key {made}"
    except Exception as error:  # botocore's ClientError or ParamValidation
        return f"{first}; IAM {_refused_if(error)}"


def read_files(target: dict) -> str:
    """Other users' homes, the cluster's working directories (TLS key), the platform's secrets, the store."""
    outcomes = []
    for path in target["private_files"]:
        try:
            with open(path, "rb") as handle:
                handle.read(16)
            return f"SUCCEEDED: read {path}"
        except OSError as error:
            outcomes.append(f"{os.path.basename(path)} {type(error).__name__}")
    for folder in target["private_folders"]:
        try:
            os.listdir(folder)
            return f"SUCCEEDED: listed {folder}"
        except OSError as error:
            outcomes.append(f"{os.path.basename(folder)}/ {type(error).__name__}")
    return "refused: " + ", ".join(outcomes)


def read_process_environments(target: dict) -> str:
    """The environment (tokens, keys, passwords) of the gateway, the hub, and the other user's scheduler."""
    outcomes = []
    for name, pid in target["pids"].items():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                text = handle.read()
            return f"SUCCEEDED: read the environment of {name} ({len(text)} bytes)"
        except OSError as error:
            outcomes.append(f"{name} {type(error).__name__}")
    leaked = [k for k in os.environ if k in ("HELIOHUB_ADMIN_PASSWORD", "HELIOHUB_UP_STATE", "JUPYTERHUB_CRYPT_KEY")]
    if leaked:
        return f"SUCCEEDED: this process has {leaked}"
    return "refused: " + ", ".join(outcomes)


def signal_the_platform(target: dict) -> str:
    outcomes = []
    for name, pid in target["pids"].items():
        try:
            os.kill(pid, 0)  # the permission check of a real signal, without sending one
            return f"SUCCEEDED: may signal {name}"
        except PermissionError as error:
            outcomes.append(f"{name} {type(error).__name__}")
    return "refused: " + ", ".join(outcomes)


def plant_in_shared_scratch(target: dict) -> str:
    """A module left where another user's workers would import it (the shared /tmp/dask-scratch-space)."""
    import tempfile

    folder = os.path.join(tempfile.gettempdir(), "dask-scratch-space")
    shared = os.path.join("/tmp", "dask-scratch-space")
    for place in {folder, shared}:
        try:
            os.makedirs(place, exist_ok=True)
            with open(os.path.join(place, f"{target['planted']}.py"), "w") as handle:
                handle.write("PLANTED = True\n")
        except OSError:
            continue
    return "planted (whether the other user's workers import it is checked there)"


def other_users_dashboard(target: dict) -> str:
    outcomes = []
    urls = [f"http://127.0.0.1:{target['dashboard_port']}/clusters/{target['cluster']}/status",
            f"http://127.0.0.1:{target['dashboard_port']}/status",
            f"{target['gateway_url']}/clusters/{target['cluster']}/status"]
    headers = {}
    if os.environ.get("JUPYTERHUB_API_TOKEN"):  # the kernel: through its own server's dashboard route too
        prefix = os.environ["DASK_GATEWAY__PUBLIC_ADDRESS"]
        urls.append(f"{prefix}/clusters/{target['cluster']}/status")
        headers = {"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"}
    for url in urls:
        answer = _http("GET", url, headers=headers)
        if answer.status_code == 200:
            return f"SUCCEEDED: {url} answered 200"
        outcomes.append(str(answer.status_code))
    return "refused: " + ", ".join(outcomes)


def connect_to_the_other_users_scheduler(target: dict) -> str:
    """A TLS connection to the other user's scheduler without its certificate, and a message on it."""
    import asyncio
    import ssl

    from distributed.comm import connect

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    async def ask() -> str:
        comm = await connect(f"tls://127.0.0.1:{target['scheduler_port']}", timeout=5, ssl_context=context)
        try:
            await comm.write({"op": "identity"})
            answer = await comm.read()
        finally:
            await comm.close()
        return f"SUCCEEDED: the scheduler answered {str(answer)[:80]}"

    try:
        return asyncio.run(ask())
    except Exception as error:  # the scheduler requires the cluster's client certificate
        return _refused_if(error)


def unsigned_kernel_message(target: dict) -> str:
    """An execute request without the kernel's signing key, sent to the other user's kernel's shell port."""
    import zmq

    marker = target["kernel_marker"]
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(f"tcp://127.0.0.1:{target['kernel_shell_port']}")
    header = {"msg_id": "x", "username": "mallory", "session": "s", "msg_type": "execute_request", "version": "5.3"}
    content = {"code": f"open({marker!r}, 'w').write('x')", "silent": False}
    socket.send_multipart([b"<IDS|MSG>", b"", *(json.dumps(part).encode() for part in (header, {}, {}, content))])
    time.sleep(3)
    socket.close()
    context.term()
    return f"SUCCEEDED: the kernel ran it ({marker})" if os.path.exists(marker) else "refused: the kernel ignored it"


ATTEMPTS = [management_api_keys, management_api_reset_auth_then_write, management_api_reset,
            write_and_delete_with_the_users_keys, made_up_keys_and_iam, read_files, read_process_environments,
            signal_the_platform, plant_in_shared_scratch, other_users_dashboard,
            connect_to_the_other_users_scheduler, unsigned_kernel_message]


def attempts(target: dict) -> dict[str, str]:
    """Every attempt, by name: "refused: ..." or "SUCCEEDED: ..." (an attempt that errs is reported as such)."""
    import pwd

    found = {"whoami": pwd.getpwuid(os.getuid()).pw_name}
    for attempt in ATTEMPTS:
        try:
            found[attempt.__name__] = attempt(target)
        except Exception as error:  # an attempt that could not be made at all is reported, not hidden
            found[attempt.__name__] = f"ERROR: {type(error).__name__}: {error}"
    return found
