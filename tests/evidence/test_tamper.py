"""Issue 9: tampering that `verify` / `audit verify` used to miss, and inputs that crashed `verify`.

Each tampering case builds a real data dir with a real ingest through the CLI, changes it with
sqlite3 or os the way someone with shell access would, and runs the real CLI: the change must
be caught with exit 2 and a message naming the footage id or the SHA-256. `verify` holds the
catalog to the audit chain; `audit verify` holds the chain to its anchor.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, Run, run_evidock
from support.helpers import object_files

from daemon.config import Config
from daemon.context import build_context

FIXTURE_V1 = REPO / "tests" / "fixtures" / "datadir-v1"


def _db(data_dir: Path) -> sqlite3.Connection:
    # Foreign keys off (sqlite3's default): a tamperer is not held to the schema's constraints.
    return sqlite3.connect(data_dir / "catalog.sqlite", isolation_level=None)


@pytest.fixture
def station(tmp_path: Path, evidock, data_dir: Path) -> dict[str, object]:
    """Three files of officer 010203 from recorder R-1, then one of them seen again (a sighting)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.MP4").write_bytes(os.urandom(40_000 + 1000 * i))
    r = evidock("ingest", src, "--officer", "010203", "--device", "R-1", "--json")
    assert r.code == 0, r.err
    r = evidock("ingest", src, "--officer", "010203", "--device", "R-1", "--json")
    assert r.code == 0, r.err
    assert evidock("verify").code == 0 and evidock("audit", "verify").code == 0
    rows = _db(data_dir).execute("SELECT id, sha256 FROM footage ORDER BY id").fetchall()
    return {"ids": [r[0] for r in rows], "shas": [r[1] for r in rows]}


# -- the tampering list ----------------------------------------------------------------------
# Each case: (tamper(data_dir, station) -> what the message must name, the command that catches it)


def _swap_shas(d: Path, st: dict) -> str:
    db = _db(d)
    (a, b), (sa, sb) = st["ids"][:2], st["shas"][:2]
    db.execute("UPDATE footage SET sha256 = 'x' WHERE id = ?", (a,))  # the unique index wants a detour
    db.execute("UPDATE footage SET sha256 = ? WHERE id = ?", (sa, b))
    db.execute("UPDATE footage SET sha256 = ? WHERE id = ?", (sb, a))
    return f"footage {a}:"


def _point_at_nothing(d: Path, st: dict) -> str:
    _db(d).execute("UPDATE footage SET sha256 = ? WHERE id = ?", ("f" * 64, st["ids"][1]))
    return f"footage {st['ids'][1]}:"


def _delete_footage(d: Path, st: dict) -> str:
    _db(d).execute("DELETE FROM footage WHERE id = ?", (st["ids"][2],))
    return f"footage {st['ids'][2]} ({st['shas'][2]}) is not in the catalog"


def _change_officer(d: Path, st: dict) -> str:
    _db(d).execute("UPDATE footage SET officer_badge = '999999' WHERE id = ?", (st["ids"][0],))
    return f"footage {st['ids'][0]} ({st['shas'][0]}): officer_badge is '999999'"


def _delete_object_and_row(d: Path, st: dict) -> str:
    sha = st["shas"][1]
    object_files(d)[sha].unlink()
    _db(d).execute("DELETE FROM objects WHERE sha256 = ?", (sha,))
    return f"object {sha} is not in the catalog's objects table nor in the store"


def _delete_object_and_all_rows(d: Path, st: dict) -> str:
    # Everything the catalog knows of it, gone too: only the audit chain still remembers.
    sha, fid = st["shas"][1], st["ids"][1]
    object_files(d)[sha].unlink()
    db = _db(d)
    for table in ("media_jobs", "footage_cases"):
        db.execute(f"DELETE FROM {table} WHERE footage_id = ?", (fid,))
    for table in ("sightings", "footage", "objects"):
        db.execute(f"DELETE FROM {table} WHERE sha256 = ?", (sha,))
    return f"object {sha} is not in the catalog's objects table nor in the store"


def _make_writable(d: Path, st: dict) -> str:
    sha = st["shas"][0]
    os.chmod(object_files(d)[sha], 0o666)
    return f"damaged: {sha}: is writable (mode 0666)"


