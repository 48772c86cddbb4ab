"""Every tutorial in examples/ runs, top to bottom, with the heliohub kernel against an archive store on S3."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

import heliohub
from heliohub.up import demo

from .store_helpers import ROOT

NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


@pytest.fixture(scope="module")
def tutorial_archive(s3_endpoint):
    """The store the tutorials read: the demo archive `heliohub up` fills offline (heliohub.up.demo)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "heliohub-test",
                            "AWS_SECRET_ACCESS_KEY": "heliohub-test", "AWS_REGION": "us-east-1",
                            "HELIOHUB_ARCHIVE": "s3://tutorials/archive", "JUPYTER_PATH": str(ROOT)}.items():
            patch.setenv(name, value)
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="tutorials")
        files, missing = demo.inputs()
        assert not missing, missing
        report = heliohub.ingest(files, include_paths=demo.include_paths(), progress=False)
        # two down-sampled images cannot join the full-size images of their dataset IDs; every ID is there
        assert all("cannot join" in r.reason for r in report.refused), report.summary()
        yield os.environ["HELIOHUB_ARCHIVE"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs(tutorial_archive, path: Path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{path.name} is committed with outputs: strip them"
    if notebook.metadata.get("heliohub", {}).get("needs") == "gateway":
        pytest.skip("runs against the platform's Dask Gateway: tests/test_platform.py executes it")
    client = NotebookClient(notebook, kernel_name="heliohub", timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env={**os.environ, "HOME": str(tmp_path)})  # tutorials may write in the home
    assert notebook.cells[-1].outputs, "the last cell (the checks) printed nothing"
