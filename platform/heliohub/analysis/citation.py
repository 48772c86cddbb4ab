"""What to cite for a figure made from the store: the datasets, their archive versions, the Icechunk snapshots the
values came from (so the same bytes can be opened again: ``open_dataset(ID, version=snapshot)``) and the
acknowledgements the missions ask for, as text and BibTeX.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

from .. import __version__
from ..errors import HeliohubError
from ..store.access import cached_catalog, file_table, not_found, open_dataset
from ..store.location import StoreLocation

log = logging.getLogger(__name__)

MISSION_ACKNOWLEDGEMENTS = {
    "cluster": "Please acknowledge the instrument teams and the Cluster Science Archive, and refer to Laakso et al., "
               "2010 when mentioning the use of the Cluster Science Archive (CSA rules of the road, "
               "https://www.cosmos.esa.int/web/csa/rules-of-the-road).",
    "double star": "Please acknowledge the instrument teams and the Cluster Science Archive, which holds the Double "
                   "Star data, and refer to Laakso et al., 2010 (CSA rules of the road).",
    "soho": "SOHO is a project of international cooperation between ESA and NASA.",
    "proba2": "PROBA2 is an ESA mission; SWAP and LYRA are projects of the Centre Spatial de Liège and the Royal "
              "Observatory of Belgium, funded by the Belgian Federal Science Policy Office (BELSPO).",
    "solar orbiter": "Solar Orbiter is a space mission of international collaboration between ESA and NASA, operated "
                     "by ESA.",
    "ulysses": "Ulysses is a project of international cooperation between ESA and NASA.",
}
"""The acknowledgement each mission's data policy asks for, by the catalog's mission (lower case)."""
REFERENCES = {
    "cluster": ("laakso2010", "@incollection{laakso2010,\n  author = {Laakso, H. and Perry, C. and McCaffrey, S. and "
                "Herment, D. and Allen, A. J. and Harvey, C. C. and Escoubet, C. P. and Gruenberger, C. and "
                "Taylor, M. G. G. T. and Turner, R.},\n  title = {Cluster Active Archive: Overview},\n  booktitle = "
                "{The Cluster Active Archive},\n  series = {Astrophysics and Space Science Proceedings},\n  "
                "editor = {Laakso, H. and Taylor, M. and Escoubet, C. P.},\n  publisher = {Springer},\n  "
                "pages = {3--37},\n  year = {2010}\n}"),
}
REFERENCES["double star"] = REFERENCES["cluster"]


@dataclass
class Cited:
    """One dataset as cited."""

    dataset_id: str
    title: str
    mission: str
    snapshot: str
    file_versions: list[str]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    acknowledgement: str
    mission_acknowledgement: str


@dataclass
class Citation:
    """The datasets behind a result; ``str()`` is the text, :meth:`bibtex` the BibTeX entries."""

    datasets: list[Cited] = field(default_factory=list)
    store: str = ""

    def __str__(self) -> str:
        lines = [f"Data from the heliohub archive store {self.store} (heliohub {__version__}):"]
        for d in self.datasets:
            span = f", {d.start:%Y-%m-%d %H:%M:%S} to {d.end:%Y-%m-%d %H:%M:%S} UTC" if d.start is not None else ""
            versions = ", ".join(d.file_versions) or "not stated"
            lines.append(f"- {d.dataset_id} ({d.mission}): {d.title}{span}; archive file version(s) {versions}; "
                         f"Icechunk snapshot {d.snapshot} (open_dataset({d.dataset_id!r}, version={d.snapshot!r}))")
        notes = []
        for d in self.datasets:
            notes += [text for text in (d.acknowledgement, d.mission_acknowledgement) if text and text not in notes]
        if notes:
            lines += ["", "Acknowledgements:", *[f"- {n}" for n in notes]]
        return "\n".join(lines)

    def text(self) -> str:
        """The citation as text (the same as ``str()``)."""
        return str(self)

    def bibtex(self) -> str:
        """One ``@misc`` entry per dataset (with its snapshot), and the references the missions ask for."""
        entries = []
        for d in self.datasets:
            year = f"{d.end:%Y}" if d.end is not None else ""
            escaped = d.dataset_id.replace("_", r"\_")
            entries.append("\n".join([
                f"@misc{{{d.dataset_id.lower().replace('-', '_')}_{d.snapshot.lower()},",
                f"  title = {{{{{escaped}}}: {d.title}}},",
                f"  author = {{{{{d.mission}}} instrument team}},",
                f"  howpublished = {{heliohub archive store {self.store}, Icechunk snapshot {d.snapshot}}},",
                f"  note = {{Archive file version(s) {', '.join(d.file_versions) or 'not stated'}. "
                f"{d.acknowledgement}}},",
                f"  year = {{{year}}}", "}"]))
        seen = set()
        for d in self.datasets:
            key = d.mission.lower()
            if key in REFERENCES and REFERENCES[key][0] not in seen:
                seen.add(REFERENCES[key][0])
                entries.append(REFERENCES[key][1])
        return "\n\n".join(entries)


def _opened(datasets: xr.Dataset | str | Iterable[xr.Dataset | str]) -> list[xr.Dataset | str]:
    items = [datasets] if isinstance(datasets, xr.Dataset | str) else list(datasets)
    out: list[xr.Dataset | str] = []
    for item in items:
        if isinstance(item, xr.Dataset) and "heliohub_snapshot" not in item.attrs and item.attrs.get("dataset_ids"):
            out += list(item.attrs["dataset_ids"])  # a constellation: its datasets, as they are now
        else:
            out.append(item)
    return out


def cite(datasets: xr.Dataset | str | Iterable[xr.Dataset | str], *,
         archive: str | StoreLocation | None = None) -> Citation:
    """What to cite for datasets opened from the store (``open_dataset``'s results: the snapshot each was opened at,
    over its time range) or dataset IDs (their latest snapshot): the IDs, titles, archive file versions, snapshot
    IDs, and the acknowledgements of the datasets and of their missions. ``str()`` of the result is the text;
    ``.bibtex()`` gives BibTeX."""
    store = StoreLocation.resolve(archive)
    catalog = cached_catalog(store).set_index("dataset_id")
    cited = []
    for item in _opened(datasets):
        ds = open_dataset(item, archive=store) if isinstance(item, str) else item
        dataset_id = str(ds.attrs.get("dataset_id", ""))
        snapshot = str(ds.attrs.get("heliohub_snapshot", ""))
        if not dataset_id or not snapshot:
            raise HeliohubError("cite: this dataset was not opened from the store by heliohub.open_dataset (it has "
                                "no dataset_id or heliohub_snapshot attribute): give its dataset ID instead")
        if dataset_id not in catalog.index:
            raise not_found(store, dataset_id)
        times = ds["time"].values if "time" in ds.coords and ds.sizes.get("time") else None
        start, end = (pd.Timestamp(times.min()), pd.Timestamp(times.max())) if times is not None else (None, None)
        files = file_table(dataset_id, start, end, version=snapshot, archive=store)
        versions = sorted({str(v) for v in files.loc[files["current"], "version"] if str(v)})
        mission = str(catalog.at[dataset_id, "mission"] or "")
        cited.append(Cited(dataset_id, str(catalog.at[dataset_id, "title"] or ""), mission, snapshot, versions, start,
                           end, str(ds.attrs.get("acknowledgement", "")),
                           MISSION_ACKNOWLEDGEMENTS.get(mission.lower(), "")))
    return Citation(cited, store.url)
