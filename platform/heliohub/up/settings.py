"""The settings of ``heliohub up``, as traitlets (set them on the command line or in ``heliohub_up_config.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Integer, List, Unicode, default
from traitlets.config import Configurable


class UpSettings(Configurable):
    """Where and how the one-machine platform runs."""

    data_dir = Unicode(help="Folder for the archive store, the hub's database, user homes and logs; a second "
                            "`heliohub up` with the same folder reuses the store.").tag(config=True)
    host = Unicode("127.0.0.1", help="The address every part listens on.").tag(config=True)
    hub_port = Integer(8000, help="The hub's public port (what users open in a browser).").tag(config=True)
    hub_api_port = Integer(8081, help="The hub's internal API port.").tag(config=True)
    proxy_api_port = Integer(8082, help="The proxy's API port.").tag(config=True)
    gateway_port = Integer(8083, help="Dask Gateway's public port (its API and the schedulers' traffic).").tag(
        config=True)
    gateway_api_port = Integer(8085, help="Dask Gateway's private API port.").tag(config=True)
    s3_port = Integer(8084, help="The S3 endpoint's port.").tag(config=True)
    bucket = Unicode("heliohub-archive", help="The bucket holding the archive store.").tag(config=True)
    admin_user = Unicode("admin", help="The first admin's user name.").tag(config=True)
    admin_password = Unicode(help="The admin's password (at least 32 characters); from "
                                  "HELIOHUB_ADMIN_PASSWORD, else generated and printed.").tag(config=True)
    user_password = Unicode(help="The password of every other user (at least 8 characters); from "
                                 "HELIOHUB_USER_PASSWORD, else generated and printed.").tag(config=True)
    users = List(Unicode(), help="Users allowed to log in besides the admin (empty: any name, with the user "
                                 "password).").tag(config=True)
    from_dirs = List(Unicode(), help="Folders of archive files ingested into the demo archive at start.").tag(
        config=True)
    demo = Bool(True, help="Ingest the real demo files that ship with sunpy on first start.").tag(config=True)
    cull_idle_seconds = Integer(3600, help="Stop user servers idle this long.").tag(config=True)
    cluster_max_workers = Integer(4, help="Most workers in one Dask Gateway cluster.").tag(config=True)
    cluster_idle_seconds = Integer(1800, help="Shut down Dask Gateway clusters idle this long.").tag(config=True)
    isolate_users = Bool(help="Run each user's server as their own system account (<account_prefix><name>, made "
                              "at first login, home readable by them only) and Dask Gateway as its own account. "
                              "Needs root; the default when run as root.").tag(config=True)
    account_prefix = Unicode("heliohub-", help="Prefix of the system accounts made for users (and "
                                                "<prefix>gateway for Dask Gateway).").tag(config=True)

    runtime_dir = Unicode("/var/cache/heliohub/runtime",
                          help="With isolate_users: where the environment the users' accounts run from is built "
                               "(once per lock, shared by every heliohub up on the machine).").tag(config=True)

    @default("isolate_users")
    def _isolate_users(self) -> bool:
        return os.geteuid() == 0

    @default("data_dir")
    def _data_dir(self) -> str:
        # as root, a folder the users' accounts can pass through (root's home is closed to them)
        fallback = "/var/lib/heliohub" if os.geteuid() == 0 else "~/.local/share/heliohub"
        return str(Path(os.environ.get("HELIOHUB_DATA", fallback)).expanduser())

    @default("admin_password")
    def _admin_password(self) -> str:
        return os.environ.get("HELIOHUB_ADMIN_PASSWORD", "")

    @default("user_password")
    def _user_password(self) -> str:
        return os.environ.get("HELIOHUB_USER_PASSWORD", "")

    @property
    def hub_url(self) -> str:
        return f"http://{self.host}:{self.hub_port}"

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"
