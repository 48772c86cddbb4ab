"""`heliohub up` end to end: real S3 endpoint, JupyterHub with its proxy, Dask Gateway, user servers and kernels."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests

import heliohub
from heliohub.up.settings import UpSettings

from .conftest import ADMIN_PASSWORD, PASSWORDS, passable_folder, real_file
from .hub_client import HubUser, free_ports, sign_up
from .store_helpers import ROOT

C1 = "C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"


def test_status_reports_each_part(platform):
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "status", "--data-dir", str(platform["data"])],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for part in ("supervisor", "s3", "gateway", "hub"):
        assert re.search(rf"{part}\s+ok", result.stdout), result.stdout
    assert "all parts up" in result.stdout


def test_the_demo_archive_has_its_cluster_hour_from_the_archive(platform):
    output = platform["output"].read_text()
    assert re.search(r"demo archive: 4 Cluster FGM file\(s\) for 2001-06-11T20:00 to 2001-06-11T21:00 from "
                     r"http://127\.0\.0\.1:\d+/csa-sl-tap", output), output
    fetched = sorted(p.name for p in (platform["data"] / "downloads" / "csa").glob("C?_CP_FGM_SPIN/*/*.cdf"))
    assert fetched == sorted(p.name for p in real_file("cluster", "cdf").glob("C?_CP_FGM_SPIN__20010611*.cdf"))


def test_a_users_kernel_opens_a_dataset_with_the_files_values(platform, alice):
    expected = float(heliohub.read_file(real_file("cluster", "cdf", C1))["B_mag__C1_CP_FGM_SPIN"].mean())
    output = alice.run("ds = open_dataset('C1_CP_FGM_SPIN')\nprint(float(ds['B_mag__C1_CP_FGM_SPIN'].mean()))\n"
                       "print(sorted(search()['dataset_id']))")
    value, ids = output.strip().splitlines()
    assert float(value) == pytest.approx(expected, rel=1e-6)
    for dataset_id in ("C1_CP_FGM_SPIN", "C4_CP_EFW_L1_P34", "SOHO_EIT_195", "solo_L2_epd-ept-north-hcad"):
        assert dataset_id in ids
    specs = alice.server("GET", "/api/kernelspecs").json()
    assert specs["kernelspecs"]["heliohub"]["spec"]["display_name"] == "Python 3 (heliohub)"
    names = {item["name"] for item in alice.server("GET", "/api/contents/tutorials").json()["content"]}
    assert names == {p.name for p in (ROOT / "examples").iterdir() if not p.name.startswith(".")}


def test_a_gateway_cluster_from_the_kernel_computes_the_local_result(platform, alice):
    output = alice.run(
        "from dask_gateway import Gateway\n"
        "gateway = Gateway()\n"
        "cluster = gateway.new_cluster()\n"
        "cluster.scale(2)\n"
        "client = cluster.get_client()\n"
        "client.wait_for_workers(2, timeout=120)\n"
        "ds = open_dataset('solo_L2_epd-ept-north-hcad', chunks={})\n"
        "print(len(client.scheduler_info()['workers']), float(ds['Ion_Flux'].mean().compute()))\n"
        "client.close(); cluster.shutdown(); gateway.close()\n")
    workers, remote = output.split()
    local = float(np.nanmean(heliohub.read_file(
        real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf"))["Ion_Flux"].values,
        dtype=np.float64))
    assert int(workers) == 2
    assert float(remote) == pytest.approx(local, rel=1e-5)


def test_the_archive_is_read_only_for_users(platform, alice):
    state = platform["state"]
    reader, operator = (boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]) for env in (state["user_environment"],
                                                                        state["operator_environment"]))
    bucket = "heliohub-archive"
    before = operator.list_objects_v2(Bucket=bucket)["KeyCount"]
    key = reader.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
    reader.get_object(Bucket=bucket, Key=key)
    for attempt in (lambda: reader.put_object(Bucket=bucket, Key="archive/intruder", Body=b"x"),
                    lambda: reader.delete_object(Bucket=bucket, Key=key)):
        with pytest.raises(reader.exceptions.ClientError, match="AccessDenied"):
            attempt()
    errors = reader.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}]}).get("Errors", [])
    assert [e["Code"] for e in errors] == ["AccessDenied"]
    assert operator.list_objects_v2(Bucket=bucket)["KeyCount"] == before
    output = alice.run("import s3fs\ntry:\n    s3fs.S3FileSystem().pipe('heliohub-archive/archive/x', b'x')\n"
                       "except PermissionError:\n    print('refused')\n")
    assert output.strip() == "refused"


def test_the_hapi_server_is_a_hub_service_behind_the_hub_login(platform, alice):
    url = f"{platform['url'].rstrip('/')}/services/hapi/hapi"
    anonymous = requests.get(f"{url}/capabilities", allow_redirects=False, timeout=30)
    assert anonymous.status_code in (302, 403), anonymous.status_code  # to the hub's login, or refused
    answer = requests.get(f"{url}/capabilities", headers={"Authorization": f"token {alice.token}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["outputFormats"] == ["csv", "binary"]
    # from a kernel, with the user's server's own hub token (its scopes include the HAPI service)
    output = alice.run(
        "import os, requests\n"
        f"answer = requests.get({url!r} + '/data', params={{'dataset': 'C1_CP_FGM_SPIN', "
        "'start': '2001-06-11T20:00Z', 'stop': '2001-06-11T21:00Z', 'parameters': 'B_mag__C1_CP_FGM_SPIN'}, "
        "headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']}, timeout=60)\n"
        "print(answer.status_code, len(answer.text.splitlines()))\n"
        "print(open_dataset('C1_CP_FGM_SPIN').sizes['time'])\n")
    (status, lines), (records,) = (line.split() for line in output.strip().splitlines())
    assert status == "200" and int(lines) == int(records) == 880


def test_an_operator_ingests_s3_files_on_the_platforms_gateway(platform, alice):
    """As the chart's ingest job does: `heliohub ingest --gateway-workers` with the ingest service's token (the
    file is in the demo archive already: it goes in under a dataset ID of its own)."""
    env = platform["state"]["operator_environment"]
    operator = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    path = real_file("solar_orbiter", "cdf", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf")
    operator.upload_file(str(path), "heliohub-archive", f"incoming/{path.name}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HELIOHUB_", "DASK_GATEWAY"))}
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "ingest", "--json", "--gateway-workers", "2",
                             "--dataset-id", "EPD_THROUGH_THE_GATEWAY", "s3://heliohub-archive/incoming/"],
                            env={**clean, **env}, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"working on Dask Gateway cluster \S+ \(2 workers\)", result.stderr), result.stderr
    report = json.loads(result.stdout)
    assert [(f["status"], f["dataset_id"]) for f in report["files"]] == [("ingested", "EPD_THROUGH_THE_GATEWAY")]
    expected = heliohub.read_file(path)
    name = max(expected.data_vars, key=lambda v: expected[v].size)
    output = alice.run(f"import numpy as np\nds = open_dataset('EPD_THROUGH_THE_GATEWAY')\n"
                       f"print(float(np.nansum(ds[{name!r}].values, dtype=np.float64)))")
    assert float(output) == pytest.approx(float(np.nansum(expected[name].values, dtype=np.float64)), rel=1e-9)


def test_a_users_export_job_runs_on_her_gateway_cluster(platform, alice):
    """heliohub.export as a job on the user's own Dask Gateway cluster: her workers write daily CEF files into her
    home, as many records as the store holds; the platform's limits are in her environment."""
    output = alice.run(
        "import os, heliohub\nfrom dask_gateway import Gateway\n"
        "gateway = Gateway()\ncluster = gateway.new_cluster()\ncluster.scale(1)\nclient = cluster.get_client()\n"
        "client.wait_for_workers(1, timeout=120)\n"
        "written = heliohub.export('C4_CP_FGM_SPIN', '2001-06-01', '2001-07-31', format='cef', "
        "out=os.path.abspath('exports'), client=client, interval='daily', progress=False)\n"
        "names = sorted(os.path.basename(e.path) for e in written)\n"
        "print(len(written), sum(e.records for e in written), sorted(os.listdir('exports')) == names)\n"
        "print(open_dataset('C4_CP_FGM_SPIN').sizes['time'], os.environ['HELIOHUB_EXPORT_JOB_MAX_SECONDS'])\n"
        "client.close()\ncluster.shutdown()\ngateway.close()\n")
    (files, records, listed), (stored_records, limit) = (line.split() for line in output.strip().splitlines())
    assert (int(files), listed) == (5, "True") and int(records) == int(stored_records) > 15_000
    assert float(limit) == UpSettings().export_job_max_seconds  # the test platform keeps the default


