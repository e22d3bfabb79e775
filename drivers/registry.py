"""The device table: which USB VID:PID (and, optionally, product string) is which recorder model,
which driver speaks to it, how the station reaches it (a control channel or only its volume), and
its quirks — one declarative entry per model (Solaar's ``descriptors.py``), not a chain of ifs.
Duplicate entries, unknown drivers and reaches a driver cannot take are refused at import time.

Lookups are functions: ``lookup(vid, pid, product)`` prefers an entry naming the product string
over one for the bare VID:PID (vendors reuse one chip's VID:PID across models), and
``driver_for(model, ...)`` builds the driver. A USB mass-storage device that is in no entry is a
``GENERIC_UMS`` recorder: read as a plain volume, with nothing guessed about it.

Only the simulated recorders' entries are built in (VID 0x1209 is pid.codes' open-source
vendor ID; PIDs 0x0001–0x0002 are its test range). Bureaus add their fleet's models in the
config (``[[recorders]]``, daemon/config_recorders.py), never by editing this file: the station
builds one ``Registry`` at config load, the built-in table plus those entries
(``with_models``), checked by the same rules, and hands it down (``StationContext.registry``).
The module-level functions look up the built-in table alone.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from drivers.base import Driver
from drivers.errors import N_, Message


@dataclass(frozen=True)
class Quirks:
    """How one model differs from its driver's defaults."""

    important_pattern: str = "_IMP"  # regex on a file name marking the officer's important files
    info_file: str | None = None  # device-info file on the volume (mass-storage models), e.g. DEVICE.INI
    info_encoding: str = "utf-8"  # its text encoding (many firmwares write GBK)
    baudrate: int = 115200  # CDC-ACM ignores it, but pyserial must be given one
    composite: bool = False  # control port stays up in mass-storage mode (both USB interfaces)
    filesystem: str = "vfat"  # what the card is formatted with: vfat | exfat
    serial_source: str = "info-file"  # mass storage: which serial wins, the info file's or the USB one (info-file | usb)


SERIAL_SOURCES = ("info-file", "usb")


# How the station reaches a recorder: over a control channel (a CDC-ACM tty: identify, health and
# clock are asked, then the recorder is switched to mass storage) or only through its mass-storage
# volume (what it says about itself is read from the card). The dock walks each in its own order.
Reach = Literal["control", "volume"]
REACHES: tuple[str, ...] = get_args(Reach)


@dataclass(frozen=True)
class DeviceModel:
    vid: int
    pid: int
    product: str | None  # USB product string to match exactly; None: any product with this VID:PID
    driver: str  # key of DRIVERS
    model: str  # the model's name, as shown to people
    vendor: str
    quirks: Quirks = field(default_factory=Quirks)
    reach: Reach = "volume"  # see Reach; nothing is assumed of a model beyond its volume

    @property
    def key(self) -> tuple[int, int, str | None]:
        return (self.vid, self.pid, self.product)

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


# driver key -> (module, class): imported on first use so the registry imports no driver code.
DRIVERS: dict[str, tuple[str, str]] = {
    "zfy": ("drivers.zfy", "ZfyDriver"),
    "ums": ("drivers.ums", "UmsDriver"),
}

# driver key -> the reach its transport argument is: a zfy driver talks over a port, a ums one reads a volume.
DRIVER_REACH: dict[str, Reach] = {"zfy": "control", "ums": "volume"}

DEVICES: tuple[DeviceModel, ...] = (
    DeviceModel(0x1209, 0x0001, "evidock simulated ZFY recorder", "zfy", "SIM-ZFY-1", "evidock",
                Quirks(composite=True), reach="control"),
    DeviceModel(0x1209, 0x0002, "evidock simulated UMS recorder", "ums", "SIM-UMS-1", "evidock",
                Quirks(info_file="DEVICE.INI")),
)

GENERIC_UMS = DeviceModel(0, 0, None, "ums", Message(N_("generic mass-storage recorder")), "unknown",
                          Quirks(info_file="DEVICE.INI"))


