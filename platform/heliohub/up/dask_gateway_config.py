"""Dask Gateway on one machine, as ``heliohub up`` runs it (``dask-gateway-server -f`` this file).

With an account per user (``heliohub up`` as root), the gateway runs as root and each user's clusters as that
user's own account, each process confined, its dashboard answering its owner only (``AccountBackend``,
:mod:`heliohub.up.gateway_backend`). Otherwise every cluster runs as the account ``heliohub up`` runs as
(``UnsafeLocalBackend``: dask-gateway-server's ``LocalBackend`` itself must never run as root, see
``AccountBackend``). Users authenticate with their JupyterHub token. Everything specific to a run is in the state
file ``HELIOHUB_UP_STATE`` names (readable by root only).
"""

# ruff: noqa: F821 - c and get_config are given by dask-gateway-server
import json
import os
from pathlib import Path

state = json.loads(Path(os.environ["HELIOHUB_UP_STATE"]).read_text())
limits = state["limits"]
c = get_config()

c.DaskGateway.address = state["gateway_api_address"]
c.Proxy.address = state["gateway_address"]
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
c.JupyterHubAuthenticator.jupyterhub_api_token = state["gateway_token"]
c.JupyterHubAuthenticator.jupyterhub_api_url = state["hub_api_url"] + "/hub/api"
c.ClusterConfig.scheduler_cmd = [state["user_bin"] + "/dask", "scheduler"]
c.ClusterConfig.worker_cmd = [state["user_bin"] + "/dask", "worker"]
c.ClusterConfig.cluster_max_workers = state["cluster_max_workers"]
c.ClusterConfig.idle_timeout = state["cluster_idle_seconds"]
c.ClusterConfig.worker_cores = limits["worker_cpus"]
c.ClusterConfig.worker_memory = limits["worker_memory"]
c.ClusterConfig.environment = state["user_environment"]
if state["isolate_users"]:
    c.DaskGateway.backend_class = "heliohub.up.gateway_backend.AccountBackend"
    c.AccountBackend.clusters_directory = state["clusters_dir"]
    c.AccountBackend.account_prefix = state["account_prefix"]
    c.AccountBackend.dashboard_secret = state["dashboard_secret"]
    c.AccountBackend.clusters_per_user = limits["clusters_per_user"]
    c.AccountBackend.inherited_environment = ["PATH", "LANG", "LC_ALL"]
else:
    c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
    c.UnsafeLocalBackend.clusters_directory = state["clusters_dir"]
