"""Hotplug grouping through real pyudev (netlink monitor + enumeration) on a umockdev test bed."""

from __future__ import annotations

import threading
import time

import pytest
from support.umock import fake_dock

from daemon.dock.hotplug import Hotplug


class Events:
    def __init__(self):
        self.items = []
        self.cv = threading.Condition()

    def __call__(self, kind, rec):
        with self.cv:
            self.items.append((kind, rec))
            self.cv.notify_all()

    def wait_for(self, pred, timeout=10.0):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                hit = [e for e in self.items if pred(e)]
                if hit:
                    return hit[-1]
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event; got {[(k, r.bay, r.tty, r.block) for k, r in self.items]}")
                self.cv.wait(left)


KNOWN = {("1d6b", "e947")}


def _known(vid, pid, product):
    return (vid, pid) in KNOWN


@pytest.fixture
def dock():
    d = fake_dock()
    yield d
    d.close()


def test_recorder_nodes_are_grouped_by_usb_parent(dock) -> None:
    ev = Events()
    hp = Hotplug(_known, ev, bays={"pci-0000:00:14.0-usb-0:3": "bay-3"})
    hp.start()
    try:
        usb = dock.plug(3, tty="ttyACM0")
        kind, rec = ev.wait_for(lambda e: e[0] == "docked")
        assert rec.bay == "bay-3" and rec.vidpid == "1d6b:e947" and rec.usb_serial == "ZFY0001"
        ev.wait_for(lambda e: e[1].tty == "/dev/ttyACM0")
        dock.add_block(usb, "sdb")
        kind, rec = ev.wait_for(lambda e: e[1].block == f"/dev/sdb{dock.bus}1")
        assert kind == "changed" and rec.tty == "/dev/ttyACM0"
        assert len(hp.docked) == 1
        dock.unplug(usb)
        kind, rec = ev.wait_for(lambda e: e[0] == "undocked")
        assert rec.bay == "bay-3" and hp.docked == {}
    finally:
        hp.stop()


def test_unknown_usb_storage_is_refused(dock) -> None:
    ev = Events()
    hp = Hotplug(_known, ev)
    hp.start()
    try:
        usb = dock.plug(5, vid="0781", pid="5567", product="Cruzer Blade", serial="STICK")
        dock.add_block(usb, "sdc")
        kind, rec = ev.wait_for(lambda e: e[0] == "refused")
        assert rec.vidpid == "0781:5567" and not rec.known and rec.bay == f"port-{dock.bus}-5"
        assert not any(k == "docked" for k, _ in ev.items)
    finally:
        hp.stop()


def test_two_at_once_and_one_docked_before_start(dock) -> None:
    early = dock.plug(1, serial="EARLY", tty="ttyACM1")
    ev = Events()
    hp = Hotplug(_known, ev)
    hp.start()
    try:
        ev.wait_for(lambda e: e[0] == "docked" and e[1].usb_serial == "EARLY")
        dock.plug(2, serial="A", tty="ttyACM2")
        dock.plug(4, serial="B", tty="ttyACM3")
        ev.wait_for(lambda e: e[1].usb_serial == "A" and e[1].tty)
        ev.wait_for(lambda e: e[1].usb_serial == "B" and e[1].tty)
        assert {r.usb_serial for r in hp.docked.values()} == {"EARLY", "A", "B"}
        assert sum(1 for k, r in ev.items if k == "docked" and r.usb_serial == "EARLY") == 1
    finally:
        hp.stop()


def test_undock_under_a_hub_is_seen_and_the_port_takes_the_next_recorder(dock) -> None:
    ev = Events()
    hp = Hotplug(_known, ev)
    hp.start()
    try:
        first = dock.plug(2, serial="FIRST", tty="ttyACM7")
        ev.wait_for(lambda e: e[0] == "docked" and e[1].usb_serial == "FIRST")
        dock.unplug(first)
        kind, rec = ev.wait_for(lambda e: e[0] == "undocked")
        assert rec.usb_serial == "FIRST" and hp.docked == {}
        dock.plug(3, serial="SECOND", tty="ttyACM8")
        ev.wait_for(lambda e: e[0] == "docked" and e[1].usb_serial == "SECOND")
        assert not any(k == "refused" for k, _ in ev.items), "the root hub was taken for a device"
    finally:
        hp.stop()