def test_a_user_maps_a_function_over_events_on_her_gateway_cluster(platform, alice):
    """heliohub.events.map_events with the user's Dask Gateway client: each event opened and reduced on her
    worker, the same answers as in her kernel (the events: three intervals of the demo's C3 FGM hour)."""
    output = alice.run(
        "import heliohub, numpy as np, pandas as pd\nfrom dask_gateway import Gateway\n"
        "events = pd.DataFrame({'start': pd.to_datetime(['2001-06-11T20:00', '2001-06-11T20:20', '1990-01-01T00:00']), "
        "'end': pd.to_datetime(['2001-06-11T20:10', '2001-06-11T20:40', '1990-01-02T00:00'])})\n"
        "def mean_b(ds):\n    import os\n"
        "    return float(np.nanmean(ds['B_mag__C3_CP_FGM_SPIN'].values)), os.getpid()\n"
        "here = heliohub.events.map_events(mean_b, 'C3_CP_FGM_SPIN', events)\n"
        "gateway = Gateway()\ncluster = gateway.new_cluster()\ncluster.scale(1)\nclient = cluster.get_client()\n"
        "client.wait_for_workers(1, timeout=120)\n"
        "there = heliohub.events.map_events(mean_b, 'C3_CP_FGM_SPIN', events, client=client)\n"
        "import os\nprint([h[0] for h in here[:2]] == [t[0] for t in there[:2]], there[2], "
        "{t[1] for t in there[:2]} != {os.getpid()}, len({t[0] for t in there[:2]}))\n"
        "client.close()\ncluster.shutdown()\ngateway.close()\n")
    assert output.split() == ["True", "None", "True", "2"]  # the two events' own answers, computed on the worker


