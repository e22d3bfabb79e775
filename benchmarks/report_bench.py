"""Health report generation for a fleet: ``--recorders`` (200) × ``--days`` (365) daily docks.

The history is built once through the library a dock uses (tests/support/fleet.py: sessions,
``health.record``, the dock manager's dock events; timed and printed, it is not the figure).
Then, paired per round on the same catalog: the whole report (``evidock report health``'s
library call: attention list, every recorder's charts, the HTML page, the CSV, report.json)
against the baseline, reading the same history (``health.history``) and writing it as the CSV
alone — the least any report of this data does. Prints seconds, the HTML's size and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support import fleet  # noqa: E402

from daemon import health  # noqa: E402
from daemon.config import Config  # noqa: E402
from daemon.context import build_context  # noqa: E402
from daemon.report import health_report  # noqa: E402


def baseline(ctx, out: Path) -> None:  # type: ignore[no-untyped-def]
    import csv

    with ctx.catalog() as cat:
        rows = health.history(cat)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "health.csv", "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        for r in rows:
            w.writerow([r.get(c) for c in health_report.CSV_COLUMNS])


def report(ctx, out: Path) -> None:  # type: ignore[no-untyped-def]
    with ctx.catalog() as cat:
        health_report.health_report(cat, ctx.config, ctx.data_dir, out, "zh")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recorders", type=int, default=200)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, help="work directory (default: a temporary one in /dev/shm, removed)")
    a = ap.parse_args()
    # /dev/shm by default: the history's ~5 synchronous commits per dock on a disk would take the
    # best part of an hour for a year of 200 recorders; the report itself only reads
    shm = Path("/dev/shm")
    work = a.dir or Path(tempfile.mkdtemp(prefix="evidock-report-bench-", dir=shm if shm.is_dir() else None))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    try:
        ctx = build_context(Config(), data)
        t0 = time.perf_counter()
        done = fleet.build(ctx, [f"ZFY-{i:04d}" for i in range(a.recorders)], a.days)
        built = time.perf_counter() - t0
        print(f"history: {a.recorders} recorders x {a.days} days = {len(done)} docks built through the library "
              f"in {built:.1f} s ({len(done) / built:.0f} docks/s) in {work}")
        rep, base = [], []
        for i in range(a.rounds):
            t = time.perf_counter()
            baseline(ctx, work / f"base{i}")
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            report(ctx, work / f"report{i}")
            rep.append(time.perf_counter() - t)
        html = (work / "report0" / "index.html").stat().st_size
        csv_size = (work / "report0" / "health.csv").stat().st_size
        ratios = [r / b for r, b in zip(rep, base, strict=True)]
        print(f"report: best {min(rep):.2f} s, median {statistics.median(rep):.2f} s; "
              f"index.html {html / 2**20:.1f} MiB, health.csv {csv_size / 2**20:.1f} MiB")
        print(f"baseline (history read + CSV only): best {min(base):.2f} s, median {statistics.median(base):.2f} s")
        print(f"ratio report / baseline: best {min(ratios):.1f} x, median {statistics.median(ratios):.1f} x")
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
