"""Kill -9 the dock process at 20+ random points of a multi-file offload, restart, re-dock:
every file stored exactly once and verified, nothing wiped from the recorder before it was.

Each round docks a fresh copy of the recorder's card into a fresh data dir and kills the dock
process (the real DockManager, tests/support/dockproc.py) at up to two random instants within the
time a whole dock takes, then lets a last run finish.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, run_evidock
from support.helpers import assert_store_consistent, sha256_file

from drivers.sim.simulator import SimulatedRecorder
from drivers.sim.volume import SampleSpec

KILLS = 20


def _card(root: Path) -> dict[str, str]:
    (root / "DCIM" / "100MEDIA").mkdir(parents=True)
    out = {}
    for i in range(8):
        p = root / "DCIM" / "100MEDIA" / f"20261127_0{i}0000_{i + 1:04d}{'_IMP' if i == 3 else ''}.MP4"
        p.write_bytes(os.urandom(2_000_000 + 4096 * i))
        os.utime(p, (1_764_000_000 + 600 * i,) * 2)
        out[str(p.relative_to(root))] = sha256_file(p)
    return out


def _run(cmd: list[str], kill_after: float | None) -> tuple[bool, str]:
    """(killed, output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if kill_after is not None:
        try:
            out, _ = proc.communicate(timeout=kill_after)
            return False, out
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            return True, ""
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return False, out


def _check(data: Path, card: Path, originals: dict[str, str]) -> None:
    db = sqlite3.connect(data / "catalog.sqlite")
    assert sorted(r[0] for r in db.execute("SELECT sha256 FROM footage")) == sorted(originals.values())
    assert run_evidock("--data-dir", data, "verify").code == 0
    assert run_evidock("--data-dir", data, "audit", "verify").code == 0
    ingested = {s: i for s, i in db.execute("SELECT subject, MIN(id) FROM audit WHERE event='object.ingest' GROUP BY subject")}
    for sha, wipe_id in db.execute("SELECT subject, id FROM audit WHERE event = 'recorder.wipe'"):
        assert sha in ingested and ingested[sha] < wipe_id, f"{sha} wiped before it was stored"
    assert [p for p in card.rglob("*") if p.is_file()] == [], "verified files left on the card"
    assert_store_consistent(data)


def test_kill_dash_nine_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(947)
    template = tmp_path / "template"
    originals = _card(template)
    kills = rounds = 0
    span = None
    while kills < KILLS:
        rounds += 1
        assert rounds < 40, f"only {kills} kills landed in {rounds} rounds"
        card, data = tmp_path / f"card{rounds}", tmp_path / f"data{rounds}"
        shutil.copytree(template, card)
        with SimulatedRecorder(tmp_path / f"sim{rounds}", volume=card, spec=SampleSpec(serial="ZFY-KILL-1")) as sim:
            cmd = [sys.executable, str(REPO / "tests" / "support" / "dockproc.py"), str(data), sim.status()["pty"], str(card), "ZFY-KILL-1"]
            if span is None:  # calibrate: how long one whole dock takes here
                t0 = time.monotonic()
                _run(cmd, None)
                span = time.monotonic() - t0
                _check(data, card, originals)
                continue
            for _ in range(2):
                killed, _out = _run(cmd, rng.uniform(0.05, 1.0) * span)
                if not killed:
                    break
                kills += 1
                assert_store_consistent(data)  # after every kill: no half object, no catalog row without it
            _run(cmd, None)
        _check(data, card, originals)
    assert kills >= KILLS
