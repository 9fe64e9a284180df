"""HJ 212-2017 codec (pure: bytes in, records out). See ``docs/standards/hj212.md``.

A packet is ``##`` + 4-digit decimal length of the data segment + data segment + 4 hex CRC
(Appendix A "ANSI CRC16" over the data segment) + ``\\r\\n``. The data segment holds
``QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&``; HJ/T 212-2005 packets have no QN
or Flag. ``parse`` checks framing, length and CRC and raises :class:`ProtocolError` (a
``ValueError``); ``FrameDecoder`` finds packets in a TCP byte stream (split across reads, or
several in one read); ``data_items`` turns an upload's data area into values per pollutant.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

#: Most characters in a data segment (HJ 212-2017 §6.3.2).
MAX_DATA_SEGMENT: Final = 1024
#: China Standard Time, the time of packets unless a device is configured otherwise.
CST: Final = timezone(timedelta(hours=8), "CST")

HEADER: Final = b"##"
TAIL: Final = b"\r\n"
_FRAME_OVERHEAD: Final = 2 + 4 + 4 + 2

#: Upload commands (CN) whose data area holds readings, and the interval of their values.
UPLOAD_INTERVALS: Final[dict[str, str | None]] = {
    "2011": None,  # real-time data (-Rtd)
    "2051": "PT1M",  # minute data
    "2061": "PT1H",  # hourly data
    "2031": "P1D",  # daily data
}
#: Uploads that carry equipment status or running time, and other field-unit reports.
STATUS_COMMANDS: Final = frozenset({"2021", "2041", "2081", "3020"})
#: Notices from a field unit that the platform answers with 9013.
NOTICE_COMMANDS: Final = frozenset({"1013"})


class ProtocolError(ValueError):
    """A packet that violates HJ 212 framing, length or CRC; the platform does not answer it."""


def crc_bitwise(data: bytes) -> int:
    """HJ 212-2017 Appendix A CRC16, bit by bit exactly as the standard's C code."""
    reg = 0xFFFF
    for byte in data:
        reg = (reg >> 8) ^ byte
        for _ in range(8):
            carry = reg & 1
            reg >>= 1
            if carry:
                reg ^= 0xA001
    return reg