def test_users_cannot_read_each_others_files(platform, alice):
    """Each user's server and Dask workers run as their own account (heliohub up as root)."""
    if not platform["state"]["isolate_users"]:
        pytest.skip("heliohub up runs as one system account for every user when not run as root")
    bob = HubUser(platform["url"], "bob", PASSWORDS["bob"])
    bob.spawn()
    try:
        bob.run("open('notes.txt', 'w').write('bob only')")
        notes = str(platform["data"] / "users" / "bob" / "notes.txt")
        state = str(platform["data"] / "hub" / "state.json")
        probe = ("import os, pwd\nprint(pwd.getpwuid(os.getuid()).pw_name)\n"
                 f"for path in ({notes!r}, {state!r}):\n"
                 "    try:\n        open(path).read()\n        print('read', path)\n"
                 "    except PermissionError:\n        print('refused')\n")
        assert alice.run(probe).split() == ["heliohub-alice", "refused", "refused"]
        on_worker = alice.run(
            "from dask_gateway import Gateway\ngateway = Gateway()\ncluster = gateway.new_cluster()\n"
            "cluster.scale(1)\nclient = cluster.get_client()\nclient.wait_for_workers(1, timeout=120)\n"
            "def peek():\n    import os, pwd\n    try:\n"
            f"        open({notes!r}).read()\n        seen = 'read'\n"
            "    except PermissionError:\n        seen = 'refused'\n"
            "    return pwd.getpwuid(os.getuid()).pw_name, seen\n"
            "print(*client.submit(peek).result())\n"
            "client.close()\ncluster.shutdown()\ngateway.close()\n")
        assert on_worker.split() == ["heliohub-alice", "refused"]
    finally:
        bob.stop()


def test_what_is_refused(platform, alice):
    url = platform["url"]
    assert requests.get(f"{url}/hub/api/users", timeout=30).status_code == 403
    with pytest.raises(PermissionError):
        HubUser(url, "alice", "not-the-password")
    sign_up(url, "mallory", "mallory-password-for-tests")
    with pytest.raises(PermissionError):
        HubUser(url, "mallory", "mallory-password-for-tests")  # signed up, but not a listed user
    bob = HubUser(url, "bob", PASSWORDS["bob"])
    assert bob.api("GET", "/users/alice").status_code == 404
    answer = requests.get(f"{url}/user/alice/api/contents", headers={"Authorization": f"token {bob.token}"},
                          timeout=30, allow_redirects=False)
    assert answer.status_code in (302, 403)
    secrets = [ADMIN_PASSWORD, *PASSWORDS.values(), platform["state"]["operator_environment"]["AWS_SECRET_ACCESS_KEY"],
               platform["state"]["gateway_token"], platform["state"]["proxy_token"],
               platform["state"]["dashboard_secret"] or ADMIN_PASSWORD]
    logs = [platform["output"], *sorted((platform["data"] / "logs").glob("*.log"))]
    for log in logs:
        text = Path(log).read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret is in {log}"


