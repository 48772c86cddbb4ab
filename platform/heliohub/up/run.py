"""``heliohub up`` and ``heliohub down``: the whole platform on one machine, supervised.

Start order matters: the S3 endpoint and the demo archive first, then Dask Gateway (the hub waits ~30 s on a
configured service that is not up), then JupyterHub with its proxy. Ctrl-C, SIGTERM or ``heliohub down`` stops
every process that was started, children included.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import MappingProxyType

from ..errors import HeliohubError
from ..store import catalog
from ..store.location import StoreLocation
from . import accounts, demo, limits, object_store, runtime
from .settings import UpSettings

ROOT = Path(__file__).resolve().parents[3]
PREFIX = "archive"
# The hour the four Cluster spacecraft's FGM data of the curlometer tutorial cover.
DEMO_CLUSTER_HOUR = ("2001-06-11T20:00", "2001-06-11T21:00")
DEMO_CLUSTER_DATASETS = [f"C{n}_CP_FGM_SPIN" for n in range(1, 5)]
STORE_SYNC_SECONDS = 60


def _wait_port(host: str, port: int, what: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start (code {process.returncode}); see {log}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s; see {log}")


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def _password(given: str, who: str, variable: str, minimum: int, printed: list[str]) -> str:
    """The password given (checked for length), or a generated one, noted in ``printed`` to be shown once."""
    if not given:
        generated = secrets.token_urlsafe(max(minimum, 12))
        printed.append(f"{who} password (generated): {generated}")
        return generated
    if len(given) < minimum:
        raise SystemExit(f"heliohub up: {variable} must be at least {minimum} characters")
    return given


def user_environment(s: UpSettings, reader: object_store.Keys, archive_url: str,
                     bin_dir: Path | None = None) -> dict[str, str]:
    """What every user server and Dask worker gets: the archive, its read-only keys, the export limits, the Dask
    Gateway client's
    settings, and the environment they run from (``bin_dir``, this one by default) first on the PATH. The Helm chart
    gives its pods the same variables (tests/test_chart.py holds them together). Each user's server gets its own
    ``DASK_GATEWAY__PUBLIC_ADDRESS`` (its dashboard route, jupyterhub_config.py) in place of the gateway's."""
    return {**reader.environment(s.s3_url), "HELIOHUB_ARCHIVE": archive_url,
            "HELIOHUB_EXPORT_MAX_MB": f"{s.export_max_mb:g}", "HELIOHUB_EXPORT_JOB_MAX_MB": f"{s.export_job_max_mb:g}",
            "HELIOHUB_EXPORT_JOB_MAX_SECONDS": f"{s.export_job_max_seconds:g}",
            "DASK_GATEWAY__ADDRESS": s.gateway_url,
            "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{s.host}:{s.gateway_port}",
            "DASK_GATEWAY__PUBLIC_ADDRESS": s.gateway_url,
            "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
            "PATH": _path(bin_dir or Path(sys.executable).parent)}


def _path(bin_dir: Path | str) -> str:
    return f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"


def clean_environment(bin_dir: Path | str, home: Path, **extra: str) -> dict[str, str]:
    """The environment a part starts with: nothing of this process's own (its secrets stay here) but the locale;
    the system's administration commands on the PATH (the hub and the gateway make accounts with useradd)."""
    kept = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ")}
    return {**kept, "PATH": f"{_path(bin_dir)}:/usr/local/sbin:/usr/sbin:/sbin", "HOME": str(home), **extra}