def _foreign_object(d: Path, st: dict) -> str:
    # A valid name, another content: it must be hashed, never waved through as a leftover.
    sha = "ab" * 32
    p = d / "objects" / "ab" / "ab" / sha
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"not what the name says")
    os.chmod(p, 0o444)
    return f"damaged: {sha}: not in the catalog, and content hashes to"


def _delete_sighting(d: Path, st: dict) -> str:
    _db(d).execute("DELETE FROM sightings WHERE id = (SELECT MAX(id) FROM sightings)")
    return "records a sighting of"


def _cut_tail_and_delete_anchor(d: Path, st: dict) -> str:
    _db(d).execute("DELETE FROM audit WHERE id > (SELECT MAX(id) - 2 FROM audit)")
    (d / "audit.head").unlink()
    return "audit.head is missing although the chain has"


def _cut_tail_and_garble_anchor(d: Path, st: dict) -> str:
    _db(d).execute("DELETE FROM audit WHERE id > (SELECT MAX(id) - 2 FROM audit)")
    (d / "audit.head").write_bytes(b"\x00\xffgarbage")
    return "audit.head is unreadable or not an anchor"


def _cut_ingests_and_delete_anchor(d: Path, st: dict) -> str:
    # Cut the first ingest's whole tail end, anchor removed: the catalog still holds the rows.
    db = _db(d)
    first = db.execute("SELECT MIN(id) FROM audit WHERE event = 'object.ingest' AND subject = ?", (st["shas"][2],)).fetchone()[0]
    db.execute("DELETE FROM audit WHERE id >= ?", (first,))
    (d / "audit.head").unlink()
    return f"footage {st['ids'][2]} ({st['shas'][2]}) has no object.ingest entry"


TAMPERING: list[tuple[str, Callable[[Path, dict], str], tuple[str, ...]]] = [
    ("footage-sha-swapped", _swap_shas, ("verify",)),
    ("footage-sha-points-at-nothing", _point_at_nothing, ("verify",)),
    ("footage-row-deleted", _delete_footage, ("verify",)),
    ("footage-officer-changed", _change_officer, ("verify",)),
    ("object-and-objects-row-deleted", _delete_object_and_row, ("verify",)),
    ("object-and-every-row-deleted", _delete_object_and_all_rows, ("verify",)),
    ("object-made-writable", _make_writable, ("verify",)),
    ("foreign-content-under-a-valid-name", _foreign_object, ("verify",)),
    ("sighting-deleted", _delete_sighting, ("verify",)),
    ("anchor-deleted-tail-cut", _cut_tail_and_delete_anchor, ("audit", "verify")),
    ("anchor-garbage-tail-cut", _cut_tail_and_garble_anchor, ("audit", "verify")),
    ("ingests-cut-anchor-deleted", _cut_ingests_and_delete_anchor, ("verify",)),
]


@pytest.mark.parametrize("tamper,command", [pytest.param(t, c, id=n) for n, t, c in TAMPERING])
def test_tampering_is_caught(station: dict, data_dir: Path, evidock, tamper: Callable[[Path, dict], str],
                             command: tuple[str, ...]) -> None:
    expected = tamper(data_dir, station)
    r = evidock(*command)
    assert r.code == 2, (r.out, r.err)
    said = " ".join((r.out + r.err).split())
    assert " ".join(expected.split()) in said, said


def test_swapped_rows_are_each_reported_once(station: dict, data_dir: Path, evidock) -> None:
    # the cross-check goes a slice of hashes at a time: a row re-pointed at content of another
    # slice is still one finding (re-pointed), not also "no object.ingest entry" in that slice
    _swap_shas(data_dir, station)
    doc = evidock("verify", "--json").json()
    found = sorted((m["footage"], "re-pointed" in m["problem"]) for m in doc["mismatches"])
    assert found == sorted((i, True) for i in station["ids"][:2]), doc["mismatches"]


def test_the_json_names_the_footage_row(station: dict, data_dir: Path, evidock) -> None:
    _change_officer(data_dir, station)
    doc = evidock("verify", "--json").json()
    assert [(m["footage"], m["sha256"]) for m in doc["mismatches"]] == [(station["ids"][0], station["shas"][0])]


