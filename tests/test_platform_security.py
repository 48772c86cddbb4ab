"""The one-machine platform as a hostile user sees it: every way in that was tried, from a real user's kernel and
from a real worker of that user's Dask cluster, and the limits an operator sets (tests/attacks.py holds the
attempts; docs/security.md says what is defended and how)."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from .conftest import ADMIN_PASSWORD, LIMITS, PASSWORDS, real_file
from .hub_client import HubUser, sign_up
from .store_helpers import ROOT

ATTACKS = Path(__file__).with_name("attacks.py").read_text()


@pytest.fixture(scope="module")
def isolated(platform):
    if not platform["state"]["isolate_users"]:
        pytest.skip("heliohub up runs every user as one account when not run as root: these defences need root")


def _cluster(user: HubUser) -> dict:
    """A Dask Gateway cluster of the user's with one worker, left running (shut down by the caller)."""
    output = user.run(
        "from dask_gateway import Gateway\ngateway = Gateway()\n"
        "cluster = gateway.new_cluster(shutdown_on_close=False)\ncluster.scale(1)\n"
        "client = cluster.get_client()\nclient.wait_for_workers(1, timeout=120)\ninfo = client.scheduler_info()\n"
        "print(cluster.name, info['services']['dashboard'], info['address'].rsplit(':', 1)[1])\n"
        "client.close()\n")
    name, dashboard, scheduler = output.split()
    return {"name": name, "dashboard_port": int(dashboard), "scheduler_port": int(scheduler)}


def _shut_down(user: HubUser, name: str) -> None:
    user.run(f"from dask_gateway import Gateway\nGateway().connect({name!r}).shutdown()\n")


