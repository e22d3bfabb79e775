"""End to end under umockdev: udev events → the real pyudev monitor → the dock manager →
a simulated recorder (pty control channel, FAT32 card image mounted by the station)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from support.docktools import SIM_PID, SIM_PRODUCT, SIM_VID, recorder, template_volume, wait_until
from support.helpers import assert_store_consistent
from support.umock import fake_dock

from daemon.config import parse_config
from daemon.context import build_context
from daemon.dock.hotplug import Hotplug
from daemon.dock.jobs import State
from daemon.dock.manager import DockManager
from daemon.dock.station import is_known
from drivers.sim.fatimage import build_fat32_image, list_files


@pytest.fixture
def dock():
    d = fake_dock()
    yield d
    d.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return template_volume(tmp_path_factory.mktemp("tpl"))


def _cfg(tmp_path: Path, **dock):
    return parse_config({"store": {"reserve_bytes": 0}, "zfy": {"timeout_s": 1.0, "retries": 0},
                         "dock": {"node_wait_s": 20, "mount_root": str(tmp_path / "mnt"),
                                  "bays": {"pci-0000:00:14.0-usb-0:2": "bay-02"}, **dock}})


def test_hotplug_to_ready_with_a_fat_card(tmp_path, data_dir, template, dock) -> None:
    image = build_fat32_image(template, tmp_path / "card.img")
    with recorder(tmp_path, template) as sim:
        m = DockManager(build_context(_cfg(tmp_path), data_dir))
        hp = Hotplug(is_known, m.on_hotplug, bays=dict(m.config.dock.bays))
        hp.start()
        try:
            usb = dock.plug(2, vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT, serial="ZFY-T-0001", tty_node=sim.status()["pty"])
            wait_until(lambda: m.history and m.history[0].state is State.CLOCK_SYNCED or
                       (m.history and m.history[0].finished), 60, "the dock check")
            # SetMSDC done: the recorder re-appears as USB mass storage (its card image)
            dock.add_block(usb, "sdb", node=str(image))
            assert m.wait_all(120)
        finally:
            hp.stop()
        job = m.history[0]
        assert job.rec.bay == "bay-02"
        assert job.state is State.READY, job.detail
        assert job.files_stored >= 6  # fusefat also shows the volume label as an empty file
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    mounted = db.execute("SELECT detail FROM dock_events WHERE state = 'MOUNTED'").fetchone()[0]
    assert "(vfat via " in mounted and "read-only" in mounted
    assert "verified file(s) deleted" in db.execute("SELECT detail FROM dock_events WHERE state = 'WIPED'").fetchone()[0]
    left = [f for f in list_files(image) if not f.endswith("/")]
    assert left == [], f"files left on the card after a verified wipe: {left}"
    assert_store_consistent(data_dir)


def test_unknown_stick_is_refused_and_alerted(tmp_path, data_dir, dock) -> None:
    m = DockManager(build_context(_cfg(tmp_path), data_dir))
    hp = Hotplug(is_known, m.on_hotplug)
    hp.start()
    try:
        usb = dock.plug(5, vid="0781", pid="5567", product="Cruzer Blade", serial="STICK")
        dock.add_block(usb, "sdc")
        db = sqlite3.connect(data_dir / "catalog.sqlite")
        wait_until(lambda: db.execute("SELECT COUNT(*) FROM alerts_usb").fetchone()[0] == 1, 20, "the alert")
    finally:
        hp.stop()
    assert m.history == []  # never mounted, never read
    row = db.execute("SELECT usb_id, message FROM alerts_usb").fetchone()
    assert row[0] == "0781:5567" and "never mounted or read" in row[1]
    assert db.execute("SELECT COUNT(*) FROM audit WHERE event = 'usb.refused'").fetchone()[0] == 1


def test_two_at_once_one_docked_before_start(tmp_path, data_dir, template, dock) -> None:
    with recorder(tmp_path, template, serial="ZFY-A") as a, recorder(tmp_path, template, serial="ZFY-B", badge="020304") as b:
        usb_a = dock.plug(1, vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT, serial="ZFY-A", tty_node=a.status()["pty"])
        dock.add_block(usb_a, "sdd", node=a.status()["volume"])  # already in mass storage when the station starts
        m = DockManager(build_context(_cfg(tmp_path), data_dir))
        hp = Hotplug(is_known, m.on_hotplug)
        hp.start()
        try:
            usb_b = dock.plug(3, vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT, serial="ZFY-B", tty_node=b.status()["pty"])
            dock.add_block(usb_b, "sde", node=b.status()["volume"])
            wait_until(lambda: len(m.history) == 2, 30, "both recorders")
            assert m.wait_all(120)
        finally:
            hp.stop()
        assert sorted((j.serial, j.state) for j in m.history) == [("ZFY-A", State.READY), ("ZFY-B", State.READY)]
        assert sum(1 for j in m.history if j.serial == "ZFY-A") == 1


def test_remove_event_mid_offload_interrupts_then_redock_resumes(tmp_path, data_dir, template, dock) -> None:
    from support.faultfs import mounted_faultfs

    big = "DCIM/100MEDIA/BIG_0001.MP4"
    with recorder(tmp_path, template) as sim:
        card = Path(sim.status()["volume"])
        (card / big).write_bytes(os.urandom(4_000_000))
        os.utime(card / big, (1_600_000_000,) * 2)
        m = DockManager(build_context(_cfg(tmp_path), data_dir))
        hp = Hotplug(is_known, m.on_hotplug)
        hp.start()
        try:
            with mounted_faultfs(card, tmp_path / "slow", {"files": {big: {"slow_read_ms": 40}}}) as mnt:
                usb = dock.plug(4, vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT, serial="ZFY-T-0001",
                                tty_node=sim.status()["pty"])
                dock.add_block(usb, "sdr", node=str(mnt))
                wait_until(lambda: m.history and m.history[0].bytes_done >= 600_000, 60, "the offload under way")
                dock.unplug(usb)  # a real remove uevent through the monitor
                assert m.wait_all(30)
            job = m.history[0]
            assert job.state is State.INTERRUPTED and "undocked in state OFFLOADING" in job.detail
            staged = max(p.stat().st_size for p in (data_dir / "staging").glob("*.part"))
            assert staged >= 600_000
            # docked again (in the next bay: umockdev cannot re-add a removed device's name)
            usb = dock.plug(6, vid=SIM_VID, pid=SIM_PID, product=SIM_PRODUCT, serial="ZFY-T-0001",
                            tty_node=sim.status()["pty"])
            dock.add_block(usb, "sds", node=str(card))
            wait_until(lambda: len(m.history) == 2, 30, "the re-dock")
            assert m.wait_all(120)
        finally:
            hp.stop()
        assert m.history[1].state is State.READY, m.history[1].detail
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    assert [r[0] for r in db.execute("SELECT status FROM sessions ORDER BY id")] == ["interrupted", "completed"]
    assert list((data_dir / "staging").iterdir()) == []
    assert_store_consistent(data_dir)
