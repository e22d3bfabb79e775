"""Hotplug: udev events on the usb, tty and block subsystems, grouped into docked recorders.

One recorder appears as several udev devices — its USB device, its control tty (CDC-ACM),
and later, once switched to mass storage, a block device (disk and partitions). They are
grouped by their USB parent into one ``Docked`` record. The bay comes from the port's
``ID_PATH`` through the config's bay map; an unmapped port is named from its path.

Shape follows udiskie's automount: events map to handlers in one table, and "a device
appears, then fills in" is handled by comparing the old and new state of the group, so
duplicate or reordered events are harmless. At start the monitor is opened *before* the
existing devices are enumerated, so a recorder plugged in meanwhile is seen (once) either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pyudev

log = logging.getLogger(__name__)

SUBSYSTEMS = ("usb", "tty", "block")


@dataclass(frozen=True)
class Docked:
    """One recorder on one port, as udev shows it right now."""

    usb_path: str  # sysfs path of the USB device: the group key
    vid: str
    pid: str
    product: str | None
    usb_serial: str | None
    port: str  # ID_PATH (or the sysfs name when udev gave none)
    bay: str
    tty: str | None = None  # /dev/ttyACM…
    block: str | None = None  # the block node to mount (a partition if any, else the disk)
    known: bool = True  # VID:PID in the driver table
    # A simulated recorder's card (directory or FAT image) in place of a block device: demo, tests.
    volume: str | None = None
    manufacturer: str | None = None  # the USB manufacturer string (shown for refused devices)

    @property
    def vidpid(self) -> str:
        return f"{self.vid}:{self.pid}"


# What the hotplug layer tells its listener: ("docked" | "changed" | "undocked" | "refused", recorder)
Listener = Callable[[str, Docked], None]


@dataclass
class Hotplug:
    """Watches udev and keeps the current set of docked recorders."""

    is_known: Callable[[str, str, str | None], bool]  # (vid, pid, product) -> in the driver table?
    listener: Listener
    bays: dict[str, str] = field(default_factory=dict)
    context: pyudev.Context = field(default_factory=pyudev.Context)
    docked: dict[str, Docked] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _observer: pyudev.MonitorObserver | None = None

    def start(self) -> None:
        monitor = pyudev.Monitor.from_netlink(self.context)
        for s in SUBSYSTEMS:
            monitor.filter_by(s)
        monitor.start()  # listening from here on: nothing plugged during enumeration is missed
        for s in SUBSYSTEMS:
            for dev in self.context.list_devices(subsystem=s):
                self.handle("add", dev)
        self._observer = pyudev.MonitorObserver(monitor, callback=self._on_event, name="evidock-udev")
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.send_stop()
            self._observer = None

    def _on_event(self, dev: pyudev.Device) -> None:
        try:
            self.handle(dev.action or "change", dev)
        except Exception:  # a malformed device must not kill the monitor thread
            log.exception("udev event %s on %s could not be handled", dev.action, dev.sys_path)

    def handle(self, action: str, dev: pyudev.Device) -> None:
        handler = _HANDLERS.get(action)
        if handler is not None:
            handler(self, dev)

    # -- handlers ------------------------------------------------------------------------

    def _on_add(self, dev: pyudev.Device) -> None:
        usb = _usb_parent(dev)
        if usb is None or _is_hub(usb):
            return  # hubs (root hubs included) are the dock's wiring, never a recorder
        with self._lock:
            old = self.docked.get(usb.sys_path)
            new = old or self._describe(usb)
            if dev.subsystem == "tty" and dev.device_node:
                new = replace(new, tty=dev.device_node)
            elif dev.subsystem == "block" and dev.device_node:
                # A disk with a partition table is not the volume: its partition (next event) is.
                # A "superfloppy" card (filesystem on the bare disk) has no table and is used whole.
                whole_with_table = dev.device_type == "disk" and dev.properties.get("ID_PART_TABLE_TYPE")
                if not whole_with_table and (new.block is None or dev.device_type == "partition"):
                    new = replace(new, block=dev.device_node)
            if new == old:
                return
            self.docked[usb.sys_path] = new
        if old is None:
            self._announce(new)
        elif new.known:
            self.listener("changed", new)
        # an unknown device filling in (its block device appearing) stays refused: not passed on

    def _announce(self, rec: Docked) -> None:
        if rec.known:
            log.info("bay %s: recorder %s docked (%s)", rec.bay, rec.vidpid, rec.usb_serial or "no USB serial")
            self.listener("docked", rec)
        else:
            log.warning("bay %s: unknown USB device %s (%s) refused: never mounted or read", rec.bay, rec.vidpid, rec.product or "?")
            self.listener("refused", rec)

    def _on_remove(self, dev: pyudev.Device) -> None:
        path, node = dev.sys_path, dev.device_node
        event: tuple[str, Docked] | None = None
        with self._lock:
            if path in self.docked:
                event = ("undocked", self.docked.pop(path))
            else:
                # a child (tty or block) went away: its recorder is the deepest group above it
                owners = [k for k in self.docked if path.startswith(k + "/")]
                if owners:
                    key = max(owners, key=len)
                    rec = self.docked[key]
                    upd = replace(rec, tty=None if rec.tty == node else rec.tty,
                                  block=None if rec.block == node else rec.block)
                    if upd != rec:
                        self.docked[key] = upd
                        event = ("changed", upd)
        if event is not None:
            if event[0] == "undocked":
                log.info("bay %s: recorder %s undocked", event[1].bay, event[1].vidpid)
            self.listener(*event)

    def _describe(self, usb: pyudev.Device) -> Docked:
        attrs = usb.attributes
        vid = _attr(attrs, "idVendor") or "0000"
        pid = _attr(attrs, "idProduct") or "0000"
        product = _attr(attrs, "product")
        port = usb.properties.get("ID_PATH") or usb.sys_name
        bay = self.bays.get(port) or f"port-{usb.sys_name}"
        return Docked(usb.sys_path, vid.lower(), pid.lower(), product, _attr(attrs, "serial"), port, bay,
                      known=self.is_known(vid.lower(), pid.lower(), product), manufacturer=_attr(attrs, "manufacturer"))


_HANDLERS: dict[str, Callable[[Hotplug, pyudev.Device], None]] = {
    "add": Hotplug._on_add,
    "bind": Hotplug._on_add,
    "change": Hotplug._on_add,
    "remove": Hotplug._on_remove,
}


def _usb_parent(dev: pyudev.Device) -> pyudev.Device | None:
    if dev.subsystem == "usb" and dev.device_type == "usb_device":
        return dev
    if dev.subsystem == "usb":
        return None  # interfaces: their usb_device gets its own event
    return dev.find_parent("usb", "usb_device")


def _is_hub(usb: pyudev.Device) -> bool:
    """USB class 09 is a hub; root hubs also have no parent USB device."""
    return _attr(usb.attributes, "bDeviceClass") == "09"


def _attr(attrs: pyudev.Attributes, name: str) -> str | None:
    try:
        v = attrs.get(name)
    except Exception:
        return None
    if v is None:
        return None
    text = v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else str(v).strip()
    # Recorder-supplied strings: printable only, bounded (invariant 5).
    return "".join(c for c in text if c.isprintable())[:64] or None
