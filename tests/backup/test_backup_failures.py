"""S3 failures at the level of ``evidock backup run``, against a real SeaweedFS: the server killed
mid-run, wrong credentials, a bucket without Object Lock, and a kill -9 of the run itself mid-upload.

Each time the run fails with the error exit code and a message naming the target and the reason;
nothing is marked backed up that the bucket does not hold (every ``backup_copies`` row's version
is there with the object's SHA-256); a failed run is an alert in ``health --attention``; and the
next run catches up, copies everything once and clears the alert.

The kills happen at set points of the upload, not at a time: ``support.s3tap`` sits between the
run and the server and acts at the Nth object PUT; the run's own crash point
(``backup-after-put``) kills it between a verified copy and its row.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import finish, spawn_evidock
from support.filing_helpers import BADGE
from support.s3tap import S3Tap
from support.seaweed import REGION, Seaweed, running, seaweed  # noqa: F401 (fixture)

from daemon.backup.s3target import b64
from daemon.backup.target import object_key
from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context

NOW = datetime.now(UTC).replace(microsecond=0)
SIZE = 256 * 1024  # big enough that a kill 64 KiB into a PUT's body is mid-upload


def config(tmp_path: Path, endpoint: str, bucket: str, secret_file: Path, name: str = "evidock.toml") -> Path:
    p = tmp_path / name
    p.write_text("[station]\nid = 'st7'\n\n[[backup.targets]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in {
        "name": "bureau", "kind": "s3", "endpoint": endpoint, "bucket": bucket, "region": REGION,
        "access_key_id": "evidocktestkey", "secret_file": str(secret_file)}.items()))
    return p


def ingest_objects(tmp_path: Path, data_dir: Path, n: int) -> list[str]:
    """``n`` recordings of random bytes through the real ingest; their SHA-256s."""
    from daemon.ingest.offload import ingest

    src = tmp_path / "rec"
    src.mkdir()
    shas = []
    for i in range(n):
        data = os.urandom(SIZE)
        p = src / f"clip{i}.mp4"
        p.write_bytes(data)
        ts = (NOW - timedelta(hours=n - i)).timestamp()
        os.utime(p, (ts, ts))
        shas.append(hashlib.sha256(data).hexdigest())
    res = ingest(build_context(Config(), data_dir), src, device="ZFY-1", officer=BADGE, threaded=False)
    assert res.status == "completed", res.message
    return shas


def copies(data_dir: Path) -> dict[str, str]:
    """sha256 -> version id, as the catalog marks them at the target."""
    with Catalog(data_dir) as c:
        rows = c.conn.execute("SELECT sha256, version_id FROM backup_copies WHERE target = 'bureau'").fetchall()
    assert len(rows) == len({s for s, _ in rows})  # one row per object: never double-marked
    return dict(rows)


def assert_marked_copies_are_there(data_dir: Path, server: Seaweed, bucket: str) -> dict[str, str]:
    """Every marked copy is at the target: its version, with the object's SHA-256, read back whole."""
    s3 = server.client()
    marked = copies(data_dir)
    for sha, version in marked.items():
        assert version, sha
        h = s3.head_object(Bucket=bucket, Key=object_key(sha), VersionId=version, ChecksumMode="ENABLED")
        assert h["ChecksumSHA256"] == b64(sha) and h["ContentLength"] == SIZE
        body = s3.get_object(Bucket=bucket, Key=object_key(sha), VersionId=version)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha
    return marked


def versions(server: Seaweed, bucket: str, sha: str) -> list[str]:
    listed = server.client().list_object_versions(Bucket=bucket, Prefix=object_key(sha))
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == object_key(sha)]


def backup_alerts(evidock, cfg: Path) -> tuple[list[dict], int]:
    r = evidock("--config", cfg, "health", "--attention", "--json")
    return [a for a in r.json()["job_alerts"] if a["job"] == "backup:bureau"], r.code


def catches_up(evidock, cfg: Path, data_dir: Path, server: Seaweed, bucket: str, shas: list[str],
               before: dict[str, str]) -> None:
    """The next run copies what was not marked, marks each object once and clears the alert."""
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 0, r.out + r.err
    assert r.json()["targets"][0]["copied"] == len(shas) - len(before)
    marked = assert_marked_copies_are_there(data_dir, server, bucket)
    assert set(marked) == set(shas)
    assert {s: v for s, v in marked.items() if s in before} == before  # what was marked stays as it was
    assert backup_alerts(evidock, cfg) == ([], 0)
    assert evidock("--config", cfg, "backup", "verify", "--all").code == 0


