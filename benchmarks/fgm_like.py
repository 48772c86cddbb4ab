"""FGM-like data for benchmarks, built by repeating the real 3-day C4_CP_FGM_SPIN CEF file with shifted times.

Every value is the real file's; only the time stamps move, by the file's span per copy, so the result reads as one
long, time-sorted series. Nothing here is used by the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
FGM_CEF = DATA / "cluster" / "cef" / "C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef"
CEF_HEADERS = [DATA / "cluster" / "cef" / "headers" / sub for sub in ("irfu", "irfu/fgm")]


def _split(text: bytes) -> tuple[bytes, list[bytes]]:
    marker = text.index(b"DATA_UNTIL")
    body_start = text.index(b"\n", marker) + 1
    lines = [line for line in text[body_start:].splitlines() if line.strip() and not line.startswith(b"!")]
    return text[:body_start], lines


def shifted_records(copies: int) -> tuple[bytes, list[bytes]]:
    """The FGM file's header and its data lines repeated ``copies`` times, each copy shifted to follow the last."""
    header, lines = _split(FGM_CEF.read_bytes())
    stamps = np.array([line.split(b",", 1)[0].rstrip(b"Z").decode() for line in lines], dtype="datetime64[ms]")
    rests = np.array([line.split(b",", 1)[1] for line in lines], dtype=object)
    span = stamps[-1] - stamps[0] + np.timedelta64(4, "s")
    blocks = []
    for copy in range(copies):
        times = np.datetime_as_string(stamps + copy * span, unit="ms")
        blocks.append(b"".join(t.encode() + b"Z," + r + b"\n" for t, r in zip(times, rests, strict=True)))
    return header, blocks


def write_cef(path: Path, copies: int) -> int:
    """Write a CEF file of ``copies`` shifted copies; returns the number of records."""
    header, blocks = shifted_records(copies)
    with open(path, "wb") as out:
        out.write(header)
        for block in blocks:
            out.write(block)
    return sum(block.count(b"\n") for block in blocks)


def data_block(path: Path) -> bytes:
    """The bytes after DATA_UNTIL: what a CSV reader is given as the baseline."""
    text = path.read_bytes()
    return text[text.index(b"\n", text.index(b"DATA_UNTIL")) + 1:]


CADENCE = np.timedelta64(4, "s")


def fgm_records():
    """The real FGM file read by heliohub (its values are what every synthetic series repeats)."""
    import heliohub

    return heliohub.read_file(FGM_CEF, include_paths=[str(p) for p in CEF_HEADERS])


def daily_arrays(day: int, start: str = "2001-01-01") -> dict[str, np.ndarray]:
    """Day ``day`` of a regular 4 s series whose values repeat the real file's records in order."""
    source = _source_arrays()
    per_day = int(np.timedelta64(1, "D") // CADENCE)
    index = (np.arange(per_day) + day * per_day) % len(source["time"])
    out = {name: values[index] for name, values in source.items() if name != "time"}
    out["time"] = np.datetime64(start, "ns") + np.timedelta64(day, "D") + np.arange(per_day) * CADENCE
    return out


_SOURCE: dict[str, np.ndarray] = {}


def _source_arrays() -> dict[str, np.ndarray]:
    if not _SOURCE:
        ds = fgm_records()
        _SOURCE.update({"time": ds.time.values, **{
            name.split("__")[0]: ds[name].values for name in ds.data_vars}})
    return _SOURCE


def write_daily_cdfs(folder: Path, days: int, spacecraft: str = "C4", first_day: int = 0) -> list[Path]:
    """One CDF per day, days ``first_day`` to ``first_day + days``, in the layout of the archive's FGM CDFs (CDF_EPOCH
    times, the same variable names)."""
    import cdflib
    from cdflib.cdfwrite import CDF as CdfWriter

    folder.mkdir(parents=True, exist_ok=True)
    dataset = f"{spacecraft}_CP_FGM_SPIN"
    paths = []
    for day in range(first_day, first_day + days):
        arrays = daily_arrays(day)
        first = str(arrays["time"][0].astype("datetime64[s]")).replace("-", "").replace(":", "").replace("T", "_")
        path = folder / f"{dataset}__{first}_V01.cdf"
        paths.append(path)
        if path.exists():
            continue
        epochs = cdflib.cdfepoch.timestamp_to_cdfepoch(arrays["time"].astype("datetime64[ms]").astype(float) / 1e3)
        writer = CdfWriter(str(path.with_suffix(".part.cdf")), cdf_spec={"Majority": "row_major", "Compressed": 0})
        writer.write_globalattrs({"DATASET_ID": {0: dataset}, "MISSION": {0: "Cluster"},
                                  "OBSERVATORY": {0: f"Cluster-{spacecraft[1]}"}, "INSTRUMENT_NAME": {0: "FGM"}})
        base = {"Num_Elements": 1, "Rec_Vary": True, "Compress": 0}
        time_name = f"time_tags__{dataset}"
        writer.write_var({**base, "Variable": time_name, "Data_Type": CdfWriter.CDF_EPOCH, "Dim_Sizes": []},
                         {"FILLVAL": -1e31}, epochs)
        for name, values in arrays.items():
            if name == "time":
                continue
            kind = CdfWriter.CDF_REAL4 if values.dtype == np.float32 else CdfWriter.CDF_INT4
            writer.write_var({**base, "Variable": f"{name}__{dataset}", "Data_Type": kind,
                              "Dim_Sizes": list(values.shape[1:])},
                             {"DEPEND_0": time_name, "FILLVAL": -1e31 if kind == CdfWriter.CDF_REAL4 else -2147483648,
                              "UNITS": "nT" if name.startswith("B_") else "unitless"}, values)
        writer.close()
        path.with_suffix(".part.cdf").rename(path)
    return paths
