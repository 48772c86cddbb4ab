"""A Dask preload: a cluster's HTTP endpoints (the dashboard, its websockets, metrics) answer only its owner.

Dask's scheduler, nannies and workers serve their dashboards on loopback ports with no authentication, and the
Dask Gateway proxy forwards ``/clusters/<name>/`` to them for anyone: on one machine every account could watch, and
act through, every other user's cluster. ``heliohub up`` gives each cluster the key of its owner
(``HELIOHUB_DASHBOARD_KEY``, derived from the platform's secret and the user name by :func:`user_key`, in the
cluster's environment, which only the owner's account and root can read); this preload (``--preload
heliohub.up.dashboard_guard``) refuses, with 403, every HTTP request that does not carry it in the
``X-Heliohub-Dashboard-Key`` header. The owner's Jupyter server adds the header to what it proxies to the gateway
(jupyter-server-proxy's ``request_headers_override``, :mod:`heliohub.up.jupyter`), so the owner reaches the dashboard
through the hub, which authenticates them, and nobody else reaches it at all.

The guard wraps the ``find_handler`` of the node's tornado application (distributed's ``http_application``), which
routes every request, dashboards and websockets included.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

from tornado import web

KEY_HEADER = "X-Heliohub-Dashboard-Key"
KEY_ENVIRONMENT = "HELIOHUB_DASHBOARD_KEY"

log = logging.getLogger(__name__)


def user_key(secret: str, user: str) -> str:
    """The dashboard key of a hub user's clusters."""
    return hmac.new(secret.encode(), f"dask-dashboard:{user}".encode(), hashlib.sha256).hexdigest()


class _Refused(web.RequestHandler):
    def prepare(self) -> None:
        raise web.HTTPError(403, reason="this Dask cluster answers its owner only, through their Jupyter server")


def guard(application: web.Application, key: str) -> None:
    """Make ``application`` refuse every request without ``key`` in the key header."""
    expected = key.encode()
    route = application.find_handler

    def find_handler(request, **kwargs):
        given = request.headers.get(KEY_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return application.get_handler_delegate(request, _Refused)
        return route(request, **kwargs)

    application.find_handler = find_handler


def dask_setup(node) -> None:
    """Guard the node's HTTP server (scheduler, nanny or worker) with the owner's key from the environment."""
    key = os.environ.get(KEY_ENVIRONMENT)
    application = getattr(node, "http_application", None)
    if not key or application is None:
        log.warning("%s: no %s in the environment; its HTTP endpoints are not guarded", type(node).__name__,
                    KEY_ENVIRONMENT)
        return
    guard(application, key)
