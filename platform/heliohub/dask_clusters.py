"""The Dask cluster a command works on: a scheduler's address, or a new Dask Gateway cluster of the user's (the
gateway and the credentials from the ``DASK_GATEWAY__*`` settings), shut down when the command ends."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from .errors import ClusterError

WORKER_WAIT = 600  # seconds a new Dask Gateway cluster may take to start its first worker


@contextlib.contextmanager
def dask_client(address: str | None, gateway_workers: int, command: str) -> Iterator[Any]:
    """No client, a client of the scheduler at ``address``, or a new Dask Gateway cluster of that many workers
    (the gateway from the ``DASK_GATEWAY__*`` settings), shut down when the command ends."""
    if address:
        from dask.distributed import Client

        with Client(address) as client:
            yield client
        return
    if not gateway_workers:
        yield None
        return
    try:
        import dask
        from dask_gateway import Gateway
    except ImportError:
        raise ClusterError("--gateway-workers needs dask-gateway: pip install 'heliohub[notebook]'") from None
    try:
        gateway = Gateway()
        cluster = gateway.new_cluster(shutdown_on_close=True)
    except Exception as error:  # connection, authentication and gateway errors alike
        where = dask.config.get("gateway.address", None) or "(DASK_GATEWAY__ADDRESS is not set)"
        raise ClusterError(f"cannot start a Dask Gateway cluster at {where}: {error}; check the DASK_GATEWAY__* "
                           "settings and the token (JUPYTERHUB_API_TOKEN)") from None
    try:
        cluster.scale(gateway_workers)
        with cluster.get_client() as client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT)
            except TimeoutError:
                raise ClusterError(f"the Dask Gateway cluster {cluster.name} has no worker after {WORKER_WAIT} s; "
                                   "check the gateway's resources and limits") from None
            print(f"heliohub {command}: working on Dask Gateway cluster {cluster.name} ({gateway_workers} workers)",
                  file=sys.stderr, flush=True)
            yield client
    finally:
        cluster.shutdown()
        gateway.close()