def _up_and_down(data: Path, ports: list[int], log: str, while_up=None) -> str:
    """Run `heliohub up` until it is up, call ``while_up(state)``, stop it with `heliohub down`, and return what it
    printed (its demo fetch from the Cluster Science Archive refused at once, so that what it ingests does not
    depend on the network)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = {**os.environ, "HELIOHUB_CSA_URL": f"http://127.0.0.1:{closed}"}
    env.pop("HELIOHUB_ADMIN_PASSWORD", None)
    names = ["hub_port", "hub_api_port", "proxy_api_port", "gateway_port", "gateway_api_port", "s3_port", "hapi_port"]
    command = [sys.executable, "-m", "heliohub.cli", "up", f"--data-dir={data}",
               *[f"--UpSettings.{n}={p}" for n, p in zip(names, ports, strict=True)]]
    output = data.parent / log
    with open(output, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 180
        while b"heliohub is up" not in output.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(0.5)
        if while_up is not None:
            while_up(json.loads((data / "hub" / "state.json").read_text()))
        down = subprocess.run([sys.executable, "-m", "heliohub.cli", "down", "--data-dir", str(data)],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert down.returncode == 0, down.stderr
        assert process.wait(timeout=60) == 0
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still in use"
    return output.read_text()


def _heliohub(code: str, env: dict[str, str]) -> str:
    """Run heliohub code in a process with only these AWS_*/HELIOHUB_* settings (an operator's or a user's)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HELIOHUB_", "DASK_GATEWAY"))}
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_down_stops_everything_and_a_second_up_reuses_the_store():
    """A platform of its own (own ports and data folder) with the demo archive, stopped and started again; what an
    operator ingested through its S3 endpoint meanwhile is still there."""
    ports = free_ports(7)
    folder = passable_folder("heliohub-updown-")
    master = real_file("ulysses", "cdf", "uy_proton-distributions_swoops_00000000_v01.cdf")
    ingest = f"import heliohub\nassert heliohub.ingest([{str(master)!r}], progress=False).ok"
    listing = "import heliohub\nprint(sorted(heliohub.search()['dataset_id']))"
    first = _up_and_down(folder / "data", ports, "first.out",
                         lambda state: _heliohub(ingest, state["operator_environment"]))
    assert re.search(r"archive: 29 file\(s\) into 24 dataset\(s\)", first), first  # the demo: data/ and sunpy's
    assert "could not have 2001-06-11T20:00 to 2001-06-11T21:00 of Cluster FGM" in first
    assert "admin password (generated):" in first
    assert re.search(r"archive: \d+ new object\(s\) written through S3 kept in", first), first
    seen = []
    second = _up_and_down(folder / "data", ports, "second.out",
                          lambda state: seen.append(_heliohub(listing, {**state["user_environment"]})))
    assert "uy_proton-distributions_swoops" in seen[0]
    assert "ingested" not in second, second
    uploaded = [line for line in second.splitlines() if "objects of the archive store" in line]
    assert uploaded and uploaded != [line for line in first.splitlines() if "objects of the archive store" in line]
    shutil.rmtree(folder, ignore_errors=True)


def test_the_scale_out_tutorial_runs_on_the_platforms_gateway(platform, alice, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(ROOT))  # where the kernel spec is looked up, in this process
    notebook = nbformat.read(ROOT / "examples" / "05-scale-out.ipynb", as_version=4)
    env = {**os.environ, **platform["state"]["user_environment"], "JUPYTER_PATH": str(ROOT),
           "JUPYTERHUB_API_TOKEN": alice.token, "HOME": str(tmp_path)}
    client = NotebookClient(notebook, kernel_name="heliohub", timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    assert "all checks passed" in notebook.cells[-1].outputs[0]["text"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Gateway's loop at collection
def test_users_cannot_see_or_use_each_others_gateway_clusters(platform, alice):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    bob = HubUser(platform["url"], "bob", PASSWORDS["bob"])
    address = platform["state"]["gateway_url"]
    proxy = platform["state"]["user_environment"]["DASK_GATEWAY__PROXY_ADDRESS"]
    with Gateway(address, proxy_address=proxy, auth=JupyterHubAuth(alice.token)) as alices:
        cluster = alices.new_cluster()
        try:
            with Gateway(address, proxy_address=proxy, auth=JupyterHubAuth(bob.token)) as bobs:
                assert [c.name for c in bobs.list_clusters()] == []
                with pytest.raises(Exception, match=r"403|Forbidden") as caught:
                    bobs.connect(cluster.name)
                assert "Traceback" not in str(caught.value)
            with (Gateway(address, proxy_address=proxy, auth=JupyterHubAuth("not-a-token")) as stranger,
                  pytest.raises(Exception, match=r"401|403|Permission failure")):
                stranger.list_clusters()
        finally:
            cluster.shutdown()
            cluster.close()
    # dask-gateway objects complain when collected later, outside their loop; the refused connect's frames (held
    # by `caught`) keep one alive
    del cluster, alices, bobs, stranger, caught
    gc.collect()
