"""A gallery page of a store's quicklooks: one PNG per dataset over its whole coverage, and the inventory, with a
Markdown page listing them (``docs/gallery/`` is this page for the demo archive, written by the tests).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..store.access import cached_catalog
from ..store.location import StoreLocation
from .figures import inventory, quicklook, save_figure

log = logging.getLogger(__name__)

PAGE = "README.md"
INTRO = """# Quicklook gallery

Every dataset of the demo archive (`heliohub up`'s archive: the real files of `data/` and those sunpy ships), drawn
by `heliohub.quicklook` over its whole coverage, as `heliohub quicklook ID --out ID.png` writes it. This page and
its images are written by the tests (`tests/test_plots.py`) from the demo archive; what the figures show is said in
`platform/heliohub/plots/panels.py` (space physics) and `platform/heliohub/plots/images.py` (solar images).

![inventory](inventory.png)
"""


def build(out: str | Path, *, archive: str | StoreLocation | None = None) -> Path:
    """Write the quicklook of every dataset of the store (PNG), the inventory and the page listing them into
    ``out``; returns the page. Datasets without records are listed without a figure."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = StoreLocation.resolve(archive)
    catalog = cached_catalog(store).sort_values("dataset_id")
    save_figure(inventory(archive=store), out / "inventory.png")
    lines = [INTRO, "| dataset | title | coverage (UTC) |", "|---|---|---|"]
    figures = []
    for row in catalog.itertuples():
        if pd.isna(row.start):
            lines.append(f"| {row.dataset_id} | {row.title} | no records |")
            continue
        name = f"{row.dataset_id}.png"
        log.info("drawing %s", row.dataset_id)
        save_figure(quicklook(row.dataset_id, row.start, row.end, archive=store), out / name)
        title = str(row.title).replace("|", "\\|")
        lines.append(f"| [{row.dataset_id}](#{row.dataset_id.lower()}) | {title} | {_span(row.start, row.end)} |")
        figures += [f"## {row.dataset_id}", "", f"![{row.dataset_id}]({name})", ""]
    page = out / PAGE
    page.write_text("\n".join([*lines, "", *figures]))
    return page


def _span(start: object, end: object) -> str:
    return f"{pd.Timestamp(start):%Y-%m-%d %H:%M:%S} to {pd.Timestamp(end):%Y-%m-%d %H:%M:%S}"
