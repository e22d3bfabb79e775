"""The S3 evidence store (issue 17) against a real SeaweedFS (``weed mini`` on loopback).

Offloads complete into local staging; the upload queue puts each object into the bucket and
checks it there; only then is a recorder wiped. Each test has a bucket of its own on the
module's server; the one that stops its server mid-dock runs a server of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from conftest import REPO, finish, run_evidock, spawn_evidock
from support.docktools import SIM_PID, SIM_PRODUCT, SIM_VID, recorder, template_volume
from support.holdproxy import hold_proxy
from support.seaweed import ACCESS_KEY, REGION, Seaweed, running, seaweed  # noqa: F401 (fixture)

from daemon.backup.target import object_key
from daemon.config import Config, parse_config
from daemon.context import build_context
from daemon.dock.check import wipe_stored
from daemon.dock.hotplug import Docked
from daemon.dock.jobs import State
from daemon.dock.manager import DockManager
from daemon.ingest.offload import ingest
from daemon.store.status import store_status
from daemon.store.uploads import run_queue
from drivers.ums import UmsDriver


def config(server: Seaweed, bucket: str, station: str = "st-a", secret: Path | None = None,
           lag_hours: float = 24.0, endpoint: str | None = None, **dock: Any) -> Config:
    """``endpoint``: another way to the server than its own port (a ``support.holdproxy``)."""
    return parse_config({
        "store": {"reserve_bytes": 0, "backend": "s3", "max_upload_lag_hours": lag_hours,
                  "s3": {"endpoint": endpoint or server.endpoint, "bucket": bucket, "region": REGION, "access_key_id": ACCESS_KEY,
                         "secret_file": str(secret or server.secret_file())}},
        "station": {"id": station}, "zfy": {"timeout_s": 1.0, "retries": 0}, "dock": {"node_wait_s": 10, **dock}})


def toml(cfg: Config, path: Path, extra: str = "") -> Path:
    """The config file of ``cfg``'s store for a subprocess; ``extra``: more TOML sections after it."""
    s3 = cfg.store.s3
    path.write_text(f'[station]\nid = "{cfg.station.id}"\n[store]\nbackend = "s3"\nreserve_bytes = 0\n'
                    f'max_upload_lag_hours = {cfg.store.max_upload_lag_hours}\n[store.s3]\n'
                    f'endpoint = "{s3.endpoint}"\nbucket = "{s3.bucket}"\nregion = "{s3.region}"\n'
                    f'access_key_id = "{s3.access_key_id}"\nsecret_file = "{s3.secret_file}"\n' + extra)
    return path


def card(root: Path, names: dict[str, bytes]) -> Path:
    for name, data in names.items():
        p = root / "DCIM" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def uploads(data: Path) -> dict[str, tuple[str, str | None, str | None]]:
    db = sqlite3.connect(data / "catalog.sqlite")
    try:
        return {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT sha256, state, version_id, outcome FROM store_uploads")}
    finally:
        db.close()


def versions(server: Seaweed, bucket: str, sha: str) -> list[str]:
    listed = server.client().list_object_versions(Bucket=bucket, Prefix=object_key(sha))
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == object_key(sha)]


