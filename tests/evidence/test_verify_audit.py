"""`evidock verify` finds flipped bytes and missing objects and resumes; `audit verify` finds
edited, deleted, reordered and cut-off rows."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from support.helpers import object_files


@pytest.fixture
def stored(tmp_path: Path, evidock, data_dir: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.MP4").write_bytes(os.urandom(50_000 + i))
    r = evidock("ingest", src, "--device", "V-1", "--json")
    assert r.code == 0, r.err
    return object_files(data_dir)


def test_verify_finds_flipped_byte_and_missing_object(stored: dict[str, Path], evidock) -> None:
    shas = sorted(stored)
    flipped, gone = shas[1], shas[3]
    p = stored[flipped]
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.seek(1234)
        b = f.read(1)
        f.seek(1234)
        f.write(bytes([b[0] ^ 0x01]))
    os.chmod(stored[gone], 0o644)
    stored[gone].unlink()
    r = evidock("verify")
    assert r.code == 2
    assert r.out.strip().splitlines()[-1] == "checked 5 objects, 1 damaged, 1 missing"
    assert f"damaged: {flipped}: content hashes to" in r.err and f"missing: {gone}" in r.err
    doc = evidock("verify", "--json").json()
    assert [d["sha256"] for d in doc["damaged"]] == [flipped] and doc["missing"] == [gone]


def test_verify_is_read_only_and_resumes_in_slices(stored: dict[str, Path], evidock, data_dir: Path) -> None:
    before = {s: (p.stat().st_mtime_ns, p.stat().st_mode) for s, p in stored.items()}
    seen = []
    # A budget this small checks one object per run (each run always makes progress).
    for i in range(5):
        doc = evidock("verify", "--max-duration", "0.000001", "--json").json()
        assert doc["checked"] == 1
        assert doc["complete"] == (i == 4)
        seen.append(doc["next_after"] or "end")
    assert seen[:4] == sorted(stored)[:4]
    full = evidock("verify", "--json").json()
    assert full["checked"] == 5 and full["complete"] and full["resumed_after"] is None
    assert {s: (p.stat().st_mtime_ns, p.stat().st_mode) for s, p in stored.items()} == before


def _audit_rows(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "catalog.sqlite", isolation_level=None)


def test_audit_chain_intact(stored, evidock) -> None:
    doc = evidock("audit", "verify", "--json").json()
    assert doc["ok"] and doc["rows"] == 7  # session start + 5 ingests + session end
    assert doc["notes"] == []


def test_audit_finds_edited_row(stored, evidock, data_dir: Path) -> None:
    db = _audit_rows(data_dir)
    db.execute("UPDATE audit SET details = replace(details, 'V-1', 'V-2') WHERE id = 3")
    r = evidock("audit", "verify", "--json")
    assert r.code == 2
    fb = r.json()["first_broken"]
    assert fb["id"] == 3 and fb["kind"] == "edited" and "row 3" in fb["message"]


def test_audit_finds_deleted_row(stored, evidock, data_dir: Path) -> None:
    _audit_rows(data_dir).execute("DELETE FROM audit WHERE id = 4")
    r = evidock("audit", "verify")
    assert r.code == 2 and "between row 3 and row 5 were deleted" in r.out
    assert evidock("audit", "verify", "--json").json()["first_broken"]["kind"] == "deleted"


def test_audit_finds_swapped_rows(stored, evidock, data_dir: Path) -> None:
    db = _audit_rows(data_dir)
    cols = "at, actor, event, subject, details, prev_hash, hash"
    r3 = db.execute(f"SELECT {cols} FROM audit WHERE id = 3").fetchone()
    r4 = db.execute(f"SELECT {cols} FROM audit WHERE id = 4").fetchone()
    sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    db.execute(f"UPDATE audit SET {sets} WHERE id = 3", r4)
    db.execute(f"UPDATE audit SET {sets} WHERE id = 4", r3)
    fb = evidock("audit", "verify", "--json").json()["first_broken"]
    assert fb["id"] == 3 and fb["kind"] == "reordered" and "out of order" in fb["message"]


def test_audit_finds_cut_off_tail(stored, evidock, data_dir: Path) -> None:
    _audit_rows(data_dir).execute("DELETE FROM audit WHERE id >= 6")
    fb = evidock("audit", "verify", "--json").json()["first_broken"]
    assert fb["kind"] == "truncated" and "last 2 audit row(s) after row 5 were deleted" in fb["message"]


def test_a_damaged_object_is_repaired_by_the_next_sighting_not_trusted(tmp_path: Path, evidock, data_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.MP4").write_bytes(os.urandom(80_000))
    assert evidock("ingest", src, "--device", "R-1").code == 0
    (sha, p), = object_files(data_dir).items()
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.write(b"\0\0\0")
    assert evidock("verify").code == 2
    again = evidock("ingest", src, "--device", "R-1", "--json")
    assert again.code == 0 and again.json()["files"][0]["status"] == "duplicate"
    assert evidock("verify").code == 0  # the verified copy replaced the rotten object
    db = sqlite3.connect(data_dir / "catalog.sqlite")
    assert db.execute("SELECT subject FROM audit WHERE event = 'object.repair'").fetchall() == [(sha,)]
    assert (p.stat().st_mode & 0o222) == 0