def _index(devices: tuple[DeviceModel, ...]) -> dict[tuple[int, int, str | None], DeviceModel]:
    """The lookup index; refuses a duplicate entry, an unknown driver or reach, or a reach its driver cannot take."""
    index: dict[tuple[int, int, str | None], DeviceModel] = {}
    for d in devices:
        if d.driver not in DRIVERS:
            raise ValueError(f"device table: {d.model} ({d.usb_id}) names unknown driver {d.driver!r}; "
                             f"known: {', '.join(DRIVERS)}")
        if d.reach not in REACHES:
            raise ValueError(f"device table: {d.model} ({d.usb_id}) has unknown reach {d.reach!r}; "
                             f"known: {', '.join(REACHES)}")
        if d.reach != DRIVER_REACH[d.driver]:
            raise ValueError(f"device table: {d.model} ({d.usb_id}) is reached by {d.reach!r}, but driver "
                             f"{d.driver!r} takes a {DRIVER_REACH[d.driver]!r} transport")
        if d.quirks.serial_source not in SERIAL_SOURCES:
            raise ValueError(f"device table: {d.model} ({d.usb_id}) has unknown serial source {d.quirks.serial_source!r}; "
                             f"known: {', '.join(SERIAL_SOURCES)}")
        if d.key in index:
            raise ValueError(f"device table: duplicate entry for {d.usb_id} product {d.product!r}: "
                             f"{index[d.key].model} and {d.model}")
        index[d.key] = d
    return index


class Registry:
    """A device table: the built-in models plus those a station's config adds, indexed once.

    Built by ``with_models``; the same checks as the built-in table (a duplicate, an unknown
    driver or a reach the driver cannot take is a ``ValueError`` naming the entry)."""

    def __init__(self, devices: tuple[DeviceModel, ...]):
        self.devices = tuple(devices)
        self._index = _index(self.devices)

    def lookup(self, vid: int, pid: int, product: str | None = None) -> DeviceModel | None:
        """The model for a USB device: the entry with its product string first, then the bare VID:PID."""
        if product is not None and (hit := self._index.get((vid, pid, product))) is not None:
            return hit
        return self._index.get((vid, pid, None))

    def lookup_mass_storage(self, vid: int, pid: int, product: str | None = None) -> DeviceModel:
        """Like ``lookup`` for a device that is USB mass storage: unknown ones are ``GENERIC_UMS``."""
        return self.lookup(vid, pid, product) or GENERIC_UMS

    def is_known(self, vid: str, pid: str, product: str | None) -> bool:
        """Is this USB device (VID and PID as hex text, as udev gives them) a model of this table?"""
        try:
            return self.lookup(int(vid, 16), int(pid, 16), product) is not None
        except ValueError:
            return False

    def by_model(self, name: str) -> DeviceModel:
        for d in self.devices:
            if d.model == name:
                return d
        raise KeyError(f"no model {name!r} in the device table; known: {', '.join(d.model for d in self.devices)}")


BUILTIN = Registry(DEVICES)
_INDEX = BUILTIN._index


def with_models(extra: tuple[DeviceModel, ...] | list[DeviceModel]) -> Registry:
    """The built-in table plus ``extra`` (a station's own models), checked as one table."""
    return Registry((*DEVICES, *extra))


def lookup(vid: int, pid: int, product: str | None = None) -> DeviceModel | None:
    """The built-in table's model for a USB device (see ``Registry.lookup``)."""
    return BUILTIN.lookup(vid, pid, product)


def lookup_mass_storage(vid: int, pid: int, product: str | None = None) -> DeviceModel:
    return BUILTIN.lookup_mass_storage(vid, pid, product)


def by_model(name: str) -> DeviceModel:
    return BUILTIN.by_model(name)


def driver_class(model: DeviceModel) -> type[Driver]:
    module, cls = DRIVERS[model.driver]
    return getattr(importlib.import_module(module), cls)


def driver_for(model: DeviceModel, *args: Any, **kwargs: Any) -> Driver:
    """The driver for ``model`` over the given transport (a port for zfy, a volume for ums)."""
    return driver_class(model)(*args, model=model, **kwargs)
