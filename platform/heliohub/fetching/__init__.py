"""Fetching from the ESA heliophysics archives' public interfaces: the Cluster Science Archive (``csa``), the Solar
Orbiter Archive (``soar``), the SOHO Science Archive (``soho``) and the PROBA2 Science Center (``proba2``), each a
small source module behind one interface (:mod:`heliohub.fetching.base`), sharing one pipeline
(:mod:`heliohub.fetching.pipeline`): resumable, checked downloads handed to ``heliohub ingest``."""

from .pipeline import SOURCES, FetchReport, ItemResult, fetch, main_fetch

__all__ = ["SOURCES", "FetchReport", "ItemResult", "fetch", "main_fetch"]
