"""The users' Jupyter servers on the one-machine platform (found through ``JUPYTER_CONFIG_PATH``).

- ``/user/<name>/dask-gateway/`` proxies to the Dask Gateway's proxy with the user's dashboard key
  (:mod:`heliohub.up.dashboard_guard`), so a user's cluster dashboards open through the hub, for them only; the
  gateway's cluster links point there (``DASK_GATEWAY__PUBLIC_ADDRESS``).

JupyterLab's own settings are in ``jupyter_lab_config.py`` beside this file.
"""

# ruff: noqa: F821 - c and get_config are given by Jupyter
import os
from urllib.parse import urlparse

from heliohub.up.dashboard_guard import KEY_ENVIRONMENT, KEY_HEADER

c = get_config()

gateway = os.environ.get("DASK_GATEWAY__ADDRESS")
if gateway:
    headers = {}
    if os.environ.get(KEY_ENVIRONMENT):
        headers[KEY_HEADER] = os.environ[KEY_ENVIRONMENT]
    c.ServerProxy.servers = {"dask-gateway": {
        "port": urlparse(gateway).port, "request_headers_override": headers, "launcher_entry": {"enabled": False},
    }}

