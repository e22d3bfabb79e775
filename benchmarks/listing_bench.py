"""The footage listing on a big catalog (issue 19): a filtered page, everything as JSON, overdue.

A catalog of ``--rows`` footage rows from ``--officers`` officers (one recorder each, 50 files a
docking, three dockings a day) is built through the catalog library (benchmarks/catalog_gen.py,
without fsync: a benchmark fixture). Then:

- `footage list --officer X --since T --limit 100` in this process (the query and its rendering
  as the CLI renders it), ``--queries`` times with random officers and days: p50 and p99; and the
  whole CLI call (a new process; its interpreter start-up and imports alone are ~0.3-0.5 s here);
- `footage list --json` of everything in a process of its own: rows per second and its peak
  memory (its VmHWM, benchmarks/peak.py), against Python's sqlite3 reading the same rows
  (``SELECT * FROM footage``) as the baseline;
- `case open` with one handler (its filing), in this process;
- `footage overdue` (a new process) and the catalog's size on disk per million rows.

Targets (issue 19): the page p50/p99 < 50 ms; the JSON listing's peak < 150 MB; overdue < 1 s;
case open < 1 s.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def run(data: Path, *args: str) -> tuple[float, float, int]:
    """A CLI call in a process of its own: seconds, its own peak MB (benchmarks/peak.py), bytes printed."""
    import peak

    t0 = time.perf_counter()
    r = peak.Run("--data-dir", str(data), *args)
    n = sum(len(line) for line in r.lines())
    code, mb, err = r.finish()
    assert code in (0, 1), (args, code, err[-2000:])
    return time.perf_counter() - t0, mb, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--officers", type=int, default=200)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    import catalog_gen

    from daemon.cases.listing import FootageQuery, iter_footage
    from daemon.catalog.db import Catalog
    from daemon.cli.footage_cmd import footage_table
    from daemon.clock import iso, now_utc

    work = a.dir or Path(tempfile.mkdtemp(prefix="evidock-listing-bench-", dir="/var/tmp"))
    try:
        data = work / "data"
        t0 = time.perf_counter()
        catalog_gen.build(data, a.rows, recorders=a.officers, per_dock=50, durable=False)
        built = time.perf_counter() - t0
        with sqlite3.connect(data / "catalog.sqlite") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = sum(p.stat().st_size for p in data.glob("catalog.sqlite*"))
        print(f"catalog: {a.rows} footage rows, {a.officers} officers, built in {built:.0f} s "
              f"({a.rows / built:.0f} rows/s); {size / 1e6:.0f} MB on disk, {size / 1e6 / (a.rows / 1e6):.0f} MB "
              f"per million rows")
        rng = random.Random(7)
        times = []
        with Catalog(data) as catalog:
            for _ in range(a.queries):
                badge = str(100000 + rng.randrange(a.officers))
                since = iso(now_utc() - timedelta(days=rng.randrange(1, 30)))
                t = time.perf_counter()
                rows = list(iter_footage(catalog, 2, FootageQuery(officer=badge, since=since, limit=100)))
                footage_table(rows, "Asia/Shanghai")
                times.append(time.perf_counter() - t)
        times.sort()
        p50, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
        print(f"footage list --officer X --since T --limit 100, in-process: p50 {p50 * 1e3:.1f} ms, "
              f"p99 {p99 * 1e3:.1f} ms (target < 50 ms)")
        cli, _, _ = run(data, "footage", "list", "--officer", "100001", "--since", "2000-01-01", "--limit", "100")
        start, _, _ = run(data, "--help")
        print(f"  the whole CLI call: {cli:.2f} s (of which interpreter start-up and imports, `evidock --help`: "
              f"{start:.2f} s)")
        t_json, peak, out = run(data, "footage", "list", "--json")
        t0 = time.perf_counter()
        with sqlite3.connect(data / "catalog.sqlite") as db:
            for _row in db.execute("SELECT * FROM footage"):
                pass
        t_base = time.perf_counter() - t0
        print(f"footage list --json of everything: {t_json:.1f} s, {a.rows / t_json:.0f} rows/s, {out / 1e6:.0f} MB "
              f"printed, peak memory {peak:.0f} MB (target < 150 MB); Python's sqlite3 reading the rows: {t_base:.1f} s "
              f"({t_json / t_base:.1f}x)")
        from daemon.cases import register

        with Catalog(data) as catalog:
            t = time.perf_counter()
            opened = now_utc() - timedelta(days=10)
            register.open_case(catalog, {"case_no": "BENCH-1", "party": "甲", "handlers": ["100001"],
                                         "opened_at": iso(opened), "closed_at": iso(opened + timedelta(days=3))}, "UTC")
            t_case = time.perf_counter() - t
            filed = catalog.conn.execute("SELECT COUNT(*) FROM footage_cases WHERE case_no = 'BENCH-1'").fetchone()[0]
        print(f"case open (one handler, a 3-day window, {filed} recordings filed), in-process: {t_case:.2f} s "
              f"(target < 1 s)")
        t_over, peak_over, _ = run(data, "footage", "overdue", "--json")
        print(f"footage overdue --json: {t_over:.1f} s, peak {peak_over:.0f} MB (target < 1 s; every generated row "
              f"is unfiled and overdue, a worst case)")
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