def test_audited_changes_are_not_mismatches(station: dict, data_dir: Path, evidock) -> None:
    fid = station["ids"][0]
    assert evidock("footage", "hold", str(fid), "--reason", "court asked").code == 0
    assert evidock("verify").code == 0
    _db(data_dir).execute("DELETE FROM legal_holds WHERE footage_id = ?", (fid,))
    r = evidock("verify")
    assert r.code == 2 and f"footage {fid} ({station['shas'][0]}) is not on legal hold" in r.err


# -- data dirs written before this change ------------------------------------------------------


def _copy_fixture(tmp_path: Path) -> Path:
    d = tmp_path / "v1"
    shutil.copytree(FIXTURE_V1, d)
    # git stores no 0444: the station made these read-only, the checkout made them 0644.
    for p in object_files(d).values():
        os.chmod(p, 0o444)
    return d


def test_datadir_v1_checks_clean(tmp_path: Path) -> None:
    d = _copy_fixture(tmp_path)
    v = run_evidock("verify", data_dir=d)
    assert v.code == 0, v.err
    assert v.out.strip().splitlines()[-1] == "checked 8 objects, 0 damaged, 0 missing"
    a = run_evidock("audit", "verify", data_dir=d)
    assert a.code == 0, a.out + a.err


def test_datadir_v1_with_new_entries_checks_clean_and_old_rows_are_still_checked(tmp_path: Path) -> None:
    d = _copy_fixture(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.MP4").write_bytes(os.urandom(30_000))
    assert run_evidock("ingest", src, "--officer", "010203", data_dir=d).code == 0
    assert run_evidock("verify", data_dir=d).code == 0
    assert run_evidock("audit", "verify", data_dir=d).code == 0
    # an old-form entry (no footage id) is matched by its hash, and still holds the row to it
    _db(d).execute("UPDATE footage SET officer_badge = '000000' WHERE id = 2")
    r = run_evidock("verify", data_dir=d)
    assert r.code == 2 and "footage 2 (ff661a64ca2d7ba5a349664c073c13767fb2cdbe173b1b4e0823df5bc08e56b5): officer_badge" in r.err


def test_datadir_v1_swapped_hashes_are_caught_without_footage_ids(tmp_path: Path) -> None:
    d = _copy_fixture(tmp_path)
    db = _db(d)
    s3, s4 = (db.execute("SELECT sha256 FROM footage WHERE id = ?", (i,)).fetchone()[0] for i in (3, 4))
    db.execute("UPDATE footage SET sha256 = 'x' WHERE id = 3")
    db.execute("UPDATE footage SET sha256 = ? WHERE id = 4", (s3,))
    db.execute("UPDATE footage SET sha256 = ? WHERE id = 3", (s4,))
    r = run_evidock("verify", data_dir=d)
    assert r.code == 2
    assert f"footage 4 ({s3}): source_path is" in r.err and f"footage 3 ({s4}): source_path is" in r.err


# -- inputs that crashed verify ----------------------------------------------------------------


def test_strays_in_objects_are_problems_and_the_scrub_goes_on(station: dict, data_dir: Path, evidock) -> None:
    sha = station["shas"][0]
    fan = data_dir / "objects" / sha[:2]
    (fan / "junk").write_text("left here")  # where only fan-out directories belong
    (fan / sha[2:4] / "notes.txt").write_text("left here too")  # in a leaf directory
    r = evidock("verify")
    assert "Traceback" not in r.err and r.code == 1, r.err
    assert f"stray: {fan / 'junk'}" in r.err and f"stray: {fan / sha[2:4] / 'notes.txt'}" in r.err
    assert r.out.strip().splitlines()[-1] == "checked 3 objects, 0 damaged, 0 missing, 2 stray file(s) in objects/"
    doc = evidock("verify", "--json").json()
    assert doc["complete"] and len(doc["strays"]) == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "0"])
def test_max_duration_must_be_a_finite_positive_number(station: dict, evidock, value: str) -> None:
    r = evidock("verify", "--max-duration", value)
    assert r.code == 2 and "--max-duration" in r.err and "Traceback" not in r.err


# -- a full disk at the anchor's write -----------------------------------------------------------


def _fill(mnt: Path) -> None:
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # ENOSPC: every block is taken
    finally:
        os.close(fd)


