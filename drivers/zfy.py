"""The GA/T 947.4 function set over a recorder's serial control port (CDC-ACM), with pyserial.

GA/T 947.4 names the functions a 执法记录仪 offers a docking station — Init_Device, GetIDCode,
GetZFYInfo, WriteZFYInfo, SyncDevTime, ReadDeviceResolution, ReadDeviceBatteryDumpEnergy,
SetMSDC — but its wire format is not public, so the framing here is evidock's own, specified in
``drivers/README.md`` (magic, sequence number, status, length ≤ 512, TLV payload, CRC-16). The
simulated recorder (``drivers/simulator.py``) speaks the same codec from the other end.

What this module guarantees (invariant 5): every reply is length-bounded and CRC-checked, every
read has a deadline, and every way a reply can be wrong — garbled, truncated, oversized, late,
never-ending, a bad checksum — ends in one typed ``ProtocolError`` within the request's timeout
(plus retries), never a crash or a hang. A pyserial/OS error becomes ``RecorderGone`` once, with
the port closed right there. Passwords travel only inside request frames and are never logged
nor put in a message.
"""

from __future__ import annotations

import binascii
import enum
import logging
import os
import select
import struct
import termios
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import serial

from .base import (
    Battery,
    ClockReading,
    ClockSync,
    DeviceInfo,
    Driver,
    OfficerInfo,
    Storage,
    check_battery,
    check_clock,
    check_identifiers,
    check_storage,
)
from .errors import (
    AuthError,
    BadChecksum,
    DriverError,
    GarbledReply,
    InvalidReply,
    OversizedReply,
    ProtocolError,
    RecorderGone,
    RejectedRequest,
    ReplyTimeout,
    TruncatedReply,
    Unsupported,
)

if TYPE_CHECKING:
    from .registry import DeviceModel

log = logging.getLogger(__name__)

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
assert len(TAG_BY_CODE) == len(TAGS) == len(TAG_BY_NAME), "duplicate tag in TAGS"

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
assert len(CMD) == len(CMD_BY_CODE) == len(COMMANDS), "duplicate command in COMMANDS"
# Functions every recorder must have; the others are optional and announced by Init_Device.
MANDATORY = frozenset({"Init_Device", "GetIDCode", "GetZFYInfo"})


class WireError(ValueError):
    """A frame or payload that breaks the format; ``kind`` picks the driver's error class."""

    def __init__(self, kind: type[ProtocolError], problem: str, got: bytes = b""):
        self.kind, self.problem, self.got = kind, problem, bytes(got)
        super().__init__(problem)


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
            raise WireError(GarbledReply, f"payload ends inside a field header at byte {i}", payload)
        code, n = payload[i], payload[i + 1]
        raw = payload[i + 2 : i + 2 + n]
        if len(raw) != n:
            raise WireError(GarbledReply, f"field 0x{code:02x} declares {n} bytes, only {len(raw)} follow", payload)
        i += 2 + n
        tag = TAG_BY_CODE.get(code)
        if tag is None:
            continue
        if tag.name in out:
            raise WireError(GarbledReply, f"field {tag.name} appears twice", payload)
        if tag.kind is Kind.STR:
            try:
                value: Any = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(GarbledReply, f"field {tag.name} is not UTF-8 text", payload) from None
            if "\x00" in value or not value.isprintable():
                raise WireError(GarbledReply, f"field {tag.name} holds control characters", payload)
        elif tag.kind is Kind.BYTES:
            value = raw
        else:
            size = struct.calcsize(_INT[tag.kind])
            if n != size:
                raise WireError(GarbledReply, f"field {tag.name} has {n} bytes, a {tag.kind.value} has {size}", payload)
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
            raise WireError(OversizedReply, f"frame declares {length} payload bytes, over the maximum of {self.max_payload}", got)
        end = HEADER_LEN + length + CRC_LEN
        if len(self.buf) < end:
            return None
        raw = bytes(self.buf[:end])
        del self.buf[:end]
        (crc,) = struct.unpack(">H", raw[-CRC_LEN:])
        if crc != crc16(raw[2:-CRC_LEN]):
            raise WireError(BadChecksum, f"CRC is {crc:04x}, the frame's content gives {crc16(raw[2:-CRC_LEN]):04x}", raw)
        return Frame(seq, cmd, status, raw[HEADER_LEN:-CRC_LEN])


# -- the driver ------------------------------------------------------------------------------

