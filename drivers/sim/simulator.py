"""The simulated recorder: a GA/T 947 control channel on a pty, and its card, with faults on request.

It stands in for a docked 执法记录仪 in the demo and the tests, with real parts only: the control
channel is the master side of a real pseudo-terminal (``os.openpty()``), answered with the same
codec ``drivers/zfy.py`` speaks, so the driver opens the slave path with pyserial exactly as it
opens a CDC-ACM tty; closing the master is an unplug. The card is a directory or a FAT32 image
(``drivers/sim/fatimage.py``) filled with real ffmpeg footage (``drivers/sim/volume.py``).

Faults (``FAULTS``, one declarative table; ``NAME[=VALUE][@FUNCTION]`` where ``@FUNCTION``
limits a reply fault to one function) make it lie, stall, garble or vanish. "Unplug after N
bytes of offload" cannot be counted here — the offload reads the volume's files directly — so
the volume is served through the fault-injecting FUSE passthrough (``drivers/sim/faultfs.py``) with
``unplug_after_bytes=N``; a watcher sees that filesystem fail and closes the pty, so the card
and the control channel go together, as when a cable is pulled.

The simulated recorder is a composite device: its control port stays up in mass-storage mode
(SetMSDC is answered and recorded), and its volume is readable from the start — a directory
cannot disappear from a reader the way a USB disk re-enumerates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.errors import N_, SimError, WireError
from drivers.sim.pty import PtyChannel
from drivers.sim.volume import SampleSpec, make_volume
from drivers.zfywire import (
    CMD,
    CMD_BY_CODE,
    MANDATORY,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    REPLY_BIT,
    ROLES,
    Frame,
    Status,
    decode_fields,
    encode_fields,
    encode_frame,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultKind:
    arg: type | None  # the type of =VALUE, None: takes no value
    reply: bool  # shapes replies (may be limited to one function with @FUNCTION)
    help: str


FAULTS: dict[str, FaultKind] = {
    "low-battery": FaultKind(None, False, "battery at 12 %"),
    "clock-off": FaultKind(float, False, "the recorder's clock is off by N seconds (clock-off=-75)"),
    "storage-full": FaultKind(None, False, "the card is 97 % used"),
    "fs-errors": FaultKind(None, False, "the card's filesystem is reported with errors"),
    "faded": FaultKind(int, False, "the battery's full charge holds N % of its design capacity"),
    "lie": FaultKind(None, False, "battery 250 % and more free space than the card holds"),
    "wrong-password": FaultKind(None, False, "the recorder's passwords are not the station's"),
    "unplug-after": FaultKind(int, False, "the volume fails and the pty closes after N bytes of offload"),
    "unplug-on": FaultKind(str, False, "the pty closes when FUNCTION is requested (mid-conversation)"),
    "lacks": FaultKind(str, False, "a model without the optional FUNCTION (not announced, answered 'not supported')"),
    "garbage": FaultKind(None, True, "replies are random bytes"),
    "silence": FaultKind(None, True, "no reply at all"),
    "endless": FaultKind(None, True, "a reply that never ends (bytes without end)"),
    "bad-checksum": FaultKind(None, True, "replies with a wrong CRC"),
    "truncated": FaultKind(None, True, "replies cut off half way"),
    "oversized": FaultKind(None, True, f"replies one byte longer than the maximum ({MAX_PAYLOAD + 1} payload bytes)"),
    "late": FaultKind(float, True, "replies come N seconds late"),
}

FACTORY_PASSWORD = "000000"  # GA/T 947 recorders' usual factory default, for admin and user
CARD_BYTES = 32 * 1024**3


class FaultError(SimError):
    """A fault specification the simulator does not know (``--fault NAME[=VALUE][@FUNCTION]``)."""


@dataclass(frozen=True)
class Fault:
    name: str
    value: Any = None
    function: str | None = None  # None: every function

    def applies(self, function: str) -> bool:
        return self.function is None or self.function == function


def parse_fault(spec: str) -> Fault:
    """``NAME[=VALUE][@FUNCTION]`` -> Fault; a clear error naming what is wrong."""
    text, _, function = spec.partition("@")
    name, eq, value = text.partition("=")
    kind = FAULTS.get(name)
    if kind is None:
        raise FaultError(N_("unknown fault {name!r}; known: {known}"), name=name, known=", ".join(FAULTS))
    if function and (not kind.reply or function not in CMD):
        raise FaultError(N_("fault {spec!r}: only reply faults take @FUNCTION, with one of {functions}"),
                         spec=spec, functions=", ".join(CMD))
    if kind.arg is None:
        if eq:
            raise FaultError(N_("fault {name} takes no value"), name=name)
        return Fault(name, None, function or None)
    if not value:
        raise FaultError(N_("fault {name} needs a value: {name}=N"), name=name)
    try:
        parsed = kind.arg(value)
    except ValueError:
        raise FaultError(N_("fault {name}: {value!r} is not a {type}"), name=name, value=value,
                         type=kind.arg.__name__) from None
    if name in ("unplug-on", "lacks") and parsed not in CMD:
        raise FaultError(N_("fault {name}: {value!r} is not a function; one of {functions}"), name=name, value=value,
                         functions=", ".join(CMD))
    if name == "lacks" and parsed in MANDATORY:
        raise FaultError(N_("fault lacks: {function} is mandatory for every recorder"), function=parsed)
    if isinstance(parsed, (int, float)) and name != "clock-off" and parsed < 0:
        raise FaultError(N_("fault {name}: the value must not be negative"), name=name)
    return Fault(name, parsed, function or None)


def faults_help() -> str:
    meta = {float: "N", int: "N", str: "FUNCTION"}
    return "\n".join(f"  {n}{'=' + meta[k.arg] if k.arg else ''}{'[@FUNCTION]' if k.reply else ''}: {k.help}"
                     for n, k in FAULTS.items())


# -- the recorder's logic: one request frame in, one reply out --------------------------------


@dataclass
class Reply:
    data: bytes = b""
    delay: float = 0.0
    endless: bool = False
    unplug: bool = False


@dataclass
class RecorderState:
    serial: str
    badge: str
    officer_name: str
    unit_no: str = "330102"
    unit_name: str = "劳动保障监察支队"
    model: str = "SIM-ZFY-1"
    firmware: str = "1.4.2-sim"
    admin_password: str = FACTORY_PASSWORD
    user_password: str = FACTORY_PASSWORD
    clock_offset_s: float = 0.0
    battery_percent: int = 76
    voltage_mv: int = 3950
    charging: bool = True
    cycles: int = 143
    full_charge_mah: int = 2850
    design_mah: int = 3000
    resolution: tuple[int, int] = (1920, 1080)
    msdc: bool = False
    log: list[str] = field(default_factory=list)  # what the recorder was asked, in order


class SimRecorder:
    """The recorder's answers. ``storage`` is a callable giving (total, free, fs_state)."""

    def __init__(self, state: RecorderState, faults: list[Fault], storage: Any):
        self.state = state
        self.faults = faults
        self.storage = storage
        self.lacks = {f.value for f in faults if f.name == "lacks"}
        for f in faults:
            if f.name == "low-battery":
                state.battery_percent = 12
            elif f.name == "clock-off":
                state.clock_offset_s = float(f.value)
            elif f.name == "faded":
                state.full_charge_mah = state.design_mah * f.value // 100
            elif f.name == "lie":
                state.battery_percent = 250
            elif f.name == "wrong-password":
                state.admin_password = state.user_password = secrets.token_hex(8)

    def fault(self, name: str, function: str | None = None) -> Fault | None:
        for f in self.faults:
            if f.name == name and (function is None or f.applies(function)):
                return f
        return None

    def handle(self, frame: Frame) -> Reply:
        cmd = CMD_BY_CODE.get(frame.cmd)
        name = cmd.name if cmd else f"0x{frame.cmd:02x}"
        self.state.log.append(name)
        unplug = self.fault("unplug-on")
        if unplug is not None and unplug.value == name:
            return Reply(unplug=True)
        if cmd is None:
            return self._shape(name, encode_frame(frame.seq, frame.cmd | REPLY_BIT, Status.UNKNOWN_COMMAND, b""))
        try:
            fields = decode_fields(frame.payload)
        except WireError:
            return self._shape(name, encode_frame(frame.seq, frame.cmd | REPLY_BIT, Status.BAD_ARGUMENT, b""))
        status, out = (Status.NOT_SUPPORTED, {}) if name in self.lacks else self._answer(name, fields)
        payload = encode_fields(out)
        if self.fault("oversized", name):
            # Exactly one byte over the maximum, with a right length field and CRC: only the
            # length limit can catch it (the driver refuses it before reading the payload).
            payload += b"\xee" * (MAX_PAYLOAD + 1 - len(payload))
        return self._shape(name, encode_frame(frame.seq, frame.cmd | REPLY_BIT, status, payload))

    def _shape(self, name: str, data: bytes) -> Reply:
        if self.fault("silence", name):
            return Reply()
        if self.fault("endless", name):
            return Reply(endless=True)
        if self.fault("garbage", name):
            data = bytes(b if b != ord("Z") else 0x5B for b in os.urandom(48))
        if self.fault("bad-checksum", name):
            data = data[:-1] + bytes((data[-1] ^ 0xFF,))
        if self.fault("truncated", name):
            data = data[: len(data) // 2]
        late = self.fault("late", name)
        return Reply(data, delay=float(late.value) if late else 0.0)

    def _authorised(self, fields: dict[str, Any]) -> bool:
        role = fields.get("role")
        want = {ROLES["admin"]: self.state.admin_password, ROLES["user"]: self.state.user_password}.get(role)
        return want is not None and secrets.compare_digest(str(fields.get("password", "")), want)

    def _answer(self, name: str, f: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        s = self.state
        if CMD[name].password and not self._authorised(f):
            return Status.BAD_PASSWORD, {}
        if name == "Init_Device":
            return Status.OK, {"protocol": PROTOCOL_VERSION, "model": s.model, "firmware": s.firmware,
                               "functions": bytes(c.code for c in CMD.values() if c.name not in self.lacks)}
        if name == "GetIDCode":
            return Status.OK, {"id_code": s.serial}
        if name == "GetZFYInfo":
            return Status.OK, {"serial": s.serial, "badge": s.badge, "officer_name": s.officer_name,
                               "unit_no": s.unit_no, "unit_name": s.unit_name}
        if name == "WriteZFYInfo":
            if not f.get("badge"):
                return Status.BAD_ARGUMENT, {}
            s.badge, s.officer_name = f["badge"], f.get("officer_name", "")
            s.unit_no, s.unit_name = f.get("unit_no", ""), f.get("unit_name", "")
            return Status.OK, {}
        if name == "SyncDevTime":
            if "time_ms" not in f:
                return Status.BAD_ARGUMENT, {}
            s.clock_offset_s = f["time_ms"] / 1000 - time.time()
            return Status.OK, {}
        if name == "GetDevTime":
            return Status.OK, {"time_ms": int((time.time() + s.clock_offset_s) * 1000)}
        if name == "ReadDeviceResolution":
            return Status.OK, {"width": s.resolution[0], "height": s.resolution[1]}
        if name == "ReadDeviceBatteryDumpEnergy":
            return Status.OK, {"battery_percent": s.battery_percent, "voltage_mv": s.voltage_mv,
                               "charging": int(s.charging), "cycles": s.cycles,
                               "full_charge_mah": s.full_charge_mah, "design_mah": s.design_mah}
        if name == "SetMSDC":
            s.msdc = True
            return Status.OK, {}
        if name == "GetStorageInfo":
            total, free, fs_state = self.storage()
            if self.fault("storage-full"):
                free = total * 3 // 100
            if self.fault("fs-errors"):
                fs_state = 1
            if self.fault("lie"):
                free = total + 1024**3
            out = {"total_bytes": total, "free_bytes": free}
            if fs_state is not None:
                out["fs_state"] = fs_state
            return Status.OK, out
        return Status.UNKNOWN_COMMAND, {}


# -- the whole simulated recorder ------------------------------------------------------------


class SimulatedRecorder:
    """A recorder with a control channel and a card, started by ``start`` (or ``with``)."""

    def __init__(self, workdir: Path, *, volume: Path | None = None, image: Path | None = None,
                 pty_link: Path | None = None, faults: list[str] | None = None, spec: SampleSpec = SampleSpec(),
                 card_bytes: int = CARD_BYTES, admin_password: str = FACTORY_PASSWORD,
                 user_password: str = FACTORY_PASSWORD):
        if volume is not None and image is not None:
            raise FaultError(N_("give a volume directory or an image, not both"))
        self.workdir = Path(workdir)
        self.volume_dir = Path(volume) if volume else None
        self.image = Path(image) if image else None
        self.pty_link = Path(pty_link) if pty_link else None
        self.faults = [parse_fault(f) for f in faults or []]
        self.spec = spec
        self.card_bytes = card_bytes
        self.state = RecorderState(serial=spec.serial, badge=spec.badge, officer_name=spec.officer,
                                   admin_password=admin_password, user_password=user_password)
        self.served: Path | None = None  # where the station reads the card
        self.channel: PtyChannel | None = None
        self._stack = contextlib.ExitStack()
        self._watch_stop = threading.Event()

    def _fault(self, name: str) -> Fault | None:
        return next((f for f in self.faults if f.name == name), None)

    def start(self) -> SimulatedRecorder:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from drivers.sim.faultfs_mount import mounted_faultfs

        self.workdir.mkdir(parents=True, exist_ok=True)
        source: Path | None
        if self.image is not None:
            if not self.image.exists():
                from drivers.sim.fatimage import build_fat32_image

                content = self.workdir / "card-content"
                make_volume(content, self.spec)
                build_fat32_image(content, self.image)
            source = self._mount_image()
        else:
            if self.volume_dir is None:
                self.volume_dir = self.workdir / "volume"
            if not self.volume_dir.exists() or not any(self.volume_dir.iterdir()):
                make_volume(self.volume_dir, self.spec)
            source = self.volume_dir
        self.served = source
        unplug = self._fault("unplug-after")
        if unplug is not None:
            if source is None:
                raise FaultError(N_("unplug-after needs a mounted card; FUSE is not usable here to mount the image"))
            mnt = self._stack.enter_context(mounted_faultfs(source, self.workdir / "unpluggable",
                                                            {"unplug_after_bytes": unplug.value}))
            self.served = mnt
        recorder = SimRecorder(self.state, self.faults, self._storage)
        self.channel = PtyChannel(recorder, self.pty_link)
        if unplug is not None:
            threading.Thread(target=self._watch_unplug, name="evidock-sim-unplug", daemon=True).start()

    def _mount_image(self) -> Path | None:
        from drivers.sim.fatimage import mounted_fusefat
        from drivers.sim.faultfs import FaultfsUnavailable

        try:
            return self._stack.enter_context(mounted_fusefat(self.image, self.workdir / "card"))
        except FaultfsUnavailable as e:
            log.warning("simulator: the image is not mounted (%s); read it with mtools", e)
            return None

    def _watch_unplug(self) -> None:
        """The volume's filesystem fails once its byte budget is spent: then pull the cable."""
        assert self.served is not None
        while not self._watch_stop.wait(0.05):
            try:
                os.stat(self.served)
            except OSError:
                if self.channel:
                    self.channel.unplug()
                return

    def _storage(self) -> tuple[int, int, int | None]:
        if self.image is not None:
            from drivers.fat import fat_check, fat_usage

            total, free = fat_usage(self.image)
            state, _ = fat_check(self.image)
            return total, free, 0 if state == "clean" else 1
        assert self.volume_dir is not None
        used = 0
        for dirpath, _dirs, files in os.walk(self.volume_dir):
            for name in files:
                with contextlib.suppress(OSError):
                    used += os.lstat(os.path.join(dirpath, name)).st_size
        return self.card_bytes, max(self.card_bytes - used, 0), 0

    def status(self) -> dict[str, Any]:
        return {
            "serial": self.state.serial, "badge": self.state.badge, "officer": self.state.officer_name,
            "pty": self.channel.path if self.channel else None,
            "link": str(self.pty_link) if self.pty_link else None,
            "volume": str(self.served) if self.served else None,
            "image": str(self.image) if self.image else None,
            "faults": [f"{f.name}{'' if f.value is None else '=' + str(f.value)}{'@' + f.function if f.function else ''}"
                       for f in self.faults],
            "unplugged": bool(self.channel and self.channel.unplugged.is_set()),
        }

    def stop(self) -> None:
        self._watch_stop.set()
        if self.channel is not None:
            self.channel.close()
        self._stack.close()

    def __enter__(self) -> SimulatedRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
