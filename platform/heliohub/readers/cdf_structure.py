"""Check a CDF's internal record structure before pycdfpp decodes it.

pycdfpp trusts the offsets inside a file: a truncated or damaged CDF makes it read past its buffer and crash the
whole Python process (measured with pycdfpp 0.19 on the real Solar Orbiter file cut at 50 % and 90 %). Neither
pycdfpp nor cdflib offers a validation pass, so this module walks the file's record chains as the CDF Internal
Format Description defines them (CDR, GDR, VDR, VXR, VVR/CVVR, ADR, AEDR; CCR for whole-file compression) and
checks that every record lies inside the file and has the type its pointer promises. It reads headers only.
"""

from __future__ import annotations

import struct

import deflate

V3_MAGIC = b"\xcd\xf3\x00\x01"
V2_MAGICS = (b"\xcd\xf2\x60\x02", b"\x00\x00\xff\xff")
UNCOMPRESSED = b"\x00\x00\xff\xff"
COMPRESSED = b"\xcc\xcc\x00\x01"
_GZIP = 5

# Bytes per element of each CDF data type (the Internal Format Description's table).
TYPE_SIZES = {1: 1, 2: 2, 4: 4, 8: 8, 11: 1, 12: 2, 14: 4, 21: 4, 22: 8, 31: 8, 32: 16, 33: 8, 41: 1, 44: 4,
              45: 8, 51: 1, 52: 1}
_MAX_DIMS = 10
# A variable may declare records the file does not store (pad values, compression): this much more than the file's
# size, or 1 GiB for small files, is more than any real file declares.
_MOST_VALUES = 1 << 30
_MOST_EXPANSION = 1000
_MOST_DEFLATE_EXPANSION = 1032  # DEFLATE's most: a 258-byte match costs 2 bits at the least
_MOST_COPIED = 1 << 28  # bytes of a decompressed file handed to pycdfpp as they are (see checked_cdf)

# An attribute entry's fixed fields: size, type, next entry, attribute, data type, variable number, values.
_WIDE_ENTRY, _NARROW_ENTRY = struct.Struct(">qiqiiii"), struct.Struct(">iiiiiii")
# An attribute descriptor's: size, type, next descriptor, first global or rEntry, scope, number, two entry counts,
# a reserved field, first zEntry.
_WIDE_ATTRIBUTE, _NARROW_ATTRIBUTE = struct.Struct(">qiqqiiiiiq"), struct.Struct(">iiiiiiiiii")

CDR, GDR, RVDR, ADR, AGR_EDR, VXR, VVR, ZVDR, AZ_EDR, CCR, CPR, CVVR = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13


class CdfStructureError(ValueError):
    """The file's record structure is damaged; the message says where."""


class _Layout:
    """The file's bytes and its offset width: CDF 3 uses 8-byte offsets and sizes, CDF 2 uses 4-byte ones."""

    def __init__(self, data: bytes, *, wide: bool) -> None:
        self.data = data
        self.size = len(data)
        self.wide = wide
        self.offset_size = 8 if wide else 4
        self._offset = struct.Struct(">q" if wide else ">i").unpack_from
        self._head = struct.Struct(">qi" if wide else ">ii").unpack_from
        self._int32 = struct.Struct(">i").unpack_from
        self.entry_fields = _WIDE_ENTRY if wide else _NARROW_ENTRY
        self.attribute_fields = _WIDE_ATTRIBUTE if wide else _NARROW_ATTRIBUTE

    def header(self, offset: int, expected: tuple[int, ...], what: str) -> tuple[int, int]:
        """(record size, record type) at offset, checked to lie inside the file."""
        head = self.offset_size + 4
        if offset < 8 or offset + head > self.size:
            raise CdfStructureError(f"{what} at byte {offset} lies outside the file ({self.size} bytes)")
        size, kind = self._head(self.data, offset)
        if kind not in expected:
            raise CdfStructureError(f"{what} at byte {offset} has record type {kind}, expected {expected}")
        if size < head or offset + size > self.size:
            raise CdfStructureError(f"{what} at byte {offset} claims {size} bytes; the file ends at "
                                    f"{self.size} (truncated)")
        return size, kind

    def offset(self, at: int) -> int:
        return self._offset(self.data, at)[0]

    def int32(self, at: int) -> int:
        return self._int32(self.data, at)[0]


def check_cdf(data: bytes) -> None:
    """Check the CDF's record structure, that of the file inside whole-file GZIP compression included.

    Raises CdfStructureError naming what is damaged. Files compressed with another whole-file method (RLE,
    Huffman) pass once their compressed record is found complete.
    """
    _checked(data)