def _eight_rounds(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


# Eight rounds of the shift register are linear: rounds(r) = (r >> 8) ^ TABLE[r & 0xFF].
_TABLE: Final = tuple(_eight_rounds(i) for i in range(256))
# A step is ``reg = rounds((reg >> 8) ^ byte)``; its argument is below 256, so the next
# register is ``_TABLE[(reg >> 8) ^ byte]``: it depends only on the high byte ``h`` of the
# register, and ``h`` evolves as ``h = _TABLE[h ^ byte] >> 8``. Two such steps in one look-up,
# indexed by a little-endian 16-bit word ``b0 | b1 << 8`` with ``h`` XORed into ``b0``:
_HIGH: Final = tuple(t >> 8 for t in _TABLE)
_PAIRS: Final = tuple(_HIGH[_HIGH[j & 0xFF] ^ (j >> 8)] for j in range(65536))


def crc(data: bytes) -> int:
    """HJ 212-2017 Appendix A CRC16 of ``data`` (not CRC-16/MODBUS): 0 … 0xFFFF.

    Table-driven, two bytes per look-up; equal to :func:`crc_bitwise` for every input.
    """
    n = len(data)
    if n == 0:
        return 0xFFFF
    h = 0xFF  # high byte of the initial register 0xFFFF
    start = (n - 1) & 1
    if start:
        h = _HIGH[h ^ data[0]]
    words = array("H", data[start : n - 1])
    if sys.byteorder == "big":
        words.byteswap()
    pairs = _PAIRS
    for w in words:
        h = pairs[w ^ h]
    return _TABLE[h ^ data[n - 1]]


@dataclass(frozen=True)
class Packet:
    """One parsed packet: its header fields and the raw data area (``CP``)."""

    fields: Mapping[str, str]
    cp: str

    @property
    def qn(self) -> str | None:
        return self.fields.get("QN")

    @property
    def st(self) -> str | None:
        return self.fields.get("ST")

    @property
    def cn(self) -> str | None:
        return self.fields.get("CN")

    @property
    def pw(self) -> str | None:
        return self.fields.get("PW")

    @property
    def mn(self) -> str | None:
        return self.fields.get("MN")

    @property
    def flag(self) -> int | None:
        """The Flag field as an integer (``None`` for HJ/T 212-2005 packets without one)."""
        value = self.fields.get("Flag")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def version(self) -> int:
        """Standard version from Flag bits V5–V0: 1 for HJ 212-2017, 0 for HJ/T 212-2005."""
        return 0 if self.flag is None else self.flag >> 2

    @property
    def wants_reply(self) -> bool:
        """Flag bit A: the sender wants an answer."""
        return self.flag is not None and bool(self.flag & 1)

    @property
    def pnum(self) -> int | None:
        value = self.fields.get("PNUM")
        return int(value) if value and value.isdigit() else None

    @property
    def pno(self) -> int | None:
        value = self.fields.get("PNO")
        return int(value) if value and value.isdigit() else None

    def cp_groups(self) -> list[dict[str, str]]:
        """The data area as groups (``;``-separated) of ``name=value`` items (``,``-separated)."""
        return parse_cp(self.cp)


def cp_items(cp: str) -> Iterator[tuple[int, str, str]]:
    """``(group number, name, value)`` of each ``name=value`` item of a data area: groups are
    ``;``-separated, items ``,``-separated; names and values stripped; items without a name or
    ``=`` skipped."""
    for number, group in enumerate(cp.split(";")):
        for item in group.split(","):
            name, sep, value = item.partition("=")
            name = name.strip()
            if sep and name:
                yield number, name, value.strip()


def parse_cp(cp: str) -> list[dict[str, str]]:
    """``DataTime=…;a-Rtd=1,a-Flag=N`` → ``[{"DataTime": …}, {"a-Rtd": "1", "a-Flag": "N"}]``."""
    groups: dict[int, dict[str, str]] = {}
    for number, name, value in cp_items(cp):
        groups.setdefault(number, {})[name] = value
    return list(groups.values())


_FIELD = re.compile(r"([A-Za-z]+)=([^;]*)")


def parse_data_segment(segment: str) -> Packet:
    """The fields and data area of a data segment (no framing)."""
    head, sep, rest = segment.partition("CP=&&")
    if not sep:
        raise ProtocolError("data segment has no CP=&&…&& data area")
    if not rest.endswith("&&"):
        raise ProtocolError("data area is not closed by &&")
    cp = rest[:-2]
    fields: dict[str, str] = {}
    for part in head.split(";"):
        part = part.strip()
        if not part:
            continue
        m = _FIELD.fullmatch(part)
        if m is None:
            raise ProtocolError(f"bad header field {part[:40]!r}")
        fields[m.group(1)] = m.group(2)
    if "CN" not in fields:
        raise ProtocolError("data segment has no CN")
    return Packet(fields, cp)


def parse(packet: bytes) -> Packet:
    """Parse one complete packet (``##…\\r\\n``).

    Raises
    ------
    ProtocolError
        on bad framing, a length that does not match, a data segment over 1024 characters,
        a CRC that does not match (compared case-insensitively), or a malformed segment.
    """
    if not packet.startswith(HEADER):
        raise ProtocolError("packet does not start with ##")
    if not packet.endswith(TAIL):
        raise ProtocolError("packet does not end with CR LF")
    if len(packet) < _FRAME_OVERHEAD:
        raise ProtocolError("packet too short")
    length_text = packet[2:6]
    if not length_text.isdigit():
        raise ProtocolError(f"length field {length_text!r} is not 4 decimal digits")
    length = int(length_text)
    if length > MAX_DATA_SEGMENT:
        raise ProtocolError(f"data segment of {length} characters exceeds {MAX_DATA_SEGMENT}")
    if len(packet) != _FRAME_OVERHEAD + length:
        raise ProtocolError(
            f"length field says {length}, data segment has {len(packet) - _FRAME_OVERHEAD}"
        )
    segment = packet[6 : 6 + length]
    crc_text = packet[6 + length : 10 + length]
    try:
        given = int(crc_text, 16)
    except ValueError as exc:
        raise ProtocolError(f"CRC field {crc_text!r} is not 4 hex digits") from exc
    if given != crc(segment):
        raise ProtocolError(
            f"CRC {crc_text.decode('ascii', 'replace')} does not match {crc(segment):04X}"
        )
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        text = segment.decode("gbk", errors="replace")  # some loggers send GBK text in CP
    return parse_data_segment(text)


def encode_segment(
    *,
    cn: str,
    mn: str,
    pw: str,
    st: str = "91",
    qn: str | None = None,
    flag: int | None = 4,
    cp: str | Mapping[str, str] | list[Mapping[str, str]] = "",
    pnum: int | None = None,
    pno: int | None = None,
) -> str:
    """A data segment. ``cp`` is raw text, one group (mapping) or a list of groups."""
    parts = []
    if qn is not None:
        parts.append(f"QN={qn}")
    parts += [f"ST={st}", f"CN={cn}", f"PW={pw}", f"MN={mn}"]
    if flag is not None:
        parts.append(f"Flag={flag}")
    if pnum is not None and pno is not None:
        parts += [f"PNUM={pnum}", f"PNO={pno}"]
    if isinstance(cp, Mapping):
        cp = ",".join(f"{k}={v}" for k, v in cp.items())
    elif isinstance(cp, list):
        cp = ";".join(",".join(f"{k}={v}" for k, v in g.items()) for g in cp)
    return ";".join(parts) + f";CP=&&{cp}&&"


def frame(segment: str | bytes) -> bytes:
    """Wrap a data segment in ``##``, its length, its CRC and ``\\r\\n``.

    Raises
    ------
    ProtocolError
        when the segment exceeds 1024 characters (split it with PNUM/PNO).
    """
    data = segment.encode("ascii") if isinstance(segment, str) else segment
    if len(data) > MAX_DATA_SEGMENT:
        raise ProtocolError(f"data segment of {len(data)} characters exceeds {MAX_DATA_SEGMENT}")
    return HEADER + f"{len(data):04d}".encode() + data + f"{crc(data):04X}".encode() + TAIL


def encode(**kwargs: object) -> bytes:
    """A complete packet: ``frame(encode_segment(**kwargs))``."""
    return frame(encode_segment(**kwargs))  # type: ignore[arg-type]


def qn_now(now: datetime | None = None) -> str:
    """A request id ``YYYYMMDDhhmmsszzz`` in China Standard Time."""
    t = (now or datetime.now(UTC)).astimezone(CST)
    return t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}"


