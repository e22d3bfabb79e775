"""Two stations sharing one bucket (issue 17): per-station references, legal holds as references,
the bucket's gc, and the audit chain in segments — against a real SeaweedFS (``weed mini``).

Each station is a data dir of its own with a config naming the same bucket; station st-a is
``store.gc_station``. The object lock's expiry is made to fall a few seconds from now (unfiled
footage is kept 184 days from its recording: the footage's times are moved back), as
tests/backup/test_backup_s3.py does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_evidock
from support.seaweed import ACCESS_KEY, REGION, Seaweed, seaweed  # noqa: F401 (fixture)

from daemon.backup.target import object_key
from daemon.cases import retention
from daemon.catalog.db import Catalog
from daemon.config import Config, parse_config
from daemon.context import build_context
from daemon.errors import StoreError
from daemon.ingest.offload import ingest
from daemon.store.refs import gc, hold_key, ref_key
from daemon.store.segments import segment_key
from daemon.store.uploads import run_queue


def config(server: Seaweed, bucket: str, station: str) -> Config:
    return parse_config({
        "store": {"reserve_bytes": 0, "backend": "s3", "gc_station": "st-a",
                  "s3": {"endpoint": server.endpoint, "bucket": bucket, "region": REGION, "access_key_id": ACCESS_KEY,
                         "secret_file": str(server.secret_file())}},
        "station": {"id": station}})


def toml(cfg: Config, path: Path) -> Path:
    s3 = cfg.store.s3
    path.write_text(f'[station]\nid = "{cfg.station.id}"\n[store]\nbackend = "s3"\nreserve_bytes = 0\n'
                    f'gc_station = "{cfg.store.gc_station}"\n[store.s3]\n'
                    f'endpoint = "{s3.endpoint}"\nbucket = "{s3.bucket}"\nregion = "{s3.region}"\n'
                    f'access_key_id = "{s3.access_key_id}"\nsecret_file = "{s3.secret_file}"\n')
    return path


def dock(tmp_path: Path, cfg: Config, name: str, data: bytes, expires: datetime | None = None) -> tuple[Path, str, int]:
    """One clip ingested at the station of ``cfg``; with ``expires``, its retention runs out then."""
    card = tmp_path / f"card-{name}" / "DCIM"
    card.mkdir(parents=True)
    (card / "CLIP.MP4").write_bytes(data)
    data_dir = tmp_path / name
    res = ingest(build_context(cfg, data_dir), card.parent, device=f"R-{name}", officer="010203", threaded=False)
    assert res.counts()["stored"] == 1, res.to_json()
    with sqlite3.connect(data_dir / "catalog.sqlite") as db:
        if expires is not None:
            stamp = (expires - timedelta(days=184)).isoformat()
            db.execute("UPDATE footage SET recorded_at = ?, recorded_at_corrected = ?, ingested_at = ?", (stamp,) * 3)
        sha, fid = db.execute("SELECT sha256, id FROM footage").fetchone()
    return data_dir, sha, fid


def keys(server: Seaweed, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def events(data_dir: Path, *names: str) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "catalog.sqlite") as db:
        return db.execute(f"SELECT event, subject FROM audit WHERE event IN ({','.join('?' * len(names))}) ORDER BY id",
                          names).fetchall()


def test_an_object_two_stations_hold_goes_only_once_neither_refers_to_it_and_its_lock_expired(
        seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg_a, cfg_b = config(seaweed, bucket, "st-a"), config(seaweed, bucket, "st-b")
    clip = os.urandom(100_000)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    data_a, sha, _ = dock(tmp_path, cfg_a, "a", clip, expires)
    data_b, sha_b, fid_b = dock(tmp_path, cfg_b, "b", clip, expires)
    assert sha_b == sha
    a, b = build_context(cfg_a, data_a), build_context(cfg_b, data_b)
    with Catalog(data_a) as cat:
        up = run_queue(a, cat)
        assert (up.uploaded, up.refs["written"], up.exit_code) == (1, 1, 0), up.to_json()
    with Catalog(data_b) as cat:
        retention.set_hold(cat, [fid_b], "case 2026-17")
        up = run_queue(b, cat)
        assert (up.present, up.refs["written"], up.refs["holds"]) == (1, 1, 1), up.to_json()
    assert keys(seaweed, bucket, f"refs/{sha}/") == [ref_key(sha, "st-a"), ref_key(sha, "st-b")]
    assert keys(seaweed, bucket, "holds/") == [hold_key(sha, "st-b")]
    assert json.loads(seaweed.client().get_object(Bucket=bucket, Key=ref_key(sha, "st-b"))["Body"].read())["station"] == "st-b"

    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.0)
    # station A's retention removes its footage: its own ref goes, the object stays
    with Catalog(data_a) as cat:
        rep = retention.apply(cat, a, cfg_a.retention)
        assert len(rep.deleted) == 1 and rep.deleted[0]["object"] == "removed", rep.to_json()
        assert keys(seaweed, bucket, f"refs/{sha}/") == [ref_key(sha, "st-b")]
        g = gc(a, cat)
        assert (g.objects, g.referenced, g.deleted, g.locked) == (1, 1, [], []), g.to_json()
    assert events(data_a, "store.ref", "store.unref") == [("store.ref", sha), ("store.unref", sha)]
    assert keys(seaweed, bucket, object_key(sha)) == [object_key(sha)]
    # only the gc station collects
    with Catalog(data_b) as cat, pytest.raises(StoreError, match="only at the station store.gc_station"):
        gc(b, cat)
    r = run_evidock("--config", toml(cfg_b, tmp_path / "b.toml"), "store", "gc", "--json", data_dir=data_b)
    assert r.code == 2, r

    # B lifts the hold and its retention removes its footage: no station refers to the object
    with Catalog(data_b) as cat:
        retention.release_hold(cat, [fid_b], "case closed")
        assert len(retention.apply(cat, b, cfg_b.retention).deleted) == 1
        assert run_queue(b, cat).refs["released"] == 1
    assert keys(seaweed, bucket, "refs/") == [] and keys(seaweed, bucket, "holds/") == []
    # an administrator's longer lock: S3 refuses the delete (AccessDenied), the object is kept
    s3 = seaweed.client()
    version = s3.head_object(Bucket=bucket, Key=object_key(sha))["VersionId"]
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    s3.put_object_retention(Bucket=bucket, Key=object_key(sha), VersionId=version,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})
    with Catalog(data_a) as cat:
        g = gc(a, cat)
        assert (g.deleted, g.locked, g.exit_code) == ([], [sha], 0), g.to_json()
    assert keys(seaweed, bucket, object_key(sha)) == [object_key(sha)]
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.0)
    r = run_evidock("--config", toml(cfg_a, tmp_path / "a.toml"), "store", "gc", "--json", data_dir=data_a)
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert (doc["deleted"], doc["locked"], doc["versions"]) == ([sha], 0, 1), doc
    listed = s3.list_object_versions(Bucket=bucket, Prefix=object_key(sha))
    assert listed.get("Versions", []) == [] and listed.get("DeleteMarkers", []) == []
    assert events(data_a, "store.gc") == [("store.gc", sha)]


def test_the_audit_segments_in_the_bucket_are_the_stations_chain(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket, "st-a")
    data, _, fid = dock(tmp_path, cfg, "a", os.urandom(50_000))
    st = build_context(cfg, data)
    with Catalog(data) as cat:
        assert run_queue(st, cat).segments == 1
        retention.set_hold(cat, [fid], "case 2026-18")  # new rows: the hold, then (this pass) the hold's ref
        assert run_queue(st, cat).segments == 1
        assert run_queue(st, cat).segments == 0  # no new rows: no segment
        retention.release_hold(cat, [fid], "case closed")
        assert run_queue(st, cat).segments == 1
    s3 = seaweed.client()
    names = keys(seaweed, bucket, "audit/st-a/")
    assert names[0] == segment_key("st-a", 1) and len(names) == 3
    rows, ends = [], []
    for k in names:
        lines = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()]
        rows += lines[:-1]
        ends.append((lines[-1], lines[-2]))
        assert k == segment_key("st-a", lines[0]["id"])
    for end, last in ends:  # each segment ends with the chain hash after its last row
        assert end == {"chain_hash": last["hash"], "last_row": last["id"]}
    with sqlite3.connect(data / "catalog.sqlite") as db:
        table = [dict(zip(("id", "at", "actor", "event", "subject", "details", "prev_hash", "hash"), r))
                 for r in db.execute("SELECT id, at, actor, event, subject, details, prev_hash, hash FROM audit ORDER BY id")]
    assert rows == table
    assert ends[-1][0]["chain_hash"] == table[-1]["hash"]
    assert all(r["prev_hash"] == p["hash"] for p, r in zip(rows, rows[1:]))


def test_an_object_docked_again_after_retention_removed_it_is_referenced_again(seaweed: Seaweed,
                                                                               tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket, "st-c")
    clip = os.urandom(40_000)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    data, sha, _ = dock(tmp_path, cfg, "c", clip, expires)
    st = build_context(cfg, data)
    with Catalog(data) as cat:
        assert run_queue(st, cat).refs["written"] == 1
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 1.0)
        assert len(retention.apply(cat, st, cfg.retention).deleted) == 1
    assert keys(seaweed, bucket, "refs/") == []
    again = tmp_path / "again" / "DCIM"
    again.mkdir(parents=True)
    (again / "CLIP.MP4").write_bytes(clip)
    assert ingest(st, again.parent, device="R-c", officer="010203", threaded=False).counts()["stored"] == 1
    with Catalog(data) as cat:
        up = run_queue(st, cat)  # back in the queue: the bucket still has it (gc has not run)
        assert (up.present, up.refs["written"], up.waiting) == (1, 1, 0), up.to_json()
    assert keys(seaweed, bucket, "refs/") == [ref_key(sha, "st-c")]
    assert events(data, "store.ref", "store.unref") == [("store.ref", sha), ("store.unref", sha), ("store.ref", sha)]


def test_a_held_object_carries_an_s3_legal_hold_until_no_station_holds_it(seaweed: Seaweed, tmp_path: Path) -> None:
    # a hold key only stops `store gc`; footage on hold has no retention date, so its lock runs
    # out: the version itself must refuse deletion while any station holds it
    bucket, same = seaweed.bucket(), os.urandom(30_000)
    stations = {}
    for name in ("st-a", "st-b"):
        cfg = config(seaweed, bucket, name)
        data_dir, sha, fid = dock(tmp_path, cfg, name, same)
        stations[name] = (build_context(cfg, data_dir), fid)

    def sync(name: str) -> None:
        ctx, _ = stations[name]
        with ctx.catalog() as cat:
            rep = run_queue(ctx, cat)
        assert not rep.later and rep.error is None, rep.to_json()

    def hold(name: str, on: bool) -> None:
        ctx, fid = stations[name]
        with ctx.catalog() as cat:
            (retention.set_hold if on else retention.release_hold)(cat, [fid], "case 2026-31")
        sync(name)

    def legal_hold() -> str:
        version = versions_of(seaweed, bucket, sha)
        assert len(version) == 1
        try:
            r = seaweed.client().get_object_legal_hold(Bucket=bucket, Key=object_key(sha), VersionId=version[0])
        except seaweed.client().exceptions.ClientError:
            return "none"
        return r["LegalHold"]["Status"]

    sync("st-a"), sync("st-b")
    assert legal_hold() == "none"
    hold("st-a", True)
    assert legal_hold() == "ON"
    hold("st-b", True)
    hold("st-a", False)
    assert legal_hold() == "ON"  # st-b still holds it
    hold("st-b", False)
    assert legal_hold() == "OFF" and keys(seaweed, bucket, "holds/") == []


def versions_of(server: Seaweed, bucket: str, sha: str) -> list[str]:
    listed = server.client().list_object_versions(Bucket=bucket, Prefix=object_key(sha))
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == object_key(sha)]