def test_the_server_killed_mid_run_fails_it_and_the_next_run_catches_up(tmp_path: Path, data_dir: Path,
                                                                         evidock) -> None:
    shas = ingest_objects(tmp_path, data_dir, 4)
    with running(tmp_path / "weed") as server:
        bucket = server.bucket(object_lock=True)
        # killed as the third object's PUT starts: the first is verified and marked by then (two
        # copies are in flight at once, daemon/backup/overlap.py), the second may be, the rest not
        with S3Tap(server.ports["s3.port"], bucket, nth=3, action=server.kill) as tap:
            cfg = config(tmp_path, tap.endpoint, bucket, server.secret_file())
            r = evidock("--config", cfg, "backup", "run", "--json")
            assert tap.tripped.is_set()
            assert r.code == 2, r.out + r.err
            run = r.json()["targets"][0]
            assert run["result"] == "failed"
            assert "bureau" in run["error"] and "cannot be reached" in run["error"], run["error"]
            alerts, code = backup_alerts(evidock, cfg)
            assert [a["kind"] for a in alerts] == ["run-failed"] and code == 1
            assert "bureau" in alerts[0]["message"]
            server.start()  # back, same data and ports
            before = assert_marked_copies_are_there(data_dir, server, bucket)
            assert 1 <= len(before) <= 2 and run["copied"] == len(before)
            catches_up(evidock, cfg, data_dir, server, bucket, shas, before)


def test_wrong_credentials_fail_the_run_and_the_right_ones_catch_up(seaweed: Seaweed, tmp_path: Path,  # noqa: F811
                                                                   data_dir: Path, evidock) -> None:
    shas = ingest_objects(tmp_path, data_dir, 3)
    bucket = seaweed.bucket(object_lock=True)
    wrong = config(tmp_path, seaweed.endpoint, bucket, seaweed.secret_file("not-the-secret-at-all"), "wrong.toml")
    r = evidock("--config", wrong, "backup", "run", "--json")
    assert r.code == 2, r.out + r.err
    run = r.json()["targets"][0]
    assert run["result"] == "failed" and "bureau" in run["error"] and "refused the credentials" in run["error"]
    assert "not-the-secret-at-all" not in r.out + r.err
    assert copies(data_dir) == {}
    assert seaweed.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    alerts, code = backup_alerts(evidock, wrong)
    assert [a["kind"] for a in alerts] == ["run-failed"] and "credentials" in alerts[0]["message"] and code == 1
    right = config(tmp_path, seaweed.endpoint, bucket, seaweed.secret_file())
    catches_up(evidock, right, data_dir, seaweed, bucket, shas, {})


def test_a_bucket_without_object_lock_fails_the_run_and_a_locked_one_catches_up(seaweed: Seaweed,  # noqa: F811
                                                                               tmp_path: Path, data_dir: Path,
                                                                               evidock) -> None:
    shas = ingest_objects(tmp_path, data_dir, 3)
    plain = seaweed.bucket(object_lock=False)
    cfg = config(tmp_path, seaweed.endpoint, plain, seaweed.secret_file(), "plain.toml")
    r = evidock("--config", cfg, "backup", "run", "--json")
    assert r.code == 2, r.out + r.err
    run = r.json()["targets"][0]
    assert run["result"] == "failed" and "bureau" in run["error"] and plain in run["error"]
    assert "Object Lock" in run["error"] and "require_object_lock" in run["error"]
    assert copies(data_dir) == {}
    assert seaweed.client().list_objects_v2(Bucket=plain)["KeyCount"] == 0  # not even the station's mark
    alerts, code = backup_alerts(evidock, cfg)
    assert [a["kind"] for a in alerts] == ["run-failed"] and "Object Lock" in alerts[0]["message"] and code == 1
    locked = seaweed.bucket(object_lock=True)
    right = config(tmp_path, seaweed.endpoint, locked, seaweed.secret_file())
    catches_up(evidock, right, data_dir, seaweed, locked, shas, {})
    s3 = seaweed.client()
    for sha, version in copies(data_dir).items():
        assert s3.get_object_retention(Bucket=locked, Key=object_key(sha), VersionId=version)["Retention"]["Mode"] \
            == "COMPLIANCE"