def reply(packet: Packet, cn: str, cp: str = "") -> bytes:
    """The platform's answer to ``packet`` (9013 notice reply, 9014 data reply): it echoes
    QN, PW and MN, with ST=91 and Flag=4 (HJ 212-2017, no reply wanted)."""
    return encode(
        cn=cn, mn=packet.mn or "", pw=packet.pw or "", st="91", qn=packet.qn, flag=4, cp=cp
    )


def parse_time(text: str, tz: timezone = CST) -> datetime:
    """``YYYYMMDDhhmmss`` (``zzz`` milliseconds optional) in ``tz`` → aware UTC datetime (a time
    before year 1 in UTC is given as 0001-01-01T00:00Z, for validation to refuse)."""
    if not (text.isascii() and text.isdigit()) or len(text) not in (14, 17):
        raise ProtocolError(f"time {text!r} is not YYYYMMDDhhmmss")
    try:  # slicing: several times faster than strptime, and as strict (datetime checks ranges)
        t = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ProtocolError(f"time {text!r} is not a valid date") from exc
    if len(text) == 17:
        t += timedelta(milliseconds=int(text[14:]))
    try:
        return t.astimezone(UTC)
    except OverflowError:  # 0001-01-01 in China Standard Time is before year 1 UTC: the
        return datetime.min.replace(tzinfo=UTC)  # earliest time, which validation refuses


@dataclass
class DataItem:
    """The values one upload carries for one pollutant code.

    ``values`` maps a suffix (``Rtd``, ``Min``, ``Avg``, ``Max``, ``Cou``, ``ZsRtd``, ``ZsMin``,
    ``ZsAvg``, ``ZsMax``, and noise units' ``Data``) to its text; ``flag``, ``eflag`` and
    ``sample_time`` as sent.
    """

    code: str
    values: dict[str, str] = field(default_factory=dict)
    flag: str | None = None
    eflag: str | None = None
    sample_time: str | None = None


_VALUE_SUFFIXES: Final = frozenset(
    {"Rtd", "Min", "Avg", "Max", "Cou", "ZsRtd", "ZsMin", "ZsAvg", "ZsMax", "Data"}
)