def checked_cdf(data: bytes) -> bytes:
    """:func:`check_cdf`, returning the bytes pycdfpp should decode: ``data`` itself, or the file a
    GZIP-compressed CDF holds, decompressed once by the check so that pycdfpp does not decompress it again."""
    checked = _checked(data)
    # libdeflate writes a bytearray, which pycdfpp's eager load refuses; one copy to bytes costs less than pycdfpp
    # decompressing the body again (1.3 against 5.4 ms on the Solar Orbiter EPD file). A very large file is
    # decompressed again instead, so that two copies of it are never held at once.
    return bytes(checked) if checked is not data and len(checked) <= _MOST_COPIED else data


def _checked(data: bytes) -> bytes | bytearray:
    """The file whose records were checked: ``data``, or the file a GZIP-compressed CDF holds."""
    if len(data) < 8:
        raise CdfStructureError(f"only {len(data)} bytes: shorter than a CDF's magic numbers")
    magic, kind = data[:4], data[4:8]
    if magic != V3_MAGIC and magic not in V2_MAGICS:
        raise CdfStructureError("not a CDF (unknown magic number)")
    layout = _Layout(data, wide=magic == V3_MAGIC)
    if kind == COMPRESSED:
        uncompressed = _decompress(layout)
        if uncompressed is None:
            return data
        _check_records(_Layout(uncompressed, wide=layout.wide))
        return uncompressed
    if kind != UNCOMPRESSED:
        raise CdfStructureError("unknown compression marker after the magic number")
    _check_records(layout)
    return data


def _decompress(layout: _Layout) -> bytearray | None:
    """The file a GZIP-compressed CDF holds: its magic numbers, marked uncompressed, then the body the compressed
    record holds; None for another compression method."""
    size, _ = layout.header(8, (CCR,), "the compressed-file record (CCR)")
    o = layout.offset_size
    cpr_offset = layout.offset(8 + o + 4)
    uncompressed_size = layout.offset(8 + o + 4 + o)
    layout.header(cpr_offset, (CPR,), "the compression parameters record (CPR)")
    method = layout.int32(cpr_offset + o + 4)
    start = 8 + o + 4 + o + o + 4
    if method != _GZIP:
        return None
    member = memoryview(layout.data)[start:8 + size]
    stream = _deflate_stream(member)
    if stream is None or uncompressed_size < 0:
        raise CdfStructureError("the compressed file body is not a GZIP member")
    if uncompressed_size > _MOST_DEFLATE_EXPANSION * len(stream) + 1024:
        raise CdfStructureError(f"the compressed file body ({len(stream)} bytes) cannot hold the "
                                f"{uncompressed_size} bytes its header promises")
    crc, length = struct.unpack_from("<II", member, len(member) - 8)
    # libdeflate decompresses into one new buffer, but only from its start: the file's first 8 bytes go in front
    # of the body as a stored block (no final-block flag, a length of 8 and its complement), so that the file is
    # made whole in that buffer without a copy of the body (a fresh copy of a large body cost more than its
    # decompression, measured on the Solar Orbiter EPD file)
    head = layout.data[:4] + UNCOMPRESSED
    try:
        file = deflate.deflate_decompress(b"\x00\x08\x00\xf7\xff" + head + stream, 8 + uncompressed_size + 1)
    except deflate.DeflateError as error:
        raise CdfStructureError(f"the compressed file body does not decompress ({error})") from error
    if len(file) - 8 != uncompressed_size or length != uncompressed_size & 0xFFFFFFFF:
        raise CdfStructureError(f"the compressed file body gives {len(file) - 8} bytes, its header promises "
                                f"{uncompressed_size}")
    if deflate.crc32(memoryview(file)[8:]) != crc:
        raise CdfStructureError("the compressed file body fails its CRC check")
    return file


def _deflate_stream(member: memoryview) -> memoryview | None:
    """The DEFLATE stream of a GZIP member (RFC 1952), without its header and trailer; None if it is none."""
    if len(member) < 18 or member[:3] != b"\x1f\x8b\x08":
        return None
    flags, at = member[3], 10
    if flags & 4:  # FEXTRA
        at += 2 + int.from_bytes(member[at:at + 2], "little")
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            end = bytes(member[at:at + 65536]).find(b"\x00")
            if end < 0:
                return None
            at += end + 1
    if flags & 2:  # FHCRC
        at += 2
    return member[at:len(member) - 8] if at <= len(member) - 8 else None


def _chain(layout: _Layout, head: int, kinds: tuple[int, ...], what: str, next_at: int = 0):
    """Yield the offset and size of each record of a linked list, refusing loops."""
    seen: set[int] = set()
    offset = head
    while offset:
        if offset in seen:
            raise CdfStructureError(f"{what} records form a loop at byte {offset}")
        seen.add(offset)
        size, _ = layout.header(offset, kinds, what)
        yield offset, size
        offset = layout.offset(offset + layout.offset_size + 4 + next_at)


