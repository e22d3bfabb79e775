"""The zfy wire codec: frames, CRC-16, typed fields and commands of evidock's GA/T 947 control
channel (specified in drivers/README.md). Pure functions over bytes; no I/O.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass
from typing import Any

from drivers.errors import (
    N_,
    BadChecksum,
    GarbledReply,
    OversizedReply,
    WireError,
)

# -- the wire format (drivers/README.md) -----------------------------------------------------

MAGIC = b"ZF"
HEADER = struct.Struct(">2sBBBH")  # magic, seq, cmd, status, payload length
HEADER_LEN = HEADER.size  # 7
CRC_LEN = 2
MAX_PAYLOAD = 512  # the maximum reply (and request) payload
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
REPLY_BIT = 0x80
PROTOCOL_VERSION = 1


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as ``binascii.crc_hqx`` computes it."""
    return binascii.crc_hqx(data, 0xFFFF)


class Status(enum.IntEnum):
    OK = 0x00
    UNKNOWN_COMMAND = 0x01
    BAD_PASSWORD = 0x02
    BAD_ARGUMENT = 0x03
    BUSY = 0x04
    NOT_SUPPORTED = 0x05


class Kind(enum.Enum):
    STR = "str"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U64 = "u64"
    BYTES = "bytes"


_INT = {Kind.U8: ">B", Kind.U16: ">H", Kind.U32: ">I", Kind.U64: ">Q"}


@dataclass(frozen=True)
class Tag:
    code: int
    name: str
    kind: Kind
    secret: bool = False  # never logged, never shown


# Every field a payload may carry: (tag, name, type). A TLV value is at most 255 bytes.
TAGS: tuple[Tag, ...] = (
    Tag(0x01, "serial", Kind.STR),
    Tag(0x02, "model", Kind.STR),
    Tag(0x03, "firmware", Kind.STR),
    Tag(0x04, "badge", Kind.STR),
    Tag(0x05, "officer_name", Kind.STR),
    Tag(0x06, "unit_no", Kind.STR),
    Tag(0x07, "unit_name", Kind.STR),
    Tag(0x08, "id_code", Kind.STR),
    Tag(0x09, "width", Kind.U16),
    Tag(0x0A, "height", Kind.U16),
    Tag(0x10, "battery_percent", Kind.U8),
    Tag(0x11, "voltage_mv", Kind.U16),
    Tag(0x12, "charging", Kind.U8),
    Tag(0x13, "cycles", Kind.U16),
    Tag(0x14, "full_charge_mah", Kind.U16),
    Tag(0x15, "design_mah", Kind.U16),
    Tag(0x20, "total_bytes", Kind.U64),
    Tag(0x21, "free_bytes", Kind.U64),
    Tag(0x22, "fs_state", Kind.U8),
    Tag(0x30, "time_ms", Kind.U64),
    Tag(0x40, "role", Kind.U8),
    Tag(0x41, "password", Kind.STR, secret=True),
    Tag(0x50, "protocol", Kind.U8),
    Tag(0x51, "functions", Kind.BYTES),
)
TAG_BY_CODE = {t.code: t for t in TAGS}
TAG_BY_NAME = {t.name: t for t in TAGS}

ROLES = {"admin": 0, "user": 1}
FS_STATES = {0: "clean", 1: "errors"}


@dataclass(frozen=True)
class Command:
    code: int
    name: str  # the GA/T 947 SDK's function name (vendor extensions marked in the README)
    required: tuple[str, ...] = ()  # reply fields that must be there
    password: bool = False  # the request carries role + password
    retry: bool = True  # safe to send again when the reply was lost


# The function set, one entry per function (drivers/README.md has the request/reply fields).
COMMANDS: tuple[Command, ...] = (
    Command(0x01, "Init_Device", ("protocol", "functions", "model")),
    Command(0x02, "GetIDCode", ("id_code",)),
    Command(0x03, "GetZFYInfo", ("serial",)),
    Command(0x04, "WriteZFYInfo", (), password=True),
    Command(0x05, "SyncDevTime", (), password=True),
    Command(0x06, "ReadDeviceResolution", ("width", "height")),
    Command(0x07, "ReadDeviceBatteryDumpEnergy", ("battery_percent",)),
    # Not retried: a recorder that switched may have dropped its control port with the reply.
    Command(0x08, "SetMSDC", (), password=True, retry=False),
    Command(0x40, "GetDevTime", ("time_ms",)),
    Command(0x41, "GetStorageInfo", ("total_bytes", "free_bytes")),
)
CMD = {c.name: c for c in COMMANDS}
CMD_BY_CODE = {c.code: c for c in COMMANDS}
# Functions every recorder must have; the others are optional and announced by Init_Device.
MANDATORY = frozenset({"Init_Device", "GetIDCode", "GetZFYInfo"})