def data_items(packet: Packet) -> tuple[str | None, list[DataItem], list[str]]:
    """``(DataTime, items, problems)`` of an upload's data area.

    Items keep the order of their first appearance; names that are neither ``DataTime`` nor
    ``code-Suffix`` with a known suffix are reported in ``problems`` (equipment status
    ``SBxxx-RS``/``-RT`` is reported too, it is not a reading).
    """
    data_time = None
    items: dict[str, DataItem] = {}
    problems: list[str] = []
    for _, name, value in cp_items(packet.cp):
        if name == "DataTime":
            data_time = value
            continue
        code, sep, suffix = name.rpartition("-")
        if not sep or not code:
            problems.append(f"unknown field {name}")
            continue
        item = items.get(code)
        if item is None:
            item = items[code] = DataItem(code)
        if suffix in _VALUE_SUFFIXES:
            item.values[suffix] = value
        elif suffix == "Flag":
            item.flag = value
        elif suffix == "EFlag":
            item.eflag = value
        elif suffix == "SampleTime":
            item.sample_time = value
        else:
            problems.append(f"field {name} is not a reading")
    return data_time, [i for i in items.values() if i.values], problems


#: A frame header: ``##`` and a four-digit data-segment length (HJ 212-2017 §6.3.1).
_HEADER_RE: Final = re.compile(rb"##[0-9]{4}")
#: What may still become a header once more bytes arrive.
_HEADER_PREFIX_RE: Final = re.compile(rb"#(?:#[0-9]{0,3})?")


class FrameDecoder:
    """Find packets in a TCP byte stream.

    ``feed(data)`` returns the complete frames found so far, each either ``bytes`` (a frame
    to :func:`parse`) or a :class:`ProtocolError` for bytes that could not be framed (garbage
    before a ``##dddd`` header, a length that exceeds 1024, a frame not ending in ``\\r\\n``).
    The decoder resynchronises on the next header and never buffers more than one maximal
    frame. Its work is linear in the bytes fed: garbage is skipped by one regular-expression
    search up to the next candidate header, never byte by byte.

    With ``summarise=True`` errors are not returned but counted: ``errors`` (how many) and
    ``discarded`` (bytes thrown away), for a server that logs a summary per interval rather
    than a line per error.
    """

    def __init__(self, *, summarise: bool = False) -> None:
        self._buf = bytearray()
        self.summarise = summarise
        #: framing errors and bytes discarded so far (counted in both modes)
        self.errors = 0
        self.discarded = 0

    def _error(self, out: list[bytes | ProtocolError], message: str, discarded: int) -> None:
        self.errors += 1
        self.discarded += discarded
        if not self.summarise:
            out.append(ProtocolError(message))

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        self._buf += data
        out: list[bytes | ProtocolError] = []
        buf = self._buf
        while True:
            match = _HEADER_RE.search(buf)
            if match is None:
                keep = _possible_header_start(buf)
                if keep > 0:
                    self._error(out, f"{keep} bytes outside any packet", keep)
                    del buf[:keep]
                break
            start = match.start()
            if start > 0:
                self._error(out, f"{start} bytes before ##", start)
                del buf[:start]
            length = int(buf[2:6])
            if length > MAX_DATA_SEGMENT:
                self._error(out, f"bad length field {bytes(buf[2:6])!r}", 1)
                del buf[:1]  # one byte only: "###0101…" still holds a packet
                continue
            end = _FRAME_OVERHEAD + length
            if len(buf) < end:
                break
            if bytes(buf[end - 2 : end]) != TAIL:
                self._error(out, "frame does not end with CR LF where its length says", 1)
                del buf[:1]
                continue
            out.append(bytes(buf[:end]))
            del buf[:end]
        return out

    def pending(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._buf)


def _possible_header_start(buf: bytearray) -> int:
    """Where the tail of ``buf`` that may still become a header begins (``len(buf)``: none)."""
    for i in range(max(0, len(buf) - 5), len(buf)):
        if _HEADER_PREFIX_RE.fullmatch(buf, i):
            return i
    return len(buf)


def iter_frames(stream: bytes) -> Iterator[bytes | ProtocolError]:
    """Frames and errors of a whole byte string (see :class:`FrameDecoder`)."""
    yield from FrameDecoder().feed(stream)
