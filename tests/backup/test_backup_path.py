"""Backups to a path target through the real CLI: the scheduler's job, incremental runs, verify
finding damage, a full target, secret footage kept on-site, retention deletions reaching the
target, a kill -9 mid-run, and a restore bit for bit into an empty data dir.

The footage comes from the real ingest (support.filing_helpers); the target is a real directory
(a size-limited tmpfs where it must fill up)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Run, run_evidock
from support.filing_helpers import BADGE, ingest_clips, t
from support.helpers import object_files, sha256_file

from daemon.cases import register, retention
from daemon.catalog.db import CATALOG_NAME, Catalog
from daemon.config import Config, parse_config
from daemon.context import build_context

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def config(tmp_path: Path, *targets: dict, backup: dict | None = None) -> Path:
    lines = ["[station]", "id = 'st7'", ""]
    if backup:
        lines += ["[backup]", *(f"{k} = {json.dumps(v)}" for k, v in backup.items()), ""]
    for tg in targets:
        lines.append("[[backup.targets]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in tg.items()]
    p = tmp_path / "evidock.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def target_dir(tmp_path: Path, name: str = "disk2") -> Path:
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return d


def copies(data_dir: Path, target: str | None = None) -> list[tuple[str, str]]:
    with Catalog(data_dir) as c:
        return sorted(c.conn.execute("SELECT sha256, target FROM backup_copies" + (" WHERE target = ?" if target else ""),
                                     (target,) if target else ()).fetchall())


def at_target(d: Path) -> dict[str, Path]:
    return {p.name: p for p in (d / "objects").glob("*/*/*") if p.is_file() and not p.name.startswith(".")}


def test_job_runs_incrementally_and_restore_is_bit_for_bit(tmp_path: Path, data_dir: Path, evidock) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=3), "a2.mp4": NOW - timedelta(hours=2)})
    r = evidock("--config", cfg, "jobs", "run", "backup", "--json")
    assert r.code == 0, r.err
    assert (r.json()["result"], r.json()["counts"]["copied"], r.json()["counts"]["verified"]) == ("ok", 2, 2)
    assert len(copies(data_dir)) == 2
    stored = object_files(data_dir)
    assert set(at_target(disk)) == set(stored)
    for sha, p in at_target(disk).items():
        assert sha256_file(p) == sha and (p.stat().st_mode & 0o777) == 0o444

    ingest_clips(data_dir, tmp_path / "b", {"b1.mp4": NOW - timedelta(hours=1)})
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    run = r.json()["targets"][0]
    assert (run["copied"], run["result"]) == (1, "ok")  # only the new one
    snaps = sorted((disk / "catalog" / "st7").glob("*.sqlite"))
    assert snaps and (snaps[-1].parent / (snaps[-1].name + ".json")).is_file()
    meta = json.loads((snaps[-1].parent / (snaps[-1].name + ".json")).read_text())
    assert meta["footage_rows"] == 3 and len(meta["audit_head"]) == 64

    st = evidock("--config", cfg, "backup", "status", "--json")
    assert st.code == 0, st.err
    s = st.json()["targets"][0]
    assert (s["objects"], s["objects_total"], s["lag_s"]) == (3, 3, None)
    assert s["last_run"]["result"] == "ok"
    sizes = sum(p.stat().st_size for p in object_files(data_dir).values())
    assert s["bytes"] == s["bytes_total"] == sizes > 0  # the objects' own sizes, all of them backed up
    before = s["last_verify"]
    assert evidock("--config", cfg, "backup", "verify", "--all").code == 0
    s = evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]
    assert s["last_verify"]["result"] == "ok" and s["last_verify"]["kind"] == "verify"
    assert before is None or s["last_verify"]["id"] > before["id"]  # this verify, not an earlier one
    assert s["last_verify"]["ended_at"] >= s["last_run"]["ended_at"]

    listing = evidock("footage", "list", "--json").out
    originals = {sha: p.read_bytes() for sha, p in object_files(data_dir).items()}
    shutil.rmtree(data_dir)
    r = run_evidock("--config", cfg, "restore", "--from", "disk2", "--json", data_dir=data_dir)
    assert r.code == 0, r.out + r.err
    assert r.json()["missing"] == [] and r.json()["audit_ok"]
    assert {sha: p.read_bytes() for sha, p in object_files(data_dir).items()} == originals
    assert evidock("verify").code == 0
    assert evidock("audit", "verify").code == 0
    assert evidock("footage", "list", "--json").out == listing


def test_restore_refuses_a_data_dir_that_is_not_empty(tmp_path: Path, data_dir: Path, evidock) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=3)})
    assert evidock("--config", cfg, "backup", "run").code == 0
    r = run_evidock("--config", cfg, "restore", "--from", "disk2", data_dir=data_dir)
    assert r.code == 2 and "empty" in r.err


def test_verify_finds_a_damaged_copy_and_the_next_run_copies_it_again(tmp_path: Path, data_dir: Path, evidock) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=3), "a2.mp4": NOW - timedelta(hours=2)})
    assert evidock("--config", cfg, "backup", "run").code == 0
    sha, p = sorted(at_target(disk).items())[0]
    os.chmod(p, 0o644)  # the copies are read-only
    data = bytearray(p.read_bytes())
    data[10] ^= 0x01
    p.write_bytes(bytes(data))
    r = evidock("--config", cfg, "backup", "verify", "--all", "--json")
    assert r.code == 2, r.err
    assert r.json()["damaged"] == [{"target": "disk2", "sha256": sha}]
    st = evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]
    assert any(a["kind"] == "verify-damaged" for a in st["alerts"])
    from daemon.backup.status import open_backup_alerts  # what `evidock status` shows (it needs the daemon running)

    with Catalog(data_dir) as c:
        assert [a["job"] for a in open_backup_alerts(c)] == ["backup:disk2"]
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.json()["targets"][0]["copied"] == 1
    assert sha256_file(at_target(disk)[sha]) == sha
    assert evidock("--config", cfg, "backup", "verify", "--json").code == 0
    assert not evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]["alerts"]


def test_a_sample_resumes_with_the_copies_verified_longest_ago(tmp_path: Path, data_dir: Path, evidock) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {f"a{i}.mp4": NOW - timedelta(hours=i + 1) for i in range(3)})
    assert evidock("--config", cfg, "backup", "run").code == 0
    seen = []
    for _ in range(3):
        with Catalog(data_dir) as c:
            seen.append(c.conn.execute("SELECT sha256 FROM backup_copies ORDER BY verified_at, sha256 LIMIT 1").fetchone()[0])
        assert evidock("--config", cfg, "backup", "verify", "--sample", "1").code == 0
    assert len(set(seen)) == 3  # every slice took another copy


@pytest.fixture
def small_target(tmp_path: Path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_target_fails_the_run_naming_it_marks_nothing_and_catches_up_given_room(tmp_path: Path, data_dir: Path, evidock,
                                                                  small_target: Path) -> None:
    from daemon.ingest.offload import ingest

    src = tmp_path / "big"
    src.mkdir()
    (src / "big.mp4").write_bytes(os.urandom(3 << 20))
    assert ingest(build_context(Config(), data_dir), src, device="ZFY-1", officer=BADGE, threaded=False).status == "completed"
    cfg = config(tmp_path, {"name": "small", "kind": "path", "path": str(small_target)})
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 2
    run = r.json()["targets"][0]
    assert run["result"] == "failed" and "small" in run["error"] and "full" in run["error"]
    assert copies(data_dir) == []
    assert [p.relative_to(small_target).parts[0] for p in small_target.rglob("*") if p.is_file()] == ["markers"]
    # the temp copy removed; the station's mark stays
    st = evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]
    assert any(a["kind"] == "run-failed" for a in st["alerts"])
    # given room (the disk grown, as a NAS share's quota raised), the next run catches up
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_target)], check=True, capture_output=True)
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0 and r.json()["targets"][0]["copied"] == 1, r.out + r.err
    [(sha, _)] = copies(data_dir)
    assert sha256_file(at_target(small_target)[sha]) == sha
    st = evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]
    assert st["alerts"] == [] and st["lag_s"] is None


def test_secret_footage_stays_off_an_offsite_target_unless_it_includes_secret(tmp_path: Path, data_dir: Path,
                                                                              evidock) -> None:
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "SECRET-1", "party": "甲", "handlers": [BADGE], "sensitivity": "secret",
                               "opened_at": "2025-01-01T00:00:00Z"}, "Asia/Shanghai")
    ingest_clips(data_dir, tmp_path / "a", {"secret.mp4": t("2025-01-10 00:00:00")})
    ingest_clips(data_dir, tmp_path / "b", {"plain.mp4": t("2025-01-10 00:00:00")}, officer="010777", device="ZFY-2")
    off, inc = target_dir(tmp_path, "off"), target_dir(tmp_path, "inc")
    cfg = config(tmp_path, {"name": "off", "kind": "path", "path": str(off), "offsite": True},
                 {"name": "inc", "kind": "path", "path": str(inc), "offsite": True, "include_secret": True})
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    off_run, inc_run = r.json()["targets"]
    assert (off_run["copied"], off_run["skipped_secret"]) == (1, 1)
    assert (inc_run["copied"], inc_run["skipped_secret"]) == (2, 0)
    with Catalog(data_dir) as c:
        secret_sha = c.conn.execute("SELECT sha256 FROM footage WHERE source_path = 'secret.mp4'").fetchone()[0]
        events = [e for (e,) in c.conn.execute("SELECT subject FROM audit WHERE event = 'backup.secret'")]
    assert secret_sha not in at_target(off) and secret_sha in at_target(inc)
    assert events == ["backup:inc"]


def test_retention_deletions_reach_the_path_target(tmp_path: Path, data_dir: Path, evidock) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {"old.mp4": t("2024-01-10 00:00:00")}, officer="010777")
    ingest_clips(data_dir, tmp_path / "b", {"new.mp4": NOW - timedelta(days=1)}, officer="010777", device="ZFY-2")
    assert evidock("--config", cfg, "backup", "run").code == 0
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE footage SET ingested_at = recorded_at WHERE source_path = 'old.mp4'")
        old_sha = db.execute("SELECT sha256 FROM footage WHERE source_path = 'old.mp4'").fetchone()[0]
    cf = parse_config({})
    with Catalog(data_dir) as c:
        rep = retention.apply(c, build_context(cf, data_dir), cf.retention)
    assert old_sha in at_target(disk)
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.json()["targets"][0]["deleted"] == 1, (rep, r.out)
    assert old_sha not in at_target(disk) and len(at_target(disk)) == 1
    assert [s for s, _ in copies(data_dir)] == list(at_target(disk))
    with Catalog(data_dir) as c:
        assert c.conn.execute("SELECT COUNT(*) FROM audit WHERE event = 'backup.delete'").fetchone()[0] == 1


@pytest.mark.parametrize("point", ["backup-copy-mid:2", "backup-after-put:2"])
def test_kill_9_mid_run_loses_and_double_marks_nothing(tmp_path: Path, data_dir: Path, evidock, point: str) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {f"a{i}.mp4": NOW - timedelta(hours=i + 1) for i in range(3)})
    r = evidock("--config", cfg, "backup", "run", env={"EVIDOCK_CRASH_AT": point})
    assert r.code == -9
    marked = copies(data_dir)
    # Only what was verified before the kill: the first copy, if its result was taken before the
    # second copy (in flight beside it, daemon/backup/overlap.py) reached its crash point.
    assert len(marked) == 1 if point.startswith("backup-after-put") else len(marked) <= 1
    assert {s for s, _ in marked} <= set(at_target(disk))
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    assert r.json()["targets"][0]["copied"] == 3 - len(marked)
    assert len(copies(data_dir)) == 3 == len({s for s, _ in copies(data_dir)})
    assert set(at_target(disk)) == set(object_files(data_dir))
    assert not list(disk.rglob(".*.tmp"))
    assert evidock("--config", cfg, "backup", "verify", "--all").code == 0


def test_a_disk_swapped_for_an_empty_one_gets_every_copy_again(tmp_path: Path, data_dir: Path, evidock) -> None:
    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=3), "a2.mp4": NOW - timedelta(hours=2)})
    assert evidock("--config", cfg, "backup", "run").code == 0
    assert (disk / "markers" / "st7" / "disk2").is_file()
    subprocess.run(["chmod", "-R", "u+w", str(disk)], check=True)
    shutil.rmtree(disk)
    disk.mkdir()  # a new, empty disk mounted where the old one was
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    run = r.json()["targets"][0]
    assert (run["forgotten"], run["copied"]) == (2, 2)
    assert set(at_target(disk)) == set(object_files(data_dir))
    with Catalog(data_dir) as c:
        assert c.conn.execute("SELECT COUNT(*) FROM audit WHERE event = 'backup.target_replaced'").fetchone()[0] == 1
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert (r.json()["targets"][0]["forgotten"], r.json()["targets"][0]["copied"]) == (0, 0)
    # a disk that is not empty but not this station's either (another station's mark)
    (disk / "markers" / "st7" / "disk2").chmod(0o644)
    (disk / "markers" / "st7" / "disk2").write_text("someone-else\n")
    r = evidock("--config", cfg, "backup", "run")
    assert r.code == 0 and "mark" in r.err, r.err


def backup_alerts(evidock, cfg: Path) -> tuple[list[dict], str, int]:
    """The backup alerts ``health --attention --json`` lists, its text form and its exit code."""
    r = evidock("--config", cfg, "health", "--attention", "--json")
    text = evidock("--config", cfg, "health", "--attention")
    assert r.code == text.code, (r.err, text.err)
    return [a for a in r.json()["job_alerts"] if a["job"].startswith("backup")], text.out + text.err, r.code


def test_a_target_lagging_past_max_lag_hours_is_an_alert_until_a_run_catches_up(tmp_path: Path, data_dir: Path,
                                                                                 evidock) -> None:
    disk = tmp_path / "disk2"  # not there: the disk is not mounted
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)}, backup={"max_lag_hours": 2})
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=5), "a2.mp4": NOW - timedelta(hours=4)})
    stored = (NOW - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:  # stored 3 hours ago, the limit is 2
        old = db.execute("SELECT sha256 FROM objects ORDER BY sha256 LIMIT 1").fetchone()[0]
        db.execute("UPDATE objects SET stored_at = ? WHERE sha256 = ?", (stored, old))
    r = evidock("--config", cfg, "jobs", "run", "backup", "--json")  # the scheduler's job, as at 01:30
    assert r.code == 2 and r.json()["result"] == "failed", r.out + r.err
    alerts, text, code = backup_alerts(evidock, cfg)
    assert code == 1
    lag = [a for a in alerts if a["kind"] == "lag"]
    assert [a["job"] for a in lag] == ["backup:disk2"]
    assert "disk2" in lag[0]["message"] and "backup.max_lag_hours = 2" in lag[0]["message"], lag
    assert "backup:disk2" in text and "backup.max_lag_hours = 2" in text, text
    st = evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]
    assert st["lagging"] and st["lag_s"] > 2 * 3600 and st["oldest_not_backed_up"] == stored
    assert {"lag", "run-failed"} <= {a["kind"] for a in st["alerts"]}  # and the job's verify slice failed too
    shown = evidock("--config", cfg, "backup", "status")
    assert "disk2" in shown.out + shown.err

    disk.mkdir()  # mounted again: the next run catches up and the alerts clear
    r = evidock("--config", cfg, "jobs", "run", "backup", "--json")
    assert r.code == 0 and r.json()["counts"]["copied"] == 2, r.out + r.err
    alerts, text, code = backup_alerts(evidock, cfg)
    assert alerts == [] and code == 0 and "backup" not in text, text
    st = evidock("--config", cfg, "backup", "status", "--json").json()["targets"][0]
    assert (st["lagging"], st["lag_s"], st["alerts"]) == (False, None, [])


def test_secret_footage_kept_off_an_offsite_target_is_not_lag(tmp_path: Path, data_dir: Path, evidock) -> None:
    """Article 10 keeps it off that target on purpose: it is not waiting to be backed up there."""
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "SECRET-1", "party": "甲", "handlers": [BADGE], "sensitivity": "secret",
                               "opened_at": "2025-01-01T00:00:00Z"}, "Asia/Shanghai")
    ingest_clips(data_dir, tmp_path / "a", {"secret.mp4": t("2025-01-10 00:00:00")})
    off, home = target_dir(tmp_path, "off"), target_dir(tmp_path, "home")
    cfg = config(tmp_path, {"name": "off", "kind": "path", "path": str(off), "offsite": True},
                 {"name": "home", "kind": "path", "path": str(home)}, backup={"max_lag_hours": 2})
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:
        db.execute("UPDATE objects SET stored_at = ?", ((NOW - timedelta(hours=3)).isoformat(),))
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.err
    assert [(x["target"], x["copied"], x["skipped_secret"]) for x in r.json()["targets"]] == [("off", 0, 1),
                                                                                          ("home", 1, 0)]
    alerts, text, code = backup_alerts(evidock, cfg)
    assert (alerts, code) == ([], 0), text
    st = {x["target"]: x for x in evidock("--config", cfg, "backup", "status", "--json").json()["targets"]}
    assert (st["off"]["lagging"], st["off"]["lag_s"], st["off"]["objects"]) == (False, None, 0)


def test_keep_snapshots_leaves_the_newest_on_a_path_target_each_naming_its_audit_head(tmp_path: Path,
                                                                                      data_dir: Path, evidock) -> None:
    from daemon.backup.pathtarget import PathTarget
    from daemon.backup.run import take_snapshot

    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)}, backup={"keep_snapshots": 2})
    ingest_clips(data_dir, tmp_path / "a", {"a1.mp4": NOW - timedelta(hours=3)})
    keys = []
    for i in range(4):
        if i == 2:  # footage between runs: the later snapshots hold more
            ingest_clips(data_dir, tmp_path / "b", {"b1.mp4": NOW - timedelta(hours=1)})
        r = evidock("--config", cfg, "backup", "run", "--json")
        assert r.code == 0, r.err
        keys.append(r.json()["targets"][0]["snapshot"])
    assert len(set(keys)) == 4 and keys == sorted(keys)  # each run its own snapshot, named by its time
    snaps = disk / "catalog" / "st7"
    assert sorted(p.name for p in snaps.iterdir()) == sorted(
        n for k in keys[-2:] for n in (Path(k).name, Path(k).name + ".json"))  # the newest two, each with its .json
    heads = []
    for key in keys[-2:]:
        meta = json.loads((disk / (key + ".json")).read_text())
        with sqlite3.connect(f"file:{disk / key}?mode=ro", uri=True) as db:
            rows, head = db.execute("SELECT COUNT(*), (SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit").fetchone()
            footage = db.execute("SELECT COUNT(*) FROM footage").fetchone()[0]
        assert (meta["audit_rows"], meta["audit_head"], meta["footage_rows"]) == (rows, head, footage)
        assert meta["station"] == "st7" and meta["evidock_version"]
        heads.append(head)
    assert heads[0] != heads[1]  # the later run's snapshot holds the earlier run's audit entries
    # Two snapshots within one second (a key names its second): the second waits for the next
    # second rather than replace the first at the target.
    t = PathTarget("disk2", disk, station_id="st7")
    with Catalog(data_dir) as c:
        first, second = take_snapshot(c, t, "st7", keep=10), take_snapshot(c, t, "st7", keep=10)
    assert first < second and {first, second} <= set(t.snapshots("st7"))


def test_footage_on_legal_hold_keeps_its_copy_until_the_hold_is_lifted(tmp_path: Path, data_dir: Path,
                                                                      evidock) -> None:
    from support.filing_helpers import footage_ids

    disk = target_dir(tmp_path)
    cfg = config(tmp_path, {"name": "disk2", "kind": "path", "path": str(disk)})
    ingest_clips(data_dir, tmp_path / "a", {"old.mp4": t("2024-01-10 00:00:00")}, officer="010777")
    ingest_clips(data_dir, tmp_path / "b", {"new.mp4": NOW - timedelta(days=1)}, officer="010777", device="ZFY-2")
    assert evidock("--config", cfg, "backup", "run").code == 0
    with sqlite3.connect(data_dir / CATALOG_NAME) as db:  # its retention has run out (unfiled: 184 days)
        db.execute("UPDATE footage SET ingested_at = recorded_at WHERE source_path = 'old.mp4'")
        old_sha = db.execute("SELECT sha256 FROM footage WHERE source_path = 'old.mp4'").fetchone()[0]
    fid = footage_ids(data_dir)["old.mp4"]
    assert [x["sha256"] for x in evidock("--config", cfg, "retention", "plan", "--json").json()["delete"]] == [old_sha]
    r = evidock("--config", cfg, "footage", "hold", str(fid), "--reason", "complaint 2026-11 under review", "--json")
    assert r.code == 0 and r.json()[0]["state"] == "held", r.err

    r = evidock("--config", cfg, "retention", "apply", "--json")
    assert r.json()["deleted"] == [], r.out
    assert old_sha in object_files(data_dir)
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0 and r.json()["targets"][0]["deleted"] == 0, r.out + r.err
    assert old_sha in at_target(disk) and sha256_file(at_target(disk)[old_sha]) == old_sha
    assert (old_sha, "disk2") in copies(data_dir)

    r = evidock("--config", cfg, "footage", "hold", str(fid), "--release", "--reason", "review closed", "--json")
    assert r.code == 0 and r.json()[0]["state"] == "released", r.err
    r = evidock("--config", cfg, "retention", "apply", "--json")
    assert [d["sha256"] for d in r.json()["deleted"]] == [old_sha], r.out
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0 and r.json()["targets"][0]["deleted"] == 1, r.out + r.err
    assert old_sha not in at_target(disk) and len(at_target(disk)) == 1
    assert (old_sha, "disk2") not in copies(data_dir)


def test_a_run_stopped_by_a_full_data_disk_ends_its_rows_alerts_and_raises(tmp_path: Path, small_store: Path) -> None:
    """Not a target's error: the data disk fills up while the catalog snapshot is written to its
    temporary file (a real ENOSPC on a size-limited tmpfs under the data dir). Each target's row
    still ends "failed" with the reason, its run-failed alert names the target and what to do, the
    other target runs all the same, so does the lag check, and the error is raised: its traceback
    shown, exit code 2. With room again the next run succeeds and clears the alerts."""
    from daemon.ingest.offload import ingest

    data = small_store / "data"
    nas, other = target_dir(tmp_path, "nas"), target_dir(tmp_path, "other")
    cfg = config(tmp_path, {"name": "nas", "kind": "path", "path": str(nas)},
                 {"name": "other", "kind": "path", "path": str(other)})
    cfg.write_text(cfg.read_text() + "\n[store]\nreserve_bytes = 0\n")  # 64 MiB by default: more than this disk

    def run(*args: str | Path) -> Run:
        return run_evidock("--config", cfg, "--data-dir", data, *args)

    def open_alerts() -> dict[tuple[str, str], str]:
        with Catalog(data) as c:
            return {(j, k): m for j, k, m in c.conn.execute(
                "SELECT job, kind, message FROM job_alerts WHERE cleared_at IS NULL")}

    src = tmp_path / "rec"
    src.mkdir()
    for i in range(2):
        (src / f"clip{i}.mp4").write_bytes(os.urandom(200_000))
    assert ingest(build_context(parse_config({"store": {"reserve_bytes": 0}}), data), src, device="ZFY-1",
                  officer=BADGE, threaded=False).status == "completed"
    with sqlite3.connect(data / CATALOG_NAME) as db:  # stored 2 days ago: a target without them lags
        db.execute("UPDATE objects SET stored_at = ?", ((NOW - timedelta(days=2)).isoformat(),))
    first = run("backup", "run", "--target", "other")
    assert first.code == 0, first.err
    assert ("backup:nas", "lag") in open_alerts()  # nas has none of them yet
    # Keep the WAL alive and rewound (as test_tamper does for the audit anchor), grown by a page
    # pad first, so that the next run's commits reuse pages the filesystem already gave it: the
    # catalog can commit, a new file cannot.
    keep = sqlite3.connect(data / CATALOG_NAME)
    keep.execute("CREATE TABLE pad (x BLOB)")
    keep.execute("INSERT INTO pad VALUES (zeroblob(500000))")
    keep.commit()
    keep.execute("DROP TABLE pad")
    keep.commit()
    keep.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    filler = small_store / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # ENOSPC: every block is taken
    finally:
        os.close(fd)

    r = run("backup", "run")
    assert r.code == 2, r.out + r.err
    assert "Traceback" in r.err and "internal error" in r.err  # a bug or an OS condition stays in sight
    with Catalog(data) as c:
        rows = c.conn.execute("SELECT target, result, error, ended_at FROM backup_runs ORDER BY id").fetchall()
        audited = [json.loads(d) for (d,) in c.conn.execute("SELECT details FROM audit WHERE event = 'backup.run'"
                                                              " ORDER BY id")]
        marked = c.conn.execute("SELECT COUNT(*) FROM backup_copies WHERE target = 'nas'").fetchone()[0]
    assert [(tg, res) for tg, res, _, _ in rows] == [("other", "ok"), ("nas", "failed"), ("other", "failed")], rows
    for (tg, _, error, ended), entry in zip(rows[1:], audited[1:], strict=True):
        assert ended and "full" in error and f"evidock backup run --target {tg}" in error
        assert (entry["result"], entry["error"]) == ("failed", error)
    assert marked == 2  # what nas got before the snapshot failed is verified there and stays marked
    alerts = open_alerts()
    assert "full" in alerts[("backup:nas", "run-failed")] and "full" in alerts[("backup:other", "run-failed")]
    assert ("backup:nas", "lag") not in alerts  # the lag check ran after the runs: nas has them now
    assert list(data.glob("evidock-snap-*")) == []  # the temporary snapshot went

    filler.unlink()
    keep.close()
    r = run("backup", "run", "--json")
    assert r.code == 0 and all(tg["snapshot"] for tg in r.json()["targets"]), r.out + r.err
    assert open_alerts() == {}
