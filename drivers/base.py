"""The one driver interface every recorder family implements, and its typed results.

A driver answers: who is this recorder (``identify``), how is its battery, its storage and its
clock, and it can set the clock, write the officer binding, switch to mass storage and delete a
given list of verified files. A capability a model lacks raises ``Unsupported`` (the base class
does that for every optional capability), so a caller can show "not reported" and never a
made-up value. Values a recorder reports are checked here before anyone sees them (invariant 5:
a battery at 250 % or more free space than the card holds is an ``InvalidReply``).

Drivers take their transport as an argument (DESIGN.md): a serial port object or a path for the
control channel, a directory for the volume; tests hand them a pty and a temporary folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from drivers import beneath
from drivers.errors import N_, ClockOutOfRange, InvalidReply, Message, Unsupported

if TYPE_CHECKING:
    from drivers.registry import DeviceModel

# Clocks outside this window are not a drifted clock but a reset or broken one (RTC battery).
CLOCK_MIN = datetime(2000, 1, 1, tzinfo=timezone.utc)
CLOCK_MAX = datetime(2100, 1, 1, tzinfo=timezone.utc)
# A clock inside that window but more than this far from the station's (a year) is not drifted
# either: it was set wrong (a wrong year typed in, a firmware default). Its drift is still
# measured and recorded, but the times it gave the recorder's files are not trusted for filing
# (``daemon.ingest.record.corrected_time``) and the dock raises a ``clock_invalid`` alert.
CLOCK_TRUST_LIMIT_S = 365 * 86400


def clock_trusted(drift_s: float | None) -> bool:
    """Whether file times of a recorder whose clock was ``drift_s`` off can be corrected and used.

    ``None`` (no control channel, drift not measured) is trusted: the file times are all there is.
    """
    return drift_s is None or abs(drift_s) <= CLOCK_TRUST_LIMIT_S


def _json(obj: Any) -> dict[str, Any]:
    out = asdict(obj)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat(timespec="milliseconds")
    return out


@dataclass(frozen=True)
class DeviceInfo:
    """Who the recorder is and whom it is bound to (GA/T 947 GetIDCode + GetZFYInfo)."""

    serial: str
    model: str
    firmware: str | None = None
    badge: str | None = None  # officer badge number (警号)
    officer_name: str | None = None
    unit_no: str | None = None
    unit_name: str | None = None
    resolution: str | None = None  # e.g. "1920x1080" (ReadDeviceResolution), None: not reported

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class OfficerInfo:
    """What ``bind_officer`` writes into the recorder (WriteZFYInfo)."""

    badge: str
    name: str
    unit_no: str = ""
    unit_name: str = ""


@dataclass(frozen=True)
class Battery:
    """Battery state; ``None`` in an optional field means the model does not report it."""

    percent: int
    voltage_mv: int | None = None
    charging: bool | None = None
    cycles: int | None = None
    full_charge_mah: int | None = None  # what a full charge holds now (capacity fade shows here)
    design_mah: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class Storage:
    """The recorder's card: size, free space and, where it could be checked, the filesystem state."""

    total_bytes: int
    free_bytes: int
    fs_state: str | None = None  # "clean" | "errors"; None: not checked / not reported
    fs_detail: str | None = None  # a ``Message`` where the driver wrote it (English as a str)

    @property
    def used_fraction(self) -> float:
        return 1.0 - self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**_json(self), "used_percent": round(100 * self.used_fraction, 1)}


@dataclass(frozen=True)
class ClockReading:
    """The recorder's clock against the station's, read once.

    ``drift_s`` = recorder clock − station clock; the station time is the midpoint of the request's
    round trip, so the error of the measurement is at most half of ``round_trip_s``.
    """

    recorder_time: datetime
    station_time: datetime
    round_trip_s: float

    @property
    def drift_s(self) -> float:
        return (self.recorder_time - self.station_time).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {**_json(self), "drift_s": round(self.drift_s, 3)}


@dataclass(frozen=True)
class ClockSync:
    """A clock set (SyncDevTime): the drift measured before, and after, setting it."""

    drift_before_s: float | None  # None: the clock could not be read (none, or reset)
    set_to: datetime
    drift_after_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class VerifiedFile:
    """A file the caller vouches is stored and verified: its path on the volume, hash and size."""

    rel: bytes
    sha256: str
    size: int


@dataclass
class WipeReport:
    deleted: list[bytes] = field(default_factory=list)
    # (path, why it was not deleted); the why is a ``Message``: its English, translatable by ``i18n.text``
    kept: list[tuple[bytes, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "deleted": [r.decode("utf-8", "backslashreplace") for r in self.deleted],
            "kept": [{"path": r.decode("utf-8", "backslashreplace"), "reason": str(why)} for r, why in self.kept],
        }


def check_battery(recorder: str, request: str, b: Battery) -> Battery:
    """Reject values no battery can have."""
    if not 0 <= b.percent <= 100:
        raise InvalidReply(recorder, request, Message(N_("battery level {percent} % is outside 0–100 %"), percent=b.percent))
    if b.voltage_mv is not None and not 0 < b.voltage_mv < 60_000:
        raise InvalidReply(recorder, request, Message(N_("battery voltage {mv} mV is not a recorder battery's"),
                                                       mv=b.voltage_mv))
    if b.full_charge_mah is not None and b.design_mah and b.full_charge_mah > 2 * b.design_mah:
        raise InvalidReply(recorder, request, Message(N_("full-charge capacity {full} mAh is over twice "
                                                          "the design capacity {design} mAh"),
                                                       full=b.full_charge_mah, design=b.design_mah))
    return b


def check_storage(recorder: str, request: str, s: Storage) -> Storage:
    if s.total_bytes <= 0:
        raise InvalidReply(recorder, request, Message(N_("card size {total} bytes is not a card's"), total=s.total_bytes))
    if not 0 <= s.free_bytes <= s.total_bytes:
        raise InvalidReply(recorder, request, Message(N_("free space {free} bytes is larger than the card ({total} bytes)"),
                                                       free=s.free_bytes, total=s.total_bytes) if s.free_bytes > 0 else
                           Message(N_("free space {free} bytes is negative"), free=s.free_bytes))
    return s


def check_identifiers(recorder: str, request: str, values: dict[str, str | None]) -> None:
    """Serials and badge numbers key the catalog and staging: plain identifiers only."""
    for k, v in values.items():
        if v is not None and (not v or len(v) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in v)):
            raise InvalidReply(recorder, request, Message(N_(
                "{key} {value!r} is not an identifier (ASCII letters, digits, - _ . only, ≤ 64)"), key=k, value=v))