def test_a_full_disk_at_the_anchor_write_is_a_warning_and_leaves_no_tmp(tmp_path: Path, small_store: Path) -> None:
    d = small_store / "data"
    src, empty = tmp_path / "src", tmp_path / "empty"
    src.mkdir()
    empty.mkdir()
    for i in range(3):
        (src / f"{i}.MP4").write_bytes(os.urandom(20_000 + i))
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("[store]\nreserve_bytes = 0\n")  # 64 MiB by default: more than this whole disk

    def run(*args: str | Path) -> Run:
        return run_evidock("--config", cfg, "--data-dir", d, *args)

    assert run("ingest", src).code == 0
    # Keep the WAL file alive and rewound, so that the next commits overwrite pages the
    # filesystem already gave it: the catalog can still commit, the anchor's new file cannot.
    keep = _db(d)
    keep.execute("SELECT COUNT(*) FROM audit").fetchone()
    assert run("ingest", src).code == 0
    keep.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    before = (d / "audit.head").read_text()
    _fill(small_store)
    r = run("ingest", empty)
    assert "Traceback" not in r.err
    assert r.code == 1, r.err
    assert "the audit anchor" in r.err and "could not be updated" in r.err
    assert list(d.glob(".audit.head.*")) == []
    assert (d / "audit.head").read_text() == before  # not updated: it lags, which is a note
    (small_store / "filler").unlink()
    a = run("audit", "verify")
    assert a.code == 0 and "lags by" in a.err
    keep.close()
    # the next commit rewrites it
    assert run("ingest", empty).code == 0
    a = run("audit", "verify")
    assert a.code == 0 and "lags" not in a.err


# -- a whole life on the record checks clean; a filing changed by hand does not -----------------


def test_filing_holds_retention_and_reingest_replay_clean(tmp_path: Path, data_dir: Path, evidock) -> None:
    from support.filing_helpers import BADGE, footage_ids, ingest_clips, t

    from daemon.cases import filing, register, retention
    from daemon.catalog.db import Catalog
    from daemon.config import RetentionConfig

    tz = "Asia/Shanghai"
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "OPEN-1", "party": "甲", "handlers": [BADGE], "opened_at": "2025-01-01T00:00:00Z"}, tz)
        register.open_case(c, {"case_no": "OPEN-2", "party": "乙", "handlers": ["010777"], "opened_at": "2025-01-01T00:00:00Z"}, tz)
    ingest_clips(data_dir, tmp_path / "a", {"filed.mp4": t("2025-01-10 00:00:00")})  # auto-filed to OPEN-1
    ingest_clips(data_dir, tmp_path / "b", {"old.mp4": t("2020-01-10 00:00:00"), "held.mp4": t("2020-01-11 00:00:00")},
                 officer="010888", device="ZFY-2")
    ids = footage_ids(data_dir)
    with sqlite3.connect(data_dir / "catalog.sqlite") as db:
        db.execute("UPDATE footage SET ingested_at = recorded_at")  # "long ago", as test_retention does
    with Catalog(data_dir) as c:
        filing.file_footage(c, [ids["held.mp4"]], "OPEN-2", "belongs to OPEN-2 as well")
        filing.unfile_footage(c, ids["held.mp4"], "OPEN-2", "filed by mistake")
        retention.set_hold(c, [ids["held.mp4"]], "court asked")
        retention.set_hold(c, [ids["held.mp4"]], "court asked")
        rep = retention.apply(c, build_context(Config(), data_dir), RetentionConfig())
        assert [d["footage"] for d in rep.deleted] == [ids["old.mp4"]]
    # the deleted content comes back from a recorder: evidence again, under a new footage row
    ingest_clips(data_dir, tmp_path / "c", {"old.mp4": t("2020-01-10 00:00:00")}, officer="010888", device="ZFY-2")
    r = evidock("verify", "--json")
    assert r.code == 0 and r.json()["mismatches"] == [], r.out
    assert evidock("audit", "verify").code == 0
    fid = ids["filed.mp4"]
    _db(data_dir).execute("DELETE FROM footage_cases WHERE footage_id = ?", (fid,))
    r = evidock("verify")
    assert r.code == 2 and f"footage {fid} (" in r.err and "filed to no case in the catalog" in r.err
