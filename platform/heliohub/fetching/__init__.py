"""Fetching from the ESA heliophysics archives' public interfaces: the Cluster Science Archive (``csa``), the Solar
Orbiter Archive (``soar``), the SOHO Science Archive (``soho``) and the PROBA2 Science Center (``proba2``), each a
small source module behind one interface (:mod:`heliohub.fetching.base`), registered under the entry point group
``heliohub.sources`` (:mod:`heliohub.fetching.registry`), sharing one pipeline (:mod:`heliohub.fetching.pipeline`):
resumable, checked downloads handed to ``heliohub ingest``; :mod:`heliohub.fetching.check` asks each archive the
questions the fetchers depend on."""

from __future__ import annotations

from typing import Any

from .registry import archive_source, source_names

__all__ = ["FetchReport", "ItemResult", "archive_source", "fetch", "main_fetch", "source_names"]


def __getattr__(name: str) -> Any:
    if name in ("FetchReport", "ItemResult", "fetch", "main_fetch"):  # the pipeline imports the store: on demand
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
