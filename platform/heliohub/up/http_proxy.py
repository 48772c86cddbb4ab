"""The hub's proxy on one machine: configurable-http-proxy's Python port, answering websocket subprotocols.

The Python port (PyPI ``configurable-http-proxy`` 0.4.0; no Node.js needed) has two websocket faults that the
Node.js proxy does not:

- it forwards a websocket's requested subprotocols to the server behind it, but never answers one to the browser.
  A browser that asks for a subprotocol and gets none closes the connection ("Sent non-empty
  'Sec-WebSocket-Protocol' header but no response was received"): Bokeh asks for one, so no Dask dashboard (nor
  any Bokeh server) works through the hub;
- it relays the browser's binary frames to the server as text frames. Once the first fault is fixed, JupyterLab
  and Jupyter Server agree on the binary kernel protocol (``v1.kernel.websocket.jupyter.org``), and every kernel
  message then reaches the server as text ("cannot convert 'str' object to bytes"): no kernel runs.

This module runs the proxy with its handler answering the subprotocol the server behind it chose (the proxy
connects to the server before it answers the browser, so it knows it) and relaying frames with their own kind.

It is the one place heliohub reaches into configurable-http-proxy (its ``ProxyHandler`` and the module that
builds its application); pyproject caps it below 0.5, and tests/test_browser.py runs a notebook and opens a
dashboard through it.
"""

from __future__ import annotations

import sys

from configurable_http_proxy import configproxy
from configurable_http_proxy.cli import main as proxy_main
from configurable_http_proxy.handlers import ProxyHandler


class SubprotocolProxyHandler(ProxyHandler):
    """configurable-http-proxy's handler, answering the server's websocket subprotocol and keeping binary frames."""

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        backend = getattr(self, "ws_client", None)
        return backend.selected_subprotocol if backend is not None else None

    def on_message(self, message: str | bytes) -> None:
        backend = self.ws_client
        if backend is None:
            return
        prefix = self.target["prefix"] if self.target else ""
        if prefix:
            self.proxy.update_last_activity(prefix)
        backend.write_message(message, binary=isinstance(message, bytes))


def main() -> int:
    configproxy.ProxyHandler = SubprotocolProxyHandler  # what PythonProxy builds its application with
    return proxy_main()


if __name__ == "__main__":
    sys.exit(main())