def test_a_recorder_is_wiped_only_once_its_files_are_stored_in_the_bucket(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket)
    data, vol = tmp_path / "data", card(tmp_path / "card", {"录像_0001.MP4": os.urandom(150_000),
                                                             "B.MP4": os.urandom(90_000)})
    station = build_context(cfg, data)
    # the recorder's clock 2 minutes fast: each file's corrected time differs from its own
    res = ingest(station, vol, device="S3-1", officer="010203", clock_drift_s=120.0, threaded=False)
    assert res.counts()["stored"] == 2, res.to_json()
    with station.catalog() as cat, UmsDriver(vol) as driver:
        rep = wipe_stored(cat, station.store, driver, vol, "S3-1", in_bucket=True)
        assert rep.deleted == [] and len(rep.kept) == 2 and "not yet stored" in rep.kept[0][1]
        assert store_status(cfg, cat)["waiting"] == 2
        up = run_queue(station, cat)
        assert (up.uploaded, up.present, up.failed, up.error, up.waiting) == (2, 0, [], None, 0), up.to_json()
        rep = wipe_stored(cat, station.store, driver, vol, "S3-1", in_bucket=True)
    assert sorted(rep.deleted) == [b"DCIM/B.MP4", "DCIM/录像_0001.MP4".encode()]
    rows = uploads(data)
    sha = next(t.sha256 for t in res.tasks if t.entry.rel.endswith(b"0001.MP4"))
    state, version, outcome = rows[sha]
    assert (state, outcome) == ("stored", "uploaded") and version == versions(seaweed, bucket, sha)[0]
    # the object carries its provenance and a COMPLIANCE lock (unfiled footage: kept 184 days)
    head = seaweed.client().head_object(Bucket=bucket, Key=object_key(sha), VersionId=version)
    meta = {k: unquote(v) for k, v in head["Metadata"].items()}
    assert meta["evidock-station"] == "st-a" and meta["recorder"] == "S3-1" and meta["officer"] == "010203"
    assert meta["path"] == "DCIM/录像_0001.MP4" and meta["sha256"] == sha
    assert {"first-read", "recorded-at"} <= set(meta)
    with sqlite3.connect(data / "catalog.sqlite") as db:
        recorded, corrected = db.execute("SELECT recorded_at, recorded_at_corrected FROM footage WHERE sha256 = ?",
                                         (sha,)).fetchone()
    assert (meta["recorded-at"], meta["recorded-at-corrected"]) == (recorded, corrected) and corrected != recorded
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_the_bucket_stopped_during_a_dock_then_back_wipes_at_the_next_dock(tmp_path: Path) -> None:
    template = template_volume(tmp_path / "tpl")
    with running(tmp_path / "weed") as server:
        bucket = server.bucket()
        cfg = config(server, bucket)
        data = tmp_path / "data"
        server.stop()
        with recorder(tmp_path, template) as sim:
            def dock(n: int):
                m = DockManager(build_context(cfg, data))
                st = sim.status()
                m.on_hotplug("docked", Docked(f"/sys/devices/sim/1-{n}", SIM_VID, SIM_PID, SIM_PRODUCT, st["serial"], f"sim-usb-0:{n}",
                                              "bay-1", tty=st["pty"], volume=st["volume"]))
                assert m.wait_all(120)
                return m.history[0]

            job = dock(1)
            # the offload verified locally; the officer may take the recorder; nothing was wiped
            assert job.state is State.READY, job.detail
            files = [p for p in Path(sim.status()["volume"]).rglob("*") if p.is_file()]
            assert job.files_stored == len(files) > 0
            ctx = build_context(cfg, data)
            with ctx.catalog() as cat:
                up = run_queue(ctx, cat)
                assert up.error is not None and up.waiting == len(files)  # nothing counted stored
                assert store_status(cfg, cat)["alerts"][0]["kind"] == "bucket"
            assert all(s == "waiting" for s, _, _ in uploads(data).values())
            server.start()
            r = run_evidock("--config", toml(cfg, tmp_path / "c.toml"), "store", "upload", "--json", data_dir=data)
            assert r.code == 0 and r.json()["uploaded"] == len(files), r.out + r.err
            job = dock(2)
            assert job.state is State.READY, job.detail
            assert job.files_stored == 0  # everything already stored: no second copy
            assert [p for p in Path(sim.status()["volume"]).rglob("*") if p.is_file()] == []
            with ctx.catalog() as cat:
                assert store_status(cfg, cat)["alerts"] == []  # cleared by the upload that worked


def test_kill_9_after_the_put_loses_nothing_and_makes_no_second_version(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket)
    data, vol = tmp_path / "data", card(tmp_path / "card", {"A.MP4": os.urandom(120_000)})
    station = build_context(cfg, data)
    res = ingest(station, vol, device="S3-2", threaded=False)
    sha = res.tasks[0].sha256
    conf = toml(cfg, tmp_path / "c.toml")
    r = run_evidock("--config", conf, "store", "upload", data_dir=data, env={"EVIDOCK_CRASH_AT": "store-after-put"})
    assert r.code == -9, r.out + r.err
    assert uploads(data)[sha][0] == "uploading" and len(versions(seaweed, bucket, sha)) == 1
    r = run_evidock("--config", conf, "store", "upload", "--json", data_dir=data)
    assert r.code == 0 and r.json()["present"] == 1 and r.json()["uploaded"] == 0, r.out + r.err
    state, version, outcome = uploads(data)[sha]
    assert (state, outcome) == ("stored", "present") and versions(seaweed, bucket, sha) == [version]