def _check_records(layout: _Layout) -> None:
    o = layout.offset_size
    layout.header(8, (CDR,), "the CDF descriptor record (CDR)")
    gdr = layout.offset(8 + o + 4)
    layout.header(gdr, (GDR,), "the global descriptor record (GDR)")
    body = gdr + o + 4
    r_vdr_head, z_vdr_head, adr_head = layout.offset(body), layout.offset(body + o), layout.offset(body + 2 * o)
    end_of_file = layout.offset(body + 3 * o)
    if end_of_file > len(layout.data):
        raise CdfStructureError(f"the file is {len(layout.data)} bytes, its header says {end_of_file} (truncated)")
    r_num_dims = layout.int32(body + 4 * o + 12)
    r_dims = _dims(layout, body + 4 * o + 20 + o + 12, r_num_dims, "the rVariables' dimensions")
    counts = {}
    for head, kind, what in ((r_vdr_head, RVDR, "rVariable descriptor"), (z_vdr_head, ZVDR, "zVariable descriptor")):
        numbers = set()
        for vdr, size in _chain(layout, head, (kind,), what):
            record_bytes = _record_bytes(layout, vdr, size, r_dims if kind == RVDR else None)
            numbers.add(layout.int32(vdr + o + 4 + o + 4 + 4 + o + o + 4 * 6))
            max_record = layout.int32(vdr + o + 4 + o + 4)
            if max_record >= 0 and (max_record + 1) * record_bytes > max(_MOST_VALUES, _MOST_EXPANSION * layout.size):
                raise CdfStructureError(f"the variable descriptor at byte {vdr} declares {max_record + 1} records of "
                                        f"{record_bytes} bytes: more than the file could hold")
            vxr_head = layout.offset(vdr + o + 4 + o + 4 + 4)
            _check_index(layout, vxr_head, set(), record_bytes)
        if numbers != set(range(len(numbers))):
            raise CdfStructureError(f"the {what}s number their variables {sorted(numbers)[:8]}..., not 0 to "
                                    f"{len(numbers) - 1}")
        counts[kind] = len(numbers)
    _check_attributes(layout, adr_head, counts)


def _check_attributes(layout: _Layout, head: int, counts: dict[int, int]) -> None:
    """Each attribute descriptor (ADR) of the chain, read with one unpack, and its two chains of entries."""
    fields = layout.attribute_fields
    unpack, data, end = fields.unpack_from, layout.data, layout.size
    seen: set[int] = set()
    adr = head
    while adr:
        if adr in seen:
            raise CdfStructureError(f"attribute descriptor (ADR) records form a loop at byte {adr}")
        seen.add(adr)
        if not 8 <= adr <= end - fields.size:
            raise CdfStructureError(f"attribute descriptor (ADR) at byte {adr} lies outside the file ({end} bytes)")
        size, kind, following, agr_head, scope, *_, az_head = unpack(data, adr)
        if kind != ADR:
            raise CdfStructureError(f"attribute descriptor (ADR) at byte {adr} has record type {kind}, expected "
                                    f"{ADR}")
        if size < fields.size or adr + size > end:
            raise CdfStructureError(f"attribute descriptor (ADR) at byte {adr} claims {size} bytes; the file ends "
                                    f"at {end} (truncated)")
        # an entry of a variable's attribute names its variable by number: pycdfpp indexes with it unchecked
        if agr_head:  # most attributes have entries of one kind only
            _check_entries(layout, agr_head, AGR_EDR, None if scope in (1, 3) else counts[RVDR])
        if az_head:
            _check_entries(layout, az_head, AZ_EDR, counts[ZVDR])
        adr = following


def _dims(layout: _Layout, at: int, count: int, what: str) -> list[int]:
    if not 0 <= count <= _MAX_DIMS or at + 4 * count > len(layout.data):
        raise CdfStructureError(f"{what}: {count} dimensions")
    sizes = [layout.int32(at + 4 * i) for i in range(count)]
    if any(size < 1 for size in sizes):
        raise CdfStructureError(f"{what}: impossible sizes {sizes}")
    return sizes


def _data_type(layout: _Layout, at: int, what: str) -> int:
    kind = layout.int32(at)
    if kind not in TYPE_SIZES:
        raise CdfStructureError(f"{what} has unknown data type {kind}")
    return TYPE_SIZES[kind]


