"""JupyterLab in the users' servers on the one-machine platform (found through ``JUPYTER_CONFIG_PATH``).

- JupyterLab does not ask to fetch Jupyter's news feed (no network is assumed);
- its Dask panel checks a dashboard from the browser (``lab-settings/``), which carries the hub's login that the
  dashboard route (``/user/<name>/dask-gateway/``) needs.
"""

# ruff: noqa: F821 - c and get_config are given by Jupyter
from pathlib import Path

c = get_config()
c.LabApp.news_url = None
c.LabApp.app_settings_dir = str(Path(__file__).with_name("lab-settings"))