POLL_S = 0.02  # one read waits at most this long, so a deadline is never overshot by more
# Everything a vanished port can raise: pyserial's own, the OS's, and termios' (tcflush on a dead
# tty raises termios.error, which is not an OSError).
PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class ZfyDriver(Driver):
    """A GA/T 947 recorder on its control port. ``port``: an open ``serial.Serial`` or a tty path.

    ``timeout`` bounds each request (send to complete reply); a failed request is sent again up
    to ``retries`` times after ``backoff_s``, 2×, 4× … (not SetMSDC, and never after a refused
    password). The worst case for one request is therefore (retries+1) × timeout + the backoffs.
    """

    name = "zfy"

    def __init__(self, port: serial.Serial | str | Path, *, model: DeviceModel | None = None,
                 password: str | None = None, role: str = "admin", timeout: float = 1.0,
                 retries: int = 2, backoff_s: float = 0.1, max_reply: int = MAX_PAYLOAD):
        super().__init__(model)
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        self._password = password
        self.role = role
        self.timeout, self.retries, self.backoff_s = timeout, retries, backoff_s
        self.max_reply = max_reply
        self._seq = 0
        self._functions: frozenset[str] | None = None
        self._serial: str | None = None
        self._init: dict[str, Any] = {}
        self._gone: RecorderGone | None = None
        if isinstance(port, (str, Path)):
            self.port_name = str(port)
            baud = model.quirks.baudrate if model else 115200
            try:
                self._port: serial.Serial | None = serial.Serial(self.port_name, baudrate=baud, timeout=POLL_S,
                                                                 write_timeout=timeout, exclusive=True)
            except (*PORT_ERRORS, ValueError) as e:
                raise RecorderGone(self.port_name, f"cannot open the control port ({_os_reason(e)}); "
                                   "is the recorder docked and is this its tty?") from None
        else:
            self.port_name = port.port or repr(port)
            self._port = port
            port.timeout = POLL_S
            port.write_timeout = timeout

    def __repr__(self) -> str:  # never shows the password
        return f"ZfyDriver({self.port_name!r}, role={self.role!r})"

    @property
    def recorder(self) -> str:
        return f"{self._serial} on {self.port_name}" if self._serial else self.port_name

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except PORT_ERRORS:
                pass

    # -- one request -----------------------------------------------------------------------

    def request(self, name: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one function and return its reply's fields; every failure is a typed error."""
        cmd = CMD[name]
        if name != "Init_Device" and name not in MANDATORY:
            if name not in self.functions():
                raise self._unsupported(name)
        fields = dict(fields or {})
        if cmd.password:
            if not self._password:
                raise AuthError(self.recorder, f"{name} needs the recorder's {self.role} password and none is "
                                "configured; set [zfy] password or password_file in the config")
            fields = {"role": ROLES[self.role], "password": self._password, **fields}
        payload = encode_fields(fields)
        attempts = 1 + (self.retries if cmd.retry else 0)
        for attempt in range(attempts):
            try:
                return self._exchange(cmd, payload, fields)
            except (ReplyTimeout, GarbledReply, BadChecksum, TruncatedReply, RejectedRequest) as e:
                if attempt + 1 >= attempts or (isinstance(e, RejectedRequest) and not e.busy):
                    if attempts > 1:
                        raise type(e)(e.recorder, name, f"{e.problem} (after {attempts} attempts)", e.got) from None
                    raise
                wait = self.backoff_s * (2 ** attempt)
                log.info("%s: %s failed (%s); retrying in %.2f s", self.recorder, name, e.problem, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _exchange(self, cmd: Command, payload: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        port = self._live_port()
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        frame = encode_frame(seq, cmd.code, 0, payload)
        log.debug("%s: -> %s seq=%d %s", self.recorder, cmd.name, seq, redacted(fields))
        try:
            stale = _drain(port)  # bytes nobody asked for (a late reply) must not pass as this one's
            if stale:
                log.info("%s: discarded %d stale bytes before %s", self.recorder, stale, cmd.name)
            # write() returns once the OS has every byte (bounded by write_timeout); no flush():
            # its tcdrain has no timeout and would hang on a stalled USB endpoint.
            port.write(frame)
        except serial.SerialTimeoutException:
            raise ReplyTimeout(self.recorder, cmd.name, f"the request could not be sent within {self.timeout:g} s") from None
        except PORT_ERRORS as e:
            raise self._lost(e, cmd.name) from None
        reply = self._read_reply(port, cmd, seq)
        if reply.status != Status.OK:
            self._raise_status(cmd, reply)
        try:
            values = decode_fields(reply.payload)
        except WireError as e:
            raise e.kind(self.recorder, cmd.name, e.problem, e.got) from None
        missing = [f for f in cmd.required if f not in values]
        if missing:
            raise GarbledReply(self.recorder, cmd.name, f"the reply lacks field(s) {', '.join(missing)}", reply.payload)
        log.debug("%s: <- %s seq=%d %s", self.recorder, cmd.name, seq, redacted(values))
        return values

    def _read_reply(self, port: serial.Serial, cmd: Command, seq: int) -> Frame:
        parser = FrameParser(self.max_reply)
        deadline = time.monotonic() + self.timeout
        stale = 0
        while True:
            try:
                frame = parser.next()
            except WireError as e:
                raise e.kind(self.recorder, cmd.name, e.problem, e.got) from None
            if frame is not None:
                if frame.seq == seq and frame.cmd == cmd.code | REPLY_BIT:
                    return frame
                if frame.seq == seq:
                    raise GarbledReply(self.recorder, cmd.name, f"the reply is for function 0x{frame.cmd:02x}, "
                                       f"not 0x{cmd.code | REPLY_BIT:02x}", frame.encode())
                stale += 1  # a late reply to an earlier request: not this one's answer
                log.info("%s: dropped a late reply (seq %d) while waiting for %s seq %d", self.recorder, frame.seq, cmd.name, seq)
                continue
            if len(parser.noise) > MAX_FRAME:
                raise OversizedReply(self.recorder, cmd.name, f"the recorder kept sending: more than {MAX_FRAME} bytes "
                                     "(the longest reply) without a reply frame", bytes(parser.noise))
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                chunk = _read_available(port, MAX_FRAME)
            except PORT_ERRORS as e:
                raise self._lost(e, cmd.name) from None
            parser.feed(chunk)
        if parser.partial:
            raise TruncatedReply(self.recorder, cmd.name, f"the reply stopped short: {len(parser.partial)} bytes of a frame "
                                 f"by the {self.timeout:g} s deadline", parser.partial)
        if parser.noise:
            raise GarbledReply(self.recorder, cmd.name, "bytes that are not a reply frame", bytes(parser.noise))
        late = f" ({stale} late repl{'y' if stale == 1 else 'ies'} to earlier requests dropped)" if stale else ""
        raise ReplyTimeout(self.recorder, cmd.name, f"no reply within {self.timeout:g} s{late}")

    def _raise_status(self, cmd: Command, reply: Frame) -> None:
        st = reply.status
        if st == Status.BAD_PASSWORD:
            raise AuthError(self.recorder, f"{cmd.name}: the recorder refused the {self.role} password; set the right one "
                            "in [zfy] password or password_file (the recorder's vendor tool shows or resets it)")
        if st in (Status.UNKNOWN_COMMAND, Status.NOT_SUPPORTED):
            raise self._unsupported(cmd.name)
        what = {Status.BAD_ARGUMENT: "bad argument", Status.BUSY: "busy"}.get(st, f"unknown status 0x{st:02x}")
        err = RejectedRequest(self.recorder, cmd.name, f"the recorder answered with status {what}", reply.encode())
        err.busy = st == Status.BUSY  # worth asking again after the backoff
        raise err

    def _live_port(self) -> serial.Serial:
        if self._gone is not None:
            raise RecorderGone(self._gone.recorder, "the control port is gone (see the earlier error); dock the recorder again")
        if self._port is None:
            raise RecorderGone(self.recorder, "the control port was closed")
        return self._port

    def _lost(self, err: BaseException, request: str) -> RecorderGone:
        """Close the port where it failed and remember it: later calls fail at once."""
        self.close()
        self._gone = RecorderGone(self.recorder, f"{request}: the control port went away ({_os_reason(err)}); "
                                  "the recorder was unplugged or switched off — dock it again")
        return self._gone

    # -- the driver interface ----------------------------------------------------------------

    def functions(self) -> frozenset[str]:
        """The functions this recorder announced (Init_Device), known ones only."""
        if self._functions is None:
            r = self.request("Init_Device", {"protocol": PROTOCOL_VERSION})
            if r["protocol"] != PROTOCOL_VERSION:
                raise InvalidReply(self.recorder, "Init_Device", f"protocol version {r['protocol']}, this station speaks {PROTOCOL_VERSION}")
            self._functions = frozenset(CMD_BY_CODE[c].name for c in r["functions"] if c in CMD_BY_CODE) | MANDATORY
            self._init = r
        return self._functions

    def identify(self) -> DeviceInfo:
        self.functions()
        init = self._init
        code = self.request("GetIDCode")["id_code"]
        info = self.request("GetZFYInfo")
        if info["serial"] != code:
            raise InvalidReply(self.recorder, "GetZFYInfo", f"device serial {info['serial']!r} differs from its ID code {code!r}")
        check_identifiers(self.recorder, "GetZFYInfo", {"serial": code, "badge": info.get("badge") or None})
        self._serial = code
        resolution = None
        if "ReadDeviceResolution" in self.functions():
            r = self.request("ReadDeviceResolution")
            resolution = f"{r['width']}x{r['height']}"
        return DeviceInfo(serial=code, model=init["model"], firmware=init.get("firmware"),
                          badge=info.get("badge") or None, officer_name=info.get("officer_name") or None,
                          unit_no=info.get("unit_no") or None, unit_name=info.get("unit_name") or None,
                          resolution=resolution)

    def battery(self) -> Battery:
        r = self.request("ReadDeviceBatteryDumpEnergy")
        charging = r.get("charging")
        if charging not in (None, 0, 1):
            raise InvalidReply(self.recorder, "ReadDeviceBatteryDumpEnergy", f"charging flag {charging} is neither 0 nor 1")
        b = Battery(percent=r["battery_percent"], voltage_mv=r.get("voltage_mv"),
                    charging=None if charging is None else bool(charging), cycles=r.get("cycles"),
                    full_charge_mah=r.get("full_charge_mah"), design_mah=r.get("design_mah"))
        return check_battery(self.recorder, "ReadDeviceBatteryDumpEnergy", b)

    def storage(self) -> Storage:
        r = self.request("GetStorageInfo")
        fs = r.get("fs_state")
        if fs is not None and fs not in FS_STATES:
            raise InvalidReply(self.recorder, "GetStorageInfo", f"filesystem state {fs} is not one the protocol defines")
        s = Storage(total_bytes=r["total_bytes"], free_bytes=r["free_bytes"], fs_state=FS_STATES.get(fs) if fs is not None else None,
                    fs_detail="reported by the recorder" if fs is not None else None)
        return check_storage(self.recorder, "GetStorageInfo", s)

    def clock(self) -> ClockReading:
        wall0, t0 = time.time(), time.monotonic()
        r = self.request("GetDevTime")
        rtt = time.monotonic() - t0
        station = datetime.fromtimestamp(wall0 + rtt / 2, timezone.utc)
        try:
            recorder = datetime.fromtimestamp(r["time_ms"] / 1000, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise InvalidReply(self.recorder, "GetDevTime", f"clock value {r['time_ms']} ms is not a time") from None
        check_clock(self.recorder, "GetDevTime", recorder, station)
        return ClockReading(recorder_time=recorder, station_time=station, round_trip_s=rtt)

    def sync_clock(self, now: datetime | None = None) -> ClockSync:
        """Measure the drift, set the recorder's clock (SyncDevTime), measure again."""
        before: float | None = None
        try:
            before = self.clock().drift_s
        except (Unsupported, InvalidReply) as e:
            log.warning("%s", e)  # a reset clock is exactly what the sync is for; set it anyway
        t = now or datetime.now(timezone.utc)
        self.request("SyncDevTime", {"time_ms": int(t.timestamp() * 1000)})
        after = None
        if now is None and "GetDevTime" in self.functions():
            after = self.clock().drift_s
        return ClockSync(drift_before_s=before, set_to=t, drift_after_s=after)

    def bind_officer(self, officer: OfficerInfo) -> None:
        self.request("WriteZFYInfo", {"badge": officer.badge, "officer_name": officer.name,
                                      "unit_no": officer.unit_no, "unit_name": officer.unit_name})

    def enter_mass_storage(self) -> None:
        self.request("SetMSDC")


def _os_reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if isinstance(err, termios.error) and len(err.args) == 2:
        return str(err.args[1])
    return str(err) or type(err).__name__


__all__ = ["ZfyDriver", "FrameParser", "Frame", "Status", "COMMANDS", "CMD", "TAGS", "encode_frame",
           "encode_fields", "decode_fields", "crc16", "MAX_PAYLOAD", "DriverError"]


# Reading what a port has without TIOCINQ (pyserial's in_waiting) or TCFLSH: select + read work on
# any tty-like transport — a CDC-ACM tty, a pty, and a pty under umockdev's preload in the tests,
# which refuses those two ioctls.

def _read_available(port: serial.Serial, limit: int) -> bytes:
    """Up to ``limit`` bytes: waits for the first one at most the port's timeout, then takes what is there."""
    first = port.read(1)
    if not first:
        return b""
    fd = port.fileno()
    if limit > 1 and select.select([fd], [], [], 0)[0]:
        try:
            return first + os.read(fd, limit - 1)
        except BlockingIOError:
            pass
    return first


def _drain(port: serial.Serial, limit: int = 64 * 1024) -> int:
    """Discard whatever is waiting on the port now; returns how many bytes (bounded: a babbling
    recorder cannot keep us here)."""
    fd = port.fileno()
    n = 0
    while n < limit and select.select([fd], [], [], 0)[0]:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not data:
            break
        n += len(data)
    return n
