"""``evidock reindex --from-store`` (issue 17) against a real SeaweedFS: a lost station rebuilt from the bucket.

A station with the S3 backend docks (the real offload of a folder, as the other store tests do),
registers an officer, opens and edits cases, files and holds footage; an upload pass puts the
objects, the audit segments and (``store.snapshot_hours`` > 0) a catalog snapshot into the
bucket; then more happens after the snapshot (another dock with a file seen before, a new case,
a release) and the queue is worked again. The data dir goes; a reindex into a new one gives the
same ``footage list --json`` and ``case list --json``, and ``audit verify`` passes on it. A
byte changed in a segment in the bucket refuses the reindex, naming the key.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_evidock
from support.seaweed import Seaweed, seaweed  # noqa: F401 (fixture)
from test_s3store import card, config, toml

from daemon.cases import register, retention
from daemon.catalog import officers
from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.context import build_context
from daemon.ingest.offload import ingest
from daemon.store.segments import segment_key
from daemon.store.uploads import run_queue

BADGE, OTHER = "010203", "040506"


def cfg_for(server: Seaweed, bucket: str, snapshot_hours: float) -> Config:
    cfg = config(server, bucket, "st-r")
    return cfg.model_copy(update={"store": cfg.store.model_copy(update={"snapshot_hours": snapshot_hours})})


def conf_file(cfg: Config, path: Path) -> Path:
    """The config as a file for the CLI: test_s3store's, with store.snapshot_hours."""
    text = toml(cfg, path).read_text()
    path.write_text(text.replace("[store]\n", f"[store]\nsnapshot_hours = {cfg.store.snapshot_hours}\n", 1))
    return path


def live_a_while(tmp_path: Path, cfg: Config, data: Path) -> None:
    """Docks, cases, filings and holds; an upload pass (the snapshot, if due); more of them; another pass."""
    st = build_context(cfg, data)
    opened = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
    with Catalog(data) as cat:
        officers.add_officer(cat, BADGE, "王五", "一中队")
        register.open_case(cat, {"case_no": "R-1", "party": "张三", "handlers": [BADGE], "opened_at": opened}, "UTC")
    seen_twice = os.urandom(30_000)
    first = ingest(st, card(tmp_path / "card1", {"录像_0001.MP4": os.urandom(40_000), "B.MP4": seen_twice}),
                   device="RX-1", officer=BADGE, threaded=False)
    assert first.counts()["stored"] == 2, first.to_json()
    with Catalog(data) as cat:
        register.edit_case(cat, "R-1", {"party": "张三、李四", "notes": "现场检查"}, "UTC")
        fid = cat.conn.execute("SELECT MIN(id) FROM footage").fetchone()[0]
        retention.set_hold(cat, [fid], "复议 2026-17")
        up = run_queue(st, cat)
        assert (up.uploaded, up.waiting, up.later) == (2, 0, []), up.to_json()
        assert (up.snapshot is not None) == (cfg.store.snapshot_hours > 0)
        # after the snapshot
        register.open_case(cat, {"case_no": "R-2", "party": "某公司", "handlers": [OTHER], "opened_at": opened}, "UTC")
    again = ingest(st, card(tmp_path / "card2", {"C.MP4": os.urandom(20_000), "B2.MP4": seen_twice}),
                   device="RX-2", officer=OTHER, threaded=False)
    assert (again.counts()["stored"], again.counts()["duplicates"]) == (1, 1), again.to_json()
    with Catalog(data) as cat:
        retention.release_hold(cat, [fid], "复议结束")
        up = run_queue(st, cat)
        assert (up.uploaded, up.waiting, up.later, up.snapshot) == (1, 0, [], None), up.to_json()
        assert cat.conn.execute("SELECT COUNT(*) FROM footage_cases").fetchone()[0] == 3  # auto-filed to


def listings(conf: Path, data: Path) -> tuple[list, list]:
    out = []
    for what in ("footage", "case"):
        r = run_evidock("--config", conf, what, "list", "--json", data_dir=data)
        assert r.code == 0, r.out + r.err
        out.append(json.loads(r.out))
    return out[0], out[1]


@pytest.mark.parametrize("snapshot_hours", [24.0, 0.0], ids=["from-a-snapshot", "from-genesis"])
def test_a_lost_station_is_rebuilt_from_the_bucket(seaweed: Seaweed, tmp_path: Path, snapshot_hours: float) -> None:
    cfg = cfg_for(seaweed, seaweed.bucket(), snapshot_hours)
    conf, data = conf_file(cfg, tmp_path / "c.toml"), tmp_path / "data"
    live_a_while(tmp_path, cfg, data)
    footage_before, cases_before = listings(conf, data)
    assert len(footage_before) == 3 and [c["case_no"] for c in cases_before] == ["R-1", "R-2"]
    shutil.rmtree(data)

    new = tmp_path / "rebuilt"
    r = run_evidock("--config", conf, "reindex", "--from-store", "--json", data_dir=new)
    assert r.code == 0, r.out + r.err
    doc = json.loads(r.out)
    assert doc["audit_ok"] and doc["missing"] == [] and doc["approximate"] == [] and doc["station"] == "st-r"
    if snapshot_hours:
        assert doc["snapshot"].startswith("catalog/st-r/") and 0 < doc["snapshot_rows"] < doc["rows"]
        assert doc["unaudited_lost_after"] is not None
    else:
        assert doc["snapshot"] is None and doc["snapshot_rows"] == 0 and doc["replayed"] == doc["rows"]
    assert listings(conf, new) == (footage_before, cases_before)
    v = run_evidock("--config", conf, "audit", "verify", "--json", data_dir=new)
    assert v.code == 0, v.out + v.err
    # no object was downloaded, and the store check finds each in the bucket (the local cache)
    assert not any(p.is_file() for p in (new / "objects").rglob("*"))
    v = run_evidock("--config", conf, "verify", "--json", data_dir=new)
    assert v.code == 0 and v.json()["in_bucket"] == 3, v.out + v.err
    # the station carries on: its next pass writes only the rows after the bucket's chain
    st = build_context(cfg, new)
    with Catalog(new) as cat:
        up = run_queue(st, cat)
        assert (up.uploaded, up.waiting, up.segments) == (0, 0, 1), up.to_json()
        held = cat.conn.execute("SELECT COUNT(*) FROM legal_holds").fetchone()[0]
        assert held == 0 and cat.conn.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 4


def test_a_reindex_refuses_a_taken_data_dir_and_a_tampered_segment(seaweed: Seaweed, tmp_path: Path) -> None:
    bucket = seaweed.bucket()
    cfg = cfg_for(seaweed, bucket, 0.0)
    conf, data = conf_file(cfg, tmp_path / "c.toml"), tmp_path / "data"
    live_a_while(tmp_path, cfg, data)
    r = run_evidock("--config", conf, "reindex", "--from-store", data_dir=data)
    assert r.code == 2 and "already holds a catalog" in r.err, r.out + r.err
    assert (data / "catalog.sqlite").exists()

    s3, key = seaweed.client(), segment_key("st-r", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    at = body.index(BADGE.encode()) + 1  # inside the details of the first row that names the officer
    s3.put_object(Bucket=bucket, Key=key, Body=body[:at] + b"9" + body[at + 1:])  # one byte of one row
    new = tmp_path / "rebuilt"
    r = run_evidock("--config", conf, "reindex", "--from-store", data_dir=new)
    assert r.code == 2 and key in r.err and "was edited" in r.err, r.out + r.err
    assert not (new / "catalog.sqlite").exists()
