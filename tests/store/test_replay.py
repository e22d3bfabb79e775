"""The replay of ``evidock reindex`` (daemon.store.replay), from genesis, for the events the
bucket test does not make: activities, manual filing and unfiling, ambiguity, pooled recorders,
retention deletions. A station's whole chain is replayed onto a fresh catalog; the objects'
provenance is what the upload queue would have put as metadata (``uploads.provenance``), so the
replay needs no bucket here. The rebuilt catalog must list the same footage and cases, hold the
same activities, assignments, blocks and tombstones, and pass ``audit verify`` and the
catalog-against-the-chain check of ``evidock verify``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from support.filing_helpers import BADGE, OTHER, footage_ids, ingest_clips, t

from daemon.cases import activities, filing, register, retention
from daemon.cases.listing import list_footage
from daemon.cases.records import list_cases
from daemon.catalog import devices, officers
from daemon.catalog.db import Catalog
from daemon.config import Config, RetentionConfig
from daemon.context import build_context
from daemon.evidence import audit
from daemon.evidence.auditlog import check_chain
from daemon.evidence.store import LocalObjectStore
from daemon.evidence.verify import VerifyReport, cross_check
from daemon.store.replay import Replay
from daemon.store.segments import COLUMNS
from daemon.store.uploads import provenance

TZ = "UTC"
TABLES = {  # table -> the columns a replay gives back as they were
    "case_activities": "id, case_no, kind, start_at, end_at, all_handlers, handlers_key, source, created_by",
    "case_activity_handlers": "activity_id, badge",
    "officer_assignments": "id, device_serial, badge, from_at, until_at, assigned_by",
    "filing_blocks": "footage_id, case_no, blocked_by, reason",
    "footage_cases": "footage_id, case_no, filed_at, filed_by, how, reason",
    "retention_deleted": "sha256, footage_id, size, officer, device, source_path, recorded_at, ingested_at, cases, rule,"
                         " reason, plan_id, deleted_by",
    "officers": "badge, name, unit, user",
    "devices": "serial, officer_badge",
    "sessions": "id, device_serial, officer_badge, source, clock_drift_s, status, files_stored, files_duplicate",
    "sightings": "sha256, session_id, device_serial, officer_badge, source_path, source_path_raw, size, mtime",
}


def state(cat: Catalog) -> dict[str, Any]:
    got: dict[str, Any] = {t: cat.conn.execute(f"SELECT {cols} FROM {t} ORDER BY 1, 2").fetchall()
                           for t, cols in TABLES.items()}
    got["footage"] = list_footage(cat, 2)
    got["cases"] = list(list_cases(cat))
    got["officers_registered"] = [r[0] for r in cat.conn.execute(
        "SELECT badge FROM officers WHERE registered_at IS NOT NULL ORDER BY badge")]
    return got


def test_a_whole_chain_replayed_gives_the_same_catalog(tmp_path: Path) -> None:
    data, far = tmp_path / "data", t("2200-01-01 00:00:00")
    with Catalog(data) as c:
        officers.add_officer(c, BADGE, "王五", "一中队")
        officers.add_officer(c, "010778", "赵六")
        officers.edit_officer(c, "010778", user="wangwu")  # a login moved to another badge (issue 20)
        officers.edit_officer(c, "010778", user=None)
        officers.edit_officer(c, BADGE, user="wangwu")
        devices.register_device(c, "POOL-1", "by staff")
        officers.assign(c, "POOL-1", OTHER, from_at=t("2026-11-20 00:00:00"))
        officers.assign(c, "POOL-1", BADGE, from_at=t("2026-11-20 12:00:00"))  # closes the first one
        for no in ("A-1", "A-2"):
            register.open_case(c, {"case_no": no, "party": "甲", "handlers": [BADGE], "opened_at": "2026-11-19T00:00:00Z"},
                               TZ)
        activities.add_activity(c, {"case_no": "A-1", "kind": "现场检查", "start": "2026-11-20T09:00:00Z",
                                    "end": "2026-11-20T10:00:00Z"}, TZ)
    ingest_clips(data, tmp_path / "v1", {"in_activity.mp4": t("2026-11-20 09:30:00"),
                                         "both_cases.mp4": t("2026-11-20 15:00:00")})
    ingest_clips(data, tmp_path / "v3", {"pooled.mp4": t("2026-11-20 13:00:00")}, device="POOL-1", officer=None)
    ingest_clips(data, tmp_path / "v2", {"old_unfiled.mp4": t("2025-01-10 00:00:00")}, officer="010777", device="ZFY-4")
    ids = footage_ids(data)
    with Catalog(data) as c:
        filing.file_footage(c, [ids["both_cases.mp4"]], "A-2", "the second case, by hand")
        filing.unfile_footage(c, ids["in_activity.mp4"], "A-1", "not this one after all")
        register.edit_case(c, "A-2", {"closed_at": "2026-11-30T00:00:00Z"}, TZ)
        retention.set_hold(c, [ids["pooled.mp4"]], "复议")
        # the metadata the upload queue puts (the bucket keeps it after retention removed the object here)
        meta = {sha: {"evidock-station": "st-1", **{k: unquote(v) for k, v in provenance(c, sha).items()}}
                for (sha,) in c.conn.execute("SELECT sha256 FROM objects")}
        done = retention.apply(c, build_context(Config(), data), RetentionConfig(), now=far)
        assert [d["footage"] for d in done.deleted] == [ids["old_unfiled.mp4"]]
        before = state(c)
        chain = [dict(zip(COLUMNS, r)) for r in c.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id")]
    assert {"case.activity", "device.assign", "footage.unfile", "footage.ambiguous", "case.close",
            "object.delete"} <= {r["event"] for r in chain}
    assert before["filing_blocks"] and before["retention_deleted"] and len(before["officer_assignments"]) == 2

    new = tmp_path / "rebuilt"
    with Catalog(new) as c:
        r = Replay(c, "st-1", lambda sha: {"Metadata": meta[sha]} if sha in meta else None)
        with c.transaction():
            for row in chain:
                r.apply(row)
            r.finish()
        audit.write_anchor(c)
        assert (r.applied, r.approximate, r.missing) == (len(chain), [], {})
        assert set(r.not_rebuilt) <= {"job.start", "job.end"}, r.not_rebuilt
        after = state(c)
        assert check_chain(c).ok
        rep = VerifyReport()
        cross_check(c, LocalObjectStore(new), rep)
        assert rep.mismatches == [], json.dumps(rep.to_json()["mismatches"], ensure_ascii=False)
        assert c.conn.execute("SELECT object_state FROM retention_deleted").fetchall() == [("removed",)]
    for key in before:
        assert after[key] == before[key], key
