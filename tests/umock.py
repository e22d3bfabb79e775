"""A umockdev test bed that docks fake recorders: usb device + tty child, later a block child.

pyudev's real netlink monitor and sysfs enumeration see these devices when the test process
runs under ``umockdev-wrapper`` (scripts/test does that). Without it, tests are skipped with
the reason.
"""

from __future__ import annotations

import os

import pytest


def fake_dock():
    if "umockdev" not in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("needs umockdev-wrapper around pytest (scripts/test runs it so)")
    try:
        import gi

        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev
    except (ImportError, ValueError) as e:
        pytest.skip(f"umockdev's GObject bindings are not importable: {e}")
    return FakeDock(UMockdev.Testbed.new())


class FakeDock:
    def __init__(self, tb):
        self.tb = tb
        self.n = 0

    def plug(self, port: int, vid: str = "1d6b", pid: str = "e947", serial: str = "ZFY0001",
             product: str = "ZFY Recorder", tty: str | None = None) -> str:
        """A recorder on USB port ``port``: its usb_device (with ID_PATH) and control tty."""
        name = f"1-{port}"
        usb = self.tb.add_device("usb", name, None,
                                 ["idVendor", vid, "idProduct", pid, "serial", serial, "product", product],
                                 ["ID_PATH", f"pci-0000:00:14.0-usb-0:{port}", "DEVTYPE", "usb_device"])
        if tty:
            self.tb.add_device("tty", tty, usb, [], ["DEVNAME", f"/dev/{tty}"])
        return usb

    def add_block(self, usb: str, disk: str, partition: bool = True) -> str:
        d = self.tb.add_device("block", disk, usb, ["size", "1024"], ["DEVNAME", f"/dev/{disk}", "DEVTYPE", "disk"])
        if partition:
            return self.tb.add_device("block", f"{disk}1", d, ["size", "1000"], ["DEVNAME", f"/dev/{disk}1", "DEVTYPE", "partition"])
        return d

    def unplug(self, syspath: str) -> None:
        self.tb.uevent(syspath, "remove")
        self.tb.remove_device(syspath)