def _pid_of(cluster: str, role: str) -> int:
    """The process of a cluster's scheduler or worker (as root: every process's environment is readable)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environment = (proc / "environ").read_bytes()
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"DASK_GATEWAY_CLUSTER_NAME={cluster}".encode() in environment.split(b"\0") and \
                role.encode() in command[:3]:
            return int(proc.name)
    raise LookupError(f"no {role} of cluster {cluster}")


@pytest.fixture(scope="module")
def bob(platform):
    """bob with his server, a file in his home, a kernel waiting, and a Dask cluster running: what alice attacks."""
    user = HubUser(platform["url"], "bob", PASSWORDS["bob"])
    user.spawn()
    user.run("open('notes.txt', 'w').write('bob only')")
    kernel = user.server("POST", "/api/kernels", json={"name": "heliohub"}).json()["id"]
    cluster = _cluster(user)
    yield {"user": user, "kernel": kernel, **cluster}
    _shut_down(user, cluster["name"])
    user.server("DELETE", f"/api/kernels/{kernel}")
    user.stop()


def _target(platform: dict, bob: dict) -> dict:
    data, state = platform["data"], platform["state"]
    pids = json.loads((data / "hub" / "up.pids").read_text())
    home = data / "users" / "bob"
    workdir = Path(state["clusters_dir"]) / bob["name"]
    (connection,) = home.glob(f".local/share/jupyter/runtime/kernel-{bob['kernel']}.json")
    return {
        "s3_url": state["user_environment"]["AWS_ENDPOINT_URL"], "bucket": "heliohub-archive", "prefix": "archive",
        "gateway_url": state["gateway_url"],
        "pids": {**{name: pids[name] for name in ("supervisor", "s3", "gateway", "hub")},
                 "bob's scheduler": _pid_of(bob["name"], "scheduler")},
        "private_files": [str(home / "notes.txt"), str(connection), str(workdir / ".certs" / "dask.pem"),
                          str(data / "hub" / "state.json"), str(data / "hub" / "s3-keys.json"),
                          str(data / "hub" / "jupyterhub_cookie_secret"), str(data / "hub" / "jupyterhub.sqlite"),
                          str(next((data / "store" / "_catalog").rglob("ref.json")))],
        "private_folders": [str(home), str(workdir), str(Path(state["clusters_dir"])), str(data / "store"),
                            str(data / "hub")],
        "cluster": bob["name"], "dashboard_port": bob["dashboard_port"], "scheduler_port": bob["scheduler_port"],
        "kernel_shell_port": json.loads(connection.read_text())["shell_port"],
        "kernel_marker": f"/tmp/heliohub-attack-{uuid.uuid4().hex}", "planted": f"planted_{uuid.uuid4().hex[:8]}",
    }


def test_every_way_in_is_refused_from_a_kernel_and_from_a_worker(platform, alice, bob, isolated):
    target = _target(platform, bob)
    output = alice.run(
        ATTACKS + "\nimport json\nfrom dask_gateway import Gateway\n"
        "gateway = Gateway()\ncluster = gateway.new_cluster()\ncluster.scale(1)\n"
        "client = cluster.get_client()\nclient.wait_for_workers(1, timeout=120)\n"
        f"target = {target!r}\n"
        "found = {'kernel': attempts(target), 'worker': client.submit(attempts, target, pure=False).result()}\n"
        "client.close()\ncluster.shutdown()\nprint(json.dumps(found))\n", timeout=600)
    found = json.loads(output.strip().splitlines()[-1])
    for where, outcomes in found.items():
        assert outcomes.pop("whoami") == "heliohub-alice", where
        outcomes.pop("plant_in_shared_scratch")
        for attempt, outcome in outcomes.items():
            assert outcome.startswith("refused"), f"from alice's {where}, {attempt}: {outcome}"
    # what alice left in the shared scratch folder is not on bob's workers' path
    seen = bob["user"].run(
        f"from dask_gateway import Gateway\nclient = Gateway().connect({bob['name']!r}).get_client()\n"
        f"def look():\n    import importlib.util, os, sys\n"
        f"    return importlib.util.find_spec({target['planted']!r}) is None, [p for p in sys.path if "
        "'dask-scratch-space' in p and not p.startswith(os.environ['DASK_TEMPORARY_DIRECTORY'])]\n"
        "print(client.submit(look, pure=False).result())\nclient.close()\n")
    assert seen.strip() == "(True, [])", seen
    assert not Path(target["kernel_marker"]).exists()
    # the archive is whole and the platform answers as before
    status = subprocess.run([sys.executable, "-m", "heliohub.cli", "status", "--data-dir", str(platform["data"])],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert status.returncode == 0 and "all parts up" in status.stdout, status.stdout


def test_a_cluster_dashboard_opens_for_its_owner_only(platform, alice, bob, isolated):
    url, name = platform["url"], bob["name"]
    own = bob["user"].server("GET", f"/dask-gateway/clusters/{name}/individual-plots.json")
    assert own.status_code == 200 and "Individual Task Stream" in own.json(), own.text[:200]
    through_alices = alice.server("GET", f"/dask-gateway/clusters/{name}/individual-plots.json")
    assert through_alices.status_code == 403, through_alices.text[:200]
    into_bobs = requests.get(f"{url}/user/bob/dask-gateway/clusters/{name}/status", timeout=30,
                             headers={"Authorization": f"token {alice.token}"}, allow_redirects=False)
    assert into_bobs.status_code in (302, 403)
    for direct in (f"http://127.0.0.1:{bob['dashboard_port']}/clusters/{name}/status",
                   f"{platform['state']['gateway_url']}/clusters/{name}/status"):
        assert requests.get(direct, timeout=30).status_code == 403, direct


def test_the_probes_see_an_open_door(s3_endpoint):
    """The attempts report success where the door is open: moto's own server serves its management API."""
    exec(compile(ATTACKS, "attacks.py", "exec"), probes := {})
    outcome = probes["management_api_keys"]({"s3_url": s3_endpoint})
    assert outcome.startswith("SUCCEEDED"), outcome