def _record_bytes(layout: _Layout, vdr: int, size: int, r_dims: list[int] | None) -> int:
    """Bytes of one record of the variable the descriptor at vdr (of ``size`` bytes, checked) describes."""
    o = layout.offset_size
    what = f"the variable descriptor at byte {vdr}"
    item = _data_type(layout, vdr + o + 4 + o, what)
    elements = layout.int32(vdr + o + 4 + o + 4 + 4 + o + o + 4 * 5)
    if elements < 1:
        raise CdfStructureError(f"{what} has {elements} elements per value")
    name_at = vdr + o + 4 + o + 4 + 4 + o + o + 4 * 7 + o + 4
    dims_at = name_at + (256 if layout.wide else 64)
    if r_dims is None:
        if dims_at + 4 > vdr + size:
            raise CdfStructureError(f"{what} is cut short")
        dims = _dims(layout, dims_at + 4, layout.int32(dims_at), what)
        varys_at = dims_at + 4 + 4 * len(dims)
    else:
        dims, varys_at = r_dims, dims_at
    if varys_at + 4 * len(dims) > vdr + size:
        raise CdfStructureError(f"{what} is cut short")
    count = item * elements
    for index, extent in enumerate(dims):
        if layout.int32(varys_at + 4 * index):  # a dimension that does not vary is stored once
            count *= extent
    return count


def _check_entries(layout: _Layout, head: int, kind: int, variables: int | None) -> None:
    """Each attribute entry (AEDR) of a chain lies in the file, its values fit in it, and the variable it belongs to
    (when it belongs to one: ``variables`` of its kind) exists. Files hold thousands of entries: each is read with
    one unpack of its fixed fields (size, type, next, attribute, data type, number, values), not field by field,
    and its description is only written out for an error."""
    fields = layout.entry_fields
    value_offset = fields.size + 4 * 5  # NumStrings and four reserved fields follow
    unpack, data, end = fields.unpack_from, layout.data, layout.size
    limit = end - value_offset
    most = (1 << 31) if variables is None else variables
    seen: set[int] = set()
    offset = head
    while offset:
        if offset in seen:
            raise CdfStructureError(f"attribute entry (AEDR) records form a loop at byte {offset}")
        seen.add(offset)
        if not 8 <= offset <= limit:
            raise CdfStructureError(f"the attribute entry at byte {offset} lies outside the file ({end} bytes)")
        size, record_type, following, _, data_type, number, elements = unpack(data, offset)
        item = TYPE_SIZES.get(data_type)
        if (record_type != kind or size < value_offset or offset + size > end or not 0 <= number < most
                or item is None or elements < 0 or value_offset + item * elements > size):
            _entry_error(offset, end, kind, variables, value_offset, size, record_type, data_type, number, elements)
        offset = following


def _entry_error(offset: int, end: int, kind: int, variables: int | None, value_offset: int, size: int,
                 record_type: int, data_type: int, number: int, elements: int) -> None:
    """Raise the error that says what is wrong with the attribute entry at ``offset``."""
    what = f"the attribute entry at byte {offset}"
    if record_type != kind:
        raise CdfStructureError(f"{what} has record type {record_type}, expected {kind}")
    if size < value_offset or offset + size > end:
        raise CdfStructureError(f"{what} claims {size} bytes; the file ends at {end} (truncated)")
    if number < 0 or (variables is not None and number >= variables):
        raise CdfStructureError(f"{what} belongs to variable {number}; the file has {variables}")
    if data_type not in TYPE_SIZES:
        raise CdfStructureError(f"{what} has unknown data type {data_type}")
    raise CdfStructureError(f"{what} claims {elements} values that do not fit in it")


def _check_index(layout: _Layout, head: int, seen: set[int], record_bytes: int) -> None:
    """A variable's index records (VXR) and every value record (VVR, CVVR) or sub-index they point to."""
    o = layout.offset_size
    for vxr, _ in _chain(layout, head, (VXR,), "variable index (VXR)"):
        if vxr in seen:
            raise CdfStructureError(f"variable index records loop at byte {vxr}")
        seen.add(vxr)
        entries = layout.int32(vxr + o + 4 + o)
        used = layout.int32(vxr + o + 4 + o + 4)
        if not 0 <= used <= entries:
            raise CdfStructureError(f"variable index at byte {vxr} uses {used} of {entries} entries")
        offsets_at = vxr + o + 4 + o + 8 + 8 * entries
        if offsets_at + o * entries > len(layout.data):
            raise CdfStructureError(f"variable index at byte {vxr} runs past the end of the file (truncated)")
        firsts_at = vxr + o + 4 + o + 8
        for entry in range(used):
            first = layout.int32(firsts_at + 4 * entry)
            last = layout.int32(firsts_at + 4 * (entries + entry))
            if first < 0 or last < first:
                raise CdfStructureError(f"variable index at byte {vxr} gives records {first} to {last}")
            target = layout.offset(offsets_at + o * entry)
            size, kind = layout.header(target, (VVR, CVVR, VXR), "variable values (VVR)")
            if kind == VXR:
                _check_index(layout, target, seen, record_bytes)
            elif kind == VVR and (last - first + 1) * record_bytes > size - o - 4:
                raise CdfStructureError(f"the values of records {first} to {last} at byte {target} are cut "
                                        "short")
