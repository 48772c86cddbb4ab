"""Mutants of the real archive files in data/, each read with heliohub.read_file: the fuzz test's worker.

    python tests/fuzz_reads.py SEED COUNT OUT.jsonl [FILE ...]

Writes one JSON line per mutant: the file, the mutation, and the outcome ("ok", or the exception's type and its
first line). Before each read the mutant is announced on standard error, so that if this process dies (a crash of
a library under a reader) the test names the mutant that killed it. Mutants are made from a seeded generator: a
seed gives the same mutants every time.

The mutations, by what they aim at:
- any file: bit flips, truncation, a deleted or a repeated stretch, odd bytes inserted (NUL, TAB, CR, non-UTF-8,
  high Unicode);
- CEF (plain or gzipped, text mutated before the gzip is redone): a header value, a record value or an attribute
  value replaced by odd text; per-component attribute lists (FILLVAL, VALIDMIN, SCALEMAX, ... with one value per
  component, or the wrong number); huge or zero SIZES; VALUE_TYPE changed; markers and DATA_UNTIL removed or
  changed; an INCLUDE that loops or is missing; values out of an INT's or a BYTE's range; and the same mutations in
  one of the .ceh headers the file includes;
- FITS: a header card's value replaced by odd text or a huge dimension, a TAB in a card, the END card removed;
- CDF: flips and truncations (the structure check's domain).
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ODD_BYTES = [b"\x00", b"\t", b"\r", b"\r\n", b"\xff\xfe", b"\xc3", "😀".encode(), b"\x1b[31m", b'"', b"'", b"!",
             b"$", b",", b"/", b"\\"]
ODD_VALUES = ["", "NaN", "nan", "inf", "-inf", "1e999", "-", "+", "😀", "9" * 40, "-" + "9" * 40, "'", '"', "!",
              "$", ",", "0x1F", "1,2", "2001-13-45T99:99:99Z", "9999-12-31T23:59:59Z", "300", "-129", "128",
              "2147483648", "-2147483649", "1.5", "  ", "\t", "END_OF_DATA", "\\", "START_VARIABLE"]
PER_COMPONENT = ["FILLVAL", "VALIDMIN", "VALIDMAX", "SCALEMIN", "SCALEMAX", "SIGNIFICANT_DIGITS", "UNITS",
                 "LABLAXIS", "DELTA_PLUS", "DELTA_MINUS"]


def _flip(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(out))
        out[position] ^= 1 << rng.randrange(8)
    return "bit flips", bytes(out)


def _truncate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cut = rng.randrange(len(data))
    return f"truncated at {cut}", data[:cut]


def _splice(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 4096))
    if rng.random() < 0.5:
        return f"deleted {a}:{b}", data[:a] + data[b:]
    return f"repeated {a}:{b}", data[:b] + data[a:b] + data[b:]


def _insert(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    position = rng.randrange(len(data) + 1)
    odd = rng.choice(ODD_BYTES)
    return f"inserted {odd!r} at {position}", data[:position] + odd + data[position:]


GENERIC = [_flip, _truncate, _splice, _insert]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _data_start(lines: list[str]) -> int:
    """The first record line of a CEF text (after the header), or len(lines)."""
    for index, line in enumerate(lines):
        if line.strip().upper().startswith("DATA_UNTIL"):
            return index + 1
    return len(lines)


def _cef_text(text: str, rng: random.Random) -> tuple[str, str]:
    lines = _lines(text)
    start = _data_start(lines)
    kind = rng.choice(["header value", "record value", "per-component", "sizes", "value type", "structure",
                       "range", "include"])
    assignments = [i for i, line in enumerate(lines[:start]) if "=" in line and not line.lstrip().startswith("!")]
    if kind == "record value" and start < len(lines) - 1:
        index = rng.randrange(start, len(lines))
        fields = lines[index].split(",")
        field = rng.randrange(len(fields))
        fields[field] = rng.choice(ODD_VALUES)
        lines[index] = ",".join(fields)
        return f"record line {index + 1} field {field}", "\n".join(lines)
    if kind == "per-component" and assignments:
        index = rng.choice(assignments)
        indent = lines[index][:len(lines[index]) - len(lines[index].lstrip())]
        values = ", ".join(rng.choice(["-1e31", "999.99", "0", "'x'", "1"]) for _ in range(rng.randint(1, 5)))
        lines.insert(index + 1, f"{indent}{rng.choice(PER_COMPONENT)} = {values}")
        return f"per-component attribute after line {index + 1}", "\n".join(lines)
    if kind == "sizes":
        candidates = [i for i in assignments if lines[i].split("=")[0].strip().upper() == "SIZES"] or assignments
        if candidates:
            index = rng.choice(candidates)
            lines[index] = f"SIZES = {rng.choice(['0', '-1', '999999999', '99999 99999', '3 0', '', 'x', '2,3'])}"
            return f"SIZES at line {index + 1}", "\n".join(lines)
    if kind == "value type":
        candidates = [i for i in assignments if lines[i].split("=")[0].strip().upper() == "VALUE_TYPE"]
        if candidates:
            index = rng.choice(candidates)
            kinds = ["INT", "BYTE", "FLOAT", "CHAR", "ISO_TIME", "ISO_TIME_RANGE", "BOGUS", ""]
            lines[index] = f"VALUE_TYPE = {rng.choice(kinds)}"
            return f"VALUE_TYPE at line {index + 1}", "\n".join(lines)
    if kind == "structure":
        keys = ("DATA_UNTIL", "END_OF_RECORD_MARKER", "END_VARIABLE", "START_VARIABLE", "END_META", "START_META")
        candidates = [i for i in assignments if lines[i].split("=")[0].strip().upper() in keys]
        if candidates:
            index = rng.choice(candidates)
            if rng.random() < 0.5:
                del lines[index]
                return f"removed line {index + 1}", "\n".join(lines)
            key = lines[index].split("=")[0]
            lines[index] = f"{key}= {rng.choice(ODD_VALUES)}"
            return f"changed line {index + 1}", "\n".join(lines)
    if kind == "range" and start < len(lines) - 1:
        index = rng.randrange(start, len(lines))
        fields = lines[index].split(",")
        field = rng.randrange(len(fields))
        fields[field] = rng.choice(["300", "-129", "128", "2147483648", "-2147483649", "99999999999999999999"])
        lines[index] = ",".join(fields)
        return f"out-of-range value, record line {index + 1} field {field}", "\n".join(lines)
    if kind == "include":
        position = rng.randrange(max(1, start))
        name = rng.choice(['"missing.ceh"', '"../../../etc/passwd"', '""', "'loop.ceh'", '"LOOP.CEH"'])
        lines.insert(position, f"INCLUDE = {name}")
        return f"INCLUDE {name} at line {position + 1}", "\n".join(lines)
    if assignments:
        index = rng.choice(assignments)
        key = lines[index].split("=")[0]
        lines[index] = f"{key}= {rng.choice(ODD_VALUES)}"
        return f"header value at line {index + 1}", "\n".join(lines)
    return _cef_text(text, rng)


def _fits(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cards = [data[i:i + 80] for i in range(0, min(len(data), 2880 * 4), 80)]
    end = next((i for i, card in enumerate(cards) if card.startswith(b"END ")), len(cards))
    index = rng.randrange(max(1, end))
    card = cards[index] if index < len(cards) else b" " * 80
    kind = rng.choice(["value", "dimension", "tab", "end"])
    if kind == "end" and end < len(cards):
        new = b" " * 80
        index = end
    elif kind == "dimension":
        new = f"{rng.choice(['NAXIS1', 'NAXIS2', 'NAXIS', 'BITPIX', 'NAXIS3']):<8}= "
        new = (new + f"{rng.choice(['99999999', '-1', '0', '3', '2147483647', '64', '-64', '17']):>20}").encode()
    elif kind == "tab":
        position = rng.randrange(80)
        new = card[:position] + b"\t" + card[position + 1:]
    else:
        new = card[:10] + rng.choice(ODD_VALUES).encode("utf-8", "replace")[:70]
    new = new[:80].ljust(80)
    offset = index * 80
    return f"FITS card {index} ({kind})", data[:offset] + new + data[offset + 80:]


def mutants(path: Path, rng: random.Random, count: int, headers: list[Path]):
    """``count`` (description, bytes, header folder or None) mutants of the file at ``path``."""
    raw = path.read_bytes()
    gzipped = raw.startswith(b"\x1f\x8b")
    content = gzip.decompress(raw) if gzipped else raw
    suffix = path.name.lower().removesuffix(".gz").rsplit(".", 1)[-1]
    for _ in range(count):
        header_folder = None
        if suffix == "cef" and rng.random() < 0.6:
            if rng.random() < 0.15 and headers:
                # one of the headers this file may include, mutated in a copy of the header folders
                header_folder = Path(tempfile.mkdtemp(prefix="fuzz-headers-"))
                for folder in headers:
                    shutil.copytree(folder, header_folder / folder.name, dirs_exist_ok=True)
                chosen = rng.choice(sorted(header_folder.rglob("*.ceh")))
                if rng.random() < 0.2:  # a header that includes itself
                    what, text = "includes itself", f'INCLUDE = "{chosen.name}"\n' + chosen.read_text("latin-1")
                else:
                    what, text = _cef_text(chosen.read_text("latin-1"), rng)
                chosen.write_bytes(text.encode("utf-8"))
                yield f"{chosen.name}: {what}", raw, header_folder
                continue
            what, text = _cef_text(content.decode("latin-1"), rng)
            mutated = text.encode("utf-8")
        elif suffix in ("fits", "fts") and rng.random() < 0.5:
            what, mutated = _fits(content, rng)
        else:
            what, mutated = rng.choice(GENERIC)(content, rng)
        if gzipped and rng.random() < 0.8:  # mostly the content inside the gzip; sometimes the gzip itself
            mutated = gzip.compress(mutated)
        elif gzipped:
            what, mutated = rng.choice(GENERIC)(raw, rng)
            what = f"gzip: {what}"
        yield what, mutated, header_folder


def main(seed: int, count: int, out: Path, files: list[Path]) -> None:
    import heliohub
    from heliohub.errors import FileReadError
    from heliohub.up import demo

    headers = [Path(p) for p in demo.include_paths()]
    rng = random.Random(seed)
    scratch = Path(tempfile.mkdtemp(prefix="fuzz-"))
    warnings.simplefilter("ignore")  # ReaderWarnings and library warnings are expected on mutants
    with open(out, "w") as results:
        for path in files:
            for number, (what, data, header_folder) in enumerate(mutants(path, rng, count, headers)):
                target = scratch / path.name
                target.write_bytes(data)
                include = [str(p) for p in header_folder.rglob("*") if p.is_dir()] if header_folder else \
                    [str(p) for p in headers]
                print(f"{path.name} #{number}: {what}", file=sys.stderr, flush=True)
                try:
                    ds = heliohub.read_file(target, include_paths=include)
                    outcome = "ok"
                    ds.close()
                except FileReadError as error:
                    outcome = f"FileReadError: {str(error).splitlines()[0][:200]}"
                except BaseException as error:  # what the test exists to find
                    outcome = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
                results.write(json.dumps({"file": path.name, "number": number, "mutation": what,
                                          "outcome": outcome}) + "\n")
                results.flush()
                if header_folder is not None:
                    shutil.rmtree(header_folder, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
