"""The GA/T 947.4 function set over a recorder's serial control port (CDC-ACM), with pyserial.

GA/T 947.4 names the functions a 执法记录仪 offers a docking station — Init_Device, GetIDCode,
GetZFYInfo, WriteZFYInfo, SyncDevTime, ReadDeviceResolution, ReadDeviceBatteryDumpEnergy,
SetMSDC — but its wire format is not public, so the framing here is evidock's own, specified in
``drivers/README.md`` (magic, sequence number, status, length ≤ 512, TLV payload, CRC-16). The
simulated recorder (``drivers/sim/simulator.py``) speaks the same codec from the other end.

What this module guarantees (invariant 5): every reply is length-bounded and CRC-checked, every
read has a deadline, and every way a reply can be wrong — garbled, truncated, oversized, late,
never-ending, a bad checksum — ends in one typed ``ProtocolError`` within the request's timeout
(plus retries), never a crash or a hang. A pyserial/OS error becomes ``RecorderGone`` once, with
the port closed right there. Passwords travel only inside request frames and are never logged
nor put in a message.
"""

from __future__ import annotations

import logging
import os
import select
import termios
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import serial

from drivers.base import (
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
from drivers.errors import (
    N_,
    AuthError,
    BadChecksum,
    GarbledReply,
    InvalidReply,
    Message,
    OversizedReply,
    RecorderGone,
    RejectedRequest,
    ReplyTimeout,
    TruncatedReply,
    Unsupported,
    WireError,
)
from drivers.zfywire import (
    CMD,
    CMD_BY_CODE,
    COMMANDS,
    FS_STATES,
    MANDATORY,
    MAX_FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    REPLY_BIT,
    ROLES,
    TAG_BY_CODE,
    TAG_BY_NAME,
    TAGS,
    FrameParser,
    Status,
    decode_fields,
    encode_fields,
    encode_frame,
    redacted,
)

if TYPE_CHECKING:
    from drivers.zfywire import Command, Frame


if TYPE_CHECKING:
    from drivers.registry import DeviceModel

log = logging.getLogger(__name__)
assert len(TAG_BY_CODE) == len(TAGS) == len(TAG_BY_NAME), "duplicate tag in TAGS"
assert len(CMD) == len(CMD_BY_CODE) == len(COMMANDS), "duplicate command in COMMANDS"


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
                raise RecorderGone(self.port_name, N_("cannot open the control port ({reason}); "
                                                    "is the recorder docked and is this its tty?"),
                                   reason=_os_reason(e)) from None
        else:
            self.port_name = port.port or repr(port)
            self._port = port
            port.timeout = POLL_S
            port.write_timeout = timeout

    def __repr__(self) -> str:  # never shows the password
        return f"ZfyDriver({self.port_name!r}, role={self.role!r})"

    @property
    def recorder(self) -> str:
        return Message(N_("{serial} on {port}"), serial=self._serial, port=self.port_name) if self._serial else self.port_name

    @property
    def model_name(self) -> str:
        """The registry entry's model, else the one the recorder announced (Init_Device), else unknown."""
        if self.model is None and getattr(self, "_init", None) and self._init.get("model"):
            return str(self._init["model"])
        return super().model_name

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
                raise AuthError(self.recorder, N_("{request} needs the recorder's {role} password and none is "
                                                 "configured; set [zfy] password or password_file in the config"),
                                request=name, role=self.role)
            fields = {"role": ROLES[self.role], "password": self._password, **fields}
        payload = encode_fields(fields)
        attempts = 1 + (self.retries if cmd.retry else 0)
        for attempt in range(attempts):
            try:
                return self._exchange(cmd, payload, fields)
            except (ReplyTimeout, GarbledReply, BadChecksum, TruncatedReply, RejectedRequest) as e:
                if attempt + 1 >= attempts or (isinstance(e, RejectedRequest) and not e.busy):
                    if attempts > 1:
                        raise type(e)(e.recorder, name, Message(N_("{problem} (after {attempts} attempts)"),
                                                                  problem=e.problem, attempts=attempts), e.got) from None
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
            raise ReplyTimeout(self.recorder, cmd.name, Message(N_(
                "the request could not be sent within {seconds:g} s"), seconds=self.timeout)) from None
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
            raise GarbledReply(self.recorder, cmd.name, Message(N_("the reply lacks field(s) {fields}"),
                                                                 fields=", ".join(missing)), reply.payload)
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
                    raise GarbledReply(self.recorder, cmd.name, Message(N_(
                        "the reply is for function 0x{got:02x}, not 0x{wanted:02x}"),
                        got=frame.cmd, wanted=cmd.code | REPLY_BIT), frame.encode())
                stale += 1  # a late reply to an earlier request: not this one's answer
                log.info("%s: dropped a late reply (seq %d) while waiting for %s seq %d", self.recorder, frame.seq, cmd.name, seq)
                continue
            if len(parser.noise) > MAX_FRAME:
                raise OversizedReply(self.recorder, cmd.name, Message(N_(
                    "the recorder kept sending: more than {n} bytes (the longest reply) without a reply frame"),
                    n=MAX_FRAME), bytes(parser.noise))
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                chunk = _read_available(port, MAX_FRAME)
            except PORT_ERRORS as e:
                raise self._lost(e, cmd.name) from None
            parser.feed(chunk)
        if parser.partial:
            raise TruncatedReply(self.recorder, cmd.name, Message(N_(
                "the reply stopped short: {n} bytes of a frame by the {seconds:g} s deadline"),
                n=len(parser.partial), seconds=self.timeout), parser.partial)
        if parser.noise:
            raise GarbledReply(self.recorder, cmd.name, Message(N_("bytes that are not a reply frame")), bytes(parser.noise))
        if stale == 1:
            problem = Message(N_("no reply within {seconds:g} s ({n} late reply to earlier requests dropped)"),
                              seconds=self.timeout, n=stale)
        elif stale:
            problem = Message(N_("no reply within {seconds:g} s ({n} late replies to earlier requests dropped)"),
                              seconds=self.timeout, n=stale)
        else:
            problem = Message(N_("no reply within {seconds:g} s"), seconds=self.timeout)
        raise ReplyTimeout(self.recorder, cmd.name, problem)

    def _raise_status(self, cmd: Command, reply: Frame) -> None:
        st = reply.status
        if st == Status.BAD_PASSWORD:
            raise AuthError(self.recorder, N_("{request}: the recorder refused the {role} password; set the right one "
                                             "in [zfy] password or password_file (the recorder's vendor tool shows or resets it)"),
                            request=cmd.name, role=self.role)
        if st in (Status.UNKNOWN_COMMAND, Status.NOT_SUPPORTED):
            raise self._unsupported(cmd.name)
        what = {Status.BAD_ARGUMENT: Message(N_("bad argument")), Status.BUSY: Message(N_("busy"))}.get(
            st) or Message(N_("unknown status 0x{status:02x}"), status=st)
        err = RejectedRequest(self.recorder, cmd.name, Message(N_("the recorder answered with status {status}"), status=what),
                              reply.encode())
        err.busy = st == Status.BUSY  # worth asking again after the backoff
        raise err

    def _live_port(self) -> serial.Serial:
        if self._gone is not None:
            raise RecorderGone(self._gone.recorder, N_("the control port is gone (see the earlier error); dock the recorder again"))
        if self._port is None:
            raise RecorderGone(self.recorder, N_("the control port was closed"))
        return self._port

    def _lost(self, err: BaseException, request: str) -> RecorderGone:
        """Close the port where it failed and remember it: later calls fail at once."""
        self.close()
        self._gone = RecorderGone(self.recorder, N_("{request}: the control port went away ({reason}); "
                                                   "the recorder was unplugged or switched off — dock it again"),
                                  request=request, reason=_os_reason(err))
        return self._gone

    # -- the driver interface ----------------------------------------------------------------

    def functions(self) -> frozenset[str]:
        """The functions this recorder announced (Init_Device), known ones only."""
        if self._functions is None:
            r = self.request("Init_Device", {"protocol": PROTOCOL_VERSION})
            if r["protocol"] != PROTOCOL_VERSION:
                raise InvalidReply(self.recorder, request="Init_Device", problem=Message(N_("protocol version {got}, this station speaks {ours}"),
                                                                   got=r["protocol"], ours=PROTOCOL_VERSION))
            self._functions = frozenset(CMD_BY_CODE[c].name for c in r["functions"] if c in CMD_BY_CODE) | MANDATORY
            self._init = r
        return self._functions

    def identify(self) -> DeviceInfo:
        self.functions()
        init = self._init
        code = self.request("GetIDCode")["id_code"]
        info = self.request("GetZFYInfo")
        if info["serial"] != code:
            raise InvalidReply(self.recorder, request="GetZFYInfo", problem=Message(N_("device serial {serial!r} differs from its ID code {code!r}"),
                                                              serial=info["serial"], code=code))
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
            raise InvalidReply(self.recorder, request="ReadDeviceBatteryDumpEnergy", problem=Message(N_(
                "charging flag {flag} is neither 0 nor 1"), flag=charging))
        b = Battery(percent=r["battery_percent"], voltage_mv=r.get("voltage_mv"),
                    charging=None if charging is None else bool(charging), cycles=r.get("cycles"),
                    full_charge_mah=r.get("full_charge_mah"), design_mah=r.get("design_mah"))
        return check_battery(self.recorder, "ReadDeviceBatteryDumpEnergy", b)

    def storage(self) -> Storage:
        r = self.request("GetStorageInfo")
        fs = r.get("fs_state")
        if fs is not None and fs not in FS_STATES:
            raise InvalidReply(self.recorder, request="GetStorageInfo", problem=Message(N_(
                "filesystem state {state} is not one the protocol defines"), state=fs))
        s = Storage(total_bytes=r["total_bytes"], free_bytes=r["free_bytes"], fs_state=FS_STATES.get(fs) if fs is not None else None,
                    fs_detail=Message(N_("reported by the recorder")) if fs is not None else None)
        return check_storage(self.recorder, "GetStorageInfo", s)

    def clock(self) -> ClockReading:
        wall0, t0 = time.time(), time.monotonic()
        r = self.request("GetDevTime")
        rtt = time.monotonic() - t0
        station = datetime.fromtimestamp(wall0 + rtt / 2, timezone.utc)
        try:
            recorder = datetime.fromtimestamp(r["time_ms"] / 1000, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise InvalidReply(self.recorder, request="GetDevTime", problem=Message(N_("clock value {ms} ms is not a time"),
                                                                      ms=r["time_ms"])) from None
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
