"""The archive store: a Zarr copy of the archives in Icechunk repositories, one per dataset ID, and a catalog.

Its two faces are :mod:`.ingest` (archive files in: read, merged, committed) and :mod:`.access` (datasets out:
``open_dataset``, ``search``, ``describe``). Between them, in the order a write goes through them: :mod:`.location`
(where the store is and how to reach it), :mod:`.lock` (one writer per repository in a folder store),
:mod:`.provenance` (the files each dataset came from), :mod:`.merge` (records into a group), :mod:`.chunks` (whole
chunks encoded and stored), :mod:`.time_index` (each time chunk's first and last time and gaps), :mod:`.layout`
(chunking and compression) and :mod:`.catalog` (one row per dataset). ``docs/store-layout.md`` describes what is
stored where.
"""