def test_each_person_logs_in_as_themself(platform):
    url = platform["url"]
    with pytest.raises(PermissionError):
        HubUser(url, "bob", PASSWORDS["alice"])
    assert "already in use" in sign_up(url, "bob", "a-password-of-mallory")  # nobody takes over a name
    assert "already in use" in sign_up(url, "admin", "a-password-of-mallory")  # the admin exists from the start
    sign_up(url, "mallory", "a-password-of-mallory")
    with pytest.raises(PermissionError):
        HubUser(url, "mallory", "a-password-of-mallory")  # not a name the operator allowed
    with pytest.raises(KeyError):
        pwd.getpwnam("heliohub-mallory")  # and no system account was made for it
    admin = HubUser(url, "admin", ADMIN_PASSWORD)
    assert admin.api("GET", "/users/bob").status_code == 200


def test_repeated_wrong_passwords_lock_a_name_out(platform):
    url = platform["url"]
    for _ in range(platform["state"]["login_attempts"]):
        with pytest.raises(PermissionError):
            HubUser(url, "erin", "not-erins-password")
    with pytest.raises(PermissionError):
        HubUser(url, "erin", PASSWORDS["erin"])  # the right password, while locked out


def test_clusters_and_workers_per_user_are_limited(alice, isolated):
    names = alice.run("from dask_gateway import Gateway\ngateway = Gateway()\n"
                      "print(*[gateway.new_cluster(shutdown_on_close=False).name for _ in range(2)])").split()
    try:
        # from another kernel: in dask-gateway's client, a refused new_cluster() leaves the other clusters of its
        # process unable to make a client (a hang, seen with 2026.3.0)
        refusal = alice.run("from dask_gateway import Gateway\ntry:\n    Gateway().new_cluster()\n"
                            "    print('third cluster made')\nexcept Exception as error:\n"
                            "    print('refused:', error)\n")
        assert refusal.startswith("refused:") and f"({LIMITS['clusters_per_user']})" in refusal, refusal
        output = alice.run(
            f"from dask_gateway import Gateway\ncluster = Gateway().connect({names[0]!r})\ncluster.scale(5)\n"
            "client = cluster.get_client()\nclient.wait_for_workers(2, timeout=120)\nimport time\ntime.sleep(5)\n"
            "print('workers', len(client.scheduler_info()['workers']))\nclient.close()\n", timeout=300,
            streams=("stdout", "stderr"))
        (workers,) = [line for line in output.splitlines() if line.startswith("workers ")]
        assert int(workers.split()[1]) == LIMITS["cluster_max_workers"], workers
        assert "would exceed resource limit" in output  # the gateway says why it scaled less
    finally:
        alice.run(f"from dask_gateway import Gateway\ngateway = Gateway()\nfor name in {names!r}:\n"
                  "    gateway.stop_cluster(name)\n")


ALLOCATE = ("import subprocess, sys\n"
            "def allocate(size):\n"
            "    code = f'x = bytearray({size}); x[::4096] = bytes(len(x[::4096]))'\n"
            "    return subprocess.run([sys.executable, '-c', code]).returncode\n")


def test_memory_and_file_size_are_limited_in_servers_and_workers(alice, isolated):
    server_limit = 2 << 30  # LIMITS["server_memory"]
    assert alice.run(ALLOCATE + f"print(allocate({int(server_limit * 1.25)}))").strip() == "-9"  # stopped
    assert alice.run(ALLOCATE + f"print(allocate({64 << 20}))").strip() == "0"
    too_large = alice.run("import os\ntry:\n    open('big.bin', 'wb').write(b'x' * (65 << 20))\n    print('written')\n"
                          "except OSError as error:\n    print(error.errno)\n"
                          "if os.path.exists('big.bin'):\n    os.remove('big.bin')\n")
    assert too_large.strip() == "27", too_large  # EFBIG: past the home quota, no file grows
    worker_limit = 1 << 30  # LIMITS["worker_memory"]
    on_worker = alice.run(
        ALLOCATE + "from dask_gateway import Gateway\ncluster = Gateway().new_cluster()\n"
        "cluster.scale(1)\nclient = cluster.get_client()\nclient.wait_for_workers(1, timeout=120)\n"
        f"print(client.submit(allocate, {int(worker_limit * 1.5)}, pure=False).result())\n"
        "client.close()\ncluster.shutdown()\n", timeout=300)
    assert on_worker.strip().splitlines()[-1] == "-9"


