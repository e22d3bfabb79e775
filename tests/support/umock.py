"""A umockdev test bed that docks fake recorders: usb device + tty child, later a block child.

pyudev's real netlink monitor and sysfs enumeration see these devices when the test process
runs under ``umockdev-wrapper`` (scripts/test does that). Without it, tests are skipped with
the reason.
"""

from __future__ import annotations

import os

import pytest


def preloaded() -> bool:
    """Whether this process runs under umockdev's preload (``umockdev-wrapper``)."""
    return "umockdev" in os.environ.get("LD_PRELOAD", "")


def testbed():
    """The process's one test bed, made on first use (``None`` without the preload or the bindings).

    conftest makes it when a test process starts, not when the first hotplug test runs: without a
    test bed, umockdev 0.17's preload leaks a socket on every open of a node under /dev (it tries
    ``(null)/ioctl/_default`` and never closes the socket when that fails). A test process opens
    /dev/null for every subprocess it starts, so after a thousand or so its next file descriptors
    are past what select() takes, and pyserial's reads on a recorder's pty fail ("filedescriptor
    out of range in select()"). Made at the start, every test also sees the same environment,
    whichever tests its worker ran before.
    """
    global _TESTBED
    if _TESTBED is None and preloaded():
        try:
            import gi

            gi.require_version("UMockdev", "1.0")
            from gi.repository import UMockdev
        except (ImportError, ValueError):
            return None
        # One test bed per process: a second one's teardown would pull the environment that
        # umockdev's preload reads from under the first.
        _TESTBED = UMockdev.Testbed.new()
    return _TESTBED


def fake_dock():
    if not preloaded():
        pytest.skip("needs umockdev-wrapper around pytest (scripts/test runs it so)")
    tb = testbed()
    if tb is None:
        pytest.skip("umockdev's GObject bindings (gir1.2-umockdev-1.0) are not importable")
    return FakeDock(tb)  # the caller closes it (removes its devices and /dev links)


_TESTBED = None


class FakeDock:
    _buses = iter(range(1, 10_000))

    def __init__(self, tb):
        # Names are never reused within the process: umockdev does not forget a removed block
        # device's class entry, and adding one of the same name again aborts.
        self.bus = next(FakeDock._buses)
        self.tb = tb
        self.links: list[str] = []
        self.devices: list[str] = []
        # Every port hangs off a root hub, as on real hardware (the hub itself is never a recorder).
        self.hub = self._add("usb", f"usb{self.bus}", None,
                             ["idVendor", "1d6b", "idProduct", "0002", "bDeviceClass", "09", "product", "xHCI Host Controller"],
                             ["DEVTYPE", "usb_device", "ID_PATH", "pci-0000:00:14.0"])

    def _add(self, *args) -> str:
        path = self.tb.add_device(*args)
        self.devices.append(path)
        return path

    def plug(self, port: int, vid: str = "1d6b", pid: str = "e947", serial: str = "ZFY0001",
             product: str = "ZFY Recorder", tty: str | None = None, tty_node: str | None = None) -> str:
        """A recorder on USB port ``port``: its usb_device (with ID_PATH) and control tty.

        ``tty_node``: what the tty's node really is (a simulated recorder's pty), linked from a
        uniquely named node in /dev as for ``add_block``.
        """
        name = f"{self.bus}-{port}"
        usb = self._add("usb", name, self.hub,
                                 ["idVendor", vid, "idProduct", pid, "serial", serial, "product", product],
                                 ["ID_PATH", f"pci-0000:00:14.0-usb-0:{port}", "DEVTYPE", "usb_device"])
        if tty or tty_node:
            name = tty or f"ttyEVD{os.getpid() % 10000}x{port}"
            if tty_node:
                self._link(f"/dev/{name}", tty_node)  # before the device: as udev makes the node first
            self._add("tty", name, usb, [], ["DEVNAME", f"/dev/{name}"])
        return usb

    def add_block(self, usb: str, disk: str, partition: bool = True, node: str | None = None) -> str:
        """The recorder's mass storage: a disk (and partition) at ``/dev/<disk>1``.

        ``node``: what that device node really is — a simulated recorder's FAT image or card
        folder. libudev insists that device nodes live under /dev, and umockdev's preload
        takes over (and breaks ioctls on) nodes inside its own test bed, so the node is a
        uniquely named symbolic link in the real /dev, removed by ``close``.
        """
        disk = f"{disk}{self.bus}"
        props = ["DEVNAME", f"/dev/{disk}", "DEVTYPE", "disk"] + (["ID_PART_TABLE_TYPE", "dos"] if partition else [])
        d = self._add("block", disk, usb, ["size", "1024"], props)
        if not partition:
            return d
        devname = f"/dev/{disk}1" if not node else f"/dev/evd{os.getpid() % 10000}{disk}1"
        if node:
            self._link(devname, node)
        return self._add("block", f"{disk}1", d, ["size", "1000"], ["DEVNAME", devname, "DEVTYPE", "partition"])

    def unplug(self, syspath: str) -> None:
        """A real remove uevent, then the device leaves the test bed (its name cannot be reused)."""
        self.tb.uevent(syspath, "remove")
        self.tb.remove_device(syspath)
        self.devices = [d for d in self.devices if not (d == syspath or d.startswith(syspath + "/"))]

    def _link(self, devname: str, target: str) -> None:
        if os.path.islink(devname):
            os.unlink(devname)
        os.symlink(target, devname)
        self.links.append(devname)

    def close(self) -> None:
        for path in reversed(self.devices):
            if os.path.exists(path):
                self.tb.remove_device(path)
        self.devices.clear()
        for link in self.links:
            if os.path.islink(link):
                os.unlink(link)
        self.links.clear()
