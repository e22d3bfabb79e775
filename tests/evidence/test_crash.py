"""Invariant 4: any instant is a safe instant to die.

An `evidock ingest` subprocess kills itself with a real SIGKILL at each named point of the
store's write path (daemon/crashpoints.py). After each crash: no half object, no catalog row
without its object; a second run finishes the job, every file stored exactly once, resumed
from the staged bytes rather than read again from the recorder.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
from conftest import run_evidock
from support.helpers import assert_store_consistent, object_files, sha256_file

from daemon.crashpoints import POINTS

MiB = 1 << 20
SIZES = {"a.MP4": 5 * MiB // 2, "b.MP4": 5 * MiB // 2, "c.LOG": 100_000}

# where the second run must pick up the first file, per crash point (None: from scratch)
RESUME_AT = {
    "copy-mid": 0,
    "after-checkpoint": MiB,
    "after-fsync": 2 * MiB,  # the last checkpoint before the file ended
    "after-verify": SIZES["a.MP4"],
    "after-rename": SIZES["a.MP4"],
    "after-commit": SIZES["a.MP4"],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("recorder")
    for i, (name, size) in enumerate(SIZES.items()):
        (src / name).write_bytes(os.urandom(size))
        os.utime(src / name, (1_700_000_000 + i,) * 2)
    return src


@pytest.mark.parametrize("point", POINTS)
def test_crash_at_each_point_then_resume(point: str, source: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[store]\nreserve_bytes = 0\n[offload]\ncheckpoint_bytes = 1048576\n")
    args = ("--config", cfg, "--data-dir", data, "ingest", source, "--device", "CRASH-1", "--json")
    first = run_evidock(*args, env={"EVIDOCK_CRASH_AT": point})
    assert first.code == -signal.SIGKILL, f"did not die at {point}: {first.code} {first.err}"
    assert_store_consistent(data)

    second = run_evidock(*args)
    assert second.code == 0, second.err
    files = {f["path"]: f for f in second.json()["files"]}
    assert set(files) == set(SIZES)
    assert files["a.MP4"].get("resumed_from", 0) == RESUME_AT[point]
    assert {f["status"] for f in files.values()} == {"stored"}
    for name, f in files.items():
        assert f["sha256"] == sha256_file(source / name)
    assert_store_consistent(data)
    assert len(object_files(data)) == 3
    db = sqlite3.connect(data / "catalog.sqlite")
    assert db.execute("SELECT COUNT(*) FROM footage").fetchone()[0] == 3
    assert db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 3  # each file exactly once
    assert list((data / "staging").iterdir()) == []
    sessions = db.execute("SELECT status, message FROM sessions ORDER BY id").fetchall()
    assert sessions[0][0] == "interrupted" and "process died" in sessions[0][1]
    assert sessions[1][0] == "completed"
    assert run_evidock("--data-dir", data, "audit", "verify").code == 0
    assert run_evidock("--data-dir", data, "verify").code == 0
