"""``heliohub up`` and ``heliohub down``: the whole platform on one machine, supervised.

Start order matters: the S3 endpoint and the demo archive first, then Dask Gateway (the hub waits ~30 s on a
configured service that is not up), then JupyterHub with its proxy. Ctrl-C, SIGTERM or ``heliohub down`` stops
every process that was started, children included.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import MappingProxyType

from .. import catalog
from ..archive import Archive
from ..errors import HeliohubError
from . import accounts, object_store, runtime
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


def demo_files() -> tuple[list[str], list[str]]:
    """The real files a fresh machine has from the package registries (sunpy's test data), and what is missing."""
    try:
        import sunpy.data.test
    except ImportError:
        return [], ["sunpy's real SOHO, PROBA-2 and Solar Orbiter files (pip install sunpy)"]
    base = Path(sunpy.data.test.__file__).parent
    wanted = ["EIT/efz20040301.000010_s.fits", "EIT/efz20040301.010016_s.fits",
              "lyra_20150101-000000_lev3_std_truncated.fits.gz", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf",
              "psp_fld_l2_mag_rtn_1min_20200104_v02.cdf"]
    found = [str(base / name) for name in wanted if (base / name).exists()]
    missing = [name for name in wanted if not (base / name).exists()]
    return found, missing


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
    """What every user server and Dask worker gets: the archive, its read-only keys, the Dask Gateway client's
    settings, and the environment they run from (``bin_dir``, this one by default) first on the PATH. The Helm chart
    gives its pods the same variables (tests/test_chart.py holds them together)."""
    return {**reader.environment(s.s3_url), "HELIOHUB_ARCHIVE": archive_url,
            "DASK_GATEWAY__ADDRESS": s.gateway_url,
            "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{s.host}:{s.gateway_port}",
            "DASK_GATEWAY__PUBLIC_ADDRESS": f"{s.hub_url}/services/dask-gateway/",
            "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
            "PATH": f"{bin_dir or Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"}


class Platform:
    """The processes of one ``heliohub up``."""

    def __init__(self, settings: UpSettings, say=print) -> None:
        self.settings = settings
        self.say = say
        self.data = Path(settings.data_dir).expanduser().resolve()
        self.processes: dict[str, subprocess.Popen] = {}
        self._store_sync: tuple[object_store.Keys, Path] | None = None

    # -- set-up -------------------------------------------------------------------------------------------------
    def _passwords(self) -> tuple[str, str, list[str]]:
        printed: list[str] = []
        admin = _password(self.settings.admin_password, "admin", "HELIOHUB_ADMIN_PASSWORD", 32, printed)
        user = _password(self.settings.user_password, "user", "HELIOHUB_USER_PASSWORD", 8, printed)
        return admin, user, printed

    def _log(self, name: str) -> Path:
        folder = self.data / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.log"

    def _start(self, name: str, command: list[str], env: dict[str, str], owner=None,
               cwd: Path | None = None) -> subprocess.Popen:
        """Start a part, as the account ``owner`` when given, its output in the logs folder."""
        log = self._log(name)
        handle = open(log, "ab")  # noqa: SIM115 - the child keeps writing to it
        as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=cwd or self.data, **as_owner)
        self.processes[name] = process
        return process

    def fill_archive(self) -> Archive:
        """Ingest the demo files (first start), an hour of Cluster data fetched from the Cluster Science Archive
        when it can be reached (first start), and any --from folders into the local archive store."""
        local = Archive.resolve(self.data / "store")
        first = not catalog.read_catalog(local)
        inputs: list[str] = []
        if first and self.settings.demo:
            found, missing = demo_files()
            inputs += found
            for name in missing:
                self.say(f"  demo archive: could not have {name}")
            inputs += self._cluster_hour()
        inputs += [str(Path(d).expanduser()) for d in self.settings.from_dirs]
        if inputs:
            from ..ingestion import ingest

            report = ingest(inputs, local, progress=False)
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
        for folder, mode in (("hub", 0o700), ("logs", 0o700), ("store", 0o700), ("users", 0o755),
                             ("gateway", 0o755)):
            (self.data / folder).mkdir(exist_ok=True)
            (self.data / folder).chmod(mode)

    def _gateway_account(self):
        """The Dask Gateway's own account (its clusters run as it), or None when everything runs as one account."""
        if not self.settings.isolate_users:
            return None
        home = self.data / "gateway" / "home"
        owner = accounts.account(f"{self.settings.account_prefix}gateway", None)
        (home / "clusters").mkdir(parents=True, exist_ok=True)
        accounts.give(home, owner)
        home.chmod(0o700)
        return owner

    def start(self) -> dict[str, str]:
        s = self.settings
        self._folders()
        busy = [p for p in (s.hub_port, s.hub_api_port, s.proxy_api_port, s.gateway_port, s.gateway_api_port,
                            s.s3_port) if not _free(s.host, p)]
        if busy:
            raise SystemExit(f"heliohub up: port(s) {busy} on {s.host} are in use (another heliohub up? "
                             "`heliohub down`, or set other ports)")
        admin_password, user_password, printed = self._passwords()
        local = self.fill_archive()

        self.say(f"  S3 endpoint: starting on {s.s3_url}")
        moto = object_store.start_server(s.host, s.s3_port, self._log("s3"))
        self.processes["s3"] = moto
        _wait_port(s.host, s.s3_port, "the S3 endpoint", moto, self._log("s3"))
        operator, reader = object_store.create_accounts(s.s3_url, s.bucket)
        count = object_store.upload_folder(Path(local.url), s.s3_url, operator, s.bucket, PREFIX)
        self._store_sync = (operator, Path(local.url))
        archive_url = f"s3://{s.bucket}/{PREFIX}"
        self.say(f"  S3 endpoint: {count} objects of the archive store in {archive_url} (users: read-only keys)")

        bin_dir = str(Path(sys.executable).parent)
        user_bin = runtime.ensure(Path(s.runtime_dir), self.say) if s.isolate_users else Path(bin_dir)
        user_env = user_environment(s, reader, archive_url, user_bin)
        ingest_token = secrets.token_hex(32)
        state = {
            "data_dir": str(self.data), "bin": bin_dir, "python": sys.executable,
            "hub_url": s.hub_url, "hub_api_url": f"http://{s.host}:{s.hub_api_port}",
            "proxy_api_url": f"http://{s.host}:{s.proxy_api_port}", "proxy_token": secrets.token_hex(32),
            "gateway_url": s.gateway_url, "gateway_address": f"{s.host}:{s.gateway_port}",
            "gateway_api_address": f"{s.host}:{s.gateway_api_port}", "gateway_token": secrets.token_hex(32),
            "admin_user": s.admin_user, "admin_password": admin_password, "user_password": user_password,
            "users": list(s.users), "cull_idle_seconds": s.cull_idle_seconds,
            "cluster_max_workers": s.cluster_max_workers, "cluster_idle_seconds": s.cluster_idle_seconds,
            "user_environment": user_env, "user_bin": str(user_bin),
            # the heliohub kernel: in the users' environment with accounts, else from the checkout
            "jupyter_path": "" if s.isolate_users else str(ROOT),
            "examples_dir": str(ROOT / "examples"), "archive": archive_url,
            "isolate_users": s.isolate_users, "account_prefix": s.account_prefix,
            # what `heliohub ingest` needs to write the store, on the platform's Dask Gateway too (as the chart's
            # ingest job has it): the operator's keys and the ingest service's hub token
            "ingest_token": ingest_token,
            "operator_environment": {
                **{k: v for k, v in user_env.items() if k.startswith("DASK_GATEWAY__")},
                **operator.environment(s.s3_url), "HELIOHUB_ARCHIVE": archive_url,
                "JUPYTERHUB_API_TOKEN": ingest_token},
        }
        state_file = self.data / "hub" / "state.json"
        state_file.touch(mode=0o600)
        state_file.chmod(0o600)
        state_file.write_text(json.dumps(state, indent=2))
        env = {**os.environ, "HELIOHUB_UP_STATE": str(state_file)}
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HELIOHUB_ARCHIVE"):
            env.pop(key, None)

        here = Path(__file__).resolve().parent
        owner = self._gateway_account()
        gateway_home = self.data / "gateway" / ("home" if owner else "")
        gateway_state = gateway_home / "state.json"
        gateway_state.touch(mode=0o600)
        gateway_state.chmod(0o600)
        gateway_state.write_text(json.dumps({
            **{k: state[k] for k in ("gateway_api_address", "gateway_address", "gateway_token", "hub_api_url",
                                     "cluster_max_workers", "cluster_idle_seconds", "user_environment")},
            "bin": str(user_bin), "clusters_dir": str(gateway_home / "clusters")}, indent=2))
        config = here / "dask_gateway_config.py"
        if owner is not None:  # the gateway's account may not reach the checkout: it gets its own copies
            config = Path(shutil.copy(config, gateway_home / config.name))
            accounts.give(gateway_home, owner)
        gateway = self._start("gateway", [f"{user_bin}/dask-gateway-server", "-f", str(config)],
                              {**env, "HELIOHUB_UP_STATE": str(gateway_state), "HOME": str(gateway_home)},
                              owner=owner, cwd=gateway_home)
        _wait_port(s.host, s.gateway_port, "Dask Gateway", gateway, self._log("gateway"))
        self.say(f"  Dask Gateway: {s.gateway_url} (hub authentication, up to {s.cluster_max_workers} workers "
                 "per cluster)")
        hub = self._start("hub", [f"{bin_dir}/jupyterhub", "-f", str(here / "jupyterhub_config.py")], env)
        _wait_port(s.host, s.hub_port, "JupyterHub", hub, self._log("hub"))
        self._wait_health(f"{s.hub_url}/hub/health", hub)
        (self.data / "hub" / "up.pids").write_text(json.dumps(
            {"supervisor": os.getpid(), **{n: p.pid for n, p in self.processes.items()}}))
        self.say(f"\nheliohub is up: {s.hub_url}")
        self.say(f"  log in as {s.admin_user!r} with the admin password, or as any "
                 f"{'listed ' if s.users else ''}user name with the user password")
        for line in printed:
            self.say(f"  {line}")
        if s.isolate_users:
            self.say(f"  each user's server runs as their own system account ({s.account_prefix}<name>, home "
                     f"readable by them only); Dask Gateway as {s.account_prefix}gateway")
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


def status(data_dir: str | None = None, say=print) -> int:
    """``heliohub status``: each part of the platform started from this data folder, and whether it answers."""
    data = Path(data_dir or UpSettings().data_dir).expanduser().resolve()
    pids_file, state_file = data / "hub" / "up.pids", data / "hub" / "state.json"
    if not pids_file.exists() or not state_file.exists():
        say(f"heliohub status: nothing runs from {data}")
        return 1
    pids = json.loads(pids_file.read_text())
    state = json.loads(state_file.read_text())
    checks = {
        "supervisor": None,
        "s3": state["user_environment"]["AWS_ENDPOINT_URL"] + "/moto-api/",
        "gateway": state["gateway_url"] + "/api/health",
        "hub": state["hub_url"] + "/hub/health",
    }
    healthy = True
    for name, url in checks.items():
        pid = pids.get(name)
        alive = pid is not None and _alive(pid)
        answers = url is None or (alive and _answers(url))
        healthy &= alive and answers
        say(f"  {name:10s} {'ok' if alive and answers else 'DOWN'}  pid {pid}" + (f"  {url}" if url else ""))
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