def test_kill_9_in_the_middle_of_a_put_loses_nothing_and_the_next_run_puts_it_once(seaweed: Seaweed,
                                                                                     tmp_path: Path) -> None:
    import hashlib
    import signal
    import subprocess

    from support.s3tap import S3Tap

    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket)
    data, body = tmp_path / "data", os.urandom(300_000)
    res = ingest(build_context(cfg, data), card(tmp_path / "card", {"A.MP4": body}), device="S3-9", threaded=False)
    sha = res.tasks[0].sha256
    conf = toml(cfg, tmp_path / "c.toml")
    procs: list[subprocess.Popen] = []
    # the tap forwards the PUT's request line, headers and 64 KiB of its body, then kill -9 of the
    # runner: the server holds a half request, the catalog a claim of a dead process
    with S3Tap(seaweed.ports["s3.port"], bucket, nth=1, after=64 * 1024,
               action=lambda: os.kill(procs[0].pid, signal.SIGKILL)) as tap:
        via = tmp_path / "via-tap.toml"
        via.write_text(conf.read_text().replace(seaweed.endpoint, tap.endpoint))
        procs.append(spawn_evidock("--config", via, "store", "upload", data_dir=data))
        finish(procs[0], timeout=120)
        assert procs[0].returncode == -9 and tap.tripped.is_set() and tap.cut == sha
    assert versions(seaweed, bucket, sha) == []  # half a PUT stores nothing
    assert uploads(data)[sha][0] == "uploading"  # the dead runner's claim, not counted stored
    assert (data / "objects" / sha[:2] / sha[2:4] / sha).read_bytes() == body  # the local copy stands
    r = run_evidock("--config", conf, "store", "upload", "--json", data_dir=data)
    assert r.code == 0 and r.json()["uploaded"] == 1, r.out + r.err
    state, version, outcome = uploads(data)[sha]
    assert (state, outcome) == ("stored", "uploaded") and versions(seaweed, bucket, sha) == [version]
    got = seaweed.client().get_object(Bucket=bucket, Key=object_key(sha), VersionId=version)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha


def test_a_version_in_parts_that_names_the_hash_but_holds_other_bytes_is_not_taken_as_stored(
        seaweed: Seaweed, tmp_path: Path) -> None:
    import hashlib

    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket)
    data, body = tmp_path / "data", os.urandom(200_000)
    res = ingest(build_context(cfg, data), card(tmp_path / "card", {"A.MP4": body}), device="S3-8", threaded=False)
    sha = res.tasks[0].sha256
    # someone else's put in parts under the object's key: the same size and a metadata SHA-256 that
    # names it, other bytes (a composite checksum, "…-1", is all the server vouches for)
    s3, other = seaweed.client(), os.urandom(len(body))
    up = s3.create_multipart_upload(Bucket=bucket, Key=object_key(sha), ChecksumAlgorithm="SHA256",
                                    Metadata={"sha256": sha, "evidock-station": "st-x"})
    part = s3.upload_part(Bucket=bucket, Key=object_key(sha), UploadId=up["UploadId"], PartNumber=1, Body=other,
                          ChecksumAlgorithm="SHA256")
    done = s3.complete_multipart_upload(Bucket=bucket, Key=object_key(sha), UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]}]})
    ctx = build_context(cfg, data)
    with ctx.catalog() as cat:
        rep = run_queue(ctx, cat)
    assert (rep.uploaded, rep.present) == (1, 0), rep.to_json()
    state, version, outcome = uploads(data)[sha]
    assert (state, outcome) == ("stored", "uploaded") and version != done.get("VersionId")
    got = s3.get_object(Bucket=bucket, Key=object_key(sha), VersionId=version)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha


