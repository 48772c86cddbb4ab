"""Dask Gateway's backend on one machine: each user's clusters run as that user's own account, confined.

dask-gateway-server's ``LocalBackend`` runs clusters as the requesting user's system account, which is what a
machine shared by several users needs, but as root its working-directory set-up chowns ``/`` (and any
one-character name in its working directory) to that account: it extends its list of paths with a path's
characters (``paths.extend(path)``, in 2026.3.0). ``AccountBackend`` keeps ``LocalBackend`` and replaces the parts
that need it:

- a hub user ``alice`` runs as the account ``<account_prefix>alice``, a hub service (the ingest) as
  ``<account_prefix>svc_<name>`` (:mod:`heliohub.up.accounts`, made at first use), never as an account heliohub did
  not make;
- the working directory (TLS key and certificate, logs, Dask's scratch space) is the account's, mode 0700, chowned
  whole; ``/`` is never touched;
- each process gets a clean environment (the cluster's settings, no variable of the gateway's own but ``PATH`` and
  the locale), its own scratch folder (``DASK_TEMPORARY_DIRECTORY``, ``TMPDIR``: the shared
  ``/tmp/dask-scratch-space`` is on every worker's ``sys.path``), the owner's dashboard key
  (:mod:`heliohub.up.dashboard_guard`, loaded as a preload by schedulers, nannies and workers), and the memory, CPU
  and process limits of :mod:`heliohub.up.limits`;
- a user may have at most ``clusters_per_user`` clusters at once.

The gateway itself runs as root, so no user's process can signal it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.local import LocalBackend
from traitlets import Float, Integer, Unicode

from . import accounts, limits
from .dashboard_guard import KEY_ENVIRONMENT, user_key

PRELOAD = "heliohub.up.dashboard_guard"
# The nanny and its worker share a control group: the nanny restarts a worker at 95 % of its memory limit, the
# kernel stops the pair only past this.
WORKER_MEMORY_HEADROOM = 1.25


class AccountBackend(LocalBackend):
    """Clusters as local processes of the requesting user's heliohub account (see the module's description)."""

    account_prefix = Unicode("heliohub-", config=True,
                             help="Prefix of the users' system accounts (the hub's AccountSpawner uses the same).")
    dashboard_secret = Unicode(config=True, help="The secret the owners' dashboard keys are derived from "
                                                 "(heliohub.up.dashboard_guard.user_key).")
    clusters_per_user = Integer(2, config=True, help="Most clusters one user may have at once (0: no limit).")
    processes_per_process = Integer(256, config=True,
                                    help="Most processes and threads under each scheduler or worker process.")
    scheduler_cpus = Float(1.0, config=True, help="CPU share of each scheduler (cores).")

    def account(self, username: str) -> pwd.struct_passwd:
        """The hub user's system account (made if absent; never one heliohub did not make)."""
        try:
            return accounts.account(accounts.account_name(self.account_prefix, username), None)
        except accounts.AccountError as error:
            raise PublicException(str(error)) from None

    async def start_cluster(self, user, cluster_options):
        if self.clusters_per_user:
            running = await self.list_clusters(username=user.name)
            if len(running) >= self.clusters_per_user:
                raise PublicException(
                    f"{user.name} already has {len(running)} Dask cluster(s), the most one user may have at once "
                    f"({self.clusters_per_user}): shut one down first (gateway.list_clusters(), "
                    "cluster.shutdown())")
        self.account(user.name)
        return await super().start_cluster(user, cluster_options)

    def set_file_permissions(self, paths, username):
        # paths[0] is the cluster's working directory, which holds everything LocalBackend made for it
        owner = self.account(username)
        workdir = Path(paths[0])
        for item in [workdir, *workdir.rglob("*")]:
            os.chown(item, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        (workdir / "scratch").mkdir(mode=0o700, exist_ok=True)
        os.chown(workdir / "scratch", owner.pw_uid, owner.pw_gid)

    def get_env(self, cluster):
        env = super().get_env(cluster)
        workdir = cluster.state["workdir"]
        env.update(USER=accounts.account_name(self.account_prefix, cluster.username), HOME=workdir,
                   DASK_TEMPORARY_DIRECTORY=f"{workdir}/scratch", TMPDIR=f"{workdir}/scratch")
        if self.dashboard_secret:
            env[KEY_ENVIRONMENT] = user_key(self.dashboard_secret, cluster.username)
        return env

    def get_scheduler_command(self, cluster):
        return [*super().get_scheduler_command(cluster), "--preload", PRELOAD]

    def get_worker_command(self, cluster, worker_name, scheduler_address=None):
        return [*super().get_worker_command(cluster, worker_name, scheduler_address), "--preload", PRELOAD,
                "--preload-nanny", PRELOAD]

    def _limits(self, cluster, name: str) -> limits.Limits:
        config = cluster.config
        if name == "scheduler":
            memory, cpus = config.scheduler_memory, self.scheduler_cpus
        else:
            memory, cpus = int(config.worker_memory * WORKER_MEMORY_HEADROOM), float(config.worker_cores)
        return limits.Limits(memory_bytes=memory, cpus=cpus, processes=self.processes_per_process)

    def _preexec(self, cluster, name: str):
        owner = self.account(cluster.username)
        confinement = self._limits(cluster, name)
        workdir = cluster.state["workdir"]

        def preexec():  # pragma: no cover - runs in the child
            limits.confine(confinement, owner.pw_name, name)
            os.setgid(owner.pw_gid)
            os.setgroups([])
            os.setuid(owner.pw_uid)
            os.chdir(workdir)

        return preexec

    async def start_process(self, cluster, cmd, env, name):
        # LocalBackend.start_process, with a preexec that knows which process it starts (for its limits)
        log_path = os.path.join(self.get_logs_directory(cluster.state["workdir"]), name + ".log")
        owner = self.account(cluster.username)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchown(fd, owner.pw_uid, owner.pw_gid)
            proc = await asyncio.create_subprocess_exec(
                *cmd, preexec_fn=self._preexec(cluster, name), start_new_session=True, env=env, stdout=fd,
                stderr=asyncio.subprocess.STDOUT)
        finally:
            os.close(fd)
        return proc.pid

