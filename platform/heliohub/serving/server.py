"""``heliohub serve``: the archive store over HTTP as a HAPI 3.1 server (:mod:`heliohub.serving.hapi`) at
``<prefix>hapi/``, and answering the CSA's product requests (:mod:`heliohub.serving.products`) at
``<prefix>csa/data`` (and at the CSA's own path, ``<prefix>csa-sl-tap/data``, so that a CSA URL with only its host
changed reaches it), on tornado.

Run alone (``heliohub serve --archive ...``), it answers anyone who can reach its address. Run by JupyterHub as a
service (``JUPYTERHUB_SERVICE_PREFIX`` and ``JUPYTERHUB_API_TOKEN`` set, as ``heliohub up`` and the Helm chart do),
it serves under the service's prefix and asks for a hub login: a browser goes through the hub's OAuth, a program
sends a hub API token (``Authorization: token ...``, or ``?token=``, which is taken off before the HAPI request is
checked). Data are streamed block by block; a client that goes away stops the stream and frees what it held.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from tornado import iostream, web

from ..errors import CaveatWarning, HeliohubError
from .hapi import STATUS, HapiError, HapiService, Limits, header_lines, status
from .products import ProductRefused, product

log = logging.getLogger(__name__)

LANDING = """<!DOCTYPE html><html><head><title>heliohub HAPI server</title></head><body>
<h1>heliohub HAPI server</h1><p>A <a href="https://hapi-server.org">HAPI 3.1</a> server over a heliohub archive
store.</p><ul><li><a href="capabilities">capabilities</a></li><li><a href="about">about</a></li>
<li><a href="catalog">catalog</a></li></ul><p>Example: <code>info?dataset=ID</code>,
<code>data?dataset=ID&amp;start=2001-06-11T20:00Z&amp;stop=2001-06-11T21:00Z</code>.</p></body></html>"""


def _reason(http_status: int, code: int) -> str:
    return f"{HTTPStatus(http_status).phrase}; HAPI {code} {STATUS[code]}"


def make_app(service: HapiService, prefix: str = "/", hub_login: bool = False) -> web.Application:
    """The tornado application serving ``service`` under ``prefix`` (``<prefix>hapi/...``)."""
    base: type = web.RequestHandler
    if hub_login:
        from jupyterhub.services.auth import HubOAuthenticated

        base = type("HubHandler", (HubOAuthenticated, web.RequestHandler), {})

    def authenticated(method: Callable[..., Any]) -> Callable[..., Any]:
        return web.authenticated(method) if hub_login else method

    class Handler(base):  # type: ignore[misc, valid-type]
        def set_default_headers(self) -> None:
            self.set_header("Access-Control-Allow-Origin", "*")  # HAPI 3.1 section 5.1

        def query(self) -> dict[str, str]:
            arguments = {k: v for k, v in self.request.query_arguments.items() if not (hub_login and k == "token")}
            repeated = [k for k, v in arguments.items() if len(v) > 1]
            if repeated:
                raise HapiError(1400, f"{', '.join(repeated)} given more than once")
            return {k: v[0].decode("utf-8", "replace") for k, v in arguments.items()}

        def answer_json(self, body: dict[str, Any], http_status: int = 200) -> None:
            code = body["status"]["code"]
            self.set_status(http_status, _reason(http_status, code))
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body, indent=1))

        def refuse(self, error: HapiError) -> None:
            log.info("%s: %s", self.request.uri, error)
            self.answer_json(status(error.code, error.detail), error.http_status)

        async def run(self, call: Callable[[], Any]) -> Any:
            return await asyncio.get_running_loop().run_in_executor(None, call)

        async def send(self, blocks: Iterator[bytes]) -> None:
            """Send the blocks as they are made (in a worker thread); a client that goes away stops them, and a
            failure cuts the stream short (the status is already sent: HAPI 3.1 section 3.7.5)."""
            try:
                while True:
                    block = await self.run(lambda: next(blocks, None))
                    if block is None:
                        break
                    if block:
                        self.write(block)
                        await self.flush()
            except iostream.StreamClosedError:
                log.info("%s: the client went away; the stream stopped", self.request.uri)
                return
            except Exception:
                log.exception("%s failed while streaming; the stream is cut short", self.request.uri)
                self.request.connection.close()
                return
            finally:
                blocks.close()  # type: ignore[attr-defined]
            self.finish()

        async def guarded(self, call: Callable[[], Any]) -> Any:
            try:
                return await self.run(call)
            except HapiError as error:
                self.refuse(error)
            except Exception as error:  # a fault of the server: answered as HAPI 1500, logged with its traceback
                log.exception("%s failed", self.request.uri)
                self.refuse(HapiError(1500, f"{type(error).__name__}: {error}"))
            return None

    class Landing(Handler):
        @authenticated
        def get(self) -> None:
            self.set_header("Content-Type", "text/html")
            self.finish(LANDING)

    class Metadata(Handler):
        @authenticated
        async def get(self, endpoint: str) -> None:
            try:
                query = self.query()
                if endpoint != "info" and query:
                    raise HapiError(1401, f"{endpoint} takes no request parameters ({', '.join(query)} given)")
            except HapiError as error:
                return self.refuse(error)
            call = {"capabilities": service.capabilities, "about": service.about, "catalog": service.catalog,
                    "info": lambda: service.info(query)}[endpoint]
            body = await self.guarded(call)
            if body is not None:
                self.answer_json(body)

    class Data(Handler):
        @authenticated
        async def get(self) -> None:
            await self.stream(send_body=True)

        @authenticated
        async def head(self) -> None:
            await self.stream(send_body=False)

        async def stream(self, send_body: bool) -> None:
            try:
                query = self.query()
            except HapiError as error:
                return self.refuse(error)
            answer = await self.guarded(lambda: service.data(query))
            if answer is None:
                return None
            self.set_status(200, _reason(200, answer.code))
            self.set_header("Content-Type", "text/csv" if answer.format == "csv" else "application/octet-stream")
            if not send_body:
                return self.finish()
            if answer.include_header:
                self.write(header_lines(answer.header))
            await self.send(answer.blocks)
            return None

    class Products(Handler):
        """CSA-style product requests (:mod:`heliohub.serving.products`) at ``<prefix>csa/data``."""

        @authenticated
        async def get(self) -> None:
            pairs = [(k, v.decode("utf-8", "replace")) for k, values in self.request.query_arguments.items()
                     if not (hub_login and k == "token") for v in values]
            try:
                answer = await self.run(lambda: product(pairs, service.store, service.limits.max_bytes))
            except ProductRefused as error:
                self.set_status(error.status)
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                return self.finish(f"{error}\n")
            except HeliohubError as error:  # the store did not answer, or a dataset could not be read
                log.exception("%s failed", self.request.uri)
                self.set_status(500)
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                return self.finish(f"the answer could not be made: {error}\n")
            self.set_header("Content-Type", answer.content_type)
            self.set_header("Content-Disposition", f'attachment; filename="{answer.file_name}"')
            await self.send(answer.blocks)
            return None

    class Unknown(Handler):
        @authenticated
        def get(self, endpoint: str) -> None:
            self.refuse(HapiError(1400, f"there is no endpoint {endpoint!r}: capabilities, about, catalog, info "
                                        "and data"))

    root = f"{prefix.rstrip('/')}/hapi"
    routes: list[Any] = [(rf"{root}/?", Landing), (rf"{root}/(capabilities|about|catalog|info)", Metadata),
                         (rf"{root}/data", Data), (rf"{root}/(.*)", Unknown),
                         (rf"{prefix.rstrip('/')}/csa/data", Products),
                         (rf"{prefix.rstrip('/')}/csa-sl-tap/data", Products)]  # the CSA's own path
    settings: dict[str, Any] = {}
    if hub_login:
        from jupyterhub.services.auth import HubOAuthCallbackHandler
        from jupyterhub.utils import url_path_join

        routes.insert(0, (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler))
        settings["cookie_secret"] = os.urandom(32)
    return web.Application(routes, **settings)


async def _serve(service: HapiService, address: str, port: int, prefix: str, hub_login: bool,
                 ready: Callable[[str], None]) -> None:
    app = make_app(service, prefix, hub_login)
    server = app.listen(port, address, xheaders=hub_login)
    ready(f"http://{address}:{port}{prefix.rstrip('/')}/hapi")
    try:
        await asyncio.Event().wait()
    finally:
        server.stop()


def main_serve(args: Any, emit: Callable[[str], Any] = print) -> int:
    """``heliohub serve``: serve the store until stopped."""
    warnings.simplefilter("ignore", CaveatWarning)  # each dataset's caveats are in its info, not the server's log
    for name in ("heliohub", "tornado.access"):  # a service's log: each request, and what became of it
        logging.getLogger(name).setLevel(logging.INFO)
    service = HapiService(args.archive or os.environ.get("HELIOHUB_ARCHIVE") or None,
                          Limits(max_bytes=int(args.max_request_mb * 1e6)))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    hub_login = bool(os.environ.get("JUPYTERHUB_API_TOKEN")) and "JUPYTERHUB_SERVICE_PREFIX" in os.environ
    port = args.port
    if port is None:
        port = int(os.environ["JUPYTERHUB_SERVICE_URL"].rsplit(":", 1)[1].split("/")[0]) \
            if os.environ.get("JUPYTERHUB_SERVICE_URL") else 8900
    try:
        asyncio.run(_serve(service, args.address, port, prefix, hub_login,
                           lambda url: emit(f"heliohub serve: HAPI 3.1 at {url} (store {service.store.url})")))
    except KeyboardInterrupt:
        return 0
    return 0
