"""Health history, alert rules and the dock check (identify → health → clock sync → mass storage),
against the simulated recorder over a pty and a real SQLite catalog."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO
from support.simhelpers import SPEC, card_copy, driver, simulator

from daemon import health
from daemon.catalog.db import Catalog
from daemon.config import Config, HealthConfig, parse_config, render_example
from daemon.context import build_context
from daemon.dock.check import attach_session, bind_officer, dock_check, wipe_stored
from daemon.errors import ConfigError
from daemon.evidence import audit
from daemon.evidence.store import LocalObjectStore
from daemon.ingest.offload import ingest
from drivers.base import Battery, OfficerInfo, Storage
from drivers.errors import AuthError
from drivers.registry import by_model
from drivers.ums import UmsDriver

CFG = HealthConfig()
GOOD = Battery(80, full_charge_mah=2800, design_mah=3000)
CARD = Storage(1000, 500, "clean")


def reading(**kw) -> health.HealthReading:
    return health.HealthReading(**{"serial": "R1", "battery": GOOD, "storage": CARD, "clock_drift_s": 0.4, **kw})


def kinds(alerts: list[dict]) -> set[str]:
    return {a["kind"] for a in alerts}


def test_history_is_kept_and_alerts_raise_and_clear(data_dir: Path) -> None:
    with Catalog(data_dir) as c:
        hid1, alerts = health.record(c, CFG, reading(battery=Battery(12), storage=Storage(1000, 50, "errors"),
                                                      clock_drift_s=-75.0))
        assert kinds(alerts) == {"battery_low", "storage_full", "clock_drift", "fs_errors"}
        msg = {a["kind"]: a["message"] for a in alerts}
        assert "battery at 12 %" in msg["battery_low"] and "95.0 % used" in msg["storage_full"]
        assert "75.0 s behind" in msg["clock_drift"]
        # the same trouble again: still one open alert per kind, pointing at the latest record
        hid2, alerts = health.record(c, CFG, reading(battery=Battery(15), storage=Storage(1000, 50, "errors"), clock_drift_s=-3))
        assert len(alerts) == 4 and all(a["health_id"] == hid1 and a["last_health_id"] == hid2 for a in alerts)
        # a good dock clears them; a value not reported leaves its alert as it is
        hid3, alerts = health.record(c, CFG, reading(storage=None))
        assert kinds(alerts) == {"storage_full", "fs_errors"}
        rows = health.history(c, "R1")
        assert [r["id"] for r in rows] == [hid3, hid2, hid1]  # never overwritten, newest first
        assert rows[-1]["battery_percent"] == 12 and rows[0]["storage_total"] is None
        cleared = list(c.db.query("SELECT kind, cleared_health_id FROM health_alerts WHERE cleared_at IS NOT NULL"))
        assert {r["kind"] for r in cleared} == {"battery_low", "clock_drift"} and {r["cleared_health_id"] for r in cleared} == {hid3}


def test_thresholds_come_from_the_config(data_dir: Path) -> None:
    strict = HealthConfig(battery_low_percent=90, clock_drift_s=0.1, storage_full_percent=10)
    with Catalog(data_dir) as c:
        _, alerts = health.record(c, strict, reading())
    assert kinds(alerts) == {"battery_low", "clock_drift", "storage_full"}


def test_capacity_fade_against_its_own_history(data_dir: Path) -> None:
    with Catalog(data_dir) as c:
        for mah in (2800, 2900, 2850):
            _, alerts = health.record(c, CFG, reading(battery=Battery(80, full_charge_mah=mah)))
            assert "capacity_fade" not in kinds(alerts)
        _, alerts = health.record(c, CFG, reading(battery=Battery(80, full_charge_mah=2290)))  # 2280 is the floor
        assert "capacity_fade" not in kinds(alerts)
        _, alerts = health.record(c, CFG, reading(battery=Battery(80, full_charge_mah=2200)))  # > 20 % below 2850
        assert kinds(alerts) == {"capacity_fade"}
        assert "2200 mAh" in alerts[0]["message"] and "median over 4 earlier docks is 2825 mAh" in alerts[0]["message"]
        # another recorder with only one earlier reading: too little history to judge
        health.record(c, CFG, reading(serial="R2", battery=Battery(80, full_charge_mah=3000)))
        _, alerts = health.record(c, CFG, reading(serial="R2", battery=Battery(80, full_charge_mah=1000)))
        assert "capacity_fade" not in kinds(alerts)


def test_dock_check_then_offload_with_corrected_times(tmp_path: Path, data_dir: Path) -> None:
    config = Config()
    with simulator(tmp_path, "clock-off=-75", "low-battery") as sim, driver(sim) as drv:
        with Catalog(data_dir) as c:
            check = dock_check(c, config, drv)
        assert check.device.serial == SPEC.serial and abs(check.clock_drift_s + 75) < 1
        assert check.clock_set and abs(sim.state.clock_offset_s) < 1  # the station set the clock
        assert sim.state.msdc and kinds(check.alerts) == {"battery_low", "clock_drift"}
        assert check.important_pattern == "_IMP"
        assert check.ingest_kwargs() == {"device": SPEC.serial, "officer": SPEC.badge, "clock_drift_s": check.clock_drift_s}
        assert sim.state.log.index("SyncDevTime") < sim.state.log.index("SetMSDC")
        result = ingest(build_context(config, data_dir), sim.served, **check.ingest_kwargs())
        assert result.status == "completed"
    with Catalog(data_dir) as c:
        attach_session(c, check, result.session_id)
        h = health.history(c, SPEC.serial)[0]
        assert h["session_id"] == result.session_id and h["battery_percent"] == 12 and h["clock_set"]
        assert h["firmware"] == "1.4.2-sim" and h["storage_total"] == sim.card_bytes and h["fs_state"] == "clean"
        assert c.conn.execute("SELECT clock_drift_s FROM sessions WHERE id = ?", (result.session_id,)).fetchone()[0] == check.clock_drift_s
        for rec, cor in c.conn.execute("SELECT recorded_at, recorded_at_corrected FROM footage"):
            delta = datetime.fromisoformat(cor) - datetime.fromisoformat(rec)
            assert abs(delta - timedelta(seconds=75)) <= timedelta(seconds=1)
        dev = c.conn.execute("SELECT model, officer_badge FROM devices WHERE serial = ?", (SPEC.serial,)).fetchone()
        assert dev == ("SIM-ZFY-1", SPEC.badge)
        assert c.conn.execute("SELECT name FROM officers WHERE badge = ?", (SPEC.badge,)).fetchone()[0] == SPEC.officer


def test_simulated_faults_raise_their_alerts(tmp_path: Path, data_dir: Path) -> None:
    card = card_copy(tmp_path / "card")
    for n in range(3):  # three healthy docks make the battery's history
        with simulator(tmp_path / f"dock{n}", volume=card) as sim, driver(sim) as drv, Catalog(data_dir) as c:
            assert dock_check(c, Config(), drv).alerts == []
    with simulator(tmp_path / "dock3", "storage-full", "fs-errors", "faded=60", volume=card) as sim, driver(sim) as drv:
        with Catalog(data_dir) as c:
            check = dock_check(c, Config(), drv)
            assert len(health.history(c, SPEC.serial)) == 4
    assert kinds(check.alerts) == {"storage_full", "fs_errors", "capacity_fade"}
    msg = {a["kind"]: a["message"] for a in check.alerts}
    assert "97.0 % used" in msg["storage_full"] and "1800 mAh" in msg["capacity_fade"]


def test_a_lying_recorder_is_alerted_and_still_offloaded(tmp_path: Path, data_dir: Path) -> None:
    with simulator(tmp_path, "lie") as sim, driver(sim) as drv:
        with Catalog(data_dir) as c:
            check = dock_check(c, Config(), drv)
        notes = {n.what: n for n in check.notes}
        assert notes["battery"].status == "invalid" and "250 %" in notes["battery"].message
        assert notes["storage"].status == "invalid" and "larger than the card" in notes["storage"].message
        assert "bad_reply" in kinds(check.alerts)
        result = ingest(build_context(Config(), data_dir), sim.served, **check.ingest_kwargs())
        assert result.status == "completed" and result.counts()["stored"] == sum(1 for p in sim.served.rglob("*") if p.is_file())
    with Catalog(data_dir) as c:
        h = health.history(c, SPEC.serial)[0]
        assert h["battery_percent"] is None and h["storage_total"] is None  # rejected, not stored as if true
        assert {n["status"] for n in h["notes"]} == {"invalid"}


def test_garbled_health_read_is_noted_and_the_dock_goes_on(tmp_path: Path, data_dir: Path) -> None:
    with simulator(tmp_path, "garbage@ReadDeviceBatteryDumpEnergy") as sim, driver(sim) as drv:
        with Catalog(data_dir) as c:
            check = dock_check(c, Config(), drv)
    assert {n.what: n.status for n in check.notes} == {"battery": "failed"} and sim.state.msdc


def test_wrong_password_stops_the_dock_after_recording_health(tmp_path: Path, data_dir: Path) -> None:
    with simulator(tmp_path, "wrong-password") as sim, driver(sim) as drv:
        with Catalog(data_dir) as c:
            with pytest.raises(AuthError, match="SetMSDC: the recorder refused"):
                dock_check(c, Config(), drv)
            h = health.history(c, SPEC.serial)[0]
        assert not h["clock_set"] and [n["what"] for n in h["notes"]] == ["clock setting"]
        assert not sim.state.msdc


def test_mass_storage_recorder_dock_check(tmp_path: Path, data_dir: Path) -> None:
    card = card_copy(tmp_path / "card")
    with Catalog(data_dir) as c:
        check = dock_check(c, Config(), UmsDriver(card, model=by_model("SIM-UMS-1")))
    assert check.clock_drift_s is None and not check.clock_set
    assert {n.what: n.status for n in check.notes} == {"firmware": "not_reported", "battery": "not_reported",
                                                       "clock": "not_reported", "clock setting": "not_reported"}
    assert check.alerts == []  # "not reported" is not an alarm


def test_bind_officer_is_audited(tmp_path: Path, data_dir: Path) -> None:
    with simulator(tmp_path) as sim, driver(sim) as drv, Catalog(data_dir) as c:
        info = bind_officer(c, drv, OfficerInfo("040506", "王芳", "330103", "仲裁院"))
        assert info.badge == "040506" and sim.state.badge == "040506"
        row = c.conn.execute("SELECT details FROM audit WHERE event = 'device.bind'").fetchone()
        assert json.loads(row[0])["previous_officer"] == SPEC.badge
        assert c.conn.execute("SELECT officer_badge FROM devices WHERE serial = ?", (SPEC.serial,)).fetchone()[0] == "040506"
        assert audit.verify(c).ok


def test_wipe_only_what_is_stored(tmp_path: Path, data_dir: Path) -> None:
    card = card_copy(tmp_path / "card")
    result = ingest(build_context(Config(), data_dir), card, device=SPEC.serial, officer=SPEC.badge)
    assert result.status == "completed"
    late = card / "DCIM" / "100MEDIA" / "20261127_090000_0009.MP4"
    late.write_bytes(b"recorded after the offload")  # not stored: must stay
    log = next((card / "LOG").iterdir())
    data = log.read_bytes()
    log.write_bytes(bytes([data[0] ^ 1]) + data[1:])  # same size, other bytes than the stored copy: must stay
    with simulator(tmp_path / "s", volume=card) as sim, driver(sim) as drv, Catalog(data_dir) as c:
        rep = wipe_stored(c, LocalObjectStore(data_dir), drv, card, SPEC.serial)
        assert len(rep.deleted) == result.counts()["stored"] - 1
        assert [why for rel, why in rep.kept] == ["its bytes no longer match the stored copy: kept"]
        assert c.conn.execute("SELECT COUNT(*) FROM audit WHERE event = 'recorder.wipe'").fetchone()[0] == len(rep.deleted)
        assert audit.verify(c).ok
    assert sorted(p.name for p in card.rglob("*") if p.is_file()) == sorted([late.name, log.name])


def test_devices_and_health_commands(tmp_path: Path, data_dir: Path, evidock) -> None:
    with simulator(tmp_path, "clock-off=9") as sim, driver(sim) as drv, Catalog(data_dir) as c:
        dock_check(c, Config(), drv)
    rows = evidock("devices", "--json").json()
    assert [(d["serial"], d["officer_badge"], d["officer_name"]) for d in rows] == [(SPEC.serial, SPEC.badge, SPEC.officer)]
    assert rows[0]["last_health"]["battery_percent"] == 76 and [a["kind"] for a in rows[0]["open_alerts"]] == ["clock_drift"]
    text = evidock("devices")
    header, row = text.out.splitlines()[:2]  # then, on a station without NTP, the note on its drift figures
    assert text.code == 0 and header.endswith("open alerts") and row.startswith(SPEC.serial) and row.split()[-1] == "1"
    doc = evidock("health", SPEC.serial, "--json").json()
    assert len(doc["history"]) == 1 and doc["open_alerts"][0]["kind"] == "clock_drift"
    text = evidock("health")
    assert text.code == 0 and "ALERT ZFY-SIM-0001 clock drift:" in text.out
    missing = evidock("health", "NOPE-1")
    assert missing.code == 2 and "no recorder NOPE-1" in missing.err


def test_config_password_is_masked_and_can_come_from_a_file(tmp_path: Path, evidock) -> None:
    cfg = tmp_path / "evidock.toml"
    cfg.write_text('[zfy]\npassword = "very-secret-9"\n')
    r = evidock("--config", cfg, "config", "check", "--json")
    assert r.code == 0 and "very-secret-9" not in r.out and r.json()["zfy"]["password"] == "**********"
    bad = tmp_path / "bad.toml"
    bad.write_text('[zfy]\npassword = "' + "x" * 40 + '"\n')
    r = evidock("--config", bad, "config", "check")
    assert r.code == 2 and "zfy.password" in r.err and "x" * 40 not in r.err
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    assert parse_config({"zfy": {"password_file": str(pw)}}).zfy.secret() == "from-a-file"
    with pytest.raises(ConfigError, match="zfy.password_file"):
        parse_config({"zfy": {"password_file": str(tmp_path / "none")}}).zfy.secret()
    with pytest.raises(ConfigError, match="health.battery_low_percent"):
        parse_config({"health": {"battery_low_percent": 120}})


def test_example_config_is_generated_from_the_schema() -> None:
    assert (REPO / "config" / "evidock.toml").read_text() == render_example()


def test_alerts_and_notes_are_shown_in_chinese_and_json_stays_english(data_dir: Path, evidock) -> None:
    from daemon.catalog.devices import register_device
    from daemon.i18n import N_, Message
    with Catalog(data_dir) as c:
        register_device(c, "R1", "by staff")
        health.record(c, CFG, reading(battery=Battery(12), storage=Storage(1000, 50, "errors"), clock_drift_s=-75.0,
                                      notes=[health.Note("battery", "invalid",
                                                         Message(N_("reported by the recorder")))]))
        row = c.conn.execute("SELECT message, message_msg FROM health_alerts WHERE kind = 'clock_drift'").fetchone()
        assert row[0].startswith("clock 75.0 s behind the station's") and json.loads(row[1])["id"].startswith("clock {")
        notes = json.loads(c.conn.execute("SELECT notes FROM health").fetchone()[0])
        assert notes[0]["message"] == "reported by the recorder" and health.note_text(notes[0]) == notes[0]["message"]
        bad = c.conn.execute("SELECT message FROM health_alerts WHERE kind = 'bad_reply'").fetchone()[0]
        assert bad == "the recorder answered wrongly: battery: reported by the recorder"
    zh = evidock("--lang", "zh", "health")
    assert zh.code == 0, zh.err
    assert "接入时电量为 12%" in zh.out and "时钟慢于工作站 75.0 秒" in zh.out and "本次接入时未能校准" in zh.out
    assert "执法记录仪应答有误：battery：由执法记录仪报告" in zh.out
    for english in ("battery at", "behind the station", "could NOT", "answered wrongly", "filesystem has errors"):
        assert english not in zh.out
    for cmd in (("health", "R1"), ("devices",)):
        en, zh_json = evidock("--lang", "en", *cmd, "--json"), evidock("--lang", "zh", *cmd, "--json")
        assert en.out == zh_json.out and "_msg" not in en.out and '"msg"' not in en.out
    assert "battery at 12 % when docked" in en.out and json.loads(en.out)[0]["open_alerts"]
    missing = evidock("--lang", "zh", "health", "NOPE-1")
    assert missing.code == 2 and "本工作站未接入过执法记录仪 NOPE-1" in missing.err and "has been docked" not in missing.err


def test_an_old_alert_row_without_its_message_id_is_shown_in_english(data_dir: Path, evidock) -> None:
    with Catalog(data_dir) as c:
        health.record(c, CFG, reading(battery=Battery(12)))
        c.conn.execute("UPDATE health_alerts SET message_msg = NULL")
    zh = evidock("--lang", "zh", "health")
    assert zh.code == 0 and "battery at 12 % when docked" in zh.out