def encode_fields(fields: dict[str, Any]) -> bytes:
    out = bytearray()
    for name, value in fields.items():
        if value is None:
            continue
        tag = TAG_BY_NAME[name]
        if tag.kind is Kind.STR:
            raw = str(value).encode("utf-8")
        elif tag.kind is Kind.BYTES:
            raw = bytes(value)
        else:
            raw = struct.pack(_INT[tag.kind], int(value))
        if len(raw) > 255:
            raise ValueError(f"field {name} is {len(raw)} bytes; a field holds at most 255")
        out += bytes((tag.code, len(raw))) + raw
    return bytes(out)


def decode_fields(payload: bytes) -> dict[str, Any]:
    """TLV payload -> {name: value}. Unknown tags are skipped (forward compatibility)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(payload):
        if i + 2 > len(payload):
            raise WireError(GarbledReply, N_("payload ends inside a field header at byte {i}"), payload, i=i)
        code, n = payload[i], payload[i + 1]
        raw = payload[i + 2 : i + 2 + n]
        if len(raw) != n:
            raise WireError(GarbledReply, N_("field 0x{code:02x} declares {n} bytes, only {left} follow"), payload,
                            code=code, n=n, left=len(raw))
        i += 2 + n
        tag = TAG_BY_CODE.get(code)
        if tag is None:
            continue
        if tag.name in out:
            raise WireError(GarbledReply, N_("field {field} appears twice"), payload, field=tag.name)
        if tag.kind is Kind.STR:
            try:
                value: Any = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(GarbledReply, N_("field {field} is not UTF-8 text"), payload, field=tag.name) from None
            if "\x00" in value or not value.isprintable():
                raise WireError(GarbledReply, N_("field {field} holds control characters"), payload, field=tag.name)
        elif tag.kind is Kind.BYTES:
            value = raw
        else:
            size = struct.calcsize(_INT[tag.kind])
            if n != size:
                raise WireError(GarbledReply, N_("field {field} has {n} bytes, a {kind} has {size}"), payload,
                                field=tag.name, n=n, kind=tag.kind.value, size=size)
            value = struct.unpack(_INT[tag.kind], raw)[0]
        out[tag.name] = value
    return out


def redacted(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields as they may be logged: secret values replaced."""
    return {k: ("***" if TAG_BY_NAME[k].secret else v) for k, v in fields.items()}


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    status: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_frame(self.seq, self.cmd, self.status, self.payload)


def encode_frame(seq: int, cmd: int, status: int, payload: bytes) -> bytes:
    body = HEADER.pack(MAGIC, seq & 0xFF, cmd & 0xFF, status & 0xFF, len(payload)) + payload
    return body + struct.pack(">H", crc16(body[2:]))


class FrameParser:
    """Incremental frame parser over a byte stream, shared by the driver and the simulator.

    ``feed`` bytes, then ``next()`` returns a frame, ``None`` (need more), or raises
    ``WireError``. Bytes before a magic are set aside as ``noise``; a frame whose declared
    length exceeds ``max_payload`` is refused before its payload is read.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.noise = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data

    @property
    def partial(self) -> bytes:
        return bytes(self.buf)

    def next(self) -> Frame | None:
        i = self.buf.find(MAGIC)
        if i < 0:
            keep = 1 if self.buf.endswith(MAGIC[:1]) else 0
            cut = len(self.buf) - keep
            self.noise += self.buf[:cut]
            del self.buf[:cut]
            return None
        if i:
            self.noise += self.buf[:i]
            del self.buf[:i]
        if len(self.buf) < HEADER_LEN:
            return None
        _, seq, cmd, status, length = HEADER.unpack_from(self.buf)
        if length > self.max_payload:
            got = bytes(self.buf)
            del self.buf[:]
            raise WireError(OversizedReply, N_("frame declares {length} payload bytes, over the maximum of {maximum}"), got,
                            length=length, maximum=self.max_payload)
        end = HEADER_LEN + length + CRC_LEN
        if len(self.buf) < end:
            return None
        raw = bytes(self.buf[:end])
        del self.buf[:end]
        (crc,) = struct.unpack(">H", raw[-CRC_LEN:])
        if crc != crc16(raw[2:-CRC_LEN]):
            raise WireError(BadChecksum, N_("CRC is {crc:04x}, the frame's content gives {computed:04x}"), raw,
                            crc=crc, computed=crc16(raw[2:-CRC_LEN]))
        return Frame(seq, cmd, status, raw[HEADER_LEN:-CRC_LEN])
