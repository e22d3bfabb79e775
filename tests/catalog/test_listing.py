"""The footage listing at scale (issue 19): filters that are indexed queries, keyset pages that
give every row once while rows are added, a JSON listing streamed in bounded memory.

The catalogs come from the benchmarks' generator (benchmarks/catalog_gen.py), which writes
through the catalog library as the ingest does; the big one without fsync (a fixture only)."""

from __future__ import annotations

import json

import sys
from pathlib import Path

import pytest
from conftest import REPO, run_evidock

from daemon.cases import register
from daemon.cases.listing import FootageQuery, footage_sql, iter_footage
from daemon.catalog.db import Catalog

sys.path.insert(0, str(REPO / "benchmarks"))
import catalog_gen  # noqa: E402
import peak  # noqa: E402

DEADLINE = 2


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("listing") / "data"
    catalog_gen.build(d, 1200, recorders=6, per_dock=40, durable=False)
    with Catalog(d) as c:
        register.open_case(c, {"case_no": "C-1", "party": "甲", "handlers": ["100002"],
                               "opened_at": "2000-01-01T00:00:00Z"}, "Asia/Shanghai")
    return d


def all_rows(d: Path) -> list[dict]:
    with Catalog(d) as c:
        return list(iter_footage(c, DEADLINE))


def recorded(r: dict) -> str:
    return r["recorded_at_corrected"] or r["recorded_at"]


