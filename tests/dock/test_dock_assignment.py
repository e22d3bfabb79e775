"""Pooled recorders at the dock (issue 13): a simulated ZFY recorder over a real pty, used by two
officers in two shifts and docked once. The dock writes the current assignment into the recorder
(WriteZFYInfo); each clip goes to the officer assigned when it was recorded, the recorder's own
binding is kept beside it."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from support.simhelpers import SPEC, driver, simulator

from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context
from daemon.dock.check import attach_session, dock_check
from daemon.evidence import audit
from daemon.ingest.offload import ingest

A, B = "010401", "010402"  # the two officers who signed the recorder out; SPEC.badge is its binding


def ok(r, code: int = 0):
    assert r.code == code, (r.code, r.out, r.err)
    return r


def clip(card: Path, name: str, when: datetime) -> None:
    p = card / "DCIM" / "100MEDIA" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(f"{name} {when.isoformat()}\n".encode() * 16)
    os.utime(p, (when.timestamp(), when.timestamp()))


def test_one_recorder_two_shifts_docked_once(tmp_path: Path, data_dir: Path, evidock) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    shift_a, shift_b = now - timedelta(hours=20), now - timedelta(hours=8)
    ok(evidock("officer", "add", A, "--name", "赵敏", "--unit", "执法一中队"))
    ok(evidock("officer", "add", B, "--name", "钱进"))
    ok(evidock("devices", "assign", SPEC.serial, "--officer", A, "--from", shift_a.isoformat(),
               "--until", shift_b.isoformat()))
    ok(evidock("devices", "assign", SPEC.serial, "--officer", B, "--from", shift_b.isoformat()))
    card = tmp_path / "card"
    clip(card, "A_0001.MP4", shift_a + timedelta(hours=2))
    clip(card, "B_0001.MP4", shift_b + timedelta(hours=3))
    clip(card, "OLD_0001.MP4", shift_a - timedelta(days=2))  # before any assignment: the binding's
    with simulator(tmp_path, volume=card) as sim, driver(sim) as drv, Catalog(data_dir) as c:
        check = dock_check(c, Config(), drv)
        # written into the recorder at this dock: shift B's officer, who has it now
        assert sim.state.badge == B and sim.state.officer_name == "钱进"
        assert check.device.badge == SPEC.badge and check.rebound == B
        result = ingest(build_context(Config(), data_dir), card, threaded=False, **check.ingest_kwargs())
        assert result.status == "completed", result.message
        attach_session(c, check, result.session_id)
        bind = [r for r in c.db.query("SELECT details FROM audit WHERE event = 'device.bind'")]
        assert len(bind) == 1 and f'"previous_officer":"{SPEC.badge}"' in bind[0]["details"]
        assert audit.verify(c).ok
    rows = {Path(r["source_path"]).name: r for r in ok(evidock("footage", "list", "--json")).json()}
    got = {n: (r["officer"], r["officer_name"], r["bound_officer"], r["attributed_by"]) for n, r in rows.items()}
    assert got == {"A_0001.MP4": (A, "赵敏", SPEC.badge, "assignment"),
                   "B_0001.MP4": (B, "钱进", SPEC.badge, "assignment"),
                   "OLD_0001.MP4": (SPEC.badge, SPEC.officer, SPEC.badge, "binding")}
    # the recorder is now bound to B (the session named the binding it came with)
    devs = {d["serial"]: d for d in ok(evidock("devices", "--json")).json()}
    assert devs[SPEC.serial]["officer_badge"] == B
    hist = ok(evidock("devices", "assignments", SPEC.serial, "--json")).json()
    assert [(h["officer"], h["bound_at"] is not None) for h in hist] == [(B, True), (A, False)]
    ok(evidock("verify"))


def test_no_write_when_the_binding_already_matches(tmp_path: Path, data_dir: Path, evidock) -> None:
    ok(evidock("officer", "add", SPEC.badge, "--name", SPEC.officer))
    ok(evidock("devices", "assign", SPEC.serial, "--officer", SPEC.badge))
    card = tmp_path / "card"
    clip(card, "X_0001.MP4", datetime.now(timezone.utc) - timedelta(minutes=5))
    with simulator(tmp_path, volume=card) as sim, driver(sim) as drv, Catalog(data_dir) as c:
        check = dock_check(c, Config(), drv)
        assert check.rebound is None
        assert c.conn.execute("SELECT COUNT(*) FROM audit WHERE event = 'device.bind'").fetchone()[0] == 0
