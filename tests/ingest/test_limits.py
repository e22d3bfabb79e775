"""Limits of an offload (issue 9): what a recorder, or a mistaken source, must not be able to do.

- A file that keeps growing while it is read is read up to its listed size plus a bounded
  margin, then reported as changing and left on the recorder (a real writer process appending
  to a file in a plain directory; a FUSE volume that never reaches end of file).
- A full store never prints a negative "needed" figure (a real ENOSPC on a size-limited tmpfs
  while a file longer than listed is written).
- The station's own data dir is refused as a source: the data dir, inside it, holding it, under
  another name (symlink, "..", bind mount); a filesystem mounted inside it (the dock's own
  mounts) is not.
- A full store still confirms duplicates: files matching a sighting are hashed without staging;
  a file whose bytes changed under the same name, size and mtime is staged (and then meets the
  full store cleanly).

Real files, processes, tmpfs and FUSE mounts; the CLI contract through the real CLI subprocess.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_evidock
from support.faultfs import mounted_faultfs
from support.helpers import assert_store_consistent, object_files, sha256_file

from daemon.catalog.db import Catalog
from daemon.config import parse_config
from daemon.context import build_context
from daemon.errors import StoreFullError, format_bytes
from daemon.evidence.staging import Staging
from daemon.evidence.store import free_bytes
from daemon.ingest.limits import read_limit
from daemon.ingest.offload import ingest

MiB = 1 << 20
CFG = parse_config({"store": {"reserve_bytes": 0}, "offload": {"checkpoint_bytes": 1 << 20}})
CFG_TOML = "[store]\nreserve_bytes = 0\n[offload]\ncheckpoint_bytes = 1048576\n"


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    p = tmp_path / "evidock.toml"
    p.write_text(CFG_TOML)
    return p


def _put(path: Path, data: bytes, mtime: int) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def _rows(data_dir: Path, sql: str, *args) -> list[tuple]:
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# -- 1. a file that grows while it is read ------------------------------------------------------

WRITER = r"""
import os, sys, time
path, cap = sys.argv[1], int(sys.argv[2])
chunk = b"\x5a" * 65536
with open(path, "ab", buffering=0) as f:
    written = 0
    while written < cap:  # bounded, so that even an unbounded reader ends
        f.write(chunk)
        written += len(chunk)
        time.sleep(0.001)