def check_clock(recorder: str, request: str, when: datetime, station: datetime | None = None) -> datetime:
    """``when`` if a working clock could show it; else ClockOutOfRange (with the drift, given ``station``)."""
    if not CLOCK_MIN <= when < CLOCK_MAX:
        raise ClockOutOfRange(recorder, request, Message(N_("clock reads {time}, outside 2000–2099 "
                                                             "(a reset real-time clock); the station will set it"),
                                                          time=when.isoformat()),
                              (when - station).total_seconds() if station is not None else None)
    return when


class Driver(ABC):
    """One docked recorder. Optional capabilities raise ``Unsupported`` unless a driver has them."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, model: DeviceModel | None = None):
        self.model = model

    @property
    def model_name(self) -> str:
        return self.model.model if self.model else Message(N_("unknown {driver} recorder"), driver=self.name)

    @property
    @abstractmethod
    def recorder(self) -> str:
        """How messages name this recorder: its port or volume (its serial once known)."""

    def _unsupported(self, capability: str) -> Unsupported:
        return Unsupported(self.recorder, capability, self.model_name)

    @abstractmethod
    def identify(self) -> DeviceInfo: ...

    def battery(self) -> Battery:
        raise self._unsupported(Message(N_("battery")))

    @abstractmethod
    def storage(self) -> Storage: ...

    def clock(self) -> ClockReading:
        raise self._unsupported(Message(N_("clock")))

    def sync_clock(self, now: datetime | None = None) -> ClockSync:
        raise self._unsupported(Message(N_("clock setting")))

    def bind_officer(self, officer: OfficerInfo) -> None:
        raise self._unsupported(Message(N_("officer binding")))

    def enter_mass_storage(self) -> None:
        """Switch to mass storage. Plain mass-storage recorders already are: nothing to do."""

    @property
    def important_pattern(self) -> str | None:
        """The model's rule for files the officer marked important (a regex on the file name)."""
        return self.model.quirks.important_pattern if self.model else None

    def is_important(self, rel: bytes, default: str = "_IMP") -> bool:
        name = os.path.basename(rel).decode("utf-8", "backslashreplace")
        return bool(re.search(self.important_pattern or default, name))

    def wipe(self, volume: Path, files: list[VerifiedFile]) -> WipeReport:
        """Delete exactly the listed files from the recorder's (writable) volume, each only if its
        bytes on the volume still hash to the stored SHA-256 (invariant 2)."""
        return wipe_verified(volume, files)

    def close(self) -> None:
        """Release the transport. Idempotent."""

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()




def wipe_verified(volume: Path, files: list[VerifiedFile], chunk: int = 1 << 20) -> WipeReport:
    """Delete each listed file whose current bytes match its hash; keep and explain every other.

    Links are never followed (``O_NOFOLLOW`` on each component), and the file unlinked is the
    one that was hashed (same device and inode, checked just before the unlink).
    """
    rep = WipeReport()
    root = os.open(os.fsencode(volume), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for f in files:
            why = _wipe_one(root, f, chunk)
            if why is None:
                rep.deleted.append(f.rel)
            else:
                rep.kept.append((f.rel, why))
    finally:
        os.close(root)
    return rep


def _wipe_one(root: int, f: VerifiedFile, chunk: int) -> str | None:
    parts = f.rel.split(b"/")
    if not f.rel or f.rel.startswith(b"/") or any(p in (b"", b".", b"..") for p in parts):
        return Message(N_("not a plain path on the volume: refused"))
    try:
        opened = beneath.open_beneath(root, f.rel)
        parent, name, fd = opened.__enter__()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return Message(N_("a symbolic link on the way: not followed, kept"))
        return Message(N_("cannot be opened ({reason}): kept"), reason=e.strerror)
    try:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return Message(N_("not a regular file: kept"))
            if st.st_size != f.size:
                return Message(N_("size is {size} bytes, the stored copy has {stored}: kept"), size=st.st_size, stored=f.size)
            h = hashlib.sha256()
            os.set_blocking(fd, True)
            while block := os.read(fd, chunk):
                h.update(block)
        except OSError as e:
            return Message(N_("could not be re-read ({reason}): kept"), reason=e.strerror)
        if h.hexdigest() != f.sha256:
            return Message(N_("its bytes no longer match the stored copy: kept"))
        try:
            now = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                return Message(N_("was replaced while being checked: kept"))
            os.unlink(name, dir_fd=parent)
        except OSError as e:
            return Message(N_("could not be deleted ({reason}): kept"), reason=e.strerror)
        return None
    finally:
        opened.__exit__(None, None, None)
