"""Dask Gateway on one machine, as ``heliohub up`` runs it (``dask-gateway-server -f`` this file).

Clusters run as local processes through ``UnsafeLocalBackend``: dask-gateway-server 2026.3's ``LocalBackend``
chowns ``/`` to the cluster user when run as root, so it is never used here (clusters run as the gateway's user,
which ``heliohub up`` run as root makes an account of its own that can read no user's home). Users authenticate
with their JupyterHub token. The state file holds what this file needs only (readable by the gateway's account).
"""

# ruff: noqa: F821 - c and get_config are given by dask-gateway-server
import json
import os
from pathlib import Path

state = json.loads(Path(os.environ["HELIOHUB_UP_STATE"]).read_text())
c = get_config()

c.DaskGateway.address = state["gateway_api_address"]
c.Proxy.address = state["gateway_address"]
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
c.JupyterHubAuthenticator.jupyterhub_api_token = state["gateway_token"]
c.JupyterHubAuthenticator.jupyterhub_api_url = state["hub_api_url"] + "/hub/api"
c.ClusterConfig.scheduler_cmd = [state["bin"] + "/dask", "scheduler"]
c.ClusterConfig.worker_cmd = [state["bin"] + "/dask", "worker"]
c.ClusterConfig.cluster_max_workers = state["cluster_max_workers"]
c.ClusterConfig.idle_timeout = state["cluster_idle_seconds"]
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "2 G"
c.ClusterConfig.environment = state["user_environment"]
c.UnsafeLocalBackend.clusters_directory = state["clusters_dir"]
