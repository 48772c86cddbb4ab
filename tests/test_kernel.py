"""The "Python 3 (heliohub)" kernel (heliohub.kernel), started by jupyter_client from kernels/ as JupyterLab does."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
from jupyter_client.manager import start_new_kernel

from .store_helpers import ROOT

pytestmark = pytest.mark.slow  # starts a kernel process


def test_a_first_cell_run_at_once_waits_for_the_warm_up_instead_of_importing_beside_it(tmp_path, monkeypatch):
    # A cell importing heliohub's modules while the warm-up thread imported them once took a partly initialised
    # numcodecs (ImportError "partially initialized module"): the first cell must find the imports made.
    monkeypatch.setenv("JUPYTER_PATH", str(ROOT))
    monkeypatch.setenv("HELIOHUB_ARCHIVE", str(tmp_path / "no-archive-here"))
    manager, client = start_new_kernel(kernel_name="heliohub", cwd=str(tmp_path))
    try:
        code = ("import sys\n"
                "seen = ('heliohub.store.access' in sys.modules, 'zarr' in sys.modules, type(open_dataset).__name__)")
        reply = client.execute_interactive(code, user_expressions={"seen": "seen"}, timeout=120)
        content = reply["content"]
        assert content["status"] == "ok", content
        assert content["user_expressions"]["seen"]["data"]["text/plain"] == "(True, True, 'function')"
        # the warm-up is over: a later cell does not wait, and the names are the real objects
        reply = client.execute_interactive("x = np.arange(3)", user_expressions={"t": "type(np).__name__"},
                                           timeout=30)
        assert reply["content"]["user_expressions"]["t"]["data"]["text/plain"] == "'module'"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _answers_once_then_falls_silent(endpoint: socket.socket) -> None:
    """An S3 endpoint that answers heliohub's first contact, then accepts connections and never answers them."""
    held = []
    first, _ = endpoint.accept()
    with first:
        request = b""
        while b"\r\n\r\n" not in request:
            received = first.recv(4096)
            if not received:  # the check went away without asking: nothing to answer
                return
            request += received
        first.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(OSError):  # until the test closes the endpoint
        while True:
            held.append(endpoint.accept()[0])


def test_a_catalog_that_never_comes_holds_a_first_cell_back_for_a_few_seconds_and_says_so(tmp_path, monkeypatch):
    from heliohub.kernel import CATALOG_WAIT

    # the warm-up's catalog read never ends (heliohub names an endpoint silent from the start: test_any_file.py)
    with socket.socket() as endpoint:
        endpoint.bind(("127.0.0.1", 0))
        endpoint.listen(64)
        threading.Thread(target=_answers_once_then_falls_silent, args=(endpoint,), daemon=True).start()
        for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{endpoint.getsockname()[1]}",
                            "AWS_ACCESS_KEY_ID": "heliohub-test", "AWS_SECRET_ACCESS_KEY": "heliohub-test",
                            "AWS_REGION": "us-east-1", "HELIOHUB_ARCHIVE": "s3://silent/archive",
                            "JUPYTER_PATH": str(ROOT)}.items():
            monkeypatch.setenv(name, value)
        manager, client = start_new_kernel(kernel_name="heliohub", cwd=str(tmp_path))
        said: list[str] = []

        def collect(message: dict) -> None:
            if message["msg_type"] == "stream":
                said.append(message["content"]["text"])

        try:
            reply = client.execute_interactive("x = int(np.arange(3).sum())", user_expressions={"x": "x"},
                                               timeout=CATALOG_WAIT + 60, output_hook=collect)
            assert reply["content"]["status"] == "ok", reply["content"]
            assert reply["content"]["user_expressions"]["x"]["data"]["text/plain"] == "3"
            assert any("catalog is still being read" in text for text in said), said
            reply = client.execute_interactive("y = 1", timeout=10, output_hook=collect)  # waits no more
            assert reply["content"]["status"] == "ok"
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