"""


def test_file_appended_to_by_a_writer_process_is_reported_as_changing(tmp_path: Path, data_dir: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    _put(vol / "steady.MP4", os.urandom(200_000), 1_700_000_000)
    _put(vol / "grows.LOG", os.urandom(2 * MiB), 1_700_000_100)
    listed = 2 * MiB
    writers: list[subprocess.Popen] = []

    def scanned(n: int, total: int) -> None:
        # The scan saw 2 MiB. Now a writer process starts appending, and keeps going while the
        # file is read; it has gone past the limit before the first read.
        writers.append(subprocess.Popen([sys.executable, "-c", WRITER, str(vol / "grows.LOG"), str(64 * MiB)]))
        deadline = time.monotonic() + 30
        while (vol / "grows.LOG").stat().st_size < read_limit(listed) + MiB:
            assert time.monotonic() < deadline, "the writer process did not write"
            time.sleep(0.01)

    try:
        r = ingest(build_context(CFG, data_dir), vol, device="GROW-1", on_scanned=scanned)
        assert writers and writers[0].poll() is None, "the writer must still be appending after the read"
    finally:
        for w in writers:
            w.kill()
            w.wait()
    tasks = {t.entry.rel: t for t in r.tasks}
    assert tasks[b"steady.MP4"].status == "stored"
    grows = tasks[b"grows.LOG"]
    assert grows.status == "failed"
    assert grows.problem is not None and grows.problem.severity == "error"
    reason = str(grows.problem.reason)
    assert "is still changing" in reason and f"more than {read_limit(listed)} bytes" in reason
    assert f"{listed} were listed" in reason and "stays on the recorder" in reason and "offload again" in reason
    assert r.status == "completed" and r.exit_code == 2
    # Nothing of it stored or left in staging; the store holds just the steady file.
    assert [p["path"] for p in Staging(data_dir / "staging").list()] == []
    assert set(object_files(data_dir)) == {tasks[b"steady.MP4"].sha256}
    assert _rows(data_dir, "SELECT COUNT(*) FROM sightings WHERE source_path = 'grows.LOG'") == [(0,)]
    assert_store_consistent(data_dir)
    # Writing done: the next offload scans it afresh (new size and mtime) and stores it whole.
    r2 = ingest(build_context(CFG, data_dir), vol, device="GROW-1")
    t2 = {t.entry.rel: t for t in r2.tasks}
    assert t2[b"grows.LOG"].status == "stored" and t2[b"grows.LOG"].sha256 == sha256_file(vol / "grows.LOG")
    assert t2[b"steady.MP4"].status == "duplicate"
    assert r2.exit_code == 0, [p.reason for p in r2.problems]
    assert_store_consistent(data_dir)


def test_a_volume_that_never_ends_cannot_fill_the_store(tmp_path: Path, small_store: Path, cfg_file: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _put(src / "endless.MP4", os.urandom(300_000), 1_700_000_000)
    _put(src / "fine.MP4", os.urandom(300_000), 1_700_000_100)
    with mounted_faultfs(src, tmp_path / "mnt", {"files": {"endless.MP4": {"grow_forever": True}}}) as mnt:
        r = run_evidock("--config", cfg_file, "ingest", mnt, "--device", "ENDLESS-1", "--json",
                        env={"EVIDOCK_DATA_DIR": str(small_store)}, timeout=120)
    assert r.code == 2, r.err
    doc = r.json()
    assert doc["status"] == "completed" and doc["message"] is None  # not a full store: the offload went on
    assert {f["path"]: f["status"] for f in doc["files"]} == {"fine.MP4": "stored"}
    probs = {p["path"]: p for p in doc["problems"]}
    assert probs["endless.MP4"]["severity"] == "error"
    assert "is still changing" in probs["endless.MP4"]["reason"]
    assert f"more than {read_limit(300_000)} bytes" in probs["endless.MP4"]["reason"]
    assert Staging(small_store / "staging").list() == []
    assert free_bytes(small_store) > 6 * MiB  # nothing near the 8 MiB the store has
    assert_store_consistent(small_store)


# -- 1b. the store-full figure ---------------------------------------------------------------


def test_store_full_figure_is_never_negative(tmp_path: Path, small_store: Path, cfg_file: Path) -> None:
    """A file longer than listed (within the margin) meets a real ENOSPC after its listed size.

    "needed" was listed − written: negative ("-276.4 MiB needed"). It is now what is missing
    from the checkpoint the partial resumes at, at least the bytes that did not fit.
    """
    src = tmp_path / "src"
    src.mkdir()
    with Catalog(small_store):
        pass
    room = free_bytes(small_store)
    listed = room - 256 * 1024  # passes the free-space check...
    _put(src / "longer.MP4", os.urandom(listed + 768 * 1024), 1_700_000_000)  # ...and does not fit
    with mounted_faultfs(src, tmp_path / "mnt", {"files": {"longer.MP4": {"lie_size": listed}}}) as mnt:
        r = run_evidock("--config", cfg_file, "ingest", mnt, "--device", "LONG-1", "--json",
                        env={"EVIDOCK_DATA_DIR": str(small_store)})
    assert r.code == 2
    doc = r.json()
    assert doc["status"] == "interrupted"
    m = re.search(r"is full: (\S+) (\S+) needed for 'longer.MP4'", doc["message"])
    assert m, doc["message"]
    assert not m.group(1).startswith("-") and float(m.group(1)) > 0, doc["message"]
    assert f"store {small_store} is full" in r.err and "free space" in r.err
    part = Staging(small_store / "staging").list()[0]
    assert part["staged_bytes"] == part["checkpoint"] and part["checkpoint"] % MiB == 0
    assert_store_consistent(small_store)


def test_store_full_error_never_formats_a_negative_size() -> None:
    err = StoreFullError("/srv/store", -(276 * MiB), 5 * MiB, "'x.MP4'")
    assert "-" not in str(err).split("needed")[0] and err.needed > 0
    with pytest.raises(ValueError):
        format_bytes(-1)
    assert format_bytes(0) == "0 B" and format_bytes(3 * MiB) == "3.0 MiB"


# -- 2. the data dir is not a source ---------------------------------------------------------


def _counts(data_dir: Path) -> tuple[int, int, int]:
    return _rows(data_dir, "SELECT (SELECT COUNT(*) FROM footage), (SELECT COUNT(*) FROM sessions),"
                           " (SELECT COUNT(*) FROM sightings)")[0]


def test_the_data_dir_is_refused_as_a_source(tmp_path: Path, data_dir: Path, evidock) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    _put(vol / "a.MP4", b"a" * 1000, 1_700_000_000)
    assert evidock("ingest", vol, "--device", "DD-1").code == 0
    before = _counts(data_dir)
    (tmp_path / "link-to-data").symlink_to(data_dir)
    cases = {
        data_dir: "is the station's data dir",
        data_dir / "objects" / "..": "is the station's data dir",
        tmp_path / "link-to-data": "is the station's data dir",
        data_dir / "objects": "is inside the station's data dir",
        data_dir / "staging": "is inside the station's data dir",
        tmp_path: "contains the station's data dir",
        Path("/"): "contains the station's data dir",
    }
    for source, how in cases.items():
        r = evidock("ingest", source, "--device", "DD-1", "--json")
        assert r.code == 2, (source, r.out, r.err)
        assert f"source {source} {how}" in r.err and "refused" in r.err, (source, r.err)
        assert "outside the data dir" in r.err
        assert r.out == ""  # refused before anything started: no session to report
    assert _counts(data_dir) == before  # no session, no footage, no sighting


def test_a_data_dir_not_yet_created_inside_the_source_is_refused(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    _put(vol / "a.MP4", b"a", 1_700_000_000)
    dd = vol / "later" / "evidock"
    r = run_evidock("--data-dir", dd, "ingest", vol)
    assert r.code == 2 and f"source {vol} contains the station's data dir" in r.err
    assert not (vol / "later").exists()  # refused before the data dir was made


def test_a_bind_mount_of_the_data_dir_is_refused(tmp_path: Path, data_dir: Path, evidock) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    _put(vol / "a.MP4", b"a" * 1000, 1_700_000_000)
    assert evidock("ingest", vol).code == 0
    other = tmp_path / "elsewhere"
    other.mkdir()
    p = subprocess.run(["mount", "--bind", str(data_dir), str(other)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {p.stderr.strip()}")
    try:
        before = _counts(data_dir)
        r = evidock("ingest", other)
        assert r.code == 2 and "is the station's data dir" in r.err
        r = evidock("ingest", other / "objects")
        assert r.code == 2 and "is inside the station's data dir" in r.err
        assert _counts(data_dir) == before
    finally:
        subprocess.run(["umount", "-l", str(other)], check=False)


def test_a_volume_mounted_inside_the_data_dir_is_accepted(tmp_path: Path, data_dir: Path, evidock) -> None:
    """The dock mounts recorders at <data-dir>/mnt/<bay>: another filesystem, not the store."""
    bay = data_dir / "mnt" / "bay1"
    bay.mkdir(parents=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(bay)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {p.stderr.strip()}")
    try:
        _put(bay / "clip.MP4", b"c" * 5000, 1_700_000_000)
        r = evidock("ingest", bay, "--device", "BAY-1", "--json")
        assert r.code == 0, r.err
        assert [f["path"] for f in r.json()["files"]] == ["clip.MP4"]
    finally:
        subprocess.run(["umount", "-l", str(bay)], check=False)


# -- 3. a full store still confirms duplicates -------------------------------------------------


def _fill(store: Path, leave: int) -> None:
    """Fill the store's filesystem up to ``leave`` free bytes with a file outside objects/."""
    with open(store / "filler.bin", "ab") as f:
        f.write(b"\0" * max(free_bytes(store) - leave, 0))
        f.flush()
        os.fsync(f.fileno())


