"""A full store disk (ENOSPC): stop cleanly, nothing half-stored, a message naming store and space.

The store is a real size-limited tmpfs mounted by the test (needs root; skipped with the
reason otherwise), so both the up-front free-space check and a real ENOSPC from write(2)
(a recorder lying about a file's size) are exercised.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import run_evidock
from support.faultfs import mounted_faultfs
from support.helpers import assert_store_consistent, sha256_file

from daemon.catalog.db import Catalog
from daemon.config import parse_config
from daemon.context import build_context
from daemon.evidence.staging import Staging
from daemon.evidence.store import free_bytes
from daemon.ingest.offload import ingest

CFG = parse_config({"store": {"reserve_bytes": 0}, "offload": {"checkpoint_bytes": 1 << 20}})
MiB = 1 << 20


def _grow(mnt: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def test_precheck_stops_before_the_disk_fills(tmp_path: Path, small_store: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.MP4").write_bytes(os.urandom(3 * MiB))
        os.utime(src / f"{i}.MP4", (1_700_000_000 + i,) * 2)
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[store]\nreserve_bytes = 0\n")
    r = run_evidock("--config", cfg, "ingest", src, "--device", "FULL-1", "--json", env={"EVIDOCK_DATA_DIR": str(small_store)})
    assert r.code == 2
    doc = r.json()
    assert doc["status"] == "interrupted" and doc["stored"] == 2
    assert f"store {small_store} is full" in doc["message"] and "MiB needed for '2.MP4'" in doc["message"]
    assert "free space" in r.err and "resumes" in r.err
    assert_store_consistent(small_store)
    _grow(small_store, "32m")
    r2 = run_evidock("--config", cfg, "ingest", src, "--device", "FULL-1", "--json", env={"EVIDOCK_DATA_DIR": str(small_store)})
    assert r2.code == 0, r2.err
    assert {f["path"]: f["status"] for f in r2.json()["files"]} == {"0.MP4": "duplicate", "1.MP4": "duplicate", "2.MP4": "stored"}
    assert_store_consistent(small_store)


def test_real_enospc_mid_write(tmp_path: Path, small_store: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.MP4").write_bytes(os.urandom(1 * MiB))
    os.utime(src / "ok.MP4", (1_700_000_000,) * 2)
    # The recorder lists huge.MP4 a little below the room left after ok.MP4, so the free-space
    # check passes, and serves 768 KiB more: write(2) meets ENOSPC. (Within the growth margin a
    # file may exceed its listing by — daemon/ingest/limits.py read_limit — so it is not "changing".)
    with Catalog(small_store):
        pass
    room = free_bytes(small_store) - 1 * MiB
    listed = room - 256 * 1024
    (src / "huge.MP4").write_bytes(os.urandom(listed + 768 * 1024))
    os.utime(src / "huge.MP4", (1_700_000_100,) * 2)
    lie = {"files": {"huge.MP4": {"lie_size": listed}}}
    with mounted_faultfs(src, tmp_path / "mnt", lie) as mnt:
        r = ingest(build_context(CFG, small_store), mnt, device="FULL-2")
    assert r.status == "interrupted" and r.exit_code == 2
    assert f"store {small_store} is full" in r.message and "needed for 'huge.MP4'" in r.message
    tasks = {t.entry.rel: t for t in r.tasks}
    assert tasks[b"ok.MP4"].status == "stored"
    assert tasks[b"huge.MP4"].status == "failed"
    assert_store_consistent(small_store)
    part = Staging(small_store / "staging").list()[0]
    assert part["staged_bytes"] == part["checkpoint"] and part["checkpoint"] % MiB == 0  # back to a checkpoint
    # The session was still recorded (the checkpoint rollback freed room for the catalog).
    import sqlite3
    db = sqlite3.connect(small_store / "catalog.sqlite")
    status, msg = db.execute("SELECT status, message FROM sessions ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "interrupted" and "is full" in msg
    _grow(small_store, "64m")
    with mounted_faultfs(src, tmp_path / "mnt", lie) as mnt:
        r2 = ingest(build_context(CFG, small_store), mnt, device="FULL-2")
    huge = next(t for t in r2.tasks if t.entry.rel == b"huge.MP4")
    assert huge.status == "stored" and huge.sha256 == sha256_file(src / "huge.MP4")
    assert huge.resumed_from == part["checkpoint"]
    assert_store_consistent(small_store)
