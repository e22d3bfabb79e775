"""Filing after a case change looks only at the case's officers' footage inside its window (and
its activities'), widened by a day — not at years of their footage (issue 19) — and decides
exactly as a refile of everything would. The history comes from the benchmarks' generator, through
the catalog library."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from conftest import REPO

from daemon.cases import filing, register
from daemon.cases.filing_rules import FilingRules
from daemon.catalog.db import Catalog
from daemon.clock import from_iso, iso

sys.path.insert(0, str(REPO / "benchmarks"))
import catalog_gen  # noqa: E402

BADGE = "100000"


def test_a_case_opened_files_its_window_and_reads_only_around_it(tmp_path: Path) -> None:
    d = tmp_path / "data"
    catalog_gen.build(d, 6000, recorders=2, per_dock=50, durable=False)  # 20 days of two officers
    with Catalog(d) as c:
        times = [from_iso(t) for (t,) in c.conn.execute(
            "SELECT recorded_at_corrected FROM footage WHERE officer_badge = ? ORDER BY id", (BADGE,))]
        # a window that starts and ends in the middle of dockings (segments cross its edges)
        opened, closed = times[len(times) // 2] + timedelta(minutes=1), times[len(times) // 2 + 120]
        res = register.open_case(c, {"case_no": "W-1", "party": "甲", "handlers": [BADGE], "opened_at": iso(opened),
                                     "closed_at": iso(closed)}, "UTC")
        filed = {r[0] for r in c.conn.execute("SELECT footage_id FROM footage_cases WHERE case_no = 'W-1'")}
        assert filed and {f["footage"] for f in res.filing.filed} == filed
        with c.transaction() as conn:
            scoped = filing._scoped_rows(conn, [BADGE], ["W-1"], filing.case_scope(conn, ["W-1"]))
        total = c.conn.execute("SELECT COUNT(*) FROM footage WHERE officer_badge = ?", (BADGE,)).fetchone()[0]
        assert len(scoped) < total / 5  # a window of ~1 day (± 1) of 20: the rest is never read
        assert filed <= {r["id"] for r in scoped}
        # the scoped decision is the one a refile of everything makes: nothing left to change
        again = filing.refile_all(c, rules=FilingRules())
        assert not again.filed and not again.unfiled, (again.filed[:3], again.unfiled[:3])
        # an edit that moves the window away unfiles what the old window held, and only that
        later = times[-60]
        res = register.edit_case(c, "W-1", {"opened_at": iso(later - timedelta(hours=1)), "closed_at": iso(later)}, "UTC")
        assert {f["footage"] for f in res.filing.unfiled} == filed
        assert not filing.refile_all(c, rules=FilingRules()).filed


def _csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\r\n".join(",".join(r) for r in rows) + "\r\n", encoding="utf-8-sig")
    return path


def _at(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")  # as the case system writes it (station time: UTC here)


def test_an_import_refiles_only_its_cases_officers_around_their_windows(tmp_path: Path) -> None:
    from daemon.cases.activity_import import import_csv

    d = tmp_path / "data"
    catalog_gen.build(d, 6000, recorders=3, per_dock=50, durable=False)  # 13 days of three officers
    a, b, c3 = BADGE, "100001", "100002"
    with Catalog(d) as c:
        times = [from_iso(t) for (t,) in c.conn.execute(
            "SELECT recorded_at_corrected FROM footage WHERE officer_badge = ? ORDER BY id", (a,))]
        mid, late = times[len(times) // 2], times[-200]
        header = ["案号", "当事人", "承办人警号", "立案时间", "结案时间"]
        # I-1 and I-2 overlap for officer A (ambiguous there); I-3 another officer's; I-4 no footage at all
        v1 = _csv(tmp_path / "cases1.csv", [header,
            ["I-1", "甲", a, _at(mid), _at(mid + timedelta(days=1))],
            ["I-2", "乙", f"{a};{b}", _at(mid + timedelta(hours=12)), _at(mid + timedelta(days=2))],
            ["I-3", "丙", c3, _at(mid - timedelta(days=2)), _at(mid - timedelta(days=1))],
            ["I-4", "丁", b, "2001-01-01 00:00", "2001-01-02 00:00"]])
        rep = import_csv(c, v1, "UTC")
        assert rep.created == ["I-1", "I-2", "I-3", "I-4"] and rep.filing.filed and rep.filing.ambiguous
        with c.transaction() as conn:
            changed = [(r[0], set(r[1].split(";")), []) for r in
                       [("I-1", a), ("I-2", f"{a};{b}"), ("I-3", c3), ("I-4", b)]]
            scoped = filing._scoped_rows(conn, [a, b, c3], [], filing.officer_scopes(conn, changed))
        assert len(scoped) < 6000 / 3  # days around the windows, not the officers' whole history
        assert not (again := filing.refile_all(c, rules=FilingRules())).filed and not again.unfiled, again.filed[:3]
        # an activity of I-2 inside the overlap decides the ambiguous footage there
        acts = _csv(tmp_path / "acts.csv", [["案号", "活动", "开始时间", "结束时间", "承办人警号"],
            ["I-2", "现场检查", _at(mid + timedelta(hours=13)), _at(mid + timedelta(hours=15)), a]])
        rep = import_csv(c, acts, "UTC")
        assert rep.filing.filed and {f["case"] for f in rep.filing.filed} == {"I-2"}
        assert not (again := filing.refile_all(c, rules=FilingRules())).filed and not again.unfiled, again.filed[:3]
        # a re-import that moves I-1 late and adds a handler to I-3: the old window's links go, only those
        before = {r[0] for r in c.conn.execute("SELECT footage_id FROM footage_cases WHERE case_no = 'I-1'")}
        v2 = _csv(tmp_path / "cases2.csv", [header,
            ["I-1", "甲", a, _at(late), _at(late + timedelta(hours=6))],
            ["I-2", "乙", f"{a};{b}", _at(mid + timedelta(hours=12)), _at(mid + timedelta(days=2))],
            ["I-3", "丙", f"{c3};{b}", _at(mid - timedelta(days=2)), _at(mid - timedelta(days=1))]])
        rep = import_csv(c, v2, "UTC")
        assert [u["case"] for u in rep.updated] == ["I-1", "I-3"] and rep.unchanged == ["I-2"]
        assert before <= {u["footage"] for u in rep.filing.unfiled if u["case"] == "I-1"}
        assert not (again := filing.refile_all(c, rules=FilingRules())).filed and not again.unfiled, again.filed[:3]
