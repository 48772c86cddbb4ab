"""The "Python 3 (heliohub)" kernel (heliohub.kernel), started by jupyter_client from kernels/ as JupyterLab does."""

from __future__ import annotations

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
