"""The dock manager's state machine against simulated recorders (real pty, real footage)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from support.docktools import SIM_PID, SIM_PRODUCT, SIM_VID, recorder, template_volume, wait_until
from support.helpers import assert_store_consistent, sha256_file

from daemon.config import parse_config
from daemon.context import build_context
from daemon.dock.hotplug import Docked
from daemon.dock.jobs import State
from daemon.dock.manager import DockManager

ORDER = ["DETECTED", "IDENTIFIED", "HEALTH_CHECKED", "CLOCK_SYNCED", "MOUNTED", "OFFLOADING", "VERIFIED", "FILED",
         "WIPED", "READY"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return template_volume(tmp_path_factory.mktemp("tpl"))


def _cfg(**dock):
    return parse_config({"store": {"reserve_bytes": 0}, "zfy": {"timeout_s": 1.0, "retries": 0},
                         "dock": {"node_wait_s": 10, **dock}})


def _dock(manager: DockManager, sim, n: int = 1, bay: str | None = None, volume: str | None = None) -> Docked:
    st = sim.status()
    rec = Docked(f"/sys/devices/sim/1-{n}", SIM_VID, SIM_PID, SIM_PRODUCT, st["serial"], f"sim-usb-0:{n}",
                 bay or f"bay-{n}", tty=st["pty"], volume=volume or st["volume"])
    manager.on_hotplug("docked", rec)
    return rec


def _events(data_dir: Path, serial: str) -> list[str]:
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    return [r[0] for r in db.execute("SELECT state FROM dock_events WHERE serial = ? OR serial IS NULL ORDER BY id", (serial,))]


def test_full_walk_to_ready_with_wipe_of_verified_files(tmp_path, data_dir, template, caplog) -> None:
    caplog.set_level(logging.INFO, logger="daemon.dock")
    originals = {p.relative_to(template): sha256_file(p) for p in template.rglob("*") if p.is_file()}
    with recorder(tmp_path, template) as sim:
        m = DockManager(build_context(_cfg(), data_dir))
        _dock(m, sim)
        assert m.wait_all(120)
        job = m.history[0]
        assert job.state is State.READY, job.detail
        assert job.files_stored == len(originals) and job.files_failed == 0
        assert _events(data_dir, "ZFY-T-0001") == ORDER
        # every verified file deleted from the card, and only those
        assert [p for p in Path(sim.status()["volume"]).rglob("*") if p.is_file()] == []
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    assert {r[0] for r in db.execute("SELECT sha256 FROM footage")} == set(originals.values())
    wiped = [r[0] for r in db.execute("SELECT subject FROM audit WHERE event = 'recorder.wipe' ORDER BY id")]
    ingested = {r[0]: r[1] for r in db.execute("SELECT subject, id FROM audit WHERE event = 'object.ingest'")}
    wipe_ids = {r[0]: r[1] for r in db.execute("SELECT subject, id FROM audit WHERE event = 'recorder.wipe'")}
    assert sorted(wiped) == sorted(originals.values())
    assert all(ingested[s] < wipe_ids[s] for s in wiped), "a file was wiped before its ingest was recorded"
    assert_store_consistent(data_dir)
    # every log line about the recorder names its bay and serial
    lines = [r.getMessage() for r in caplog.records if r.name == "daemon.dock.manager"]
    assert lines and all(line.startswith("bay bay-1 serial ZFY-T-0001:") for line in lines)


def test_a_volume_only_recorder_is_mounted_before_its_check(tmp_path, data_dir, template) -> None:
    # A model reached only through its volume (reach = "volume"): no control tty, the check reads the card.
    card = tmp_path / "ums-card"
    shutil.copytree(template, card)
    n_files = len([p for p in card.rglob("*") if p.is_file()])
    m = DockManager(build_context(_cfg(), data_dir))
    rec = Docked("/sys/devices/sim/2-1", "1209", "0002", "evidock simulated UMS recorder", "UMS-T-0001",
                 "sim-usb-1:1", "bay-9", volume=str(card))
    m.on_hotplug("docked", rec)
    assert m.wait_all(120)
    job = m.history[0]
    assert job.state is State.READY, job.detail
    serial = job.serial
    assert serial and job.files_stored == n_files
    assert _events(data_dir, serial) == ["DETECTED", "MOUNTED", "IDENTIFIED", "HEALTH_CHECKED", "CLOCK_SYNCED",
                                         "OFFLOADING", "VERIFIED", "FILED", "WIPED", "READY"]
    assert _detail(data_dir, "MOUNTED") == f"folder {card}"
    assert _detail(data_dir, "CLOCK_SYNCED") == "drift not measured, clock NOT set"
    assert [p for p in card.rglob("*") if p.is_file()] == []


def test_wipe_never_keeps_the_card(tmp_path, data_dir, template) -> None:
    with recorder(tmp_path, template) as sim:
        m = DockManager(build_context(_cfg(wipe="never"), data_dir))
        _dock(m, sim)
        assert m.wait_all(120)
        assert m.history[0].state is State.READY
        assert "dock.wipe = 'never'" in _detail(data_dir, "WIPED")
        # issue 12: the message beside the English detail reads back in Chinese
        from daemon import i18n
        db = sqlite3.connect(data_dir / "catalog.sqlite")
        rows = db.execute("SELECT detail, detail_msg FROM dock_events WHERE detail != ''").fetchall()
        assert rows and all(msg for _d, msg in rows)
        i18n.set_language("zh")
        try:
            shown_zh = {i18n.stored(d, msg) for d, msg in rows}
        finally:
            i18n.set_language("en")
        assert "未删除任何文件（dock.wipe = 'never'）" in shown_zh
        assert not {d for d, _m in rows} & shown_zh  # every detail has its Chinese
        assert len([p for p in Path(sim.status()["volume"]).rglob("*") if p.is_file()]) == m.history[0].files_stored


def _detail(data_dir: Path, state: str) -> str:
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    return db.execute("SELECT detail FROM dock_events WHERE state = ? ORDER BY id DESC", (state,)).fetchone()[0]


def test_unregistered_recorder_refused_until_registered(tmp_path, data_dir, template, evidock) -> None:
    with recorder(tmp_path, template) as sim:
        m = DockManager(build_context(_cfg(unknown_serial="refuse"), data_dir))
        _dock(m, sim)
        assert m.wait_all(60)
        job = m.history[0]
        assert job.state is State.ERROR and "not registered to this station" in job.detail
        assert "evidock devices register ZFY-T-0001" in job.detail
        assert len([p for p in Path(sim.status()["volume"]).rglob("*") if p.is_file()]) > 0  # nothing touched
        r = evidock("devices", "register", "ZFY-T-0001", "--reason", "issued to 010203")
        assert r.code == 0, r.err
        m.on_hotplug("undocked", job.rec)
        _dock(m, sim)
        assert m.wait_all(120)
        assert m.history[-1].state is State.READY


def test_undock_mid_offload_interrupts_and_the_next_dock_resumes(tmp_path, data_dir, template) -> None:
    from support.faultfs import mounted_faultfs

    big = "DCIM/100MEDIA/BIG_0001.MP4"
    with recorder(tmp_path, template) as sim:
        card = Path(sim.status()["volume"])
        (card / big).write_bytes(os.urandom(3_000_000))
        os.utime(card / big, (1_600_000_000, 1_600_000_000))  # oldest: offloaded first
        m = DockManager(build_context(_cfg(), data_dir))
        with mounted_faultfs(card, tmp_path / "slow", {"files": {big: {"hang_after": 1_000_000}}}) as mnt:
            rec = _dock(m, sim, volume=str(mnt))
            job = m.history[0]
            wait_until(lambda: job.state is State.OFFLOADING and job.bytes_done >= 1_000_000, 60, "a stuck offload")
            m.on_hotplug("undocked", rec)
            assert m.wait_all(30)
        assert job.state is State.INTERRUPTED and "undocked in state OFFLOADING" in job.detail
        db = sqlite3.connect(data_dir / "catalog.sqlite")
        assert db.execute("SELECT status FROM sessions").fetchone()[0] == "interrupted"
        assert len(list((data_dir / "staging").glob("*.part"))) == 1
        assert db.execute("SELECT COUNT(*) FROM audit WHERE event = 'recorder.wipe'").fetchone()[0] == 0
        # re-dock: the partial resumes; a budget of what is left (+ slack) proves the prefix is not read again
        total = sum(p.stat().st_size for p in card.rglob("*") if p.is_file())
        with mounted_faultfs(card, tmp_path / "again", {"unplug_after_bytes": total - 1_000_000 + 4096}) as mnt:
            _dock(m, sim, volume=str(mnt))
            assert m.wait_all(120)
            # the faultfs view is read-only: the wipe cannot delete through it
        job2 = m.history[-1]
        assert job2.state in (State.READY, State.ERROR), job2.detail
        assert job2.files_failed == 0
        assert job2.files_stored + job2.files_duplicate == len([p for p in card.rglob("*") if p.is_file()])
    assert list((data_dir / "staging").iterdir()) == []
    assert_store_consistent(data_dir)


def test_reseated_while_winding_down_gets_a_new_job(tmp_path, data_dir, template) -> None:
    from support.faultfs import mounted_faultfs

    big = "DCIM/100MEDIA/BIG_0001.MP4"
    with recorder(tmp_path, template) as sim:
        card = Path(sim.status()["volume"])
        (card / big).write_bytes(os.urandom(3_000_000))
        os.utime(card / big, (1_600_000_000,) * 2)
        m = DockManager(build_context(_cfg(), data_dir))
        with mounted_faultfs(card, tmp_path / "slow", {"files": {big: {"slow_read_ms": 300}}}) as mnt:
            rec = _dock(m, sim, volume=str(mnt))
            wait_until(lambda: m.history[0].bytes_done > 0, 60, "the offload under way")
            m.on_hotplug("undocked", rec)
            _dock(m, sim, volume=str(card))  # re-seated at once, the first job still in a slow read
            wait_until(lambda: len(m.history) == 2, 30, "a job for the re-seated recorder")
            assert m.wait_all(120)
        assert [j.state for j in m.history] == [State.INTERRUPTED, State.READY], [j.detail for j in m.history]


def test_parallel_limit_is_kept(tmp_path, data_dir, template) -> None:
    sims = [recorder(tmp_path, template, serial=f"ZFY-Q-{i}", badge=f"0{i}0000").start() for i in range(3)]
    try:
        peak = [0]

        def watch(job) -> None:
            # At an OFFLOADING transition the job holds a slot of the gate: count the holders.
            if job.state is State.OFFLOADING:
                peak[0] = max(peak[0], m.gate.running)

        m = DockManager(build_context(_cfg(max_parallel_offloads=2), data_dir), on_change=watch)
        for i, sim in enumerate(sims):
            _dock(m, sim, n=i + 1)
        assert m.wait_all(180)
        assert all(j.state is State.READY for j in m.history), [j.detail for j in m.history]
        assert 1 <= peak[0] <= 2
    finally:
        for s in sims:
            s.stop()


def test_offload_gate_serves_waiters_in_docking_order() -> None:
    import threading

    from daemon.dock.gate import OffloadGate

    gate = OffloadGate(1)
    never = threading.Event()
    assert gate.acquire(1, never)
    got: list[int] = []
    threads = [threading.Thread(target=lambda s=s: (gate.acquire(s, never), got.append(s), gate.release())) for s in (4, 2, 3)]
    for t in threads:
        t.start()
    wait_until(lambda: len(gate.waiting) == 3, 10, "three waiters")
    gate.release()
    for t in threads:
        t.join(10)
    assert got == [2, 3, 4]
    cancel = threading.Event()
    assert gate.acquire(9, cancel)
    cancel.set()
    assert gate.acquire(10, cancel) is False  # an undocked waiter gives up its place


def test_demo_cli_summary(tmp_path, evidock) -> None:
    r = evidock("demo", "--recorders", "2", "--clips", "1", "--json", timeout=300)
    assert r.code == 0, r.err
    doc = r.json()
    assert [x["state"] for x in doc["recorders"]] == ["READY", "READY"]
    assert all(x["files_stored"] >= 4 and x["bytes"] > 0 for x in doc["recorders"])
    second = doc["recorders"][1]
    assert any("battery" in a for a in second["alerts"]) and any("clock" in a for a in second["alerts"])
    assert doc["audit"]["ok"]
    rows = evidock("footage", "list", "--json").json()
    drifted = [x for x in rows if x["device"] == "ZFY-SIM-0002" and x["source_path"].endswith(".MP4")]
    from datetime import datetime

    for x in drifted:
        delta = datetime.fromisoformat(x["recorded_at_corrected"]) - datetime.fromisoformat(x["recorded_at"])
        assert abs(delta.total_seconds() - 75) <= 1  # the recorder ran 75 s slow


def test_demo_in_chinese(tmp_path, evidock) -> None:
    """The demo's report in Chinese: states as words (READY → 就绪), human sizes; the codes stay in JSON."""
    r = evidock("--lang", "zh", "demo", "--recorders", "1", "--clips", "1", timeout=300)
    assert r.code == 0, r.err
    assert "就绪" in r.out and "审计哈希链完好" in r.out and "READY" not in r.out, r.out
    assert re.search(r"新存储 \d+ 个（\d+(\.\d)? [KMG]?i?B）", r.out), r.out
    assert "演示：1 台模拟执法记录仪" in r.err
    # issue 12: the bays' details too (the station's own messages), in the progress lines and the report
    assert "执勤" in r.out and "for duty" not in r.out + r.err and "verified file(s)" not in r.err, r.out
