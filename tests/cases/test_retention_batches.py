"""Retention planning walks the catalog in keyset batches (issue 19): every statement that reads
footage reads one range of ids, the plan is the one a single read of everything gives, and its
memory does not grow with the catalog. The
catalog comes from the benchmarks' generator (through the catalog library, without fsync)."""

from __future__ import annotations

import sys
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import REPO

from daemon.cases import filing, register, retention
from daemon.catalog.db import Catalog
from daemon.config import RetentionConfig

sys.path.insert(0, str(REPO / "benchmarks"))
import catalog_gen  # noqa: E402

LATER = datetime(2099, 1, 1, tzinfo=timezone.utc)


def test_the_plan_walks_in_batches_and_decides_as_one_read_would(tmp_path: Path) -> None:
    d = tmp_path / "data"
    catalog_gen.build(d, 500, recorders=2, per_dock=50, durable=False)
    with Catalog(d) as c:
        register.open_case(c, {"case_no": "R-1", "party": "甲", "handlers": ["100000"],
                               "opened_at": "2000-01-01T00:00:00Z", "closed_at": "2090-01-01T00:00:00Z"}, "UTC")
        register.open_case(c, {"case_no": "R-2", "party": "乙", "handlers": ["100001"],
                               "opened_at": "2000-01-01T00:00:00Z"}, "UTC")
        first, last = c.conn.execute("SELECT MIN(id), MAX(id) FROM footage").fetchone()
        filing.unfile_footage(c, last, "R-2", "another site")  # one unfiled among the filed
        retention.set_hold(c, [first], "review")
        whole = retention._facts_of(c.conn, first, last)  # every row in one read: the reference
        seen: list[str] = []
        c.conn.set_trace_callback(seen.append)
        try:
            batched = list(retention.iter_facts(c.conn, batch=37))
        finally:
            c.conn.set_trace_callback(None)
        assert batched == whole and len(whole) == 500
        reads = [q for q in seen if " footage f " in q or "FROM footage " in q]
        assert len([q for q in reads if "BETWEEN" in q]) == 14  # ceil(500 / 37) ranges of ids
        assert all("BETWEEN" in q or "LIMIT 37" in q for q in reads), reads
        cfg = RetentionConfig(unfiled_keep_days=184, filed_keep_years=5)
        plan = retention.plan(c, cfg, LATER)
        want = {}
        for f in whole:
            rule, until = retention.decide(f, cfg)
            if until is not None and LATER >= until:
                want[f.footage_id] = rule.name
        assert {i.footage_id: i.rule for i in plan.delete} == want
        assert set(want.values()) == {"closed-case", "unfiled"} and first not in want
        assert sum(plan.kept.values()) + len(plan.delete) == 500 and plan.kept["open-case"] == 249


def test_the_plans_memory_does_not_grow_with_the_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Python's own allocations while planning (tracemalloc), on 1 k and on 5 k rows: a batch of 200
    # (instead of 2 000, so that both catalogs span several) bounds them, not the rows.
    monkeypatch.setattr(retention, "BATCH", 200)
    cfg = RetentionConfig()
    peaks = []
    for rows in (1000, 5000):
        d = tmp_path / f"data{rows}"
        catalog_gen.build(d, rows, recorders=5, per_dock=500, durable=False)
        with Catalog(d) as c:
            tracemalloc.start()
            try:
                plan = retention.plan(c, cfg)
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        assert plan.kept == {"unfiled": rows} and not plan.delete
    assert peaks[1] < peaks[0] * 1.5, peaks  # five times the rows, not five times the memory
