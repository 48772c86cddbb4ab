"""The settings of ``heliohub up``, as traitlets (set them on the command line or in ``heliohub_up_config.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Float, Integer, List, Unicode, default
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
    hapi_port = Integer(8086, help="The HAPI server's port (a hub service, reached at /services/hapi/hapi through the "
                                   "hub, with a hub login or token).").tag(config=True)
    hapi_max_request_mb = Float(1000.0, help="The largest answer of the HAPI server's data endpoint, in MB of "
                                             "binary records (the CSA's synchronous limit is 1 GB); larger requests "
                                             "get HAPI 1408.").tag(config=True)
    export_max_mb = Float(1000.0, help="The largest export a user's heliohub.export writes directly, in MB (the "
                                       "CSA's synchronous limit is 1 GB); larger ones run as a job on the user's "
                                       "Dask Gateway cluster (HELIOHUB_EXPORT_MAX_MB).").tag(config=True)
    export_job_max_mb = Float(50000.0, help="The largest export job, in MB (the CSA's asynchronous requests stop at "
                                            "50 GB; HELIOHUB_EXPORT_JOB_MAX_MB).").tag(config=True)
    export_job_max_seconds = Float(14400.0, help="The longest an export job may run before it is stopped and its "
                                                 "files removed (HELIOHUB_EXPORT_JOB_MAX_SECONDS).").tag(config=True)
    bucket = Unicode("heliohub-archive", help="The bucket holding the archive store.").tag(config=True)
    admin_user = Unicode("admin", help="The first admin's user name.").tag(config=True)
    admin_password = Unicode(help="The admin's password (at least 32 characters); from "
                                  "HELIOHUB_ADMIN_PASSWORD, else generated and printed.").tag(config=True)
    users = List(Unicode(), help="The only names that may use the platform besides the admin; each signs up at "
                                 "/hub/signup with a password of their own and may log in at once. Empty: anyone "
                                 "may sign up, and logs in once the admin approved the name at /hub/authorize."
                 ).tag(config=True)
    minimum_password_length = Integer(10, help="Shortest password a user may choose at sign-up.").tag(config=True)
    login_attempts = Integer(5, help="Wrong passwords in a row after which a name is locked out.").tag(config=True)
    lockout_seconds = Integer(600, help="How long a locked-out name must wait before trying again.").tag(
        config=True)
    from_dirs = List(Unicode(), help="Folders of archive files ingested into the demo archive at start.").tag(
        config=True)
    demo = Bool(True, help="On first start, ingest the real archive files of the repository's data/ folder and "
                           "those that ship with sunpy (heliohub.up.demo), and fetch an hour of Cluster FGM from the "
                           "Cluster Science Archive when it can be reached.").tag(config=True)
    cull_idle_seconds = Integer(3600, help="Stop user servers idle this long.").tag(config=True)
    cluster_max_workers = Integer(4, help="Most workers in one Dask Gateway cluster.").tag(config=True)
    clusters_per_user = Integer(2, help="Most Dask Gateway clusters one user may have at once (0: no limit).").tag(
        config=True)
    worker_memory = Unicode("2G", help="Memory of each Dask worker (Dask's limit; with isolate_users the kernel "
                                       "stops a worker, with its nanny, past 1.25 times it).").tag(config=True)
    worker_cpus = Integer(1, help="Cores (threads) of each Dask worker; with isolate_users also its CPU share.").tag(
        config=True)
    max_servers = Integer(20, help="Most user servers running at once (JupyterHub's active_server_limit; 0: no "
                                   "limit).").tag(config=True)
    server_memory = Unicode("4G", help="With isolate_users: most memory one user's server with its kernels may use "
                                       "('' or 0: no limit).").tag(config=True)
    server_cpus = Float(2.0, help="With isolate_users: CPU share of one user's server with its kernels, in cores "
                                  "(0: no limit).").tag(config=True)
    server_processes = Integer(512, help="With isolate_users: most processes and threads of one user's server "
                                         "(0: no limit).").tag(config=True)
    home_quota = Unicode("10G", help="With isolate_users: most disk a user's home may take; a server does not start "
                                     "while its home holds more, and no file can be larger ('' or 0: no limit)."
                         ).tag(config=True)
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

    @property
    def hub_url(self) -> str:
        return f"http://{self.host}:{self.hub_port}"

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"
