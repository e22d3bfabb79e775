"""Retention: plan (read-only), apply (the only deletion of evidence), legal hold.

The store is filled by the real ingest; "ingested long ago" is set by rewriting ``ingested_at``
in the catalog (the station cannot be made to have run a year ago). Deletions go through the
real store and are checked on the disk, in the catalog and in the audit chain.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import run_evidock
from support.filing_helpers import BADGE, OTHER, audit_rows, footage_ids, ingest_clips, t

from daemon import errors
from daemon.cases import filing, register, retention
from daemon.catalog.db import CATALOG_NAME, Catalog
from daemon.config import Config, RetentionConfig
from daemon.context import build_context
from daemon.evidence import audit
from daemon.evidence.store import LocalObjectStore
from daemon.evidence.verify import verify_store

TZ = "Asia/Shanghai"
REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def build(tmp_path: Path, data_dir: Path) -> dict[str, int]:
    """One footage row under each rule; all but two ingested "long ago"."""
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "OPEN-1", "party": "甲", "handlers": [BADGE], "opened_at": "2025-01-01T00:00:00Z"}, TZ)
        register.open_case(c, {"case_no": "CLOSED-1", "party": "乙", "handlers": [OTHER], "opened_at": "2025-01-01T00:00:00Z",
                            "closed_at": "2025-02-01T00:00:00Z"}, TZ)
        for no in ("AMB-1", "AMB-2"):
            register.open_case(c, {"case_no": no, "party": "丙", "handlers": ["010888"], "opened_at": "2025-01-01T00:00:00Z"}, TZ)
    ingest_clips(data_dir, tmp_path / "a", {"open_case.mp4": t("2025-01-10 00:00:00")})
    ingest_clips(data_dir, tmp_path / "b", {"closed_case.mp4": t("2025-01-10 00:00:00")}, officer=OTHER, device="ZFY-2")
    ingest_clips(data_dir, tmp_path / "c", {"ambiguous.mp4": t("2025-01-10 00:00:00")}, officer="010888", device="ZFY-3")
    ingest_clips(data_dir, tmp_path / "d", {
        "unfiled.mp4": t("2025-01-10 00:00:00"),
        "held.mp4": t("2025-01-11 00:00:00"),
        "fresh.mp4": NOW - timedelta(days=10),
        "clock_wrong.mp4": t("2020-01-01 00:00:00"),  # a recorder clock years behind, docked today
    }, officer="010777", device="ZFY-4")
    ids = footage_ids(data_dir)
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE footage SET ingested_at = recorded_at WHERE source_path NOT IN ('fresh.mp4', 'clock_wrong.mp4')")
    with Catalog(data_dir) as c:
        retention.set_hold(c, [ids["held.mp4"]], "administrative review requested")
    return ids


def sha_of(data_dir: Path, fid: int) -> str:
    with Catalog(data_dir) as c:
        return c.conn.execute("SELECT sha256 FROM footage WHERE id = ?", (fid,)).fetchone()[0]


def test_plan_never_lists_footage_filed_to_an_open_case_or_on_hold(tmp_path: Path, data_dir: Path) -> None:
    ids = build(tmp_path, data_dir)
    by_id = {v: k for k, v in ids.items()}
    with Catalog(data_dir) as c:
        p = retention.plan(c, RetentionConfig())
        assert [(by_id[i.footage_id], i.rule) for i in p.delete] == [("unfiled.mp4", "unfiled")]
        assert p.kept == {"ambiguous-open": 1, "closed-case": 1, "legal-hold": 1, "open-case": 1, "unfiled": 2}
        # closed cases kept a year: CLOSED-1 closed 2025-02-01, so its footage is due from 2026-02-01
        p1 = retention.plan(c, RetentionConfig(filed_keep_years=1), t("2026-02-01 00:00:00"))
        assert sorted((by_id[i.footage_id], i.rule, i.kept_until) for i in p1.delete) == [
            ("closed_case.mp4", "closed-case", "2026-02-01T00:00:00+00:00"),
            ("unfiled.mp4", "unfiled", "2025-07-13T00:00:00+00:00"),  # 184 days after 2025-01-10
        ]
        assert retention.plan(c, RetentionConfig(filed_keep_years=1), t("2026-01-31 23:59:59")).delete[0].rule == "unfiled"
        # centuries ahead, with the shortest settings: still never an open case's or a held footage
        far = retention.plan(c, RetentionConfig(filed_keep_years=1), t("2200-01-01 00:00:00"))
        assert sorted(by_id[i.footage_id] for i in far.delete) == ["clock_wrong.mp4", "closed_case.mp4", "fresh.mp4", "unfiled.mp4"]
        assert far.kept == {"ambiguous-open": 1, "legal-hold": 1, "open-case": 1}
        # a wrong recorder clock does not make fresh footage deletable: kept from the ingest on
        cw = next(i for i in far.delete if by_id[i.footage_id] == "clock_wrong.mp4")
        assert cw.recorded_at == "2020-01-01T00:00:00+00:00" and cw.kept_until > (NOW + timedelta(days=183)).isoformat()
        # closing the ambiguous footage's cases makes it "ambiguous-closed", kept like filed footage
        for no in ("AMB-1", "AMB-2"):
            register.close_case(c, no, "2025-03-01T00:00:00Z", TZ)
        p2 = retention.plan(c, RetentionConfig(), t("2200-01-01 00:00:00"))
        assert p2.kept["ambiguous-closed"] == 1 and "ambiguous.mp4" not in {by_id[i.footage_id] for i in p2.delete}


def test_apply_deletes_exactly_the_plan_and_records_each_deletion(tmp_path: Path, data_dir: Path, evidock) -> None:
    ids = build(tmp_path, data_dir)
    victim = sha_of(data_dir, ids["unfiled.mp4"])
    store = LocalObjectStore(data_dir)
    plan_doc = evidock("retention", "plan", "--json").json()
    assert [d["sha256"] for d in plan_doc["delete"]] == [victim]
    r = evidock("retention", "apply", "--plan-id", plan_doc["plan_id"], "--json")
    assert r.code == 0, r.err
    assert [d["sha256"] for d in r.json()["deleted"]] == [victim] and r.json()["deleted"][0]["object"] == "removed"
    assert not store.exists(victim)
    for name in ("open_case.mp4", "closed_case.mp4", "ambiguous.mp4", "held.mp4", "fresh.mp4", "clock_wrong.mp4"):
        assert store.exists(sha_of(data_dir, ids[name])), name
    with Catalog(data_dir) as c:
        rep = verify_store(c, store)
        assert rep.checked == 6 and not rep.damaged and not rep.missing and not rep.unreferenced
        assert c.conn.execute("SELECT COUNT(*) FROM sightings WHERE sha256 = ?", (victim,)).fetchone()[0] == 0
        assert audit.verify(c).ok
    entry = audit_rows(data_dir, "object.delete")
    assert len(entry) == 1 and entry[0]["subject"] == victim and entry[0]["actor"] == audit.current_actor()
    assert entry[0]["details"]["rule"] == "unfiled" and entry[0]["details"]["plan"] == plan_doc["plan_id"]
    gone = evidock("retention", "deleted", "--json").json()
    assert [(g["sha256"], g["rule"], g["object_state"], g["source_path"]) for g in gone] == [
        (victim, "unfiled", "removed", "unfiled.mp4")]
    assert ids["unfiled.mp4"] not in {r["id"] for r in evidock("footage", "list", "--json").json()}
    again = evidock("retention", "apply", "--json")
    assert again.code == 0 and again.json()["deleted"] == []


def test_a_hold_or_filing_after_the_plan_wins(tmp_path: Path, data_dir: Path) -> None:
    ids = build(tmp_path, data_dir)
    station = build_context(Config(), data_dir)
    far = t("2200-01-01 00:00:00")
    with Catalog(data_dir) as c:
        stale = retention.plan(c, RetentionConfig(), far)
        assert {i.footage_id for i in stale.delete} == {ids["unfiled.mp4"], ids["fresh.mp4"], ids["clock_wrong.mp4"]}
        retention.set_hold(c, [ids["unfiled.mp4"]], "court asked for it")
        filing.file_footage(c, [ids["fresh.mp4"]], "OPEN-1", "belongs to OPEN-1")
        with pytest.raises(errors.RetentionError, match="nothing was deleted"):
            retention.apply(c, station, RetentionConfig(), expect_plan_id=stale.plan_id, now=far)
        rep = retention.apply(c, station, RetentionConfig(), stale, now=far)
    assert [d["footage"] for d in rep.deleted] == [ids["clock_wrong.mp4"]]
    skipped = {s["footage"]: s["why"] for s in rep.skipped}
    assert "legal-hold" in skipped[ids["unfiled.mp4"]] and "open-case" in skipped[ids["fresh.mp4"]]
    assert rep.exit_code == 1
    assert station.store.exists(sha_of(data_dir, ids["unfiled.mp4"])) and station.store.exists(sha_of(data_dir, ids["fresh.mp4"]))


def test_a_crash_between_commit_and_unlink_is_finished_by_the_next_apply(tmp_path: Path, data_dir: Path, evidock) -> None:
    ids = build(tmp_path, data_dir)
    victim = sha_of(data_dir, ids["unfiled.mp4"])
    store = LocalObjectStore(data_dir)
    r = run_evidock("retention", "apply", data_dir=data_dir, env={"EVIDOCK_CRASH_AT": "retention-after-commit"})
    assert r.code == -9  # a real SIGKILL right after the deletion committed
    # never a catalog row without its object: the row is gone, the object is still there
    with Catalog(data_dir) as c:
        assert c.conn.execute("SELECT COUNT(*) FROM objects WHERE sha256 = ?", (victim,)).fetchone()[0] == 0
        assert verify_store(c, store).unreferenced == [victim]
    assert store.exists(victim)
    v = evidock("verify")
    assert v.code == 0 and f"note: object {victim} is in the store but not in the catalog" in v.err
    assert evidock("retention", "plan", "--json").json()["pending_removal"] == [victim]
    # the removal fails for real (something that is not a file sits at the object's path): reported, retried later
    path = Path(store.describe(victim))
    saved = tmp_path / "saved-object"
    shutil.copy2(path, saved)
    path.unlink()
    path.mkdir()
    r = evidock("retention", "apply", "--json")
    assert r.code == 2 and "not a regular file" in r.json()["errors"][0]["error"] and "retries" in r.json()["errors"][0]["error"]
    assert evidock("retention", "plan", "--json").json()["pending_removal"] == [victim]
    path.rmdir()
    shutil.copy2(saved, path)
    r = evidock("retention", "apply", "--json")
    assert r.code == 0 and r.json()["finished"] == [{"sha256": victim, "object": "removed"}]
    assert not store.exists(victim)
    assert evidock("audit", "verify").code == 0
    assert [g["object_state"] for g in evidock("retention", "deleted", "--json").json()] == ["removed"]


def test_bytes_ingested_again_before_the_removal_are_kept(tmp_path: Path, data_dir: Path, evidock) -> None:
    ids = build(tmp_path, data_dir)
    victim = sha_of(data_dir, ids["unfiled.mp4"])
    r = run_evidock("retention", "apply", data_dir=data_dir, env={"EVIDOCK_CRASH_AT": "retention-after-commit"})
    assert r.code == -9
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy2(tmp_path / "d" / "unfiled.mp4", again / "unfiled.mp4")  # the same bytes, docked again
    assert evidock("ingest", again, "--officer", "010777").code == 0
    r = evidock("retention", "apply", "--json")
    assert r.code == 0 and r.json()["finished"] == [{"sha256": victim, "object": "reingested"}]
    assert LocalObjectStore(data_dir).exists(victim)
    v = evidock("verify")
    assert v.code == 0 and "0 missing" in v.out and "note:" not in v.err


def test_rows_of_other_modules_block_a_deletion_without_losing_anything(tmp_path: Path, data_dir: Path, evidock) -> None:
    ids = build(tmp_path, data_dir)
    victim = sha_of(data_dir, ids["unfiled.mp4"])
    # a table of some future module that refers to footage and that retention does not know: a real
    # foreign-key refusal (media rows, which it knows, go with the footage)
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("CREATE TABLE future_jobs (id INTEGER PRIMARY KEY, footage_id INTEGER NOT NULL REFERENCES footage(id))")
        db.execute("INSERT INTO future_jobs (footage_id) VALUES (?)", (ids["unfiled.mp4"],))
    r = evidock("retention", "apply", "--json")
    assert r.code == 2
    err = r.json()["errors"][0]
    assert err["sha256"] == victim and "still refer to footage" in err["error"] and "nothing of it was deleted" in err["error"]
    assert LocalObjectStore(data_dir).exists(victim)
    assert ids["unfiled.mp4"] in {r["id"] for r in evidock("footage", "list", "--json").json()}
    assert evidock("retention", "deleted", "--json").json() == [] and audit_rows(data_dir, "object.delete") == []


def test_legal_hold_command(tmp_path: Path, data_dir: Path, evidock) -> None:
    ingest_clips(data_dir, tmp_path / "v", {"x.mp4": t("2025-01-10 00:00:00")})
    x = footage_ids(data_dir)["x.mp4"]
    r = evidock("footage", "hold", str(x), "--reason", "行政复议", "--json")
    assert r.code == 0 and r.json() == [{"footage": x, "sha256": sha_of(data_dir, x), "state": "held"}]
    assert evidock("footage", "hold", str(x), "--reason", "again", "--json").json()[0]["state"] == "already held"
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE footage SET ingested_at = recorded_at")
    assert evidock("retention", "plan", "--json").json()["kept"] == {"legal-hold": 1}
    r = evidock("footage", "hold", str(x), "--release", "--reason", "review closed")
    assert r.code == 0 and f"footage {x}: released" in r.out
    assert [d["footage"] for d in evidock("retention", "plan", "--json").json()["delete"]] == [x]
    text = evidock("retention", "plan", "--as-of", "2025-07-13 07:59")  # Beijing time: one minute before it is due
    assert text.code == 0 and "0 to delete" in text.out and "kept: 1 by unfiled" in text.err
    r = evidock("footage", "hold", "4242", "--reason", "typo")
    assert r.code == 2 and "no footage with id 4242" in r.err
    r = evidock("footage", "hold", str(x), "--reason", " ")
    assert r.code == 2 and "needs a reason" in r.err
    # issue 12: the same errors for a Chinese reader
    r = evidock("--lang", "zh", "footage", "hold", "4242", "--reason", "typo")
    assert r.code == 2 and "没有编号为 4242 的录像" in r.err and "no footage" not in r.err
    r = evidock("--lang", "zh", "footage", "hold", str(x), "--reason", " ")
    assert r.code == 2 and "法律保全须说明理由" in r.err and "needs a reason" not in r.err
    held = [(e["event"], e["details"]["reason"]) for e in audit_rows(data_dir) if e["event"] in ("footage.hold", "footage.release")]
    assert held == [("footage.hold", "行政复议"), ("footage.release", "review closed")]


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, gid)


def test_store_delete_gets_write_on_a_readonly_fanout_dir_only_for_the_unlink() -> None:
    base = Path(tempfile.mkdtemp(prefix="evidock-del-"))  # outside pytest's 0700 tmp, for the other user
    try:
        os.chmod(base, 0o755)
        data = base / "data"
        store = LocalObjectStore(data)
        staged = store.staging_dir / "x.part"
        staged.write_bytes(b"evidence")
        sha = hashlib.sha256(b"evidence").hexdigest()
        assert store.put_staged(staged, sha, 8)
        fan = Path(store.describe(sha)).parent
        os.chmod(fan, 0o550)
        code = "import sys; from daemon.evidence.store import LocalObjectStore; print(LocalObjectStore(sys.argv[1]).delete(sys.argv[2]))"
        if os.getuid() == 0:
            # root ignores directory permissions: run the delete as an ordinary user, for real
            nobody = pwd.getpwnam("nobody")
            _chown_tree(base, nobody.pw_uid, nobody.pw_gid)
            p = subprocess.run([sys.executable, "-c", code, str(data), sha], cwd=REPO, capture_output=True, text=True,
                               user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], timeout=60,
                               env={"PATH": os.environ.get("PATH", ""), "HOME": str(base)})
            assert p.returncode == 0 and p.stdout.strip() == "True", p.stderr
        else:
            assert store.delete(sha) is True
        assert not store.exists(sha)
        assert stat.S_IMODE(os.stat(fan).st_mode) == 0o550
        assert store.delete(sha) is False
    finally:
        for d, _, _ in os.walk(base):
            os.chmod(d, 0o755)
        shutil.rmtree(base)


def test_a_deletion_takes_the_proxy_and_media_rows_with_it(tmp_path: Path, data_dir: Path, evidock) -> None:
    from daemon.media.derived import DerivedFiles
    from drivers.sim.volume import make_clip

    folder = tmp_path / "clip"
    when = t("2025-01-10 00:00:00")
    make_clip(folder / "old.MP4", 1.0, "320x240", when)
    os.utime(folder / "old.MP4", (when.timestamp(),) * 2)
    r = evidock("ingest", folder, "--officer", BADGE, "--json")
    assert r.code == 0, r.err
    sha = r.json()["files"][0]["sha256"]
    assert evidock("media", "run", "--json").code == 0
    derived = DerivedFiles(data_dir)
    assert derived.path("proxy", sha, "mp4").exists()
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE footage SET ingested_at = recorded_at")
    r = evidock("retention", "apply", "--json")
    assert r.code == 0, r.out
    assert [d["sha256"] for d in r.json()["deleted"]] == [sha]
    assert not derived.path("proxy", sha, "mp4").exists() and not derived.path("thumb", sha, "jpg").exists()
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM media_jobs").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM media_info").fetchone()[0] == 0


def test_a_skipped_deletion_says_why_in_chinese_and_its_json_is_english() -> None:
    """Issue 12: the report's rows keep English in the JSON and carry the message for people."""
    import json

    from daemon import i18n
    from daemon.i18n import N_, Message

    row = retention._row(Message(N_("no longer due: now under rule {rule} ({meaning})"), rule="legal-hold",
                                 meaning=Message(retention.RULES[0].meaning)), "why", footage=7, sha256="ab")
    assert json.loads(json.dumps(row)) == {
        "footage": 7, "sha256": "ab", "why": "no longer due: now under rule legal-hold (on legal hold: kept until the hold is lifted)"}
    i18n.set_language("zh")
    try:
        assert i18n.text(retention.row_text(row, "why")) == "已不到期：现适用规则 legal-hold（处于法律保全：保全解除前一直保留）"
    finally:
        i18n.set_language("en")
    assert retention.row_text({"why": "old"}, "why") == "old"


def test_plan_in_chinese_names_rules_in_chinese_with_chinese_separators(tmp_path: Path, data_dir: Path, evidock) -> None:
    build(tmp_path, data_dir)
    r = evidock("--lang", "zh", "retention", "plan")
    assert r.code == 0, r.err
    kept = [line for line in r.err.splitlines() if line.startswith("保留")][0]
    assert "依法保全" in kept and "多案待定" in kept and "、" in kept
    assert not any(code in r.out + kept for code in ("legal-hold", "ambiguous-open", "unfiled", ", "))
    assert "未归档" in r.out


def test_apply_with_a_malformed_plan_id_says_there_is_no_such_plan(tmp_path: Path, data_dir: Path, evidock) -> None:
    build(tmp_path, data_dir)
    r = evidock("retention", "apply", "--plan-id", "deadbeef")
    assert r.code == 2 and "no retention plan with the id 'deadbeef'" in r.err and "changed" not in r.err
    wrong = evidock("retention", "apply", "--plan-id", "0" * 16)
    assert wrong.code == 2 and "mistyped or something changed" in wrong.err
    assert evidock("retention", "plan", "--json").json()["count"] == 1  # nothing was deleted