def test_servers_at_once_and_home_quotas_are_limited(platform, alice, bob, isolated):
    url = platform["url"]
    carol = HubUser(url, "carol", PASSWORDS["carol"])
    with pytest.raises(RuntimeError, match=r"429|[Aa]ctive"):
        carol.spawn(timeout=60)  # alice and bob run: the limit of two servers is reached
    home = platform["data"] / "users" / "dave"
    dave = HubUser(url, "dave", PASSWORDS["dave"])
    bob["user"].stop()
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / "data.bin").write_bytes(os.urandom(70 << 20))
        with pytest.raises(RuntimeError, match=r"507.*dave's home holds 7\d MiB, more than its quota of 64 MiB"):
            dave.spawn(timeout=60)
        (home / "data.bin").unlink()
        assert dave.spawn(timeout=120)
    finally:
        dave.stop()
        bob["user"].spawn()


def test_status_says_when_the_archive_does_not_answer_users(platform):
    """`heliohub status` reads the archive with a user's keys (a listening port is not enough)."""
    from heliohub.up.run import check_archive

    state = platform["state"]
    assert check_archive(state) is None
    broken = {**state, "user_environment": {**state["user_environment"], "AWS_SECRET_ACCESS_KEY": "wrong"}}
    assert re.search(r"a user's keys cannot list the archive", check_archive(broken) or "")


def test_the_copy_back_keeps_only_references_that_open(s3_endpoint, tmp_path, caplog, monkeypatch):
    """What is written to the S3 endpoint is copied back to the store folder; a reference that does not open (a
    damaged ref.json, one naming a snapshot that is not there) is not, and the folder keeps its own."""
    import boto3

    import heliohub
    from heliohub.store import access
    from heliohub.up.object_store import Keys, download_new, upload_folder

    cdfs = sorted(real_file("cluster", "cdf").glob("C?_CP_FGM_SPIN*.cdf"))
    folder = tmp_path / "store"
    heliohub.ingest(cdfs[:1], folder, progress=False)
    keys = Keys("operator", "operator")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="operator",
                      aws_secret_access_key="operator")
    s3.create_bucket(Bucket="copy-back")
    upload_folder(folder, s3_endpoint, keys, "copy-back", "archive")
    for name, value in keys.environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    heliohub.ingest(cdfs[1:2], "s3://copy-back/archive", progress=False)  # an operator's ingest through S3
    assert download_new(s3_endpoint, keys, "copy-back", "archive", folder) > 0
    access.clear_caches()
    assert {"C1_CP_FGM_SPIN", "C2_CP_FGM_SPIN"} <= set(heliohub.search(archive=folder)["dataset_id"])
    ref = "archive/C1_CP_FGM_SPIN/refs/branch.main/ref.json"
    kept = (folder / ref.removeprefix("archive/")).read_bytes()
    for damaged in (b"{not json", b'{"snapshot":"' + b"0" * 20 + b'"}'):
        s3.put_object(Bucket="copy-back", Key=ref, Body=damaged)
        with caplog.at_level("ERROR", logger="heliohub.up.object_store"):
            download_new(s3_endpoint, keys, "copy-back", "archive", folder)
        assert "C1_CP_FGM_SPIN was not kept" in caplog.text
        assert (folder / ref.removeprefix("archive/")).read_bytes() == kept
        caplog.clear()
    access.clear_caches()
    assert heliohub.open_dataset("C1_CP_FGM_SPIN", archive=folder).sizes["time"] > 0
