"""The "Python 3 (heliohub)" kernel: IPython with ``np``, ``xr``, ``heliohub``, ``open_dataset``, ``search``,
``describe`` and xarray's ``.hvplot`` ready from the first cell, without making the kernel wait for them.

Started by ``kernels/heliohub/kernel.json`` (``python -m heliohub.kernel -f {connection_file}``). The kernel answers
as soon as plain IPython would; a thread then imports numpy, xarray and heliohub's reader side and reads the
archive's catalog. A cell run before that is over waits for it (it would have made those imports and read that
catalog itself): a cell importing beside the thread could take a module the thread is still initialising, and
Python's import locks then hand one of them a partly initialised module rather than deadlock. A catalog that takes
longer than :data:`CATALOG_WAIT` (an object store that accepts connections and does not answer) is not waited for
further: the cell says so and runs. Until the imports are done, the names are stand-ins that wait for them
(completion and inspection reach them before any cell runs), and are then replaced by the real objects.

``.hvplot`` is registered on xarray's objects by the thread as a small accessor that imports ``hvplot.xarray`` on
first use, in the cell that uses it: that import shows HoloViews' notebook extension, which must be the output of a
cell to reach the page, and costs seconds a notebook that does not plot should not pay.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)
_ready = threading.Event()
"""Set when the names are the real objects (or the imports failed)."""
_over = threading.Event()
"""Set when the warm-up thread has nothing left to do."""
_failure: list[BaseException] = []
CATALOG_WAIT = 6.0
"""Seconds a first cell waits for the catalog once the imports are done: longer than the 5 s an S3 endpoint is
given to accept a connection (``store.location.REACHABLE_TIMEOUT``), so an unreachable one has failed the read by
then."""


class _Waiting:
    """Stands for a module or function until the warm-up thread has it, then delegates to it."""

    def __init__(self, name: str, resolve) -> None:
        self._name = name
        self._resolve = resolve

    def _target(self) -> Any:
        _ready.wait()
        if _failure:
            raise ImportError(f"heliohub's kernel could not prepare {self._name}: {_failure[0]}") from _failure[0]
        return self._resolve()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __dir__(self) -> list[str]:
        return dir(self._target())

    def __repr__(self) -> str:
        return repr(self._target())


class LazyHvplot:
    """xarray's ``.hvplot``: imports ``hvplot.xarray`` (which registers hvplot's own accessor) on first use."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def _accessor(self) -> Any:
        import warnings

        import xarray as xr

        with warnings.catch_warnings():  # hvplot replaces this accessor with its own: expected
            warnings.simplefilter("ignore", xr.core.extensions.AccessorRegistrationWarning)
            import hvplot.xarray  # noqa: F401 - registers hvplot's accessor and shows its extension
        from hvplot import hvPlot

        return hvPlot(self._obj)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._accessor()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._accessor(), name)


def _warm(namespace: dict[str, Any]) -> None:
    """Import what the names stand for, register ``.hvplot``, read the catalog, and put the real objects in."""
    try:
        import numpy as np
        import xarray as xr

        for register in (xr.register_dataset_accessor, xr.register_dataarray_accessor):
            if not hasattr(xr.Dataset if register is xr.register_dataset_accessor else xr.DataArray, "hvplot"):
                register("hvplot")(LazyHvplot)
        import heliohub
        from heliohub import describe, open_dataset, search

        namespace.update(np=np, xr=xr, heliohub=heliohub, describe=describe, open_dataset=open_dataset,
                         search=search)
    except BaseException as error:  # said in the first cell that uses a name
        _failure.append(error)
        return
    finally:
        _ready.set()
    try:
        search()  # the catalog, read once: later searches and opens cost one small request
    except heliohub.HeliohubError as error:
        log.warning("the archive store is not reachable (the first search or open in a cell says why): %s", error)


def _warm_up(namespace: dict[str, Any]) -> None:
    try:
        _warm(namespace)
    finally:
        _over.set()


def prepare(shell: Any) -> threading.Thread:
    """Put the stand-ins in the namespace of ``shell`` (the kernel's IPython shell), start the warm-up, and make
    the cells run before it is over wait for it."""
    import importlib

    namespace = shell.user_ns

    def wait_for_warm_up() -> None:  # every execution, silent ones (from extensions) too
        _ready.wait()
        if not _over.wait(CATALOG_WAIT):
            print(f"heliohub: the archive's catalog is still being read after {CATALOG_WAIT:.0f} s; this cell runs "
                  "without it (the first search or open reads it)", file=sys.stderr)
        shell.events.unregister("pre_execute", wait_for_warm_up)

    for name, module in (("np", "numpy"), ("xr", "xarray"), ("heliohub", "heliohub")):
        namespace[name] = _Waiting(name, lambda module=module: importlib.import_module(module))
    for name in ("open_dataset", "search", "describe"):
        namespace[name] = _Waiting(name, lambda name=name: getattr(importlib.import_module("heliohub"), name))
    shell.events.register("pre_execute", wait_for_warm_up)
    thread = threading.Thread(target=_warm_up, args=(namespace,), name="heliohub-warm-up", daemon=True)
    thread.start()
    return thread


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    config = Config()
    config.IPKernelApp.exec_lines = ["import heliohub.kernel as _heliohub_kernel\n"
                                     "_heliohub_kernel.prepare(get_ipython())\ndel _heliohub_kernel"]
    IPKernelApp.launch_instance(argv=sys.argv[1:], config=config)


if __name__ == "__main__":
    main()
