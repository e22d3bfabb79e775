"""The footage listing on a big catalog (issue 19): a filtered page, everything as JSON, overdue.

A catalog of ``--rows`` footage rows from ``--officers`` officers (one recorder each, 50 files a
docking, three dockings a day) and ``--cases`` cases (one handler each, a window of 2 to 8 hours,
their footage filed) is built through the catalog library (benchmarks/catalog_gen.py, without
fsync: a benchmark fixture). Then:

- `footage list --officer X --since T --limit 100` in this process (the query and its rendering
  as the CLI renders it), ``--queries`` times with random officers and days: p50 and p99; and the
  whole CLI call (a new process; its interpreter start-up and imports alone are ~0.3-0.5 s here);
- `footage list --json` of everything in a process of its own: rows per second and its peak
  memory (its VmHWM, benchmarks/peak.py), against Python's sqlite3 reading the same rows
  (``SELECT * FROM footage``) as the baseline;
- `case open` with one handler (its filing), in this process;
- `footage overdue`: its summary and latest page in this process, against the query it was before
  this issue (every footage row without a link, ``NOT EXISTS``, read by Python's sqlite3) as the
  baseline; the whole CLI call; `--json` of every overdue row (rows per second, peak memory);
- `devices` and `health`: one health record a generated docking (``catalog_gen.add_health``,
  through ``daemon.health.record``); a filtered page of each in this process (p50/p99), and their
  `--json` of everything (a new process: time, peak memory);
- `verify`'s cross-check of the catalog against the chain (a new process: objects per second,
  peak memory; ``--verify-only`` with ``--dir`` runs only this);
- `audit verify` of the whole chain (a new process: entries per second, peak memory);
- the catalog's size on disk per million rows.

``--dir D`` keeps the catalog in D (and reuses what it holds: only the missing rows are added).

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


def run(data: Path, *args: str, codes: tuple[int, ...] = (0, 1)) -> tuple[float, float, int]:
    """A CLI call in a process of its own: seconds, its own peak MB (benchmarks/peak.py), bytes printed."""
    import peak

    t0 = time.perf_counter()
    r = peak.Run("--data-dir", str(data), *args)
    n = sum(len(line) for line in r.lines())
    code, mb, err = r.finish()
    assert code in codes, (args, code, err[-2000:])
    return time.perf_counter() - t0, mb, n


def overdue_bench(data: Path, a: argparse.Namespace) -> None:
    """`footage overdue`: summary and latest page in-process against the query before issue 19."""
    from daemon.cases.listing import FootageQuery
    from daemon.cases.reports import overdue
    from daemon.catalog.db import Catalog
    from daemon.catalog.kinds import kinds_sql
    from daemon.clock import iso, now_utc

    due = "COALESCE(f.recorded_at_corrected, f.ingested_at)"
    cutoff = iso(now_utc() - timedelta(days=2))
    t0 = time.perf_counter()
    with sqlite3.connect(data / "catalog.sqlite") as db:  # the query before this issue, rows only
        n_before = sum(1 for _ in db.execute(
            f"SELECT f.id, f.sha256, f.officer_badge, o.name, {due}, f.device_serial, f.source_path, a.candidates,"
            " f.recorded_at_corrected, f.ingested_at FROM footage f LEFT JOIN officers o ON o.badge = f.officer_badge"
            " LEFT JOIN footage_ambiguous a ON a.footage_id = f.id"
            f" WHERE NOT EXISTS (SELECT 1 FROM footage_cases fc WHERE fc.footage_id = f.id) AND {due} < ?"
            f" AND {kinds_sql()} ORDER BY f.officer_badge, {due}, f.id", (cutoff,)))
    t_base = time.perf_counter() - t0
    times = []
    with Catalog(data) as catalog:
        for _ in range(5):
            t = time.perf_counter()
            rep = overdue(catalog, 2, q=FootageQuery(limit=50, latest=True))
            page = list(rep.footage)
            times.append(time.perf_counter() - t)
    t_page = statistics.median(times)
    print(f"footage overdue, summary ({len(rep.officers)} officers, {rep.count} rows overdue) and the latest page of "
          f"{len(page)}, in-process: {t_page * 1e3:.0f} ms (target < 1 s); the query before this issue (every "
          f"unlinked row, Python's sqlite3, {n_before} rows): {t_base:.2f} s ({t_base / t_page:.0f}x)")
    t_cli, peak_cli, _ = run(data, "footage", "overdue")
    print(f"  the whole CLI call (for people: summary and page): {t_cli:.2f} s, peak {peak_cli:.0f} MB")
    t_json, peak_json, out = run(data, "footage", "overdue", "--json")
    print(f"  footage overdue --json of all {rep.count} rows: {t_json:.1f} s, {rep.count / t_json:.0f} rows/s, "
          f"{out / 1e6:.0f} MB printed, peak {peak_json:.0f} MB (every generated row not filed is overdue: a worst case)")


def fleet_bench(data: Path, a: argparse.Namespace) -> None:
    """`devices` and `health`: a filtered page in-process (p50/p99), and `--json` of everything."""
    from daemon.catalog.db import Catalog
    from daemon.health_listing import DeviceQuery, HealthQuery, iter_devices, iter_history

    rng = random.Random(11)
    dev, hist = [], []
    with Catalog(data) as catalog:
        records = catalog.conn.execute("SELECT COUNT(*) FROM health").fetchone()[0]
        first_at = catalog.conn.execute("SELECT MIN(at) FROM health").fetchone()[0]
        for _ in range(a.queries):
            badge = str(100000 + rng.randrange(a.officers))
            t = time.perf_counter()
            list(iter_devices(catalog, DeviceQuery(officer=badge)))
            dev.append(time.perf_counter() - t)
            t = time.perf_counter()
            list(iter_history(catalog, HealthQuery(officer=badge, since=first_at, limit=100)))
            hist.append(time.perf_counter() - t)
    for name, ts in (("devices --officer X", dev), ("health --officer X --since T --limit 100", hist)):
        ts.sort()
        print(f"{name}, in-process: p50 {statistics.median(ts) * 1e3:.1f} ms, p99 {ts[int(len(ts) * 0.99) - 1] * 1e3:.1f} ms")
    t_dev, peak_dev, _ = run(data, "devices", "--json")
    t_h, peak_h, out = run(data, "health", "--json")
    print(f"devices --json ({a.officers} recorders): {t_dev:.2f} s, peak {peak_dev:.0f} MB; health --json of all "
          f"{records} records: {t_h:.1f} s, {records / t_h:.0f} rows/s, {out / 1e6:.0f} MB printed, peak {peak_h:.0f} MB")


def verify_bench(data: Path) -> None:
    """`verify`'s cross-check of the catalog against the audit chain, in a process of its own: time
    and peak memory. ``--max-duration`` does not count the cross-check; the hashing after it stops
    at the first object (the generator writes no objects: that one is "missing", exit 2)."""
    t, mb, _ = run(data, "verify", "--json", "--max-duration", "0.001", codes=(2,))
    with sqlite3.connect(data / "catalog.sqlite") as db:
        objects = db.execute("SELECT COUNT(*) FROM objects").fetchone()[0]
    print(f"verify, the catalog against the chain (the whole CLI call): {objects} objects in {t:.1f} s, "
          f"{objects / t:.0f} objects/s, peak memory {mb:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--officers", type=int, default=200)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cases", type=int, default=10_000, help="cases opened (one handler, a 2-8 h window each)")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--verify-only", action="store_true",
                    help="with --dir: only verify's cross-check of the catalog already there")
    ap.add_argument("--build-only", action="store_true",
                    help="with --dir: build the catalog (rows, cases, health) and stop; a later call with the "
                         "same --dir measures it without building again (to build on a busy machine, measure on "
                         "a quiet one)")
    a = ap.parse_args()
    if a.verify_only:
        verify_bench(a.dir / "data")
        return 0
    import catalog_gen

    from daemon.cases.listing import FootageQuery, iter_footage
    from daemon.catalog.db import Catalog
    from daemon.cli.footage_cmd import footage_table
    from daemon.clock import iso, now_utc

    work = a.dir or Path(tempfile.mkdtemp(prefix="evidock-listing-bench-", dir="/var/tmp"))
    try:
        data = work / "data"
        t0 = time.perf_counter()
        have = 0
        if (data / "catalog.sqlite").exists():
            with sqlite3.connect(data / "catalog.sqlite") as db:
                have = db.execute("SELECT COUNT(*) FROM footage").fetchone()[0]
        catalog_gen.build(data, max(0, a.rows - have), recorders=a.officers, per_dock=50, durable=False)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        opened = catalog_gen.add_cases(data, a.cases, durable=False)
        print(f"cases: {opened} opened through the library (their footage filed), {a.cases} in all, "
              f"in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        docks = catalog_gen.add_health(data, durable=False)
        print(f"health: {docks} records added (one a docking) in {time.perf_counter() - t0:.0f} s")
        with sqlite3.connect(data / "catalog.sqlite") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # the catalog and its WAL (not the copy an upgrade keeps, catalog.sqlite.before-*)
        size = sum(p.stat().st_size for p in data.glob("catalog.sqlite*") if ".before-" not in p.name)
        print(f"catalog: {a.rows} footage rows ({have} there before), {a.officers} officers, built in {built:.0f} s "
              f"({(a.rows - have) / max(built, 1e-9):.0f} rows/s); {size / 1e6:.0f} MB on disk, {size / 1e6 / (a.rows / 1e6):.0f} MB "
              f"per million rows")
        if a.build_only:
            return 0
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
        overdue_bench(data, a)
        fleet_bench(data, a)
        verify_bench(data)
        t_chain, peak_chain, _ = run(data, "audit", "verify", "--json")
        with sqlite3.connect(data / "catalog.sqlite") as db:
            entries = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        print(f"audit verify (the whole CLI call): {entries} entries in {t_chain:.1f} s, {entries / t_chain:.0f} "
              f"entries/s, peak memory {peak_chain:.0f} MB")
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
