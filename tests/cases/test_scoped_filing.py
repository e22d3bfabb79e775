"""Filing after a case change looks only at the case's officers' footage inside its window (and
its activities'), widened by a day — not at years of their footage (issue 19) — and decides
exactly as a refile of everything would. The history comes from the benchmarks' generator, through
the catalog library."""

from __future__ import annotations

import sys
from datetime import timedelta
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