@pytest.mark.parametrize("fault", ["credentials", "no-object-lock"])
def test_an_unusable_bucket_is_said_and_offloads_still_go_to_local_staging(seaweed: Seaweed, tmp_path: Path,
                                                                          fault: str) -> None:
    if fault == "credentials":
        # and past store.max_upload_lag_hours (a second here) the wait is alerted too
        cfg = config(seaweed, seaweed.bucket(), secret=seaweed.secret_file("not-the-secret"), lag_hours=0.0003)
        said = "refused the credentials"
    else:
        cfg = config(seaweed, seaweed.bucket(object_lock=False))
        said = "does not have Object Lock"
    data, vol = tmp_path / "data", card(tmp_path / "card", {"A.MP4": os.urandom(50_000)})
    res = ingest(build_context(cfg, data), vol, device="S3-3", threaded=False)
    assert res.counts()["stored"] == 1  # local staging took it
    conf = toml(cfg, tmp_path / "c.toml")
    time.sleep(1.2 if fault == "credentials" else 0)
    r = run_evidock("--config", conf, "store", "upload", data_dir=data)
    assert r.code == 1 and said in r.err, r.out + r.err
    r = run_evidock("--config", conf, "store", "status", "--json", data_dir=data)
    doc = r.json()
    assert r.code == 1 and doc["waiting"] == 1 and doc["stored"] == 0
    assert doc["waiting_bytes"] == 50_000  # the clip's size
    with sqlite3.connect(data / "catalog.sqlite") as db:
        (queued,) = db.execute("SELECT queued_at FROM store_uploads").fetchone()
    assert doc["oldest_waiting"] == queued and doc["oldest_age_s"] >= (1 if fault == "credentials" else 0)
    assert said in doc["alerts"][0]["message"]
    assert [a["kind"] for a in doc["alerts"]] == (["bucket", "lag"] if fault == "credentials" else ["bucket"])
    assert doc["lagging"] is (fault == "credentials")
    with build_context(cfg, data).catalog() as cat, UmsDriver(vol) as driver:
        assert wipe_stored(cat, build_context(cfg, data).store, driver, vol, "S3-3", in_bucket=True).deleted == []


def test_two_stations_sharing_a_bucket_hold_one_object_and_two_sightings(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    same = os.urandom(80_000)
    reps = []
    for name in ("st-a", "st-b"):
        cfg = config(seaweed, bucket, station=name)
        ctx = build_context(cfg, tmp_path / name)
        res = ingest(ctx, card(tmp_path / f"card-{name}", {"SAME.MP4": same}), device=f"R-{name}", threaded=False)
        with ctx.catalog() as cat:
            reps.append(run_queue(ctx, cat))
        sha = res.tasks[0].sha256
    assert (reps[0].uploaded, reps[1].uploaded, reps[1].present) == (1, 0, 1)
    only = versions(seaweed, bucket, sha)
    assert len(only) == 1
    assert uploads(tmp_path / "st-a")[sha][1] == uploads(tmp_path / "st-b")[sha][1] == only[0]
    head = seaweed.client().head_object(Bucket=bucket, Key=object_key(sha))
    assert head["Metadata"]["evidock-station"] == "st-a"  # the first station's provenance stays
    # Two sightings: each station's catalog records its own (its recorder, its offload session,
    # when it saw the bytes), and its own audit segment in the bucket says so under its station id.
    client = seaweed.client()
    for name in ("st-a", "st-b"):
        seen = catalog_rows(tmp_path / name, "SELECT s.device_serial, s.seen_at, s.source_path, x.device_serial"
                            " FROM sightings s JOIN sessions x ON x.id = s.session_id WHERE s.sha256 = ?", sha)
        assert len(seen) == 1, seen
        device, seen_at, path, session_device = seen[0]
        assert (device, session_device, path) == (f"R-{name}", f"R-{name}", "DCIM/SAME.MP4") and seen_at
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"audit/{name}/").get("Contents", [])]
        rows = [json.loads(line) for k in keys
                for line in client.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()]
        ingests = [json.loads(r["details"]) for r in rows if r.get("event") == "object.ingest" and r["subject"] == sha]
        assert [d["device"] for d in ingests] == [f"R-{name}"], rows
    # and one reference per station on the one object: refs/<sha256>/<station-id>
    refs = client.list_objects_v2(Bucket=bucket, Prefix=f"refs/{sha}/").get("Contents", [])
    assert sorted(o["Key"] for o in refs) == [f"refs/{sha}/st-a", f"refs/{sha}/st-b"]