def test_a_full_store_confirms_duplicates_without_staging(tmp_path: Path, small_store: Path, cfg_file: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    for i in range(3):
        _put(vol / f"{i}.MP4", os.urandom(MiB), 1_700_000_000 + i)
    env = {"EVIDOCK_DATA_DIR": str(small_store)}

    def offload():
        return run_evidock("--config", cfg_file, "ingest", vol, "--device", "DUP-1", "--json", env=env)

    first = offload()
    assert first.code == 0, first.err
    stored = {f["path"]: f["sha256"] for f in first.json()["files"]}
    _fill(small_store, 256 * 1024)
    assert free_bytes(small_store) < MiB  # no file of the volume would fit in staging now

    again = offload()
    assert again.code == 0, again.err
    doc = again.json()
    assert doc["status"] == "completed" and doc["problems"] == []
    assert {f["path"]: (f["status"], f["sha256"]) for f in doc["files"]} == {p: ("duplicate", s) for p, s in stored.items()}
    # Recorded through the normal path: a sighting with its transfer key and an audit entry each.
    sid = doc["session"]
    rows = _rows(small_store, "SELECT source_path, sha256, transfer_key FROM sightings WHERE session_id = ?", sid)
    assert {(p, s) for p, s, _ in rows} == set(stored.items()) and all(k for _, _, k in rows)
    assert _rows(small_store, "SELECT COUNT(*) FROM audit WHERE event = 'object.sighting'") == [(3,)]
    assert Staging(small_store / "staging").list() == []
    assert_store_consistent(small_store)

    # 0.MP4 gets other bytes under the same name, size and mtime (to the nanosecond): it must be
    # staged — and the full store stops it cleanly; the other two are still confirmed.
    st = os.stat(vol / "0.MP4")
    (vol / "0.MP4").write_bytes(os.urandom(MiB))
    os.utime(vol / "0.MP4", ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = sha256_file(vol / "0.MP4")
    third = offload()
    assert third.code == 2
    doc = third.json()
    assert doc["status"] == "interrupted"
    assert f"store {small_store} is full" in doc["message"] and "needed for '0.MP4'" in doc["message"]
    assert {f["path"]: f["status"] for f in doc["files"]} == {"1.MP4": "duplicate", "2.MP4": "duplicate"}
    probs = {p["path"]: p for p in doc["problems"]}
    assert probs["0.MP4"]["severity"] == "error" and "is full" in probs["0.MP4"]["reason"]
    assert changed not in object_files(small_store)  # not stored, still on the recorder
    assert sha256_file(vol / "0.MP4") == changed
    assert "free space" in third.err
    assert_store_consistent(small_store)

    # Room again: the changed file is stored as new footage, nothing was lost.
    (small_store / "filler.bin").unlink()
    fourth = offload()
    assert fourth.code == 0, fourth.err
    files = {f["path"]: (f["status"], f["sha256"]) for f in fourth.json()["files"]}
    assert files["0.MP4"] == ("stored", changed)
    assert files["1.MP4"] == ("duplicate", stored["1.MP4"]) and files["2.MP4"] == ("duplicate", stored["2.MP4"])
    assert _rows(small_store, "SELECT COUNT(*) FROM footage") == [(4,)]
    assert_store_consistent(small_store)


def test_a_damaged_stored_object_is_repaired_not_confirmed(tmp_path: Path, data_dir: Path) -> None:
    """Confirming in place re-reads the stored object: a rotten one is staged over, not trusted."""
    vol = tmp_path / "vol"
    vol.mkdir()
    _put(vol / "a.MP4", os.urandom(300_000), 1_700_000_000)
    r = ingest(build_context(CFG, data_dir), vol, device="ROT-1")
    sha = r.tasks[0].sha256
    obj = object_files(data_dir)[sha]
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff" * 16)
    os.chmod(obj, 0o444)
    r2 = ingest(build_context(CFG, data_dir), vol, device="ROT-1")
    assert r2.tasks[0].status == "duplicate" and r2.exit_code == 0
    assert sha256_file(obj) == sha  # repaired from the recorder's copy
    assert _rows(data_dir, "SELECT COUNT(*) FROM audit WHERE event = 'object.repair'") == [(1,)]
    assert_store_consistent(data_dir)


def test_a_re_dock_confirms_without_writing_to_staging(tmp_path: Path, data_dir: Path) -> None:
    """Unwiped files on a re-dock cost one read: no partial is even created for them."""
    vol = tmp_path / "vol"
    vol.mkdir()
    for i in range(3):
        _put(vol / f"{i}.MP4", os.urandom(200_000), 1_700_000_000 + i)
    ingest(build_context(CFG, data_dir), vol, device="RE-1")
    staging = data_dir / "staging"
    before = os.stat(staging).st_mtime_ns
    time.sleep(0.01)
    r = ingest(build_context(CFG, data_dir), vol, device="RE-1")
    assert [t.status for t in r.tasks] == ["duplicate"] * 3 and r.exit_code == 0
    assert os.stat(staging).st_mtime_ns == before and os.listdir(staging) == []
    # Another recorder (another transfer key) with the same bytes is staged and deduplicated as before.
    r3 = ingest(build_context(CFG, data_dir), vol, device="RE-2")
    assert [t.status for t in r3.tasks] == ["duplicate"] * 3
    assert os.stat(staging).st_mtime_ns != before
