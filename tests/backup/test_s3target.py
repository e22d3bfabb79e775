"""The S3 target against a real SeaweedFS (``weed mini`` on loopback, tests/support/seaweed.py).

Each test has a bucket of its own on the module's server; the one that kills its server mid-backup
runs a server of its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from support.seaweed import REGION, SECRET_KEY, Seaweed, free_ports, running, seaweed  # noqa: F401 (fixture)

from daemon.backup.s3target import S3Target, b64
from daemon.backup.target import Copy, object_key, snapshot_key
from daemon.errors import BackupError

STATION = "station-07"


def entry(server: Seaweed, bucket: str, **kw: object) -> SimpleNamespace:
    fields = {"name": "offsite-s3", "endpoint": server.endpoint, "bucket": bucket, "region": REGION,
              "access_key_id": "evidocktestkey", "secret_file": str(server.secret_file()), "offsite": True,
              "include_secret": False, "require_object_lock": True}
    fields.update(kw)
    return SimpleNamespace(**fields)


def target(server: Seaweed, bucket: str | None = None, **kw: object) -> S3Target:
    return S3Target(entry(server, bucket or server.bucket(object_lock=True), **kw), STATION)


def blob(dir: Path, name: str, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    p = dir / name
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


def in_a_year() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)


def test_put_has_verify_fetch_bit_for_bit(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed)
    t.check()
    src, sha = blob(tmp_path, "clip.mp4", 300_000)
    assert not t.has(sha)
    until = in_a_year()
    copy = t.put(sha, src, src.stat().st_size, until)
    assert copy.sha256 == sha and copy.size == 300_000 and copy.version_id
    assert t.has(sha)
    assert t.verify(copy)
    out = tmp_path / "back.mp4"
    t.fetch(copy, out)
    assert out.read_bytes() == src.read_bytes()
    # written under COMPLIANCE retention, with the station and the hash beside it
    h = seaweed.client().head_object(Bucket=t.bucket, Key=object_key(sha), VersionId=copy.version_id,
                                     ChecksumMode="ENABLED")
    assert h["ObjectLockMode"] == "COMPLIANCE" and h["ChecksumSHA256"] == b64(sha)
    assert h["ObjectLockRetainUntilDate"].astimezone(UTC) == until
    assert h["Metadata"] == {"evidock-station": STATION, "sha256": sha}


def test_a_wrong_checksum_is_refused_and_nothing_reported(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed)
    src, _ = blob(tmp_path, "clip.mp4", 50_000)
    claimed = hashlib.sha256(b"not these bytes").hexdigest()  # a store file that no longer matches its name
    with pytest.raises(BackupError) as e:
        t.put(claimed, src, src.stat().st_size, in_a_year())
    assert "offsite-s3" in str(e.value) and "BadDigest" in str(e.value)
    assert not t.has(claimed)
    assert "Contents" not in seaweed.client().list_objects_v2(Bucket=t.bucket)


def test_a_locked_version_cannot_be_deleted(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed)
    src, sha = blob(tmp_path, "clip.mp4", 20_000)
    copy = t.put(sha, src, src.stat().st_size, in_a_year())
    assert t.delete(copy) is False
    assert t.has(sha) and t.verify(copy)


def test_retention_is_extended_never_shortened(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed)
    src, sha = blob(tmp_path, "clip.mp4", 20_000)
    first = in_a_year()
    copy = t.put(sha, src, src.stat().st_size, first)

    def until() -> datetime:
        r = seaweed.client().get_object_retention(Bucket=t.bucket, Key=object_key(sha), VersionId=copy.version_id)
        return r["Retention"]["RetainUntilDate"].astimezone(UTC)

    t.extend_retention(copy, first - timedelta(days=100))  # a rule that would keep it less: no change
    assert until() == first
    later = first + timedelta(days=365)
    t.extend_retention(copy, later)
    assert until() == later
    t.extend_retention(copy, first)
    assert until() == later


def test_the_server_stopped_mid_backup_then_the_next_put_completes(tmp_path: Path) -> None:
    with running(tmp_path / "weed") as server:
        t = target(server)
        a, sha_a = blob(tmp_path, "a.mp4", 40_000)
        b, sha_b = blob(tmp_path, "b.mp4", 40_000)
        copy_a = t.put(sha_a, a, a.stat().st_size, in_a_year())
        server.kill()  # gone between two puts, as a crashed or unplugged server
        with pytest.raises(BackupError) as e:
            t.put(sha_b, b, b.stat().st_size, in_a_year())
        assert "offsite-s3" in str(e.value) and "cannot be reached" in str(e.value)
        server.start()  # the same directory and ports
        assert not t.has(sha_b)
        copy_b = t.put(sha_b, b, b.stat().st_size, in_a_year())
        assert t.verify(copy_a) and t.verify(copy_b)


def test_a_server_nobody_runs_fails_naming_the_target(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    t = S3Target({"name": "nas-s3", "endpoint": f"http://127.0.0.1:{port}", "bucket": "b", "region": REGION,
                  "access_key_id": "k", "secret_file": None}, STATION)
    secret = tmp_path / "secret"
    secret.write_text("s\n")
    t.secret_file = str(secret)
    with pytest.raises(BackupError) as e:
        t.check()
    assert "nas-s3" in str(e.value) and f"127.0.0.1:{port}" in str(e.value)


def test_wrong_credentials_are_a_clear_error_without_the_secret(seaweed: Seaweed, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    bucket = seaweed.bucket()
    wrong = tmp_path / "wrong"
    wrong.write_text("a-wrong-secret-4711\n")
    caplog.set_level(logging.DEBUG)
    for kw in ({"secret_file": str(wrong)}, {"access_key_id": "nosuchkey"}):
        t = target(seaweed, bucket, **kw)
        with pytest.raises(BackupError) as e:
            t.check()
        assert "offsite-s3" in str(e.value) and "refused the credentials" in str(e.value)
    assert "a-wrong-secret-4711" not in caplog.text and SECRET_KEY not in caplog.text


def test_a_missing_secret_file_is_named(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed, secret_file=str(tmp_path / "nope"))
    with pytest.raises(BackupError) as e:
        t.check()
    assert str(tmp_path / "nope") in str(e.value)


def test_a_bucket_without_object_lock_is_refused_unless_allowed(seaweed: Seaweed, tmp_path: Path) -> None:
    plain = seaweed.bucket(object_lock=False)
    with pytest.raises(BackupError) as e:
        target(seaweed, plain).check()
    assert "Object Lock" in str(e.value) and "require_object_lock" in str(e.value)
    t = target(seaweed, plain, require_object_lock=False)
    t.check()
    src, sha = blob(tmp_path, "clip.mp4", 10_000)
    copy = t.put(sha, src, src.stat().st_size, in_a_year())  # stored and verified, without a lock
    assert t.verify(copy)
    t.extend_retention(copy, in_a_year())  # nothing to extend there


def test_a_missing_bucket_is_named(seaweed: Seaweed) -> None:
    with pytest.raises(BackupError) as e:
        target(seaweed, "evidock-no-such-bucket").check()
    assert "evidock-no-such-bucket" in str(e.value) and "does not exist" in str(e.value)


def test_an_object_over_the_single_put_limit_goes_in_parts_and_is_read_back(seaweed: Seaweed,
                                                                             tmp_path: Path) -> None:
    t = target(seaweed)
    t.multipart_threshold = 6 * 1024**2  # as 5 GiB would be, with a test-sized object
    t.part_size = 5 * 1024**2
    src, sha = blob(tmp_path, "long.mp4", 11 * 1024**2 + 123)
    copy = t.put(sha, src, src.stat().st_size, in_a_year())
    assert copy.version_id and t.has(sha) and t.verify(copy)
    out = tmp_path / "back.mp4"
    t.fetch(copy, out)
    assert out.read_bytes() == src.read_bytes()
    assert t.delete(copy) is False  # locked like any other


def test_verify_of_a_version_that_is_not_there_is_false(seaweed: Seaweed) -> None:
    t = target(seaweed)
    sha = hashlib.sha256(b"x").hexdigest()
    assert t.verify(Copy(sha, 1, "0000000000000000000000000000dead", "2026-01-01T00:00:00+00:00")) is False


def test_snapshots_put_list_fetch_delete(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed)
    db = tmp_path / "snap.sqlite"
    db.write_bytes(os.urandom(70_000))
    keys = [snapshot_key(STATION, datetime(2026, 12, d, 1, 30, tzinfo=UTC)) for d in (2, 1)]
    meta = {"audit_head": "ab" * 32, "audit_rows": 42, "evidock": "0.1.0"}
    for k in keys:
        t.put_snapshot(k, db, meta)
    t.put_snapshot(snapshot_key("another-station", datetime(2026, 12, 1, tzinfo=UTC)), db, meta)
    assert t.snapshots(STATION) == sorted(keys) == [f"catalog/{STATION}/20261201T013000Z.sqlite",
                                                    f"catalog/{STATION}/20261202T013000Z.sqlite"]
    out = tmp_path / "back.sqlite"
    assert t.fetch_snapshot(keys[0], out) == meta
    assert out.read_bytes() == db.read_bytes()
    h = seaweed.client().head_object(Bucket=t.bucket, Key=keys[0] + ".json")
    assert h["ObjectLockMode"] == "COMPLIANCE"
    assert t.delete_snapshot(keys[0]) is False  # locked for snapshot_retention_days
    assert t.snapshots(STATION) == sorted(keys)
    # in a bucket without a lock a snapshot can go
    u = target(seaweed, seaweed.bucket(object_lock=False), require_object_lock=False)
    u.put_snapshot(keys[0], db, meta)
    assert u.delete_snapshot(keys[0]) is True
    assert u.snapshots(STATION) == []


def test_the_filer_port_bypasses_the_lock_and_verify_notices(seaweed: Seaweed, tmp_path: Path) -> None:
    """What the README warns of: SeaweedFS locks in its S3 layer only; its filer deletes anything."""
    t = target(seaweed)
    src, sha = blob(tmp_path, "clip.mp4", 30_000)
    copy = t.put(sha, src, src.stat().st_size, in_a_year())
    assert t.delete(copy) is False  # through S3: refused
    url = f"http://127.0.0.1:{seaweed.ports['filer.port']}/buckets/{t.bucket}/{object_key(sha)}.versions?recursive=true"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10) as r:
        assert r.status in (200, 202, 204)
    assert not t.has(sha)
    assert t.verify(copy) is False


def test_a_head_reporting_another_checksum_is_not_a_copy(tmp_path: Path) -> None:
    # A mock, as the one failure a real server cannot be made to show: it accepted the PUT with our
    # checksum and then reports another one (a server bug, a proxy in between). botocore's Stubber
    # answers the three calls (is it there already? no; the PUT; its HEAD); nothing is sent.
    from botocore.stub import Stubber

    secret = tmp_path / "secret"
    secret.write_text("s\n")
    t = S3Target({"name": "proxied-s3", "endpoint": "http://127.0.0.1:9", "bucket": "b", "region": REGION,
                  "access_key_id": "k", "secret_file": str(secret)}, STATION)
    t._locked = True  # as check() found it
    src, sha = blob(tmp_path, "clip.mp4", 1000)
    other = hashlib.sha256(b"other").hexdigest()
    with Stubber(t.client()) as stub:
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_response("put_object", {"VersionId": "v1"})
        stub.add_response("head_object", {"VersionId": "v1", "ContentLength": 1000, "ChecksumSHA256": b64(other)})
        with pytest.raises(BackupError) as e:
            t.put(sha, src, 1000, None)
    assert "proxied-s3" in str(e.value) and "not counted as a copy" in str(e.value)


def test_without_a_retention_date_a_copy_is_unlocked_until_one_is_set(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed)
    a, sha_a = blob(tmp_path, "a.mp4", 10_000)
    b, sha_b = blob(tmp_path, "b.mp4", 10_000)
    copy_a = t.put(sha_a, a, a.stat().st_size, None)  # retention gives no date (yet)
    copy_b = t.put(sha_b, b, b.stat().st_size, datetime.now(UTC) - timedelta(days=1))  # its date has passed
    for copy in (copy_a, copy_b):
        h = seaweed.client().head_object(Bucket=t.bucket, Key=object_key(copy.sha256), VersionId=copy.version_id)
        assert "ObjectLockMode" not in h
    t.extend_retention(copy_a, in_a_year())  # a rule now keeps it
    assert t.delete(copy_a) is False and t.verify(copy_a)
    assert t.delete(copy_b) is True  # retention has let it go: the next run deletes it
    assert not t.has(sha_b)


def test_the_server_killed_during_a_large_put_then_the_next_put_completes(tmp_path: Path) -> None:
    with running(tmp_path / "weed") as server:
        t = target(server)
        t.multipart_threshold, t.part_size = 6 * 1024**2, 5 * 1024**2
        src, sha = blob(tmp_path, "long.mp4", 11 * 1024**2)
        parts: list[int] = []

        def kill_before_the_second_part(params: dict, **_: object) -> None:
            parts.append(params["PartNumber"])
            if params["PartNumber"] == 2:
                server.kill()  # at a set point of the upload (botocore's own event hook), not by timing

        t.client().meta.events.register("provide-client-params.s3.UploadPart", kill_before_the_second_part)
        with pytest.raises(BackupError) as e:
            t.put(sha, src, src.stat().st_size, in_a_year())
        assert "offsite-s3" in str(e.value) and "cannot be reached" in str(e.value) and 2 in parts
        t.client().meta.events.unregister("provide-client-params.s3.UploadPart", kill_before_the_second_part)
        server.start()
        assert not t.has(sha)  # nothing half-stored counts
        copy = t.put(sha, src, src.stat().st_size, in_a_year())
        assert t.has(sha) and t.verify(copy)


def test_an_object_already_in_the_bucket_is_taken_up_with_its_lock_extended(seaweed: Seaweed, tmp_path: Path) -> None:
    # What a run killed between its PUT and its catalog row leaves: the version is there, unmarked.
    # The next put takes it up (no second locked version of the same bytes), its lock made longer.
    t = target(seaweed)
    src, sha = blob(tmp_path, "clip.mp4", 30_000)
    first = t.put(sha, src, src.stat().st_size, in_a_year())
    later = in_a_year() + timedelta(days=30)
    again = t.put(sha, src, src.stat().st_size, later)
    assert again.version_id == first.version_id
    s3 = seaweed.client()
    listed = s3.list_object_versions(Bucket=t.bucket, Prefix=object_key(sha))
    assert [v["VersionId"] for v in listed["Versions"]] == [first.version_id]
    ret = s3.get_object_retention(Bucket=t.bucket, Key=object_key(sha), VersionId=first.version_id)["Retention"]
    assert ret["RetainUntilDate"].astimezone(UTC) == later
    # other bytes under an object's name (written past evidock) are not taken up: a new version is
    other, other_sha = blob(tmp_path, "other.mp4", 30_000)
    wrong = s3.put_object(Bucket=t.bucket, Key=object_key(other_sha), Body=os.urandom(30_000),
                          Metadata={"evidock-station": STATION, "sha256": other_sha})["VersionId"]
    copy = t.put(other_sha, other, 30_000, in_a_year())
    assert copy.version_id != wrong and t.verify(copy)
    # another station's copy of the same bytes (one bucket for the bureau) stays its own
    theirs = S3Target(entry(seaweed, t.bucket), "station-08")
    assert theirs.put(sha, src, 30_000, in_a_year()).version_id != first.version_id


def test_a_version_on_legal_hold_cannot_be_deleted_past_its_lock_date(seaweed: Seaweed, tmp_path: Path) -> None:
    """The server's part of evidock's legal hold: SeaweedFS (4.48) honours S3 Object Legal Hold.
    ON, a version is refused deletion (AccessDenied) after its COMPLIANCE date has passed, and
    without any retention at all; OFF, it can go. Written with the hold at once, it has it."""
    t = target(seaweed)
    src, sha = blob(tmp_path, "clip.mp4", 20_000)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    copy = t.put(sha, src, src.stat().st_size, expires)
    assert copy.legal_hold is False
    assert t.set_legal_hold(copy, True) is True
    s3 = seaweed.client()
    ref = {"Bucket": t.bucket, "Key": object_key(sha), "VersionId": copy.version_id}
    assert s3.get_object_legal_hold(**ref)["LegalHold"]["Status"] == "ON"
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.0)
    assert s3.get_object_retention(**ref)["Retention"]["RetainUntilDate"] < datetime.now(UTC)  # the lock is over
    with pytest.raises(ClientError) as e:
        s3.delete_object(**ref)  # anyone with the bucket's credentials: refused while the hold is ON
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert t.delete(copy) is False and t.verify(copy)
    assert t.set_legal_hold(copy, False) is True
    assert s3.get_object_legal_hold(**ref)["LegalHold"]["Status"] == "OFF"
    assert t.delete(copy) is True and not t.has(sha)

    # footage already on hold when copied: the PUT carries the hold, no retention date needed
    other, other_sha = blob(tmp_path, "held.mp4", 20_000)
    held = t.put(other_sha, other, other.stat().st_size, None, legal_hold=True)
    assert held.legal_hold is True
    h = s3.head_object(Bucket=t.bucket, Key=object_key(other_sha), VersionId=held.version_id)
    assert h["ObjectLockLegalHoldStatus"] == "ON" and "ObjectLockMode" not in h
    assert t.delete(held) is False and t.verify(held)
    # taken up (a run killed before its row): the version already there gets the hold set
    again = t.put(other_sha, other, other.stat().st_size, None, legal_hold=True)
    assert (again.version_id, again.legal_hold) == (held.version_id, True)


def test_a_bucket_without_object_lock_has_no_legal_hold(seaweed: Seaweed, tmp_path: Path) -> None:
    t = target(seaweed, seaweed.bucket(object_lock=False), require_object_lock=False)
    src, sha = blob(tmp_path, "clip.mp4", 10_000)
    copy = t.put(sha, src, src.stat().st_size, None, legal_hold=True)
    assert copy.legal_hold is False and t.verify(copy)  # stored; no hold claimed that the bucket cannot keep
    assert t.set_legal_hold(copy, True) is False
