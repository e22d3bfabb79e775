"""The devices table through the catalog: the one upsert, registration with its audit entry, and
the same registration through the real CLI (subprocess) against a real SQLite catalog."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from daemon.catalog import devices
from daemon.catalog.db import Catalog
from daemon.catalog.sessions import start_session
from daemon.evidence import audit


def _row(data_dir: Path, serial: str) -> dict:
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    db.row_factory = sqlite3.Row
    r = db.execute("SELECT * FROM devices WHERE serial = ?", (serial,)).fetchone()
    db.close()
    return dict(r) if r else {}


def test_upsert_fills_in_and_never_forgets(data_dir: Path) -> None:
    with Catalog(data_dir) as cat:
        with cat.transaction():
            devices.upsert_device(cat, "ZFY-0001", model="DSJ-A8", officer="010203", now="2026-01-01T08:00:00+00:00")
        with cat.transaction():  # later sightings that do not know model or officer keep them
            devices.upsert_device(cat, "ZFY-0001", now="2026-01-02T08:00:00+00:00")
        with cat.transaction():  # not a sighting: last_seen stays
            devices.upsert_device(cat, "ZFY-0001", officer="040506", seen=False, now="2026-01-03T08:00:00+00:00")
        d = devices.get_device(cat, "ZFY-0001")
        assert d is not None
        assert (d["model"], d["officer_badge"]) == ("DSJ-A8", "040506")
        assert (d["first_seen"], d["last_seen"]) == ("2026-01-01T08:00:00+00:00", "2026-01-02T08:00:00+00:00")
        assert d["registered_at"] is None and devices.registered_at(cat, "ZFY-0001") is None
        assert devices.device_exists(cat, "ZFY-0001") and not devices.device_exists(cat, "ZFY-9999")
        assert devices.get_device(cat, "ZFY-9999") is None and devices.registered_at(cat, "ZFY-9999") is None


def test_officer_upsert_fills_in_name_and_unit(data_dir: Path) -> None:
    with Catalog(data_dir) as cat:
        with cat.transaction():
            devices.upsert_officer(cat, "010203")
            devices.upsert_officer(cat, "010203", "张伟", "劳动保障监察支队")
            devices.upsert_officer(cat, "010203")  # nothing known: nothing forgotten
        row = cat.conn.execute("SELECT name, unit FROM officers WHERE badge = '010203'").fetchone()
    assert tuple(row) == ("张伟", "劳动保障监察支队")


def test_offload_session_upserts_the_recorder(data_dir: Path) -> None:
    with Catalog(data_dir) as cat:
        start_session(cat, "ZFY-0002", "010207", "/media/card")
        start_session(cat, "ZFY-0002", None, "/media/card")  # no officer given: the known one stays
        d = devices.get_device(cat, "ZFY-0002")
        assert d is not None and d["officer_badge"] == "010207" and d["model"] is None
        assert cat.conn.execute("SELECT COUNT(*) FROM officers WHERE badge = '010207'").fetchone()[0] == 1


def test_register_device_audits_and_keeps_the_first_registration(data_dir: Path) -> None:
    with Catalog(data_dir) as cat:
        first = devices.register_device(cat, "ZFY-0003", "on first dock", bay="bay-01")
        again = devices.register_device(cat, "ZFY-0003", "by staff", reason="card replaced", actor="clerk")
        assert again == first == devices.registered_at(cat, "ZFY-0003")
        rows = [r for r in cat.db.query("SELECT * FROM audit WHERE event = 'device.register' ORDER BY id")]
        assert [r["subject"] for r in rows] == ["device:ZFY-0003"] * 2
        assert [json.loads(r["details"]) for r in rows] == [{"how": "on first dock", "bay": "bay-01"},
                                                           {"how": "by staff", "reason": "card replaced"}]
        assert rows[1]["actor"] == "clerk"
        assert audit.verify(cat).ok


def test_register_through_the_cli(data_dir: Path, evidock) -> None:
    r = evidock("devices", "register", "ZFY-0004", "--reason", "issued to officer 010203")
    assert r.code == 0, r.err
    assert "recorder ZFY-0004 registered to this station" in r.err and r.out == ""
    row = _row(data_dir, "ZFY-0004")
    assert row["registered_at"] and row["first_seen"] == row["last_seen"] == row["registered_at"]

    # Registering again changes nothing but the record; a later dock's sighting keeps the registration.
    assert evidock("devices", "register", "ZFY-0004").code == 0
    with Catalog(data_dir) as cat:
        with cat.transaction():
            devices.upsert_device(cat, "ZFY-0004", model="DSJ-A8", officer="010203")
    after = _row(data_dir, "ZFY-0004")
    assert after["registered_at"] == row["registered_at"] and after["model"] == "DSJ-A8"

    listed = evidock("devices", "--json")
    assert listed.code == 0, listed.err
    assert [(d["serial"], d["model"], d["officer_badge"]) for d in listed.json()] == [("ZFY-0004", "DSJ-A8", "010203")]

    log = evidock("audit", "list", "--json")
    assert log.code == 0, log.err
    regs = [json.loads(e["details"]) for e in log.json() if e["event"] == "device.register"]
    assert regs == [{"how": "by staff", "reason": "issued to officer 010203"},
                    {"how": "by staff", "reason": "registered by staff"}]
    assert evidock("audit", "verify").code == 0


def test_health_of_a_registered_and_of_an_unknown_recorder(data_dir: Path, evidock) -> None:
    assert evidock("devices", "register", "ZFY-0005").code == 0
    r = evidock("health", "ZFY-0005", "--json")
    assert r.code == 0, r.err
    assert r.json() == {"serial": "ZFY-0005", "history": [], "open_alerts": []}
    r = evidock("health", "ZFY-9999")
    assert r.code == 2
    assert "no recorder ZFY-9999 has been docked here" in r.err and "evidock devices" in r.err
