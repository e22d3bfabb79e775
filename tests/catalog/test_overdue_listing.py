"""The overdue list at scale (issue 19): one indexed query on the unfiled rows (``footage.filed``,
kept by triggers in the transaction that files or unfiles, backfilled by migration overdue-013),
with the footage listing's filters and keyset pages, and its JSON streamed.

The catalogs come from the benchmarks' generator (benchmarks/catalog_gen.py), through the catalog
library as the ingest writes them (without fsync: a fixture only)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import REPO, run_evidock

from daemon.cases import filing, register, reports
from daemon.cases.listing import FootageQuery, footage_sql, iter_footage
from daemon.catalog.db import Catalog

sys.path.insert(0, str(REPO / "benchmarks"))
import catalog_gen  # noqa: E402

DEADLINE = 2
LATER = datetime(2099, 1, 1, tzinfo=timezone.utc)  # every unfiled recording is overdue by then
SINCE = "2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("overdue") / "data"
    catalog_gen.build(d, 1200, recorders=6, per_dock=40, durable=False)
    with Catalog(d) as c:
        register.open_case(c, {"case_no": "C-1", "party": "甲", "handlers": ["100002"],
                               "opened_at": "2000-01-01T00:00:00Z"}, "Asia/Shanghai")
        register.open_case(c, {"case_no": "C-2", "party": "乙", "handlers": ["100005"],
                               "opened_at": "2000-01-01T00:00:00Z", "closed_at": "2000-01-02T00:00:00Z"}, "UTC")
        # by hand: one row filed to two cases (footage.case_no NULL, yet filed), one taken out of its case
        two = c.conn.execute("SELECT MIN(id) FROM footage WHERE officer_badge = '100002'").fetchone()[0]
        filing.file_footage(c, [two], "C-2", "seen at both sites")
        out = c.conn.execute("SELECT MAX(id) FROM footage WHERE officer_badge = '100002'").fetchone()[0]
        filing.unfile_footage(c, out, "C-1", "another site")
    return d


def expected(d: Path, keep=lambda r: True) -> list[int]:  # noqa: ANN001 — a predicate on a listing row
    """The overdue rows as the footage listing judges them (row by row), in id order."""
    with Catalog(d) as c:
        return [r["id"] for r in iter_footage(c, DEADLINE, now=LATER) if r["overdue"] and keep(r)]


QUERIES = {
    "none": (FootageQuery(), lambda r: True),
    "latest page": (FootageQuery(limit=50, latest=True), None),
    "officer": (FootageQuery(officer="100003"), lambda r: r["officer"] == "100003"),
    "device+after": (FootageQuery(device="GEN00001", limit=10, after=5), None),
    "since": (FootageQuery(since=SINCE), lambda r: r["recorded_at_corrected"] >= SINCE),
    "officer+since+until": (FootageQuery(officer="100004", since=SINCE, until="2100-01-01T00:00:00+00:00"),
                            lambda r: r["officer"] == "100004"),
    "kind": (FootageQuery(kind="video"), lambda r: r["kind"] == "video"),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_the_overdue_list_is_an_indexed_query_on_the_unfiled_rows(catalog_dir: Path, name: str) -> None:
    q = QUERIES[name][0]
    with Catalog(catalog_dir) as c:
        for sql, args in (reports.overdue_sql(q, "2030-01-01"), reports.overdue_summary_sql(q, "2030-01-01")):
            plan = [r[3] for r in c.conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
            # no read of every footage row: the partial indexes hold only unfiled rows
            assert not [p for p in plan if p.startswith("SCAN f") and "USING" not in p], plan
            assert any(p.startswith(("SEARCH f USING", "SCAN f USING")) and "INDEX footage_unfiled_" in p
                       for p in plan), plan


def test_filed_is_kept_in_step_with_the_links(catalog_dir: Path) -> None:
    with Catalog(catalog_dir) as c:
        wrong = c.conn.execute("SELECT COUNT(*) FROM footage f WHERE f.filed !="
                               " EXISTS (SELECT 1 FROM footage_cases fc WHERE fc.footage_id = f.id)").fetchone()[0]
        several = c.conn.execute("SELECT COUNT(*) FROM footage WHERE filed = 1 AND case_no IS NULL").fetchone()[0]
        unfiled = c.conn.execute("SELECT COUNT(*) FROM footage WHERE filed = 0").fetchone()[0]
    assert wrong == 0 and several == 1 and 0 < unfiled < 1200


def test_filters_give_the_rows_the_listing_judges_overdue(catalog_dir: Path) -> None:
    with Catalog(catalog_dir) as c:
        for name, (q, keep) in QUERIES.items():
            if keep is None:
                continue
            rep = reports.overdue(c, DEADLINE, LATER, q)
            got = [f["id"] for f in rep.footage]
            assert got == expected(catalog_dir, keep) and got, name
            assert rep.count == len(got), name
        rep = reports.overdue(c, DEADLINE, LATER)
        by_officer = {o["officer"]: o["count"] for o in rep.officers}
        assert "100002" in by_officer and by_officer["100002"] == 1  # the one taken out of C-1
        assert reports.overdue_per_device(c, DEADLINE, LATER) == {
            f"GEN0000{b[-1]}": n for b, n in by_officer.items()}  # one recorder an officer
        page = [f["id"] for f in reports.overdue(c, DEADLINE, LATER, QUERIES["latest page"][0]).footage]
        assert page == expected(catalog_dir)[-50:]


def test_pages_give_every_overdue_row_once_while_rows_are_added(tmp_path: Path) -> None:
    d = tmp_path / "data"
    catalog_gen.build(d, 400, recorders=3, per_dock=25, durable=False)
    before = expected(d)
    seen: list[int] = []
    cursor = None
    while True:
        with Catalog(d) as c:
            page = [f["id"] for f in reports.overdue(c, DEADLINE, LATER, FootageQuery(limit=37, after=cursor)).footage]
        if not page:
            break
        seen += page
        cursor = page[-1]
        if len(seen) < 150:
            catalog_gen.build(d, 10, recorders=3, per_dock=10, durable=False)  # a docking meanwhile
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert set(before) <= set(seen) and set(seen) == set(expected(d))


def test_the_migration_sets_filed_for_a_catalog_from_before(tmp_path: Path) -> None:
    d = tmp_path / "data"
    catalog_gen.build(d, 200, recorders=2, per_dock=50, durable=False)
    with Catalog(d) as c:
        register.open_case(c, {"case_no": "M-1", "party": "丙", "handlers": ["100001"],
                               "opened_at": "2000-01-01T00:00:00Z"}, "UTC")
        filed = {r[0] for r in c.conn.execute("SELECT footage_id FROM footage_cases")}
        # back to the schema before overdue-013 (SQLite drops a column only once its indexes are gone)
        for kind, name in c.conn.execute("SELECT type, name FROM sqlite_master WHERE name LIKE 'footage_unfiled%'"
                                         " OR name LIKE 'footage_cases_%filed'").fetchall():
            c.conn.execute(f"DROP {kind.upper()} {name}")
        c.conn.execute("ALTER TABLE footage DROP COLUMN filed")
        c.conn.execute("DELETE FROM _migrations WHERE name = 'overdue-013'")
        c.conn.commit()
    with Catalog(d) as c:
        assert {r[0] for r in c.conn.execute("SELECT id FROM footage WHERE filed = 1")} == filed
        assert filed and len(filed) < 200
        rep = reports.overdue(c, DEADLINE, LATER)
        assert [f["id"] for f in rep.footage] == [i for i in expected(d) if i not in filed]


def test_the_cli_pages_for_people_and_streams_json(catalog_dir: Path) -> None:
    as_of = ("--as-of", "2099-01-01 00:00")
    r = run_evidock("footage", "overdue", *as_of, data_dir=catalog_dir)
    assert r.code == 1, r.err
    assert "officer 100003:" in r.out and "--before" in r.err
    assert len([line for line in r.out.splitlines() if "DCIM/" in line]) == 50
    r = run_evidock("footage", "overdue", *as_of, "--officer", "100003", "--limit", "5", "--json", data_dir=catalog_dir)
    doc = r.json()
    assert r.code == 1 and len(doc["footage"]) == 5 and {f["officer"] for f in doc["footage"]} == {"100003"}
    assert [o["officer"] for o in doc["officers"]] == ["100003"] and doc["count"] > 5
    r2 = run_evidock("footage", "overdue", *as_of, "--officer", "100003", "--limit", "5", "--after",
                     str(doc["footage"][-1]["id"]), "--json", data_dir=catalog_dir)
    assert r2.json()["footage"][0]["id"] > doc["footage"][-1]["id"]
    full = run_evidock("footage", "overdue", *as_of, "--json", data_dir=catalog_dir)
    lines = full.out.splitlines()
    assert sum(line.startswith('    {"id": ') for line in lines) == len(expected(catalog_dir))  # one row a line
    assert [f["id"] for f in json.loads(full.out)["footage"]] == expected(catalog_dir)
    none = run_evidock("footage", "overdue", "--as-of", "2000-01-01 00:00", "--json", data_dir=catalog_dir)
    assert none.code == 0 and none.json() == {"as_of": "1999-12-31T16:00:00+00:00", "deadline_days": 2, "count": 0,
                                              "officers": [], "footage": []}


@pytest.mark.parametrize("q", [FootageQuery(unfiled=True), FootageQuery(unfiled=True, limit=50, latest=True),
                               FootageQuery(unfiled=True, officer="100003")])
def test_footage_list_unfiled_reads_the_unfiled_rows_by_index(catalog_dir: Path, q: FootageQuery) -> None:
    sql, args = footage_sql(q)
    with Catalog(catalog_dir) as c:
        plan = [r[3] for r in c.conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
        got = [r["id"] for r in iter_footage(c, DEADLINE, q)]
        every = [r for r in iter_footage(c, DEADLINE) if not r["cases"] and (q.officer is None or r["officer"] == q.officer)]
    assert not [p for p in plan if p.startswith("SCAN f") and "USING" not in p], plan
    assert got == [r["id"] for r in every][-(q.limit or len(every)):] and got
