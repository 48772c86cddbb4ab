"""Quicklooks and inventory plots from the archive store, in the notebook and as files.

``quicklook(ids, start, end)`` draws each dataset's key variables (chosen from its metadata:
:mod:`heliohub.plots.panels`) as stacked panels on one linked time axis, reduced on the server side to what the
figure can show (:mod:`heliohub.plots.reduce`); ``inventory(ids)`` draws when each dataset has data, from the
catalog alone; ``cross_calibration`` draws one quantity of several spacecraft and their differences, as the
CSA's cross-calibration plots do. ``save_figure`` writes either as PNG (matplotlib: no browser, no network) or HTML
(bokeh, resources inline: works offline); ``save_quicklook`` uses a pre-generated quicklook when the store has one
for that window.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["cross_calibration", "inventory", "quicklook", "save_figure", "save_quicklook"]


def __getattr__(name: str) -> Any:
    # holoviews, bokeh and matplotlib are imported only when a figure is made
    if name == "cross_calibration":
        return import_module(".crosscal", __name__).cross_calibration
    if name in __all__:
        return getattr(import_module(".figures", __name__), name)
    raise AttributeError(f"module 'heliohub.plots' has no attribute {name!r}")
