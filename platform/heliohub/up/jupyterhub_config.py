"""JupyterHub on one machine, as ``heliohub up`` runs it (``jupyterhub -f`` this file).

Everything specific to a run (ports, folders, the admin's password, tokens, keys, limits) is in the state file that
``HELIOHUB_UP_STATE`` names (written by ``heliohub up``, readable by its user only).
"""

# ruff: noqa: F821 - c and get_config are given by JupyterHub
import json
import os
from pathlib import Path

from heliohub.up import accounts
from heliohub.up.dashboard_guard import KEY_ENVIRONMENT, user_key

state = json.loads(Path(os.environ["HELIOHUB_UP_STATE"]).read_text())
data = Path(state["data_dir"])
limits = state["limits"]
c = get_config()

c.JupyterHub.bind_url = state["hub_url"]
c.JupyterHub.hub_bind_url = state["hub_api_url"]
c.JupyterHub.db_url = f"sqlite:///{data / 'hub' / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(data / "hub" / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(data / "hub" / "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [state["python"], "-m", "heliohub.up.http_proxy"]  # websocket subprotocols
c.ConfigurableHTTPProxy.api_url = state["proxy_api_url"]
c.ConfigurableHTTPProxy.auth_token = state["proxy_token"]
c.ConfigurableHTTPProxy.pid_file = str(data / "hub" / "proxy.pid")
c.JupyterHub.template_paths = [str(Path(__file__).with_name("templates"))]
c.JupyterHub.template_vars = {"announcement_login": "heliohub: ESA's heliophysics archives, next to your notebooks. "
                                                    "New here? <a href='signup'>Sign up</a> with a password of your "
                                                    "own."}

# Each person has a password of their own (heliohub.up.hub_auth): listed names may log in once they signed up,
# others once an admin approved them; repeated failures lock a name out.
c.JupyterHub.authenticator_class = "heliohub.up.hub_auth.PlatformAuthenticator"
c.PlatformAuthenticator.admin_password = state["admin_password"]
c.PlatformAuthenticator.minimum_password_length = state["minimum_password_length"]
c.PlatformAuthenticator.check_common_password = True
c.PlatformAuthenticator.allowed_failed_logins = state["login_attempts"]
c.PlatformAuthenticator.seconds_before_next_try = state["lockout_seconds"]
c.Authenticator.admin_users = {state["admin_user"]}
c.Authenticator.username_pattern = accounts.user_name_pattern(state["account_prefix"])
if state["users"]:
    c.Authenticator.allowed_users = set(state["users"])
else:
    c.Authenticator.allow_all = True  # NativeAuthenticator's admin approval is the gate

c.JupyterHub.active_server_limit = limits["servers"]
c.Spawner.cmd = [state["user_bin"] + "/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120


def _public_address(spawner) -> str:
    """Dashboard links through the user's own server (heliohub.up.jupyter's dask-gateway proxy)."""
    return f"{state['hub_url']}/user/{spawner.user.name}/dask-gateway"


c.Spawner.environment = {**state["user_environment"], "DASK_GATEWAY__PUBLIC_ADDRESS": _public_address,
                         "JUPYTER_CONFIG_PATH": state["jupyter_config_path"],
                         **({"JUPYTER_PATH": state["jupyter_path"]} if state["jupyter_path"] else {})}
if state["dashboard_secret"]:
    c.Spawner.environment[KEY_ENVIRONMENT] = lambda spawner: user_key(state["dashboard_secret"], spawner.user.name)

if state["isolate_users"]:
    # each user's server as their own system account, with a private home, within limits (heliohub.up.accounts)
    c.JupyterHub.spawner_class = "heliohub.up.accounts.AccountSpawner"
    c.AccountSpawner.account_prefix = state["account_prefix"]
    c.AccountSpawner.homes = str(data / "users")
    c.AccountSpawner.examples = state["examples_dir"]
    c.AccountSpawner.memory = limits["server_memory"]
    c.AccountSpawner.cpus = limits["server_cpus"]
    c.AccountSpawner.processes = limits["server_processes"]
    c.AccountSpawner.home_quota = limits["home_quota"]
else:
    # one system account for everyone (the one heliohub up runs as): for one person or a trusted group
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(data / "users" / "{username}")
    if os.geteuid() == 0:
        c.Spawner.args = ["--allow-root"]

    def copy_tutorials(spawner) -> None:
        home = Path(spawner.home_dir_template.format(username=spawner.user.name))
        home.mkdir(parents=True, exist_ok=True)
        accounts.copy_tutorials(Path(state["examples_dir"]), home, None)

    c.Spawner.pre_spawn_hook = copy_tutorials

# Dask Gateway as a hub service (the daskhub chart's wiring), the ingest's identity towards it (as in the Helm
# chart), idle-server culling, and the HAPI server over the store (read with the users' read-only keys; a hub login
# or token to reach it, at /services/hapi/hapi).
hapi_host, hapi_port = state["hapi_url"].rsplit("/", 1)[1].rsplit(":", 1)
c.JupyterHub.services = [
    {"name": "hapi", "url": state["hapi_url"], "display": True, "oauth_no_confirm": True,
     "command": [state["python"], "-m", "heliohub.cli", "serve", "--address", hapi_host, "--port", hapi_port,
                 "--max-request-mb", str(state["hapi_max_request_mb"])],
     "environment": {k: v for k, v in state["user_environment"].items() if not k.startswith("DASK_GATEWAY__")}},
    {"name": "dask-gateway", "api_token": state["gateway_token"], "display": False},
    {"name": "heliohub-ingest", "api_token": state["ingest_token"], "display": False},
    {"name": "idle-culler", "command": [state["python"], "-m", "jupyterhub_idle_culler",
                                        f"--timeout={state['cull_idle_seconds']}"]},
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=dask-gateway", "access:services!service=hapi"]},
    {"name": "heliohub-ingest", "services": ["heliohub-ingest"], "scopes": ["access:services!service=dask-gateway"]},
    {"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
]
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "access:services!service=dask-gateway", "access:services!service=hapi"]
