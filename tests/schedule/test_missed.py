"""A job missed while the station was off runs once at start-up, worked out from the record of runs.

The clock here is the test's (``Clock``): "the station was off for three days" cannot be waited
for, and the missed-run logic only ever compares times, so a set clock tests it exactly.
"""

from __future__ import annotations

import time
from pathlib import Path

from support.schedule_helpers import Clock, context, utc

from daemon.config import cron_trigger
from daemon.schedule import runs
from daemon.schedule.scheduler import StationScheduler, missed_jobs, run_job

DAILY_03 = cron_trigger("0 3 * * *", "Asia/Shanghai")  # 03:00 in Shanghai = 19:00 UTC the day before


def test_missed_due_is_the_first_time_after_the_last_start_that_is_past() -> None:
    since = utc(2026, 11, 1)
    last = utc(2026, 11, 28, 19, 0, 5)  # ran at 03:00:05 Shanghai on the 29th
    assert runs.missed_due(DAILY_03, last, since, utc(2026, 11, 29, 18, 59)) is None  # next is not due yet
    # off for three days: three 03:00s passed, one run to make up, due at the first of them
    assert runs.missed_due(DAILY_03, last, since, utc(2026, 12, 2, 8)) == utc(2026, 11, 29, 19)
    # never run: only times after the station began to schedule count
    assert runs.missed_due(DAILY_03, None, utc(2026, 12, 1, 20), utc(2026, 12, 2, 8)) is None
    assert runs.missed_due(DAILY_03, None, utc(2026, 12, 1, 18), utc(2026, 12, 2, 8)) == utc(2026, 12, 1, 19)


def _wait_for(pred, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_each_missed_job_runs_once_at_start(data_dir: Path) -> None:
    ctx = context(data_dir)
    clock = Clock(utc(2026, 11, 28, 10))
    with ctx.catalog() as cat:
        runs.schedule_since(cat, clock())  # the station first scheduled on the 28th
    for name in ("verify", "retention-plan", "audit-verify", "backup", "report", "store-gc"):
        run_job(ctx, name, clock=clock)  # each ran on the 28th, before its time
    clock.advance(days=3)  # off until the 1st: every job missed three nights (store-gc: Sunday's)
    assert [n for n, _ in missed_jobs(ctx, clock())] == ["verify", "retention-plan", "audit-verify", "backup",
                                                         "report", "store-gc"]

    sched = StationScheduler(ctx, clock=clock)
    sched.start()
    try:
        _wait_for(lambda: len(_runs(ctx)) == 12)
        _wait_for(lambda: all(r["result"] != "running" for r in _runs(ctx)))
    finally:
        sched.stop()
    catch_up = [r for r in _runs(ctx) if r["trigger"] == "catch-up"]
    assert sorted(r["job"] for r in catch_up) == ["audit-verify", "backup", "report", "retention-plan",
                                                  "store-gc", "verify"]  # once each
    assert {r["due_at"] for r in catch_up if r["job"] == "verify"} == {"2026-11-28T19:00:00+00:00"}
    assert all(r["result"] == "ok" for r in catch_up)
    assert missed_jobs(ctx, clock()) == []  # the record now says they ran
    # and a second start of the station finds nothing to make up
    sched2 = StationScheduler(ctx, clock=clock)
    sched2.start()
    sched2.stop()
    assert len(_runs(ctx)) == 12


def _runs(ctx) -> list[dict]:
    with ctx.catalog() as cat:
        return runs.runs(cat)