QUERIES = {
    "officer": FootageQuery(officer="100003"),
    "device": FootageQuery(device="GEN00001"),
    "officer+since": FootageQuery(officer="100003", since="2026-01-01T00:00:00+00:00"),
    "device+since+until": FootageQuery(device="GEN00002", since="2000-01-01T00:00:00+00:00",
                                       until="2100-01-01T00:00:00+00:00"),
    "since": FootageQuery(since="2000-01-01T00:00:00+00:00"),
    "case": FootageQuery(case_no="C-1"),
    "kind": FootageQuery(kind="video"),
    "officer+limit+after": FootageQuery(officer="100003", limit=100, after=10),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_filtered_listing_uses_an_index(catalog_dir: Path, name: str) -> None:
    sql, args = footage_sql(QUERIES[name])
    with Catalog(catalog_dir) as c:
        plan = [r[3] for r in c.conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
    # "SCAN f" (without an index) reads every footage row; SEARCH, or a SCAN of a covering index, do not
    scans = [p for p in plan if p.startswith("SCAN f") and "USING" not in p]
    assert not scans, plan
    assert any("INDEX" in p or "PRIMARY KEY" in p for p in plan), plan


def test_filters_give_exactly_the_rows_they_name(catalog_dir: Path) -> None:
    with Catalog(catalog_dir) as c:
        got = {name: [r["id"] for r in iter_footage(c, DEADLINE, q)] for name, q in QUERIES.items()}
    rows = all_rows(catalog_dir)
    since = "2026-01-01T00:00:00+00:00"
    want = {
        "officer": [r["id"] for r in rows if r["officer"] == "100003"],
        "device": [r["id"] for r in rows if r["device"] == "GEN00001"],
        "officer+since": [r["id"] for r in rows if r["officer"] == "100003" and recorded(r) >= since],
        "device+since+until": [r["id"] for r in rows if r["device"] == "GEN00002"],
        "since": [r["id"] for r in rows],
        "case": [r["id"] for r in rows if "C-1" in r["cases"]],  # filed by `case open` (its handler's footage)
        "kind": [r["id"] for r in rows if r["kind"] == "video"],
        "officer+limit+after": [r["id"] for r in rows if r["officer"] == "100003" and r["id"] > 10][:100],
    }
    assert got == want
    assert all(want.values()) and len(want["case"]) < len(rows)
    with Catalog(catalog_dir) as c:
        unfiled = [r["id"] for r in iter_footage(c, DEADLINE, FootageQuery(unfiled=True))]
    assert unfiled == [r["id"] for r in rows if not r["cases"]]


def test_pages_give_every_row_once_while_rows_are_added(tmp_path: Path) -> None:
    d = tmp_path / "data"
    catalog_gen.build(d, 500, recorders=3, per_dock=25, durable=False)
    before = [r["id"] for r in all_rows(d)]
    seen: list[int] = []
    cursor = None
    while True:
        with Catalog(d) as c:
            page = [r["id"] for r in iter_footage(c, DEADLINE, FootageQuery(limit=37, after=cursor))]
        if not page:
            break
        seen += page
        cursor = page[-1]
        if len(seen) < 200:
            catalog_gen.build(d, 10, recorders=3, per_dock=10, durable=False)  # a docking meanwhile
    assert len(seen) == len(set(seen))  # none twice
    assert set(before) <= set(seen)  # none of those there at the start missed
    assert seen == sorted(seen)  # a stable order
    # backwards from the end, the way a person pages from the most recent
    back: list[int] = []
    cursor = None
    while True:
        with Catalog(d) as c:
            q = FootageQuery(limit=50, before=cursor, latest=cursor is None)
            page = [r["id"] for r in iter_footage(c, DEADLINE, q)]
        if not page:
            break
        back = page + back
        cursor = page[0]
    assert back == sorted(seen)


def test_the_cli_pages_for_people_and_streams_json(catalog_dir: Path) -> None:
    def evidock_at(d: Path, *args: str):  # noqa: ANN202
        return run_evidock(*args, data_dir=d)

    r = evidock_at(catalog_dir, "footage", "list")
    assert r.code == 0, r.err
    assert "--before" in r.err
    r = evidock_at(catalog_dir, "footage", "list", "--officer", "100003", "--limit", "5", "--json")
    page = r.json()
    assert len(page) == 5 and {x["officer"] for x in page} == {"100003"}
    r2 = evidock_at(catalog_dir, "footage", "list", "--officer", "100003", "--limit", "5", "--after",
                    str(page[-1]["id"]), "--json")
    assert r2.json()[0]["id"] > page[-1]["id"]
    full = evidock_at(catalog_dir, "footage", "list", "--json")
    assert [x["id"] for x in full.json()] == [x["id"] for x in all_rows(catalog_dir)]
    # a page for people from a cursor is the page after it, and says how to go on, not "the most recent"
    ids = [x["id"] for x in full.json()]
    r = evidock_at(catalog_dir, "footage", "list", "--after", str(ids[99]))
    assert r.code == 0 and f"--after {ids[149]}" in r.err and "--before" not in r.err, r.err
    assert str(ids[100]) in r.out.split() and str(ids[99]) not in r.out.split()


MEMORY_BOUND_MB = 150  # the target for a listing of everything
GROWTH_BOUND_MB = 8  # ten times the rows may not cost more than this
VERIFY_GROWTH_MB = 20  # verify: ten times the objects, a slice ten times the size (see its test)


def listing_peak_mb(d: Path, rows: int) -> float:
    """Peak memory of `footage list --json` in a process of its own, reading its output as it comes."""
    run = peak.Run("--data-dir", str(d), "footage", "list", "--json")
    n, last = 0, b""
    for line in run.lines():  # read as it comes: the listing streams
        if line.startswith(b'  {"id": '):
            n += 1
        last = line
    code, mb, err = run.finish()
    assert code == 0 and last == b"]\n", err
    assert n == rows
    return mb


def test_a_json_listing_streams_in_memory_that_does_not_grow_with_the_catalog(tmp_path: Path) -> None:
    # 20 k and 200 k rows, the size (the benchmark lists 1 M and 5 M)
    small, big = tmp_path / "small", tmp_path / "big"
    catalog_gen.build(small, 20_000, recorders=25, per_dock=1000, durable=False)
    catalog_gen.build(big, 200_000, recorders=25, per_dock=1000, durable=False)
    base, peak = listing_peak_mb(small, 20_000), listing_peak_mb(big, 200_000)
    assert peak < MEMORY_BOUND_MB, f"peak {peak:.0f} MB"
    assert peak - base < GROWTH_BOUND_MB, f"{base:.0f} MB for 20 k rows, {peak:.0f} MB for 200 k"
    # `audit verify` walks the chain (200 k entries, one per row, against 20 k) in the same bound
    base, peak = chain_peak_mb(small), chain_peak_mb(big)
    assert peak < MEMORY_BOUND_MB and peak - base < GROWTH_BOUND_MB, f"{base:.0f} MB, then {peak:.0f} MB"


def test_verify_holds_the_catalog_against_the_chain_in_memory_that_does_not_grow(tmp_path: Path) -> None:
    # `evidock verify`: the cross-check replays the chain a slice of hashes at a time, the object
    # walk reads the catalog in batches; a whole store (objects written) that checks clean
    small, big = tmp_path / "small", tmp_path / "big"
    catalog_gen.build(small, 2_000, recorders=25, per_dock=1000, durable=False, objects=True)
    catalog_gen.build(big, 20_000, recorders=25, per_dock=1000, durable=False, objects=True)
    base, peak_mb = verify_peak_mb(small, 2_000), verify_peak_mb(big, 20_000)
    # a slice holds at most CHUNK_OBJECTS objects whatever the catalog (here 125, then 1250); the
    # whole replay in memory cost 63 MB more for 20 k objects than for 2 k (284 MB at 60 k)
    assert peak_mb < MEMORY_BOUND_MB and peak_mb - base < VERIFY_GROWTH_MB, f"{base:.1f} MB, then {peak_mb:.1f} MB"


def verify_peak_mb(d: Path, objects: int) -> float:
    """Peak memory of `verify --json` in a process of its own; the store must check clean."""
    run = peak.Run("--data-dir", str(d), "verify", "--json")
    out = b"".join(run.lines())
    code, mb, err = run.finish()
    doc = json.loads(out)
    assert code == 0 and doc["checked"] == objects and not doc["mismatches"], err + out.decode()[:2000]
    return mb


def chain_peak_mb(d: Path) -> float:
    """Peak memory of `audit verify --json` in a process of its own; the chain must check clean."""
    run = peak.Run("--data-dir", str(d), "audit", "verify", "--json")
    out = b"".join(run.lines())
    code, mb, err = run.finish()
    assert code == 0 and json.loads(out)["ok"], err
    return mb


def test_case_list_filters_and_pages(tmp_path: Path) -> None:
    from daemon.cases.records import list_cases

    d = tmp_path / "data"
    with Catalog(d) as c:
        for i in range(25):
            register.open_case(c, {"case_no": f"K-{i:03}", "party": "乙", "handlers": [f"0100{i % 3}"],
                                   "opened_at": f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z"}, "UTC")
        every = [r["case_no"] for r in list_cases(c)]
        assert len(every) == 25
        pages, cursor = [], None
        while page := [r["case_no"] for r in list_cases(c, limit=7, after=cursor)]:
            pages += page
            cursor = page[-1]
        assert pages == every
        mine = [r["case_no"] for r in list_cases(c, officer="01001")]
        assert mine == [r["case_no"] for r in list_cases(c) if r["handlers"] == ["01001"]] and mine
        spring = [r["case_no"] for r in list_cases(c, since="2026-03-01T00:00:00+00:00",
                                                    until="2026-05-01T00:00:00+00:00")]
        assert spring and all(r["opened_at"][:7] in ("2026-03", "2026-04") for r in list_cases(c)
                              if r["case_no"] in spring)
        assert [r["case_no"] for r in list_cases(c, limit=5, latest=True)] == every[-5:]
        assert [r["case_no"] for r in list_cases(c, limit=5, before=every[-5])] == every[-10:-5]
        for query in ({"officer": "01001"}, {"since": "2026-03-01T00:00:00+00:00"}):
            seen: list[str] = []  # the listing's own statements, as SQLite ran them (values bound)
            c.conn.set_trace_callback(seen.append)
            try:
                list(list_cases(c, limit=10, **query))
            finally:
                c.conn.set_trace_callback(None)
            sql = next(q for q in seen if q.lstrip().startswith("SELECT c.case_no"))
            plan = [r[3] for r in c.conn.execute("EXPLAIN QUERY PLAN " + sql)]
            assert not [p for p in plan if p.startswith("SCAN c") and "USING" not in p], (query, plan)


@pytest.mark.parametrize("filters", [{"event": "object.ingest"}, {"subject": "case:C-1"},
                                     {"since": "2026-01-01T00:00:00+00:00"}])
def test_the_audit_listing_filters_by_index_and_pages(catalog_dir: Path, filters: dict) -> None:
    from daemon.evidence.auditlog import rows, rows_sql

    with Catalog(catalog_dir) as c:
        every = [r["id"] for r in rows(c, **filters)]
        want = [r["id"] for r in rows(c) if all(
            (r["at"] >= v if k == "since" else r[k] == v) for k, v in filters.items())]
        assert every == want
        pages, cursor = [], None
        while page := [r["id"] for r in rows(c, limit=333, after=cursor, **filters)]:
            pages += page
            cursor = page[-1]
        assert pages == every
        plan = [r[3] for r in c.conn.execute("EXPLAIN QUERY PLAN " + rows_sql(**filters, limit=50)[0],
                                             rows_sql(**filters, limit=50)[1])]
        assert not [p for p in plan if p.startswith("SCAN audit") and "USING" not in p], plan
