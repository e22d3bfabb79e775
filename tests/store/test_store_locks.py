"""The locks of the objects in the evidence store bucket follow the retention rules (issue 17):
an object goes up locked until the date the rules gave at upload; when the rules keep it longer
later (filed to a case that closed: kept years after the close), the daily look extends its
version's COMPLIANCE retention; an object another station put is extended to this station's date
at once. Against the real SeaweedFS of the fixture."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.seaweed import ACCESS_KEY, REGION, Seaweed, seaweed  # noqa: F401 (fixture)

from daemon.backup.target import object_key
from daemon.cases import register
from daemon.cases.retention import keep_until_by_object
from daemon.catalog.db import Catalog
from daemon.config import Config, parse_config
from daemon.context import build_context
from daemon.ingest.offload import ingest
from daemon.store.locks import META_KEY
from daemon.store.uploads import run_queue

BADGE = "010203"


def config(server: Seaweed, bucket: str, station: str) -> Config:
    return parse_config({
        "store": {"reserve_bytes": 0, "backend": "s3",
                  "s3": {"endpoint": server.endpoint, "bucket": bucket, "region": REGION, "access_key_id": ACCESS_KEY,
                         "secret_file": str(server.secret_file())}},
        "station": {"id": station}, "retention": {"filed_keep_years": 5}})


def dock(tmp_path: Path, cfg: Config, name: str, data: bytes) -> tuple[Path, str]:
    card = tmp_path / f"card-{name}" / "DCIM"
    card.mkdir(parents=True)
    (card / "CLIP.MP4").write_bytes(data)
    data_dir = tmp_path / name
    res = ingest(build_context(cfg, data_dir), card.parent, device=f"R-{name}", officer=BADGE, threaded=False)
    assert res.counts()["stored"] == 1, res.to_json()
    return data_dir, res.tasks[0].sha256


def file_to_a_closed_case(data_dir: Path, cfg: Config, case_no: str, closed: datetime) -> datetime:
    """File the station's footage to a case closed at ``closed``; the date the rules now keep it until."""
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": case_no, "party": "甲", "handlers": [BADGE],
                               "opened_at": "2000-01-01T00:00:00Z", "closed_at": closed.isoformat()}, "UTC")
        (sha,) = [r[0] for r in c.conn.execute("SELECT sha256 FROM footage")]
        assert c.conn.execute("SELECT COUNT(*) FROM footage_cases WHERE case_no = ?", (case_no,)).fetchone()[0] == 1
        until = keep_until_by_object(c, cfg.retention)[sha]
    assert until is not None
    return until


def lock_of(server: Seaweed, bucket: str, sha: str, version: str) -> datetime:
    r = server.client().get_object_retention(Bucket=bucket, Key=object_key(sha), VersionId=version)["Retention"]
    assert r["Mode"] == "COMPLIANCE"
    return r["RetainUntilDate"]


def stored(data_dir: Path, sha: str) -> tuple[str, str | None]:
    with Catalog(data_dir) as c:
        return c.conn.execute("SELECT version_id, retain_until FROM store_uploads WHERE sha256 = ?", (sha,)).fetchone()


def test_a_lock_follows_the_rules_when_they_keep_an_object_longer(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = config(seaweed, bucket, "st-a")
    data, sha = dock(tmp_path, cfg, "st-a", os.urandom(40_000))
    ctx = build_context(cfg, data)
    with ctx.catalog() as cat:
        assert run_queue(ctx, cat).uploaded == 1
    version, _ = stored(data, sha)
    first = lock_of(seaweed, bucket, sha, version)
    assert first < datetime.now(UTC) + timedelta(days=200)  # unfiled: 184 days from its recording
    # filed to a case closed just now: kept five years after the close
    until = file_to_a_closed_case(data, cfg, "K-1", datetime.now(UTC))
    assert until > first + timedelta(days=365)
    with ctx.catalog() as cat:
        assert run_queue(ctx, cat).locks_extended == 0  # looked at a moment ago: the next look is tomorrow
        cat.set_meta(META_KEY, None)  # a day later (the look's mark, not the clock, is what is due)
        rep = run_queue(ctx, cat)
    assert rep.locks_extended == 1 and not rep.later, rep.to_json()
    assert abs((lock_of(seaweed, bucket, sha, version) - until).total_seconds()) <= 1
    assert stored(data, sha) == (version, stored(data, sha)[1]) and stored(data, sha)[1] is not None
    with Catalog(data) as c:
        (event,) = [r[0] for r in c.conn.execute("SELECT event FROM audit WHERE event = 'store.lock'")]
    assert event == "store.lock"
    with ctx.catalog() as cat:
        cat.set_meta(META_KEY, None)
        assert run_queue(ctx, cat).locks_extended == 0  # locked that long already: nothing to do


def test_an_object_another_station_put_gets_this_stations_longer_lock(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket, same = seaweed.bucket(), os.urandom(40_000)
    cfg_a, cfg_b = config(seaweed, bucket, "st-a"), config(seaweed, bucket, "st-b")
    data_a, sha = dock(tmp_path, cfg_a, "st-a", same)
    ctx_a = build_context(cfg_a, data_a)
    with ctx_a.catalog() as cat:
        run_queue(ctx_a, cat)
    version, _ = stored(data_a, sha)
    short = lock_of(seaweed, bucket, sha, version)
    data_b, _ = dock(tmp_path, cfg_b, "st-b", same)
    until = file_to_a_closed_case(data_b, cfg_b, "K-B", datetime.now(UTC))
    ctx_b = build_context(cfg_b, data_b)
    with ctx_b.catalog() as cat:
        rep = run_queue(ctx_b, cat)
    assert rep.present == 1 and stored(data_b, sha)[0] == version
    got = lock_of(seaweed, bucket, sha, version)
    assert got > short and abs((got - until).total_seconds()) <= 1
