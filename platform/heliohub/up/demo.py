"""The demo archive ``heliohub up`` fills on its first start, offline: every real file in the repository's ``data/``
(Cluster C1-C4 CEF and CDF, SOHO, PROBA-2, Solar Orbiter, Ulysses; provenance in ``data/README.md``) and the real
SOHO, PROBA-2, Solar Orbiter and Parker Solar Probe files that ship with sunpy. The tutorials run against it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data"
CEF_HEADERS = DATA / "cluster" / "cef" / "headers"
SUNPY_FILES = ["EIT/efz20040301.000010_s.fits", "EIT/efz20040301.010016_s.fits",
               "lyra_20150101-000000_lev3_std_truncated.fits.gz", "solo_L2_epd-ept-north-hcad_20200713_V02.cdf",
               "psp_fld_l2_mag_rtn_1min_20200104_v02.cdf"]


def include_paths() -> list[str]:
    """Every folder of CEF headers (.ceh) under data/, for the CEF files' INCLUDEs."""
    return [str(p) for p in sorted([CEF_HEADERS, *CEF_HEADERS.rglob("*")]) if p.is_dir()]


def inputs() -> tuple[list[str], list[str]]:
    """The demo's files and folders, and what could not be had (said to the operator)."""
    found, missing = [], []
    if DATA.is_dir():
        found.append(str(DATA))
    else:
        missing.append(f"the repository's real archive files ({DATA} is absent)")
    try:
        import sunpy.data.test
    except ImportError:
        missing.append("sunpy's real SOHO, PROBA-2, Solar Orbiter and Parker Solar Probe files (pip install sunpy)")
        return found, missing
    base = Path(sunpy.data.test.__file__).parent
    found += [str(base / name) for name in SUNPY_FILES if (base / name).exists()]
    missing += [f"sunpy's {name}" for name in SUNPY_FILES if not (base / name).exists()]
    return found, missing
