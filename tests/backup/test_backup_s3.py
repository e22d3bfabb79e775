"""Backups to an S3 target through the real CLI against a real SeaweedFS (``weed mini`` on
loopback): the scheduler's job with COMPLIANCE locks, an incremental run, secret footage kept off
the off-site bucket, a restore bit for bit from the bucket alone, and a copy deleted by the first
run after its lock expired (retention's deletion reaching the target).

The target-level failures (server killed, wrong credentials, a bucket without Object Lock, a bad
checksum) are in test_s3target.py."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import run_evidock
from support.filing_helpers import BADGE, ingest_clips, t
from support.helpers import object_files
from support.seaweed import REGION, Seaweed, seaweed  # noqa: F401 (fixture)

from daemon.backup.target import object_key
from daemon.cases import register, retention
from daemon.catalog.db import CATALOG_NAME, Catalog
from daemon.config import parse_config
from daemon.context import build_context

NOW = datetime.now(UTC).replace(microsecond=0)


def config(tmp_path: Path, server: Seaweed, bucket: str, endpoint: str | None = None) -> Path:
    p = tmp_path / "evidock.toml"
    p.write_text("[station]\nid = 'st7'\n\n[[backup.targets]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in {
        "name": "bureau", "kind": "s3", "endpoint": endpoint or server.endpoint, "bucket": bucket, "region": REGION,
        "access_key_id": "evidocktestkey", "secret_file": str(server.secret_file())}.items()))
    return p


def copies(data_dir: Path) -> dict[str, str]:
    with Catalog(data_dir) as c:
        return dict(c.conn.execute("SELECT sha256, version_id FROM backup_copies WHERE target = 'bureau'").fetchall())


def test_job_locks_copies_keeps_secret_home_and_restore_is_bit_for_bit(seaweed: Seaweed, tmp_path: Path,
                                                                       data_dir: Path, evidock) -> None:
    bucket = seaweed.bucket(object_lock=True)
    cfg = config(tmp_path, seaweed, bucket)
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "SECRET-1", "party": "甲", "handlers": [BADGE], "sensitivity": "secret",
                               "opened_at": "2025-01-01T00:00:00Z"}, "Asia/Shanghai")
    ingest_clips(data_dir, tmp_path / "a", {"secret.mp4": t("2025-01-10 00:00:00")})
    ingest_clips(data_dir, tmp_path / "b", {"a1.mp4": NOW - timedelta(hours=3), "a2.mp4": NOW - timedelta(hours=2)},
                 officer="010777", device="ZFY-2")
    r = evidock("--config", cfg, "jobs", "run", "backup", "--json")
    assert r.code == 0, r.err
    assert (r.json()["counts"]["copied"], r.json()["counts"]["skipped_secret"]) == (2, 1)
    s3 = seaweed.client()
    with Catalog(data_dir) as c:
        secret = c.conn.execute("SELECT sha256 FROM footage WHERE source_path = 'secret.mp4'").fetchone()[0]
    marked = copies(data_dir)
    assert secret not in marked and len(marked) == 2  # Article 10: an off-site target by default
    for sha, version in marked.items():
        ret = s3.get_object_retention(Bucket=bucket, Key=object_key(sha), VersionId=version)["Retention"]
        assert ret["Mode"] == "COMPLIANCE" and ret["RetainUntilDate"] > NOW + timedelta(days=180)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="catalog/st7/")["KeyCount"] == 2  # snapshot + its .json

    ingest_clips(data_dir, tmp_path / "c", {"b1.mp4": NOW - timedelta(hours=1)}, officer="010777", device="ZFY-2")
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    assert r.json()["targets"][0]["copied"] == 1  # only the new one

    # The station lost: everything but the secret recording comes back from the bucket alone
    listing = evidock("footage", "list", "--json").out
    originals = {sha: p.read_bytes() for sha, p in object_files(data_dir).items()}
    shutil.rmtree(data_dir)
    r = run_evidock("--config", cfg, "restore", "--from", "bureau", "--json", data_dir=data_dir)
    assert r.code == 2, r.out + r.err  # the secret recording was never sent: reported missing, by name
    assert [m["sha256"] for m in r.json()["missing"]] == [secret] and r.json()["audit_ok"]
    assert "never backed up to bureau" in r.json()["missing"][0]["reason"]
    restored = {sha: p.read_bytes() for sha, p in object_files(data_dir).items()}
    assert restored == {sha: b for sha, b in originals.items() if sha != secret}
    assert evidock("footage", "list", "--json").out == listing
    assert evidock("audit", "verify").code == 0


def test_a_copy_is_deleted_by_the_first_run_after_its_lock_expired(seaweed: Seaweed, tmp_path: Path,
                                                                    data_dir: Path, evidock) -> None:
    bucket = seaweed.bucket(object_lock=True)
    cfg = config(tmp_path, seaweed, bucket)
    ingest_clips(data_dir, tmp_path / "a", {"old.mp4": NOW - timedelta(days=100)}, officer="010777")
    ingest_clips(data_dir, tmp_path / "b", {"new.mp4": NOW - timedelta(days=1)}, officer="010777", device="ZFY-2")
    # Unfiled footage is kept 184 days from its recording: make the old one's time run out a few
    # seconds from now, so that its copy is locked until then and no longer.
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    stamp = (expires - timedelta(days=184)).isoformat()
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE footage SET recorded_at = ?, recorded_at_corrected = ?, ingested_at = ?"
                   " WHERE source_path = 'old.mp4'", (stamp, stamp, stamp))
        old = db.execute("SELECT sha256 FROM footage WHERE source_path = 'old.mp4'").fetchone()[0]
    assert evidock("--config", cfg, "backup", "run").code == 0
    version = copies(data_dir)[old]
    s3 = seaweed.client()
    until = s3.get_object_retention(Bucket=bucket, Key=object_key(old), VersionId=version)["Retention"]["RetainUntilDate"]
    assert abs((until - expires).total_seconds()) <= 1
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.5)

    cf = parse_config({})
    with Catalog(data_dir) as c:
        retention.apply(c, build_context(cf, data_dir), cf.retention)
    assert old not in object_files(data_dir)
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    assert r.json()["targets"][0]["deleted"] == 1
    versions = s3.list_object_versions(Bucket=bucket, Prefix=object_key(old)).get("Versions", [])
    assert version not in [v["VersionId"] for v in versions]
    assert old not in copies(data_dir) and len(copies(data_dir)) == 1
    with Catalog(data_dir) as c:
        rows = c.conn.execute("SELECT subject, details FROM audit WHERE event = 'backup.delete'").fetchall()
    assert [(s, json.loads(d)["target"]) for s, d in rows] == [(f"object:{old}", "bureau")]


def test_a_copy_on_legal_hold_is_kept_past_its_lock_date_until_the_hold_is_lifted(seaweed: Seaweed, tmp_path: Path,
                                                                                   data_dir: Path, evidock) -> None:
    from support.filing_helpers import footage_ids

    bucket = seaweed.bucket(object_lock=True)
    cfg = config(tmp_path, seaweed, bucket)
    ingest_clips(data_dir, tmp_path / "a", {"old.mp4": NOW - timedelta(days=100)}, officer="010777")
    ingest_clips(data_dir, tmp_path / "b", {"new.mp4": NOW - timedelta(days=1)}, officer="010777", device="ZFY-2")
    # as in the test above: the old one's retention runs out a few seconds from now, its lock with it
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    stamp = (expires - timedelta(days=184)).isoformat()
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE footage SET recorded_at = ?, recorded_at_corrected = ?, ingested_at = ?"
                   " WHERE source_path = 'old.mp4'", (stamp, stamp, stamp))
        old = db.execute("SELECT sha256 FROM footage WHERE source_path = 'old.mp4'").fetchone()[0]
    assert evidock("--config", cfg, "backup", "run").code == 0
    version = copies(data_dir)[old]
    fid = footage_ids(data_dir)["old.mp4"]
    r = evidock("--config", cfg, "footage", "hold", str(fid), "--reason", "court order 2026-118", "--json")
    assert r.code == 0 and r.json()[0]["state"] == "held", r.err
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.5)

    s3 = seaweed.client()
    until = s3.get_object_retention(Bucket=bucket, Key=object_key(old), VersionId=version)["Retention"]["RetainUntilDate"]
    assert until < datetime.now(UTC)  # the lock no longer keeps it: only evidock's rules do
    r = evidock("--config", cfg, "retention", "apply", "--json")
    assert r.json()["deleted"] == [] and old in object_files(data_dir), r.out
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0 and r.json()["targets"][0]["deleted"] == 0, r.out + r.err
    assert r.json()["targets"][0]["held"] == 1  # evidock's hold, mirrored on the recorded version
    held = s3.list_object_versions(Bucket=bucket, Prefix=object_key(old)).get("Versions", [])
    assert [v["VersionId"] for v in held] == [version] and copies(data_dir)[old] == version
    ref = {"Bucket": bucket, "Key": object_key(old), "VersionId": version}
    assert s3.get_object_legal_hold(**ref)["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError) as e:
        s3.delete_object(**ref)  # anyone with the bucket's credentials, past the lock date: refused
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    marks = held_marks(data_dir)
    assert marks[old] == 1 and sorted(marks.values()) == [0, 1]  # the other copy is not held
    assert hold_audit(data_dir) == [(f"object:{old}", "bureau", version, "ON")]

    r = evidock("--config", cfg, "footage", "hold", str(fid), "--release", "--reason", "order lifted", "--json")
    assert r.code == 0 and r.json()[0]["state"] == "released", r.err
    r = evidock("--config", cfg, "retention", "apply", "--json")
    assert [d["sha256"] for d in r.json()["deleted"]] == [old], r.out
    r = evidock("--config", cfg, "backup", "run", "--json")
    # the first run after the release lifts the S3 hold, and then retention's deletion goes through
    assert r.code == 0 and r.json()["targets"][0]["released"] == 1, r.out + r.err
    assert r.json()["targets"][0]["deleted"] == 1
    assert s3.list_object_versions(Bucket=bucket, Prefix=object_key(old)).get("Versions", []) == []
    assert old not in copies(data_dir) and len(copies(data_dir)) == 1
    assert hold_audit(data_dir) == [(f"object:{old}", "bureau", version, "ON"),
                                    (f"object:{old}", "bureau", version, "OFF")]


def test_a_copy_of_held_footage_is_written_with_its_legal_hold_and_later_runs_leave_it(
        seaweed: Seaweed, tmp_path: Path, data_dir: Path, evidock) -> None:
    from support.filing_helpers import footage_ids
    from support.s3tap import S3Tap

    bucket = seaweed.bucket(object_lock=True)
    ingest_clips(data_dir, tmp_path / "a", {"held.mp4": NOW - timedelta(days=3), "free.mp4": NOW - timedelta(days=2)},
                 officer="010777")
    fid = footage_ids(data_dir)["held.mp4"]
    assert evidock("footage", "hold", str(fid), "--reason", "court order 2026-119").code == 0
    # through a tap that never acts: it counts the PUTs to objects/ (uploads and legal-hold changes)
    with S3Tap(seaweed.ports["s3.port"], bucket, nth=10**9, action=lambda: None) as tap:
        cfg = config(tmp_path, seaweed, bucket, endpoint=tap.endpoint)
        r = evidock("--config", cfg, "backup", "run", "--json")
        assert r.code == 0, r.out + r.err
        assert (r.json()["targets"][0]["copied"], r.json()["targets"][0]["held"]) == (2, 0)  # at once, in the PUT
        assert tap.seen == 2
        with Catalog(data_dir) as c:
            held, until = c.conn.execute("SELECT f.sha256, b.retain_until FROM footage f JOIN backup_copies b"
                                         " ON b.sha256 = f.sha256 WHERE f.id = ?", (fid,)).fetchone()
        version = copies(data_dir)[held]
        s3 = seaweed.client()
        h = s3.head_object(Bucket=bucket, Key=object_key(held), VersionId=version)
        assert h["ObjectLockLegalHoldStatus"] == "ON" and until is None  # no date: the hold is what keeps it
        with pytest.raises(ClientError):
            s3.delete_object(Bucket=bucket, Key=object_key(held), VersionId=version)
        assert [k for k, v in held_marks(data_dir).items() if v] == [held]
        assert hold_audit(data_dir) == [(f"object:{held}", "bureau", version, "ON")]

        r = evidock("--config", cfg, "backup", "run", "--json")  # nothing changed: nothing asked of the objects
        assert r.code == 0 and (r.json()["targets"][0]["held"], r.json()["targets"][0]["released"]) == (0, 0)
        assert tap.seen == 2 and len(hold_audit(data_dir)) == 1


def held_marks(data_dir: Path) -> dict[str, int]:
    with Catalog(data_dir) as c:
        return dict(c.conn.execute("SELECT sha256, legal_hold FROM backup_copies WHERE target = 'bureau'").fetchall())


def hold_audit(data_dir: Path) -> list[tuple[str, str, str, str]]:
    with Catalog(data_dir) as c:
        rows = c.conn.execute("SELECT subject, details FROM audit WHERE event = 'backup.legal_hold' ORDER BY id")
        return [(s, d["target"], d["version"], d["status"]) for s, d in ((s, json.loads(d)) for s, d in rows)]


def test_a_copy_written_without_a_lock_date_is_locked_once_retention_gives_one(seaweed: Seaweed, tmp_path: Path,
                                                                               data_dir: Path, evidock) -> None:
    # footage filed to an open case is kept for as long as the case is open: no date, so its copy
    # goes up without a lock; the first run after the case closes must lock it (COMPLIANCE)
    from daemon.cases.retention import keep_until_by_object

    bucket = seaweed.bucket(object_lock=True)
    cfg = config(tmp_path, seaweed, bucket)
    cfg.write_text(cfg.read_text() + "\n[retention]\nfiled_keep_years = 5\n")  # unset: filed footage kept for ever
    rules = parse_config({"retention": {"filed_keep_years": 5}}).retention
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "OPEN-1", "party": "甲", "handlers": [BADGE],
                               "opened_at": (NOW - timedelta(days=3)).isoformat()}, "Asia/Shanghai")
    ingest_clips(data_dir, tmp_path / "a", {"filed.mp4": NOW - timedelta(days=2)})
    with Catalog(data_dir) as c:
        (sha,) = [r[0] for r in c.conn.execute("SELECT sha256 FROM footage WHERE case_no = 'OPEN-1'")]
        assert keep_until_by_object(c, rules)[sha] is None
    assert evidock("--config", cfg, "backup", "run").code == 0
    version, s3 = copies(data_dir)[sha], seaweed.client()
    try:
        unlocked = s3.get_object_retention(Bucket=bucket, Key=object_key(sha), VersionId=version).get("Retention")
    except s3.exceptions.ClientError:
        unlocked = None
    assert not unlocked, unlocked
    with Catalog(data_dir) as c:
        register.close_case(c, "OPEN-1", NOW.isoformat(), "Asia/Shanghai")
        until = keep_until_by_object(c, rules)[sha]
    assert until is not None and until > datetime.now(UTC)
    assert evidock("--config", cfg, "backup", "run").code == 0
    got = s3.get_object_retention(Bucket=bucket, Key=object_key(sha), VersionId=version)["Retention"]
    assert got["Mode"] == "COMPLIANCE" and abs((got["RetainUntilDate"] - until).total_seconds()) <= 1
    with Catalog(data_dir) as c:
        row = c.conn.execute("SELECT retain_until FROM backup_copies WHERE sha256 = ?", (sha,)).fetchone()
    assert row[0] is not None and copies(data_dir)[sha] == version  # the same version, now locked


def test_a_run_with_nothing_new_leaves_the_locks_alone(seaweed: Seaweed, tmp_path: Path, data_dir: Path,
                                                       evidock) -> None:
    """Unfiled footage is kept 184 days from its ingest time, which has a fraction of a second;
    S3 and the catalog keep whole seconds. The lock is that date rounded up, and the next run finds
    it as stored: it does not extend (GET + PUT ?retention) every such copy again, run after run."""
    from support.s3tap import S3Tap

    bucket = seaweed.bucket(object_lock=True)
    ingest_clips(data_dir, tmp_path / "a", {"a.mp4": NOW - timedelta(days=3), "b.mp4": NOW - timedelta(days=2)},
                 officer="010777")
    with Catalog(data_dir) as c:
        assert all("." in r[0] for r in c.conn.execute("SELECT ingested_at FROM footage"))  # the fraction
    # through a tap that never acts: it counts the PUTs to objects/ (uploads, retention changes)
    with S3Tap(seaweed.ports["s3.port"], bucket, nth=10**9, action=lambda: None) as tap:
        cfg = config(tmp_path, seaweed, bucket, endpoint=tap.endpoint)
        r = evidock("--config", cfg, "backup", "run", "--json")
        assert r.code == 0 and r.json()["targets"][0]["copied"] == 2, r.out + r.err
        assert tap.seen == 2  # the two uploads, each with its lock: no retention PUT after them
        r = evidock("--config", cfg, "backup", "run", "--json")
        assert r.code == 0 and r.json()["targets"][0]["copied"] == 0, r.out + r.err
        assert tap.seen == 2
    s3 = seaweed.client()
    with Catalog(data_dir) as c:
        rows = c.conn.execute("SELECT f.ingested_at, b.sha256, b.version_id, b.retain_until FROM footage f"
                              " JOIN backup_copies b ON b.sha256 = f.sha256").fetchall()
    for ingested, sha, version, until in rows:
        lock = s3.get_object_retention(Bucket=bucket, Key=object_key(sha), VersionId=version)["Retention"]
        assert lock["RetainUntilDate"] == datetime.fromisoformat(until)  # what the catalog says, to the second
        assert datetime.fromisoformat(until) >= datetime.fromisoformat(ingested) + timedelta(days=184)  # never less
