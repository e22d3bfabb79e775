"""The review ledger (art. 16): a reproducible sample, completeness per case, findings, JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

from support.filing_helpers import BADGE, OTHER, audit_rows, footage_ids, ingest_clips, iso

from daemon.cases import filing, register
from daemon.cases.review import draw
from daemon.catalog.db import Catalog

TZ = "Asia/Shanghai"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def ok(r):
    assert r.code == 0, (r.code, r.out, r.err)
    return r


def build(tmp_path: Path, data_dir: Path) -> dict[str, int]:
    """R-1: filed on time, one handler without footage, one in-window clip unfiled by hand;
    R-2: a backdated case, so its footage was filed 5 days after recording; R-3: no footage."""
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "R-1", "party": "某餐饮公司", "handlers": [BADGE, OTHER],
                            "opened_at": iso(NOW - timedelta(days=1))}, TZ)
        register.open_case(c, {"case_no": "R-3", "party": "某物流公司", "handlers": ["010666"],
                            "opened_at": iso(NOW - timedelta(days=1))}, TZ)
    ingest_clips(data_dir, tmp_path / "a", {"r1a.mp4": NOW - timedelta(hours=5), "r1b.mp4": NOW - timedelta(hours=4),
                                            "r1c.mp4": NOW - timedelta(hours=3)})
    ingest_clips(data_dir, tmp_path / "b", {"r2.mp4": NOW - timedelta(days=5)}, officer="010555", device="ZFY-2")
    ids = footage_ids(data_dir)
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "R-2", "party": "张某", "handlers": ["010555"],
                            "opened_at": iso(NOW - timedelta(days=6))}, TZ)
        filing.unfile_footage(c, ids["r1c.mp4"], "R-1", "recorded at lunch, not at the inspection")
    return ids


def test_sample_is_reproducible_and_measures_each_case(tmp_path: Path, data_dir: Path, evidock) -> None:
    build(tmp_path, data_dir)
    first = ok(evidock("review", "sample", "--cases", "2", "--seed", "7", "--json")).json()
    second = ok(evidock("review", "sample", "--cases", "2", "--seed", "7", "--json")).json()
    picked = [m["case_no"] for m in first["cases"]]
    assert picked == [m["case_no"] for m in second["cases"]] == draw(["R-1", "R-2", "R-3"], 2, 7)
    assert first["seed"] == 7 and first["population"] == 3 and second["sample"] == first["sample"] + 1
    everything = ok(evidock("review", "sample", "--cases", "10", "--json")).json()  # more than there are: all of them
    assert sorted(m["case_no"] for m in everything["cases"]) == ["R-1", "R-2", "R-3"]
    assert draw(["R-1", "R-2", "R-3"], 10, everything["seed"]) == [m["case_no"] for m in everything["cases"]]
    m = {x["case_no"]: x for x in everything["cases"]}
    r1, r2, r3 = m["R-1"], m["R-2"], m["R-3"]
    assert r1["footage_count"] == 2 and r1["filed_on_time"] is True and r1["late_count"] == 0 and r1["max_late_by_s"] == 0
    assert r1["party_labelled"] and r1["handler_labelled"] and r1["handlers_without_name"] == [BADGE, OTHER]
    assert [(c["badge"], c["footage"]) for c in r1["coverage"]] == [(BADGE, 2), (OTHER, 0)]
    assert r1["handlers_without_footage"] == [OTHER] and r1["unfiled_in_window"] == 1
    assert r1["coverage"][0]["first_recorded"] == iso(NOW - timedelta(hours=5))
    assert r1["coverage"][0]["last_recorded"] == iso(NOW - timedelta(hours=4))
    # R-2's footage was recorded 5 days before it was filed: 3 days past the 2-day deadline
    assert r2["footage_count"] == 1 and r2["filed_on_time"] is False and r2["late_count"] == 1
    # (NOW is fixed when the module loads; filing happens later in the run, so only a lower bound is exact)
    assert 3 * 86400 - 5 <= r2["max_late_by_s"] < 3 * 86400 + 3600
    assert 5 * 86400 - 5 <= r2["max_filing_delay_s"] < 5 * 86400 + 3600
    assert r3["footage_count"] == 0 and r3["filed_on_time"] is None and r3["handlers_without_footage"] == ["010666"]
    sampled = audit_rows(data_dir, "review.sample")
    assert [e["details"]["seed"] for e in sampled] == [7, 7, everything["seed"]]
    text = ok(evidock("review", "sample", "--cases", "1", "--seed", "1"))
    assert "seed 1" in text.err and "per handler" in text.out


def test_findings_and_the_ledger_as_json_and_csv(tmp_path: Path, data_dir: Path, evidock) -> None:
    build(tmp_path, data_dir)
    s = ok(evidock("review", "sample", "--cases", "3", "--seed", "2026", "--json")).json()
    r = ok(evidock("review", "record", "R-2", "--finding", "footage filed 5 days late; handler warned", "--json"))
    assert r.json()["sample"] == s["sample"]
    with Catalog(data_dir) as c:
        register.open_case(c, {"case_no": "R-9", "party": "某超市", "handlers": [BADGE], "opened_at": "2026-01-01"}, TZ)
    ok(evidock("review", "record", "R-9", "--finding", "not in any sample; checked on a complaint"))
    ledger = ok(evidock("review", "ledger", "--json")).json()
    assert [(e["sample"], e["case_no"]) for e in ledger] == [(s["sample"], m["case_no"]) for m in s["cases"]] + [(None, "R-9")]
    r2 = next(e for e in ledger if e["case_no"] == "R-2")
    assert [f["finding"] for f in r2["findings"]] == ["footage filed 5 days late; handler warned"]
    assert r2["seed"] == 2026 and r2["filed_on_time"] is False
    out = ok(evidock("review", "ledger", "--csv")).out
    assert out.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(out[1:])))
    assert [row["case_no"] for row in rows] == [e["case_no"] for e in ledger]
    r2row = next(row for row in rows if row["case_no"] == "R-2")
    assert r2row["filed_on_time"] == "false" and r2row["seed"] == "2026" and "handler warned" in r2row["findings"]
    r1row = next(row for row in rows if row["case_no"] == "R-1")
    assert r1row["coverage"] == f"{BADGE}:2;{OTHER}:0" and r1row["handlers_without_footage"] == OTHER
    text = ok(evidock("review", "ledger")).out
    assert "R-2" in text and "handler warned" in text
    assert evidock("review", "ledger", "--json", "--csv").code == 2
    findings = audit_rows(data_dir, "review.finding")
    assert [(e["subject"], e["details"]["sample"]) for e in findings] == [("case:R-2", s["sample"]), ("case:R-9", None)]


def test_review_errors(data_dir: Path, evidock) -> None:
    r = evidock("review", "sample", "--cases", "3")
    assert r.code == 2 and "no cases to review" in r.err
    r = evidock("--lang", "zh", "review", "sample", "--cases", "3")
    assert r.code == 2 and "没有可抽查的案件" in r.err and "no cases" not in r.err
    r = evidock("review", "record", "R-404", "--finding", "x")
    assert r.code == 2 and "no case 'R-404'" in r.err
    r = evidock("review", "sample", "--cases", "0")
    assert r.code == 2
    assert evidock("review", "ledger", "--json").json() == []