@pytest.mark.parametrize("point", ["mid-body", "backup-after-put:2"])
def test_kill_9_mid_s3_upload_loses_and_double_marks_nothing(tmp_path: Path, data_dir: Path, point: str,
                                                            evidock) -> None:
    shas = ingest_objects(tmp_path, data_dir, 4)
    with running(tmp_path / "weed") as server:
        bucket = server.bucket(object_lock=True)
        procs: list[subprocess.Popen] = []
        # mid-body: kill -9 of the run 64 KiB into the second object's PUT (the server has its
        # headers and part of its bytes); backup-after-put:2: the run kills itself once the
        # second copy was verified at the bucket, before its row is written
        with S3Tap(server.ports["s3.port"], bucket, nth=2, after=64 * 1024,
                   action=lambda: os.kill(procs[0].pid, signal.SIGKILL)) as tap:
            cfg = config(tmp_path, tap.endpoint if point == "mid-body" else server.endpoint, bucket,
                         server.secret_file())
            procs.append(spawn_evidock("--config", cfg, "backup", "run", data_dir=data_dir,
                                       env={"EVIDOCK_CRASH_AT": point} if point != "mid-body" else None))
            r = finish(procs[0])
            assert r.code == -9, r.out + r.err
            assert tap.tripped.is_set() == (point == "mid-body")
        cfg = config(tmp_path, server.endpoint, bucket, server.secret_file())
        before = assert_marked_copies_are_there(data_dir, server, bucket)  # no row the bucket lacks
        unmarked = {s for s in shas if versions(server, bucket, s)} - set(before)  # stored, not yet marked
        assert all(len(versions(server, bucket, s)) == 1 for s in unmarked)
        if point == "mid-body":
            assert len(before) <= 2 and tap.cut in shas and tap.cut not in before
            assert versions(server, bucket, tap.cut) == []  # half a PUT stores nothing
        else:
            # the first marked; the second verified there and not marked (the third may be, beside it)
            assert len(before) == 1 and 1 <= len(unmarked) <= 2
        catches_up(evidock, cfg, data_dir, server, bucket, shas, before)
        marked = copies(data_dir)
        for sha in shas:
            # one version per object: the copy the killed run left unmarked is taken up, not written again
            assert versions(server, bucket, sha) == [marked[sha]], sha


@pytest.mark.parametrize("command", ["run", "verify"])
def test_ctrl_c_mid_run_or_verify_ends_its_row_as_failed(tmp_path: Path, data_dir: Path, command: str,
                                                         evidock) -> None:
    """A person's Ctrl-C (SIGINT: KeyboardInterrupt, not a target's error) while the second
    object goes up (run) or is read back (verify): the run's row still ends failed, naming the
    interrupt, with its alert; nothing is marked that the bucket lacks; the command exits 2."""
    shas = ingest_objects(tmp_path, data_dir, 3)
    with running(tmp_path / "weed") as server:
        bucket = server.bucket(object_lock=True)
        direct = config(tmp_path, server.endpoint, bucket, server.secret_file())
        if command == "verify":
            assert evidock("--config", direct, "backup", "run").code == 0
        procs: list[subprocess.Popen] = []
        with S3Tap(server.ports["s3.port"], bucket, nth=2, after=64 if command == "verify" else 64 * 1024,
                   method="PUT" if command == "run" else "GET",
                   action=lambda: os.kill(procs[0].pid, signal.SIGINT)) as tap:
            cfg = config(tmp_path, tap.endpoint, bucket, server.secret_file(), "tapped.toml")
            procs.append(spawn_evidock("--config", cfg, "backup", command, data_dir=data_dir))
            r = finish(procs[0])
            assert tap.tripped.is_set()
        assert r.code == 2 and "aborted" in r.err, r.out + r.err
        with Catalog(data_dir) as c:
            result, error = c.conn.execute("SELECT result, error FROM backup_runs WHERE kind = ? ORDER BY id DESC",
                                           (command,)).fetchone()
        assert result == "failed" and "KeyboardInterrupt" in error and "bureau" in error, error
        assert f"evidock backup {command} --target bureau" in error
        alerts, _ = backup_alerts(evidock, direct)
        assert [a["kind"] for a in alerts] == [f"{command}-failed"]
        before = assert_marked_copies_are_there(data_dir, server, bucket)
        if command == "verify":
            assert set(before) == set(shas)  # a verify cut short drops no copy
            assert evidock("--config", direct, "backup", "verify", "--all").code == 0
            assert backup_alerts(evidock, direct)[0] == []
        else:
            catches_up(evidock, direct, data_dir, server, bucket, shas, before)
