"""System accounts for the one-machine platform: each hub user's own, and the Dask Gateway's.

When ``heliohub up`` runs as root, every user's server runs as a system account of their own
(``heliohub-<name>``) with a private home (mode 0700), so users cannot read each other's files; the Dask Gateway
and its clusters run as ``heliohub-gateway``, which can read no user's home. Accounts are created on first use with
``useradd`` and marked as heliohub's in their comment field: an existing account that heliohub did not create is
never used.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import Float, Integer, Unicode

from . import limits

MARK = "heliohub platform account"
_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")
NO_HOME = "/nonexistent"
NOLOGIN = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(s)), "/bin/false")


class AccountError(RuntimeError):
    """An account cannot be made or used (the message says which and why)."""


def user_name_pattern(prefix: str) -> str:
    """The hub user names the platform accepts: lower-case letters, digits and hyphens, short enough that
    ``<prefix><name>`` is a system account name; no ``_``, which keeps the services' accounts apart."""
    return rf"^[a-z0-9][a-z0-9-]{{0,{31 - len(prefix)}}}$"


def account_name(prefix: str, name: str) -> str:
    """The system account of a hub user, or of a hub service as Dask Gateway names it (``service:<name>``)."""
    kind, _, service = name.partition(":")
    return f"{prefix}svc_{service}" if kind == "service" and service else f"{prefix}{name}"


def account(name: str, home: Path | None) -> pwd.struct_passwd:
    """The system account ``name`` with its home at ``home`` (0700, its own), created if absent. An account used by
    several ``heliohub up`` at once (the gateway's) has no home of its own (``home=None``): each gives it a folder."""
    if not _NAME.match(name) or len(name) > 32:
        raise AccountError(f"{name!r} cannot be a system account name (lower-case letters, digits, _ and -, at "
                           "most 32 characters)")
    try:
        existing = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                                 str(home or NO_HOME), "--shell", NOLOGIN, "--comment", MARK, name],
                                capture_output=True, text=True)
        if result.returncode != 0 and "already exists" not in result.stderr:  # another spawn made it meanwhile
            raise AccountError(f"useradd {name} failed: {result.stderr.strip()}") from None
        existing = pwd.getpwnam(name)
    if existing.pw_gecos != MARK:
        raise AccountError(f"the system account {name!r} exists and was not made by heliohub; it is not used "
                           "(remove it, or set UpSettings.account_prefix)")
    if home is None:
        return existing
    if existing.pw_dir != str(home):  # made by a heliohub up with another data folder
        result = subprocess.run(["usermod", "--home", str(home), name], capture_output=True, text=True)
        if result.returncode != 0:
            raise AccountError(f"{name} has its home in another heliohub up's data folder ({existing.pw_dir}) and "
                               f"cannot move to {home}: {result.stderr.strip()} (stop that heliohub up, or give "
                               "this one another UpSettings.account_prefix)")
        existing = pwd.getpwnam(name)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, existing.pw_uid, existing.pw_gid)
    home.chmod(0o700)
    return existing


def give(path: Path, owner: pwd.struct_passwd) -> None:
    """Make ``path`` and everything under it the account's."""
    for item in [path, *path.rglob("*")]:
        os.chown(item, owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def unreachable_for_others(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that other accounts cannot pass through (None: all can)."""
    for folder in [*reversed(path.resolve().parents), path.resolve()]:
        if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def disk_usage(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (as ``du`` counts them: allocated blocks)."""
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
    return total


def copy_tutorials(examples: Path, home: Path, owner: pwd.struct_passwd | None) -> None:
    """A new user finds the tutorials in their home; existing copies are left as the user changed them."""
    target = home / "tutorials"
    if examples.is_dir() and not target.exists():
        shutil.copytree(examples, target, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        if owner is not None:
            give(target, owner)


class QuotaExceeded(web.HTTPError):
    """A home holds more than its quota (the message says how much, and what to do); the hub shows it to the user
    as the reason their server did not start."""

    def __init__(self, message: str) -> None:
        super().__init__(507, "%s", message, reason="Home over quota")


class AccountSpawner(LocalProcessSpawner):
    """A local process spawner that runs each hub user's server as their own system account
    (``<account_prefix><name>``), made at first spawn with a private home under ``homes``, within memory, CPU,
    process and disk limits (:mod:`heliohub.up.limits`): a server does not start while its home holds more than
    ``home_quota``, and no file a user's process writes can exceed it."""

    account_prefix = Unicode("heliohub-", config=True,
                             help="Prefix of the users' system account names (so none is an existing account).")
    homes = Unicode(config=True, help="The folder holding the users' homes (passable by other accounts).")
    examples = Unicode(config=True, help="The tutorials copied into a new user's home.")
    memory = Unicode("4G", config=True, help="Most memory one user's server (with its kernels) may use ('' or "
                                             "0: no limit).")
    cpus = Float(2.0, config=True, help="CPU share of one user's server with its kernels, in cores (0: no limit).")
    processes = Integer(512, config=True, help="Most processes and threads one user's server may run (0: no "
                                               "limit).")
    home_quota = Unicode("10G", config=True, help="Most disk a user's home may take ('' or 0: no limit).")

    @property
    def account_name(self) -> str:
        return account_name(self.account_prefix, self.user.name)

    @property
    def account_home(self) -> Path:
        return Path(self.homes) / self.user.name

    def _account(self) -> pwd.struct_passwd:
        return account(self.account_name, self.account_home)

    @property
    def limits(self) -> limits.Limits:
        return limits.Limits(memory_bytes=limits.parse_bytes(self.memory), cpus=self.cpus or None,
                             processes=self.processes or None, file_bytes=limits.parse_bytes(self.home_quota))

    def make_preexec_fn(self, name: str):
        become = set_user_setuid(self.account_name)
        confinement, account_name = self.limits, self.account_name

        def preexec() -> None:  # pragma: no cover - runs in the child
            limits.confine(confinement, account_name, "server")
            become()

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env.update(USER=self.account_name, HOME=str(self.account_home), SHELL="/bin/sh")
        return env

    def check_quota(self) -> None:
        quota = limits.parse_bytes(self.home_quota)
        if quota is None or not self.account_home.exists():
            return
        used = disk_usage(self.account_home)
        if used > quota:
            raise QuotaExceeded(f"{self.user.name}'s home holds {used / 2**20:.0f} MiB, more than its quota of "
                                f"{quota / 2**20:.0f} MiB: the server starts again once files are removed from "
                                f"{self.account_home} (ask the operator), or the quota is raised "
                                "(UpSettings.home_quota)")

    async def start(self):
        owner = self._account()
        self.check_quota()
        copy_tutorials(Path(self.examples), self.account_home, owner)
        return await super().start()
