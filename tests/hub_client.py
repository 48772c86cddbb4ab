"""Talking to a running heliohub as a user would: log in, spawn, run code in a kernel (no mock of our parts)."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid

import requests
import websocket


def sign_up(hub_url: str, name: str, password: str) -> str:
    """Sign ``name`` up through the hub's sign-up form; returns the message the page shows."""
    session = requests.Session()
    hub_url = hub_url.rstrip("/")
    session.get(f"{hub_url}/hub/signup", timeout=30)
    answer = session.post(f"{hub_url}/hub/signup", data={
        "username": name, "signup_password": password, "signup_password_confirmation": password,
        "_xsrf": session.cookies.get("_xsrf")}, timeout=30)
    answer.raise_for_status()
    found = re.search(r'<div class="alert [^"]*"[^>]*>\s*(.*?)\s*</div>', answer.text, re.S)
    return re.sub(r"\s+", " ", found[1]) if found else answer.text


class HubUser:
    """A user logged in through the hub's login form, with an API token of their own."""

    def __init__(self, hub_url: str, name: str, password: str) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.name = name
        self.session = requests.Session()
        self.session.get(f"{self.hub_url}/hub/login", timeout=30)
        xsrf = self.session.cookies.get("_xsrf")
        answer = self.session.post(f"{self.hub_url}/hub/login?next=", data={
            "username": name, "password": password, "_xsrf": xsrf}, allow_redirects=False, timeout=30)
        if answer.status_code != 302:
            raise PermissionError(f"login of {name!r} refused ({answer.status_code})")
        self.session.get(f"{self.hub_url}/hub/home", timeout=30)
        xsrf = self.session.cookies.get("_xsrf", path="/hub/") or self.session.cookies.get("_xsrf")
        answer = self.session.post(f"{self.hub_url}/hub/api/users/{name}/tokens",
                                   headers={"X-XSRFToken": xsrf}, json={"note": "tests"}, timeout=30)
        answer.raise_for_status()
        self.token = answer.json()["token"]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.hub_url}/hub/api{path}",
                                headers={"Authorization": f"token {self.token}"}, timeout=60, **kwargs)

    def spawn(self, timeout: float = 180) -> str:
        """Start the user's server and wait until it answers; returns its URL."""
        started = self.api("POST", f"/users/{self.name}/server")
        if started.status_code >= 400 and "is already running" not in started.text:
            raise RuntimeError(f"the server of {self.name} was not started: {started.status_code} {started.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            user = self.api("GET", f"/users/{self.name}").json()
            server = user.get("servers", {}).get("", {})
            if server.get("ready"):
                return f"{self.hub_url}{server['url']}"
            time.sleep(1)
        raise TimeoutError(f"the server of {self.name} did not start within {timeout:.0f} s")

    def stop(self) -> None:
        self.api("DELETE", f"/users/{self.name}/server")

    def server(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.hub_url}/user/{self.name}{path}",
                                headers={"Authorization": f"token {self.token}"}, timeout=60, **kwargs)

    def run(self, code: str, kernel: str = "heliohub", timeout: float = 300,
            streams: tuple[str, ...] = ("stdout",)) -> str:
        """Run ``code`` in a new kernel of the user's server; returns what it printed to ``streams`` (standard output
        only by default: warnings, such as a dataset's CaveatWarning, go to ``"stderr"``), raises on an error."""
        kernel_id = self.server("POST", "/api/kernels", json={"name": kernel}).json()["id"]
        url = f"{self.hub_url.replace('http', 'ws', 1)}/user/{self.name}/api/kernels/{kernel_id}/channels"
        socket = websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=timeout)
        try:
            message_id = uuid.uuid4().hex
            socket.send(json.dumps({
                "header": {"msg_id": message_id, "username": self.name, "session": uuid.uuid4().hex,
                           "msg_type": "execute_request", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            output: list[str] = []
            while True:
                message = json.loads(socket.recv())
                if message.get("parent_header", {}).get("msg_id") != message_id:
                    continue
                kind = message["msg_type"]
                if kind == "stream" and message["content"].get("name") in streams:
                    output.append(message["content"]["text"])
                elif kind == "error":
                    raise RuntimeError("\n".join(message["content"]["traceback"]))
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    return "".join(output)
        finally:
            socket.close()
            self.server("DELETE", f"/api/kernels/{kernel_id}")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
