"""The field's clients pointed at the platform as their users run them, from their own environment
(.venv-clients, made by `python3 dev.py test` from requirements/clients.lock), without changing their code.

pySPEDAS's CSA loader (`pyspedas.projects.cluster.load_csa`) has the CSA's URL written into it, as speasy's CSA
provider has; neither takes another. It is pointed at the platform as an institution's proxy would: HTTPS_PROXY
names a proxy on 127.0.0.1 that answers for csa.esac.esa.int with a certificate of its own (REQUESTS_CA_BUNDLE) and
hands the request to `heliohub serve`, which answers the CSA's path (/csa-sl-tap/data). Nothing leaves the machine:
the proxy refuses any other host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .conftest import stored
from .serve_helpers import InterceptingProxy, Server
from .store_helpers import ROOT

CLIENTS = ROOT / ".venv-clients" / "bin" / "python"

LOAD_CSA = """
import json, sys
import numpy as np
from pyspedas.projects.cluster import load_csa
files = load_csa(trange=["2001-06-11T20:00:00", "2001-06-11T21:00:00"], probes=["C1", "C2"],
                 datatypes=["CP_FGM_SPIN"], downloadonly=True)
loaded = load_csa(trange=["2001-06-11T20:00:00", "2001-06-11T21:00:00"], probes=["C1", "C2"],
                  datatypes=["CP_FGM_SPIN"], notplot=True)
out = {"files": sorted(f.replace("\\\\", "/").rsplit("/", 1)[1] for f in files), "variables": {}}
for name, variable in loaded.items():
    if name.startswith("B_vec_xyz_gse"):
        out["variables"][name] = {"times": np.asarray(variable["x"]).astype("datetime64[ns]").astype("int64").tolist(),
                                  "values": np.asarray(variable["y"], dtype="float64").tolist()}
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def served(demo_archive):
    running = Server(demo_archive)
    yield running
    running.close()


@pytest.mark.skipif(not CLIENTS.exists(), reason="the clients' environment is made by `python3 dev.py test`")
def test_pyspedas_load_csa_gets_the_platforms_cluster_data(served, demo_archive, tmp_path):
    proxy = InterceptingProxy(["csa.esac.esa.int"], served.port, tmp_path)
    try:
        environment = {key: value for key, value in os.environ.items() if "PROXY" not in key.upper()}
        environment.update(HTTPS_PROXY=proxy.url, https_proxy=proxy.url, REQUESTS_CA_BUNDLE=str(proxy.ca_file),
                           SPEDAS_DATA_DIR=str(tmp_path / "spedas"), NO_PROXY="", no_proxy="")
        result = subprocess.run([str(CLIENTS), "-c", LOAD_CSA], capture_output=True, text=True, timeout=600,
                                env=environment, cwd=tmp_path)
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert proxy.refused == []
    got = json.loads(result.stdout)
    assert got["files"] == ["C1_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf",
                            "C2_CP_FGM_SPIN__20010611_200000_20010611_210000_V070906.cdf"]
    assert sorted(got["variables"]) == ["B_vec_xyz_gse__C1_CP_FGM_SPIN", "B_vec_xyz_gse__C2_CP_FGM_SPIN"]
    for name, variable in got["variables"].items():
        dataset_id = name.split("__")[1]
        store = stored(demo_archive, dataset_id, "2001-06-11T20:00:00", "2001-06-11T21:00:00")
        np.testing.assert_array_equal(np.asarray(variable["times"], dtype="datetime64[ns]"), store["time"].values)
        np.testing.assert_array_equal(np.asarray(variable["values"]), store[name].values.astype("float64"))
    assert Path(tmp_path / "spedas").exists()
