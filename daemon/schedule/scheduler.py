"""Running jobs: one run (lock, wait for offloads, record, audit), and the scheduler of ``evidock run``.

``run_job`` is the one way a job runs, from the scheduler and from ``evidock jobs run NAME``
alike: it takes the job's lock (a second start at once gets ``JobBusy``), waits while an
offload runs (``[schedule] yield_to_offloads``; bounded by ``yield_max_wait_s`` and by
``stop``), records the start, calls the job, records the end with its counts or error, and
raises or clears the job's alert.

``StationScheduler`` is APScheduler 3's ``BackgroundScheduler`` with one cron trigger per job
(in ``[ui] timezone``). Its fires only put the job on a queue; one worker thread of evidock's
own runs them one after another (jobs never compete with each other for the two cores), and
is a daemon thread, so a SIGTERM never waits for a verify slice to finish — every job is
read-only or writes atomically, and its row left ``running`` is marked ``interrupted`` by the
next start. At start, each job that was missed while the station was off (worked out from the
record of runs, ``runs.missed_due``) is queued once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc
from daemon.config import cron_trigger
from daemon.errors import EvidockError
from daemon.i18n import N_, Message, message_of
from daemon.schedule import runs
from daemon.schedule.jobs import JOBS, Job, Outcome, job
from daemon.schedule.lock import job_lock

if TYPE_CHECKING:
    from daemon.context import StationContext

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
POLL_S = 5.0  # how often a job waiting for offloads looks again


@dataclass
class RunReport:
    """One run of a job, as ``evidock jobs run`` reports it."""

    job: str
    run_id: int | None
    started_at: str | None
    ended_at: str | None
    outcome: Outcome

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    def to_json(self) -> dict[str, Any]:
        m = self.outcome.message
        return {"job": self.job, "run": self.run_id, "started_at": self.started_at, "ended_at": self.ended_at,
                "result": self.outcome.result, "counts": self.outcome.counts, "error": str(m) if m else None}


def _offloads(ctx: StationContext, in_process: Callable[[], bool] | None) -> bool:
    if in_process is not None and in_process():
        return True
    with ctx.catalog() as cat:
        return runs.offloads_running(cat)


def run_job(ctx: StationContext, name: str, *, trigger: str = "manual", due: datetime | None = None,
            offloads_running: Callable[[], bool] | None = None, stop: threading.Event | None = None,
            clock: Clock = now_utc, poll_s: float = POLL_S) -> RunReport:
    """Run job ``name`` now, in this process (see the module docstring). Raises ``JobBusy`` if it
    is running already, ``JobError`` for an unknown name."""
    spec = job(name)
    cfg = ctx.config.schedule
    stop = stop or threading.Event()
    with job_lock(ctx.data_dir, spec.name):
        if cfg.yield_to_offloads:
            waited_from = clock()
            while _offloads(ctx, offloads_running):
                if (clock() - waited_from).total_seconds() >= cfg.yield_max_wait_s:
                    return _not_run(ctx, spec, trigger, due, clock, Message(
                        N_("job {job} waited {seconds:g} s for offloads to end and did not run; it runs at its "
                           "next time, or now with `evidock jobs run {job}`"), job=spec.name, seconds=cfg.yield_max_wait_s))
                log.info("job %s waits: an offload is running", spec.name)
                if stop.wait(poll_s):
                    return RunReport(spec.name, None, None, None, Outcome("warning", {}, Message(
                        N_("job {job} did not start: the station stopped while it waited for offloads"), job=spec.name)))
        with ctx.catalog() as cat:
            started = clock()
            rid = runs.record_start(cat, spec.name, trigger, due, started)
            outcome = _call(ctx, spec, cat)
            ended = clock()
            runs.record_end(cat, rid, spec.name, outcome.result, outcome.counts, outcome.message, ended)
    log.info("job %s: %s %s", spec.name, outcome.result, outcome.counts)
    return RunReport(spec.name, rid, iso(started), iso(ended), outcome)


def _call(ctx: StationContext, spec: Job, cat: Catalog) -> Outcome:
    try:
        return spec.call(ctx, cat)
    except EvidockError as e:
        return Outcome("failed", {}, message_of(e))
    except Exception as e:  # a bug or an OS condition nobody typed: recorded, alerted, the station goes on
        log.exception("job %s failed", spec.name)
        return Outcome("failed", {}, Message(N_("job {job} failed unexpectedly: {error}"), job=spec.name, error=repr(e)))


def _not_run(ctx: StationContext, spec: Job, trigger: str, due: datetime | None, clock: Clock, why: Message) -> RunReport:
    """A run that never started (it waited too long): recorded as failed, so it is alerted."""
    with ctx.catalog() as cat:
        now = clock()
        rid = runs.record_start(cat, spec.name, trigger, due, now)
        outcome = Outcome("failed", {}, why)
        runs.record_end(cat, rid, spec.name, "failed", {}, why, now)
    return RunReport(spec.name, rid, iso(now), iso(now), outcome)


def missed_jobs(ctx: StationContext, now: datetime) -> list[tuple[str, datetime]]:
    """The jobs missed before ``now`` (each once, with the due time it missed), in table order."""
    cfg, tz = ctx.config.schedule, ctx.config.ui.timezone
    with ctx.catalog() as cat:
        since = runs.schedule_since(cat, now)
        out = []
        for spec in JOBS:
            due = runs.missed_due(cron_trigger(spec.cron(cfg), tz), runs.last_start(cat, spec.name), since, now)
            if due is not None:
                out.append((spec.name, due))
    return out


def late_jobs(ctx: StationContext, now: datetime) -> list[tuple[str, datetime]]:
    """Jobs whose due time passed more than ``late_after_s`` ago without a start since."""
    late = ctx.config.schedule.late_after_s
    return [(n, d) for n, d in missed_jobs(ctx, now) if (now - d).total_seconds() > late]


class StationScheduler:
    """The jobs' clock inside ``evidock run``: APScheduler triggers, one worker, catch-up at start."""

    def __init__(self, ctx: StationContext, offloads_running: Callable[[], bool] | None = None,
                 clock: Clock = now_utc):
        self.ctx, self.offloads_running, self.clock = ctx, offloads_running, clock
        self.stop_event = threading.Event()
        self.queue: queue.Queue[tuple[str, str, datetime | None]] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self.scheduler: BackgroundScheduler | None = None
        self.worker: threading.Thread | None = None

    def start(self) -> None:
        cfg, tz = self.ctx.config.schedule, self.ctx.config.ui.timezone
        self.worker = threading.Thread(target=self._work, name="evidock-jobs", daemon=True)
        self.worker.start()
        if not cfg.enabled:
            log.info("scheduler off ([schedule] enabled = false); `evidock jobs run NAME` runs a job by hand")
            return
        for name, due in missed_jobs(self.ctx, self.clock()):
            log.warning("job %s was due at %s while the station was off: running it now", name, iso(due))
            self.submit(name, "catch-up", due)
        self.scheduler = BackgroundScheduler(timezone=tz)
        for spec in JOBS:
            self.scheduler.add_job(self._fire, cron_trigger(spec.cron(cfg), tz), args=[spec.name], id=spec.name,
                                   name=spec.name, coalesce=True, max_instances=1, misfire_grace_time=None)
        self.scheduler.add_job(self._check_late, "interval", seconds=60, id="evidock-late-check",
                               coalesce=True, max_instances=1)
        self.scheduler.start()

    def stop(self) -> None:
        """No new job; a job waiting for offloads gives up; a running one is left to the process's end."""
        self.stop_event.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def submit(self, name: str, trigger: str, due: datetime | None) -> None:
        with self._lock:
            if name in self._queued:
                return  # already waiting its turn: one run makes up for both
            self._queued.add(name)
        self.queue.put((name, trigger, due))

    def _fire(self, name: str) -> None:
        self.submit(name, "schedule", self.clock())

    def _check_late(self) -> None:
        try:
            now = self.clock()
            with self.ctx.catalog() as cat:
                for name, due in late_jobs(self.ctx, now):
                    runs.raise_missed(cat, name, due, now)
        except Exception:
            log.exception("checking for late jobs failed; trying again in a minute")

    def _work(self) -> None:
        while not self.stop_event.is_set():
            try:
                name, trigger, due = self.queue.get(timeout=1.0)
            except queue.Empty:
                continue
            with self._lock:
                self._queued.discard(name)
            try:
                run_job(self.ctx, name, trigger=trigger, due=due, offloads_running=self.offloads_running,
                        stop=self.stop_event, clock=self.clock)
            except EvidockError as e:  # busy (`evidock jobs run` has it), catalog trouble: logged, next one
                log.warning("job %s: %s", name, e)
            except Exception:
                log.exception("job %s could not be run", name)