class Platform:
    """The processes of one ``heliohub up``."""

    def __init__(self, settings: UpSettings, say=print) -> None:
        self.settings = settings
        self.say = say
        self.data = Path(settings.data_dir).expanduser().resolve()
        self.processes: dict[str, subprocess.Popen] = {}
        self._store_sync: tuple[object_store.Keys, Path] | None = None

    # -- set-up -------------------------------------------------------------------------------------------------
    def _admin_password(self) -> tuple[str, list[str]]:
        printed: list[str] = []
        return _password(self.settings.admin_password, "admin", "HELIOHUB_ADMIN_PASSWORD", 32, printed), printed

    def _log(self, name: str) -> Path:
        folder = self.data / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.log"

    def _start(self, name: str, command: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
        """Start a part, its output in the logs folder."""
        log = self._log(name)
        handle = open(log, "ab")  # noqa: SIM115 - the child keeps writing to it
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=cwd or self.data)
        self.processes[name] = process
        return process

    def fill_archive(self) -> StoreLocation:
        """Ingest the demo files (first start: heliohub.up.demo), an hour of Cluster data fetched from the Cluster
        Science Archive when it can be reached (first start), and any --from folders into the local archive store."""
        local = StoreLocation.resolve(self.data / "store")
        first = not catalog.read_catalog(local)
        inputs: list[str] = []
        if first and self.settings.demo:
            found, missing = demo.inputs()
            inputs += found
            for name in missing:
                self.say(f"  demo archive: could not have {name}")
            inputs += self._cluster_hour()
        inputs += [str(Path(d).expanduser()) for d in self.settings.from_dirs]
        if inputs:
            from ..store.ingest import ingest

            report = ingest(inputs, local, include_paths=demo.include_paths(), progress=False)
            self.say(f"  archive: {report.summary().splitlines()[0]}")
            for refused in report.refused:
                self.say(f"    set aside {refused.path}: {refused.reason}")
        return local

    def _cluster_hour(self) -> list[str]:
        """The files of the demo's Cluster hour (the four FGMs, for the curlometer tutorial), fetched into the data
        folder; nothing (said) when the archive cannot be reached."""
        from ..fetching import fetch

        start, end = DEMO_CLUSTER_HOUR
        try:
            report = fetch("csa", DEMO_CLUSTER_DATASETS, start, end, download_dir=self.data / "downloads",
                           timeout=30, retries=1, backoff=1.0, progress=False)
        except HeliohubError as error:
            self.say(f"  demo archive: could not have {start} to {end} of Cluster FGM from the Cluster Science "
                     f"Archive: {error}")
            return []
        files = [f for item in report.items for f in item.files]
        self.say(f"  demo archive: {len(files)} Cluster FGM file(s) for {start} to {end} from {report.url}")
        for item in report.failed:
            self.say(f"    could not have {item.dataset_id} {item.key}: {item.reason}")
        return files

    def _folders(self) -> None:
        """The data folder's parts; with accounts, homes and the gateway's folder passable, the rest root's only."""
        s = self.settings
        if s.isolate_users:
            if os.geteuid() != 0:
                raise SystemExit("heliohub up: UpSettings.isolate_users needs root (it makes a system account per "
                                 "user); run as root, or set --UpSettings.isolate_users=False")
            closed = accounts.unreachable_for_others(self.data)
            if closed is not None:
                raise SystemExit(f"heliohub up: the users' accounts cannot reach their homes in the data folder "
                                 f"{self.data}: {closed} is closed to other accounts; set UpSettings.data_dir "
                                 "(--data-dir) to a folder they can pass through, or --UpSettings.isolate_users=False")
        self.data.mkdir(parents=True, exist_ok=True)
        self.data.chmod(0o755)
        # the gateway's folders: passable (each cluster's working directory is its owner's), not listable
        for folder, mode in (("hub", 0o700), ("logs", 0o700), ("store", 0o700), ("users", 0o755),
                             ("gateway", 0o711), ("gateway/clusters", 0o711)):
            (self.data / folder).mkdir(exist_ok=True)
            (self.data / folder).chmod(mode)

    def start(self) -> dict[str, str]:
        s = self.settings
        self._folders()
        busy = [p for p in (s.hub_port, s.hub_api_port, s.proxy_api_port, s.gateway_port, s.gateway_api_port,
                            s.s3_port, s.hapi_port) if not _free(s.host, p)]
        if busy:
            raise SystemExit(f"heliohub up: port(s) {busy} on {s.host} are in use (another heliohub up? "
                             "`heliohub down`, or set other ports)")
        pattern = re.compile(accounts.user_name_pattern(s.account_prefix))
        unusable = [n for n in (s.admin_user, *s.users) if not pattern.match(n)]
        if unusable:
            raise SystemExit(f"heliohub up: {unusable} cannot be user names here (lower-case letters, digits and -, "
                             f"at most {32 - len(s.account_prefix)} characters): set UpSettings.users and admin_user")
        admin_password, printed = self._admin_password()
        local = self.fill_archive()
        bin_dir = str(Path(sys.executable).parent)
        hub_folder = self.data / "hub"

        self.say(f"  S3 endpoint: starting on {s.s3_url}")
        keys_file = hub_folder / "s3-keys.json"
        moto = object_store.start_server(s.host, s.s3_port, s.bucket, keys_file, self._log("s3"),
                                         clean_environment(bin_dir, hub_folder))
        self.processes["s3"] = moto
        operator, reader = object_store.wait_for_keys(keys_file, moto)
        count = object_store.upload_folder(Path(local.url), s.s3_url, operator, s.bucket, PREFIX)
        self._store_sync = (operator, Path(local.url))
        archive_url = f"s3://{s.bucket}/{PREFIX}"
        self.say(f"  S3 endpoint: {count} objects of the archive store in {archive_url} (users: read-only keys)")

        user_bin = runtime.ensure(Path(s.runtime_dir), self.say) if s.isolate_users else Path(bin_dir)
        user_env = user_environment(s, reader, archive_url, user_bin)
        ingest_token = secrets.token_hex(32)
        state = {
            "data_dir": str(self.data), "bin": bin_dir, "python": sys.executable,
            "hub_url": s.hub_url, "hub_api_url": f"http://{s.host}:{s.hub_api_port}",
            "proxy_api_url": f"http://{s.host}:{s.proxy_api_port}", "proxy_token": secrets.token_hex(32),
            "gateway_url": s.gateway_url, "gateway_address": f"{s.host}:{s.gateway_port}",
            "gateway_api_address": f"{s.host}:{s.gateway_api_port}", "gateway_token": secrets.token_hex(32),
            "hapi_url": f"http://{s.host}:{s.hapi_port}", "hapi_max_request_mb": s.hapi_max_request_mb,
            "admin_user": s.admin_user, "admin_password": admin_password, "users": list(s.users),
            "minimum_password_length": s.minimum_password_length, "login_attempts": s.login_attempts,
            "lockout_seconds": s.lockout_seconds, "cull_idle_seconds": s.cull_idle_seconds,
            "cluster_max_workers": s.cluster_max_workers, "cluster_idle_seconds": s.cluster_idle_seconds,
            "limits": {"servers": s.max_servers, "server_memory": s.server_memory, "server_cpus": s.server_cpus,
                       "server_processes": s.server_processes, "home_quota": s.home_quota,
                       "clusters_per_user": s.clusters_per_user, "worker_memory": s.worker_memory,
                       "worker_cpus": s.worker_cpus},
            # the owners' keys to their clusters' dashboards derive from it (heliohub.up.dashboard_guard)
            "dashboard_secret": secrets.token_hex(32) if s.isolate_users else "",
            "user_environment": user_env, "user_bin": str(user_bin),
            # the heliohub kernel and the users' server settings: in the users' environment with accounts, else
            # from the checkout
            "jupyter_path": "" if s.isolate_users else str(ROOT),
            "jupyter_config_path": str(runtime.package_folder(user_bin) / "up" / "jupyter"),
            "examples_dir": str(ROOT / "examples"), "archive": archive_url,
            "isolate_users": s.isolate_users, "account_prefix": s.account_prefix,
            "clusters_dir": str(self.data / "gateway" / "clusters"),
            # what `heliohub ingest` needs to write the store, on the platform's Dask Gateway too (as the chart's
            # ingest job has it): the operator's keys and the ingest service's hub token
            "ingest_token": ingest_token,
            "operator_environment": {
                **{k: v for k, v in user_env.items() if k.startswith("DASK_GATEWAY__")},
                **operator.environment(s.s3_url), "HELIOHUB_ARCHIVE": archive_url,
                "JUPYTERHUB_API_TOKEN": ingest_token},
        }
        state_file = hub_folder / "state.json"
        state_file.touch(mode=0o600)
        state_file.chmod(0o600)
        state_file.write_text(json.dumps(state, indent=2))

        here = Path(__file__).resolve().parent
        # As root, the gateway runs clusters as their owners' accounts (heliohub.up.gateway_backend): it stays
        # root, which no user's process can signal; it runs from the users' environment, which holds its backend.
        gateway = self._start("gateway", [f"{user_bin}/dask-gateway-server", "-f",
                                          str(here / "dask_gateway_config.py")],
                              clean_environment(user_bin, self.data / "gateway", HELIOHUB_UP_STATE=str(state_file)),
                              cwd=self.data / "gateway")
        _wait_port(s.host, s.gateway_port, "Dask Gateway", gateway, self._log("gateway"))
        self.say(f"  Dask Gateway: {s.gateway_url} (hub authentication, up to {s.clusters_per_user or 'any number of'} "
                 f"clusters per user, {s.cluster_max_workers} workers each)")
        hub = self._start("hub", [f"{bin_dir}/jupyterhub", "-f", str(here / "jupyterhub_config.py")],
                          clean_environment(bin_dir, hub_folder, HELIOHUB_UP_STATE=str(state_file)))
        _wait_port(s.host, s.hub_port, "JupyterHub", hub, self._log("hub"))
        self._wait_health(f"{s.hub_url}/hub/health", hub)
        (hub_folder / "up.pids").write_text(json.dumps(
            {"supervisor": os.getpid(), **{n: p.pid for n, p in self.processes.items()}}))
        self.say(f"\nheliohub is up: {s.hub_url}")
        self.say(f"  log in as {s.admin_user!r} with the admin password; users sign up at {s.hub_url}/hub/signup "
                 "with a password of their own" + (f" (only {', '.join(s.users)})" if s.users else
                                                    ", and the admin approves them at /hub/authorize"))
        for line in printed:
            self.say(f"  {line}")
        if s.isolate_users:
            self.say(f"  each user's server and Dask clusters run as their own system account ({s.account_prefix}"
                     f"<name>, home readable by them only), within limits ({limits.mechanism()})")
        else:
            self.say("  every user's server runs as this system account: users can read each other's files (run as "
                     "root for an account per user)")
        self.say(f"  data, logs and settings: {self.data}   health: `heliohub status`   stop: Ctrl-C or "
                 "`heliohub down`")
        return state

    def _wait_health(self, url: str, process: subprocess.Popen, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterHub exited at start; see {self._log('hub')}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterHub did not become healthy within {timeout:.0f} s; see {self._log('hub')}")

    def health(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def stop(self) -> None:
        """Stop every process started, children included (each runs in its own process group), keeping what was
        written to the S3 endpoint once the hub and gateway (whose users and ingests could write) are down."""
        for name in ("hub", "gateway"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        for name in ("hub", "gateway"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                if name in self.processes:
                    self.processes[name].wait(timeout=20)
        self.keep_store()
        for name in ("hub", "gateway", "s3"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        _stop_leftovers(self.data)
        limits.sweep()
        pids = self.data / "hub" / "up.pids"
        pids.unlink(missing_ok=True)

    def keep_store(self) -> None:
        """Copy what was written to the S3 endpoint's archive (by an operator's ingest through S3) into the store
        folder, which the next start uploads again (moto keeps objects in memory only)."""
        if self._store_sync is None or self.processes.get("s3") is None or self.processes["s3"].poll() is not None:
            return
        operator, folder = self._store_sync
        try:
            copied = object_store.download_new(self.settings.s3_url, operator, self.settings.bucket, PREFIX, folder)
        except Exception as error:  # botocore's errors: said, and tried again at the next round
            self.say(f"heliohub up: could not copy the S3 archive's new objects to {folder}: {error}")
            return
        if copied:
            self.say(f"  archive: {copied} new object(s) written through S3 kept in {folder}")

    def supervise(self) -> int:
        """Report parts that die and keep what is written to the store; return when asked to stop (Ctrl-C or
        SIGTERM)."""
        last_sync = time.monotonic()
        try:
            while True:
                dead = [name for name, alive in self.health().items() if not alive]
                if dead:
                    self.say(f"heliohub up: {', '.join(dead)} stopped; see {self.data / 'logs'}; stopping the rest")
                    return 1
                if time.monotonic() - last_sync > STORE_SYNC_SECONDS:
                    self.keep_store()
                    limits.sweep()
                    last_sync = time.monotonic()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _stop_leftovers(data: Path) -> None:
    """The proxy and user servers the hub started, when the hub could not stop them itself."""
    for pid_file in (data / "hub" / "proxy.pid",):
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            pid_file.unlink(missing_ok=True)


def up(argv: list[str] | None = None) -> int:
    """``heliohub up [--UpSettings.x=...]``"""
    from traitlets.config import Application

    class Up(Application):
        name = "heliohub-up"
        description = "The whole heliohub platform on one machine"
        classes = (UpSettings,)
        aliases = MappingProxyType({"data-dir": "UpSettings.data_dir", "from": "UpSettings.from_dirs",
                                    "port": "UpSettings.hub_port"})

    app = Up()
    app.initialize(argv)
    settings = UpSettings(parent=app)
    platform = Platform(settings)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        platform.start()
        return platform.supervise()
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, OSError, HeliohubError) as error:
        print(f"heliohub up: {error}", file=sys.stderr)
        return 1
    finally:
        platform.stop()
        print("heliohub: stopped", flush=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.status < 500
    except OSError:
        return False


def check_archive(state: dict) -> str | None:
    """Why the S3 endpoint does not serve the archive to users as it should (None: it does): a user's keys list
    the catalog, and moto's management API is not served."""
    import botocore.exceptions

    env = state["user_environment"]
    reader = object_store.Keys(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    bucket, _, prefix = state["archive"].removeprefix("s3://").partition("/")
    try:
        listed = reader.client(env["AWS_ENDPOINT_URL"]).list_objects_v2(
            Bucket=bucket, Prefix=f"{prefix}/_catalog/", MaxKeys=1)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        return f"a user's keys cannot list the archive: {error}"
    if not listed.get("KeyCount"):
        return f"the archive has no catalog at {state['archive']}/_catalog (is the store empty?)"
    try:
        with urllib.request.urlopen(env["AWS_ENDPOINT_URL"] + "/moto-api/data.json", timeout=3):
            return "the S3 endpoint serves moto's management API"
    except urllib.error.HTTPError as error:
        return None if error.code == 403 else f"the S3 endpoint answers its management API with {error.code}"
    except OSError as error:
        return f"the S3 endpoint does not answer: {error}"


def status(data_dir: str | None = None, say=print) -> int:
    """``heliohub status``: each part of the platform started from this data folder, and whether it answers (the
    archive: whether a user's keys read it)."""
    data = Path(data_dir or UpSettings().data_dir).expanduser().resolve()
    pids_file, state_file = data / "hub" / "up.pids", data / "hub" / "state.json"
    if not pids_file.exists() or not state_file.exists():
        say(f"heliohub status: nothing runs from {data}")
        return 1
    pids = json.loads(pids_file.read_text())
    state = json.loads(state_file.read_text())
    checks = {
        "supervisor": lambda: None,
        "s3": lambda: check_archive(state),
        "gateway": lambda: None if _answers(state["gateway_url"] + "/api/health") else "does not answer",
        "hub": lambda: None if _answers(state["hub_url"] + "/hub/health") else "does not answer",
    }
    healthy = True
    for name, check in checks.items():
        pid = pids.get(name)
        problem = check() if pid is not None and _alive(pid) else "not running"
        healthy &= problem is None
        say(f"  {name:10s} {'ok' if problem is None else 'DOWN'}  pid {pid}" + (f"  {problem}" if problem else ""))
    say(f"heliohub status: {'all parts up' if healthy else 'some parts are down'} ({data})")
    return 0 if healthy else 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(data_dir: str | None = None, timeout: float = 60) -> int:
    """``heliohub down``: stop the platform that ``heliohub up`` started with this data folder.

    The supervisor is asked to stop (it stops the hub, the gateway and the S3 endpoint in order); whatever is
    still running after ``timeout`` seconds is killed.
    """
    data = Path(data_dir or UpSettings().data_dir).expanduser().resolve()
    pids_file = data / "hub" / "up.pids"
    if not pids_file.exists():
        print(f"heliohub down: nothing runs from {data}")
        return 0
    pids = json.loads(pids_file.read_text())
    supervisor = pids.pop("supervisor", None)
    if supervisor is not None:
        try:
            os.kill(supervisor, signal.SIGTERM)
        except ProcessLookupError:
            supervisor = None
    deadline = time.monotonic() + timeout
    while supervisor is not None and time.monotonic() < deadline and pids_file.exists():
        time.sleep(0.3)
    for pid in pids.values():
        _signal_group(pid, signal.SIGKILL if pids_file.exists() else signal.SIGTERM)
    _stop_leftovers(data)
    pids_file.unlink(missing_ok=True)
    print(f"heliohub down: stopped the platform of {data}")
    return 0