def test_store_upload_on_a_local_store_is_an_error_and_config_check_masks_the_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = run_evidock("store", "upload", data_dir=data)
    assert r.code == 2 and 'store.backend is "local"' in r.err, r.out + r.err
    r = run_evidock("store", "status", "--json", data_dir=data)
    assert r.code == 0 and r.json()["backend"] == "local"
    conf = tmp_path / "c.toml"
    conf.write_text('[store]\nbackend = "s3"\n[store.s3]\nbucket = "b"\naccess_key_id = "AKIASECRETKEYID"\n')
    r = run_evidock("--config", conf, "config", "check", "--json", data_dir=data)
    assert "AKIASECRETKEYID" not in r.out + r.err and "AKIA" in r.out, r.out + r.err


def catalog_rows(data: Path, sql: str, *params: Any) -> list[tuple]:
    db = sqlite3.connect(data / "catalog.sqlite", timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def sha256_of_version(server: Seaweed, bucket: str, sha: str, version: str) -> str:
    body = server.client().get_object(Bucket=bucket, Key=object_key(sha), VersionId=version)["Body"].read()
    return hashlib.sha256(body).hexdigest()


@contextmanager
def daemon(conf: Path, data: Path) -> Iterator[subprocess.Popen[str]]:
    """The real daemon (``python -m daemon … run``) on ``data``; the caller SIGTERMs it and reads its stderr
    (``proc.communicate``); killed if it is still running when the test ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDOCK_", "NOTIFY_", "WATCHDOG_"))}
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(conf), "--data-dir", str(data), "run"],
                            cwd=REPO, env={**env, "LANG": "C.UTF-8"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def stop_daemon(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then its stderr once it has exited."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=60)[1]


def poll_status(conf: Path, data: Path, done: Any, what: str, timeout: float = 60) -> Any:
    """``evidock status --json`` (``what`` = "status") or ``store status --json`` until ``done(doc)``."""
    args = ("status", "--json") if what == "status" else ("store", "status", "--json")
    end, r = time.monotonic() + timeout, None
    while time.monotonic() < end:
        r = run_evidock("--config", conf, *args, data_dir=data)
        if r.code != 3 and r.out.strip() and done(r.json()):
            return r.json()
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting on {what}: {r.out + r.err if r else ''}")


@pytest.mark.parametrize("fault", ["credentials", "no-object-lock"])
def test_the_daemon_says_an_unusable_bucket_at_start_and_in_status(seaweed: Seaweed, tmp_path: Path,
                                                                   fault: str) -> None:
    if fault == "credentials":
        cfg, said = config(seaweed, seaweed.bucket(), secret=seaweed.secret_file("not-the-secret")), \
            "refused the credentials"
    else:
        cfg, said = config(seaweed, seaweed.bucket(object_lock=False)), "does not have Object Lock"
    watch, data = tmp_path / "watch", tmp_path / "data"
    conf = toml(cfg, tmp_path / "c.toml", f'[watch]\nfolder = "{watch}"\nsettle_s = 0.2\n')
    with daemon(conf, data) as proc:
        st = poll_status(conf, data, lambda d: any(a["job"] == "store" for a in d["job_alerts"]), "status")
        assert [a["kind"] for a in st["job_alerts"]] == ["bucket"] and said in st["job_alerts"][0]["message"], st
        assert st["store"]["waiting"] == 0
        text = run_evidock("--config", conf, "status", data_dir=data)
        assert "evidence store: bucket" in text.out and said in text.err, text.out + text.err
        # an offload the daemon takes meanwhile (the watch folder) still goes into local staging
        clip = os.urandom(30_000)
        (watch / "010203").mkdir(parents=True)
        (watch / "010203" / "W.MP4").write_bytes(clip)
        doc = poll_status(conf, data, lambda d: d["waiting"] == 1, "store")
        assert doc["stored"] == 0 and said in doc["alerts"][0]["message"]
        sha = hashlib.sha256(clip).hexdigest()
        assert (data / "objects" / sha[:2] / sha[2:4] / sha).read_bytes() == clip
        err = stop_daemon(proc)
    assert proc.returncode == 0 and said in err, err


def test_the_daemon_works_the_upload_queue_by_itself(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket)
    files = {f"D{n}.MP4": os.urandom(70_000 + n) for n in range(3)}
    data = tmp_path / "data"
    # offloaded into local staging while the daemon was not running: waiting for their upload
    res = ingest(build_context(cfg, data), card(tmp_path / "card", files), device="S3-D", threaded=False)
    assert res.counts()["stored"] == len(files)
    conf = toml(cfg, tmp_path / "c.toml")
    assert run_evidock("--config", conf, "store", "status", "--json", data_dir=data).json()["waiting"] == len(files)
    with daemon(conf, data) as proc:  # and no `store upload` anywhere: the daemon's own loop
        doc = poll_status(conf, data, lambda d: d["waiting"] == 0, "store", timeout=90)
        assert doc["stored"] == len(files) and doc["alerts"] == [], doc
        rows = uploads(data)
        for sha in (hashlib.sha256(v).hexdigest() for v in files.values()):
            state, version, outcome = rows[sha]
            assert (state, outcome) == ("stored", "uploaded") and versions(seaweed, bucket, sha) == [version]
            assert sha256_of_version(seaweed, bucket, sha, version) == sha
        err = stop_daemon(proc)
    assert proc.returncode == 0, err


def test_two_runners_at_once_upload_each_object_exactly_once(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    files = {f"R{n:02d}.MP4": os.urandom(40_000 + n) for n in range(8)}
    data = tmp_path / "data"
    # How the overlap is guaranteed, not hoped for: both runners reach the bucket through a proxy
    # that holds the first PUT of an object it sees (before one byte of it reaches the server).
    # The runner that sent it is then inside an upload — its claim on that object is taken,
    # 'uploading' — and stays there until the test releases it, after the other runner has
    # worked the whole rest of the queue and exited. Whichever of the two is held, the other
    # runs entirely during the held upload.
    with hold_proxy(seaweed.ports["s3.port"], f"PUT /{bucket}/objects/".encode()) as proxy:
        cfg = config(seaweed, bucket, endpoint=proxy.endpoint)
        res = ingest(build_context(cfg, data), card(tmp_path / "card", files), device="S3-R", threaded=False)
        assert res.counts()["stored"] == len(files), res.to_json()
        conf = toml(cfg, tmp_path / "c.toml")
        runners = [spawn_evidock("--config", conf, "store", "upload", "--json", data_dir=data) for _ in range(2)]
        try:
            assert proxy.held.wait(120), "no runner put an object"
            held_sha = proxy.held_request.split(b" ")[1].split(b"?")[0].rsplit(b"/", 1)[1].decode()
            claims = catalog_rows(data, "SELECT state, claimed_by FROM store_uploads WHERE sha256 = ?", held_sha)
            assert len(claims) == 1 and claims[0][0] == "uploading", claims
            token = claims[0][1]
            held = next(p for p in runners if token.startswith(f"{p.pid}:"))
            other = next(p for p in runners if p is not held)
            out, err = other.communicate(timeout=120)  # it never waits for the held object: nothing to wait for
            assert held.poll() is None  # still inside its upload: the two really ran at once
            assert other.returncode == 1, out + err  # the held object was still not stored when it ended
            other_rep = json.loads(out)
            assert catalog_rows(data, "SELECT state, claimed_by FROM store_uploads WHERE sha256 = ?",
                                held_sha) == [("uploading", token)]  # the other runner left it alone
        finally:
            proxy.release()
            outs = [p.communicate(timeout=120) for p in runners]
    held_out = outs[runners.index(held)]
    assert held.returncode == 0, held_out
    held_rep = json.loads(held_out[0])
    assert (held_rep["uploaded"], other_rep["uploaded"]) == (1, len(files) - 1), (held_rep, other_rep)
    assert held_rep["present"] == other_rep["present"] == 0 and held_rep["waiting"] == 0
    rows = uploads(data)
    assert len(rows) == len(files) and {(s, o) for s, _, o in rows.values()} == {("stored", "uploaded")}
    by_sha = {hashlib.sha256(v).hexdigest() for v in files.values()}
    assert set(rows) == by_sha
    for sha, (_, version, _) in rows.items():  # one version each: no object put by both
        assert versions(seaweed, bucket, sha) == [version]
        assert sha256_of_version(seaweed, bucket, sha, version) == sha
    audited = catalog_rows(data, "SELECT subject FROM audit WHERE event = 'store.upload'")
    assert sorted(s for (s,) in audited) == sorted(by_sha)  # and each recorded stored once


def test_a_failed_upload_backs_off_and_a_due_only_pass_waits_for_it(tmp_path: Path) -> None:
    from daemon.clock import from_iso, now_utc
    from daemon.store.uploads import BACKOFF_S

    data = tmp_path / "data"
    with running(tmp_path / "weed") as server:
        bucket = server.bucket()
        # The upload itself must fail, not the bucket check before it (a pass whose check fails
        # tries nothing and so sets no back-off): the proxy holds the PUT, the test stops the
        # server, then lets the PUT go on — to a server that is gone.
        with hold_proxy(server.ports["s3.port"], f"PUT /{bucket}/objects/".encode()) as proxy:
            cfg = config(server, bucket, endpoint=proxy.endpoint)
            ctx = build_context(cfg, data)
            sha = ingest(ctx, card(tmp_path / "card", {"B.MP4": os.urandom(60_000)}), device="S3-B",
                         threaded=False).tasks[0].sha256

            def row() -> tuple[str, int, str]:
                return catalog_rows(data, "SELECT state, attempts, not_before FROM store_uploads WHERE sha256 = ?",
                                    sha)[0]

            def failing_pass(due_only: bool) -> Any:
                out: list[Any] = []

                def work() -> None:
                    with ctx.catalog() as cat:
                        out.append(run_queue(ctx, cat, due_only=due_only))

                t = threading.Thread(target=work)
                t.start()
                assert proxy.held.wait(60), "the pass put nothing"
                before = now_utc()  # the PUT may fail as soon as the server goes
                server.stop()
                proxy.release()
                t.join(120)
                assert not t.is_alive() and out, "the pass did not end"
                return out[0], before

            def due_only_pass() -> Any:
                with ctx.catalog() as cat:
                    return run_queue(ctx, cat, due_only=True)

            def overdue() -> None:
                # The clock moved on honestly: the back-off is over when not_before is past, so
                # write it into the past rather than sleep for minutes.
                db = sqlite3.connect(data / "catalog.sqlite", timeout=30)
                with db:
                    db.execute("UPDATE store_uploads SET not_before = '2000-01-01T00:00:00+00:00' WHERE sha256 = ?",
                               (sha,))
                db.close()

            for attempt in (1, 2):
                rep, before = failing_pass(due_only=attempt > 1)
                assert rep.uploaded == 0 and [s for s, _ in rep.failed] == [sha], rep.to_json()
                assert "cannot be reached" in str(rep.failed[0][1])  # says the server is unreachable
                state, attempts, not_before = row()
                wait = BACKOFF_S[attempt - 1]
                assert (state, attempts) == ("waiting", attempt)
                # the failure + the back-off of this attempt (not_before is stored to the second)
                assert before + timedelta(seconds=wait - 1) <= from_iso(not_before)
                assert from_iso(not_before) <= now_utc() + timedelta(seconds=wait)
                server.start()
                proxy.rearm()
                rep = due_only_pass()  # the daemon's pass: the bucket answers, but the back-off is not over
                assert rep.error is None and rep.uploaded == 0 and rep.failed == [] and rep.waiting == 1
                assert not proxy.held.is_set() and row()[:2] == ("waiting", attempt)  # not even tried
                assert versions(server, bucket, sha) == []
                overdue()
            proxy.release()  # the third try is let through
            rep = due_only_pass()
            assert (rep.uploaded, rep.failed, rep.waiting) == (1, [], 0), rep.to_json()
        state, version, outcome = uploads(data)[sha]
        assert (state, outcome, row()[1]) == ("stored", "uploaded", 3)
        assert versions(server, bucket, sha) == [version]
        assert sha256_of_version(server, bucket, sha, version) == sha
