"""The media work queue, persisted in the catalog: one job per footage row, and its runner.

A job exists iff its footage row exists: ``enqueue_in_tx`` runs inside the transaction that
records the footage (``daemon.ingest.record.record_file``, through the station context's hook), and footage catalogued before this module's
migration gets its job from the migration (and, as a safety net, from every ``run_queue``).

States::

    queued --claim--> running --stages ok--> done     (proxy: done, or n/a for non-media files)
                         |--failure, retry may help, attempts left--> queued (not before now + backoff)
                         '--failure that cannot pass, or last attempt--> failed (reason + ffmpeg's last lines)

A claim records the runner's process (pid and its start time in /proc), so a job left
``running`` by a runner that died (crash, power cut, kill) is recognised by the next runner and
queued again — the attempt it used counts, so a file that kills ffmpeg every time ends ``failed``.
Claims and results are written by the runner's own thread; workers only run ffmpeg
(``daemon.media``), at most ``media.max_parallel_transcodes`` at once. ``should_pause`` lets the
daemon hold the queue while an offload runs: no new job starts, and running ffmpeg processes are
stopped (SIGSTOP) until the offload is over. Without it (``evidock media run`` from cron) ffmpeg
only runs niced.

Crash points for tests (``daemon.crashpoints``, inert unless ``EVIDOCK_CRASH_AT`` names them):
``media-after-claim`` (job running, nothing made yet) and ``media-before-record`` (derived files
in place, result not committed).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from daemon.catalog import footage
from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.config import MediaConfig
from daemon.crashpoints import crashpoint
from daemon.errors import EXIT_OK, EXIT_WARNING, Cancelled, MediaFailure
from daemon.evidence import audit
from daemon.i18n import N_, Message, dumps
from daemon.media import encoders, probe, stages
from daemon.media.claims import claim_next, recover_stale, release
from daemon.media.ffmpeg import Tools
from daemon.media.stages import MediaContext, MediaJob, MediaTask
from daemon.proc import process_token

if TYPE_CHECKING:
    from daemon.context import StationContext

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed")
# What `footage list` shows as `proxy` for each job state (done: 'done', or 'n/a' without a proxy).
PROXY_STATUS = {"queued": "pending", "running": "pending", "failed": "failed", None: "pending"}

# Tables keyed by footage id: a retention deletion of the footage row removes its rows here too.


def enqueue_in_tx(conn: sqlite3.Connection, footage_id: int, sha256: str) -> None:
    """Queue the media job of a footage row, inside the transaction that inserts the row."""
    now = utcnow()
    conn.execute("INSERT OR IGNORE INTO media_jobs (footage_id, sha256, state, not_before, created_at)"
                 " VALUES (?, ?, 'queued', ?, ?)", (footage_id, sha256, now, now))


def _enqueue_missing(conn: sqlite3.Connection, now: str) -> int:
    cur = conn.execute(
        "INSERT INTO media_jobs (footage_id, sha256, state, not_before, created_at)"
        " SELECT f.id, f.sha256, 'queued', ?, ? FROM footage f"
        " WHERE NOT EXISTS (SELECT 1 FROM media_jobs j WHERE j.footage_id = f.id)", (now, now))
    return cur.rowcount


def enqueue_missing(catalog: Catalog) -> int:
    """Jobs for footage rows that have none (catalogued by code that did not queue them)."""
    with catalog.transaction() as conn:
        return _enqueue_missing(conn, utcnow())


def _later(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def backoff_s(cfg: MediaConfig, attempts: int) -> float:
    """Wait before attempt ``attempts + 1``: the base, doubled for every attempt after the first."""
    return min(cfg.retry_backoff_s * 2 ** max(attempts - 1, 0), 7 * 86400)


def _corrected(start: datetime | None, job: MediaJob) -> str | None:
    """The start on the station's clock: shifted by the drift the offload measured for this file."""
    rec, corr = probe._when(job.recorded_at), probe._when(job.recorded_at_corrected)
    if start is None:
        return None
    return (start - (rec - corr) if rec and corr else start).isoformat(timespec="seconds")


@dataclass
class Outcome:
    """How one job ended in this run."""

    footage_id: int
    sha256: str
    source_path: str
    state: str  # done | failed | queued (to be retried)
    attempt: int
    kind: str | None
    plan: str | None
    proxy: str  # done | n/a | failed | pending
    proxy_path: str | None
    error: str | None
    note: str | None
    # the same two for people, translated where shown (not in the JSON, which keeps the English)
    error_msg: Any = field(default=None, repr=False, compare=False)
    note_msgs: list[Any] = field(default_factory=list, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("error_msg"), d.pop("note_msgs")
        return d


def record(catalog: Catalog, ctx: MediaContext, task: MediaTask, ffmpeg_version: str) -> Outcome:
    """Commit one job's result: probe facts, job row, and (for a new proxy) its audit entry."""
    job, cfg, now = task.job, ctx.cfg, utcnow()
    rel = {role: ctx.derived.rel(p) for role, p in task.final.items()} if not task.failed else {}
    note = "; ".join(map(str, task.notes)) or None
    reason: Any = None
    with catalog.transaction() as conn:
        p = task.probe
        if p is not None:
            conn.execute(
                "INSERT OR REPLACE INTO media_info (footage_id, sha256, kind, container, duration_s, video_codec, width,"
                " height, fps, pix_fmt, audio_codec, sample_rate, channels, creation_time, recorded_start,"
                " recorded_start_source, recorded_start_corrected, probe_json, probed_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (job.footage_id, job.sha256, p.kind, p.container, p.duration_s, p.video_codec, p.width, p.height,
                 p.fps, p.pix_fmt, p.audio_codec, p.sample_rate, p.channels,
                 p.creation_time.isoformat() if p.creation_time else None,
                 task.recorded_start.isoformat(timespec="seconds") if task.recorded_start else None,
                 task.recorded_start_source, _corrected(task.recorded_start, job),
                 audit.canonical(p.raw), now))
            # The probe saw the streams: it decides video, audio-only or still picture (issue 14).
            if p.kind in ("video", "audio", "photo"):
                changed, was = footage.set_kind(conn, job.footage_id, p.kind)
                if changed:
                    audit.append(catalog, "footage.kind", f"footage:{job.footage_id}",
                                 {"footage": job.footage_id, "sha256": job.sha256, "kind": p.kind, "was": was,
                                  "by": "probe"})
        if task.failure is None:
            state, error = "done", None
            cur = conn.execute(
                "UPDATE media_jobs SET state='done', claimed_by=NULL, finished_at=?, kind=?, plan=?, encoder=?,"
                " proxy_path=?, proxy_sha256=?, thumb_path=?, sheet_path=?, note=?, error=NULL, error_msg=NULL,"
                " error_detail=NULL"
                " WHERE footage_id=? AND claimed_by=?",
                (now, task.kind, task.plan, task.encoder, rel.get("proxy"), task.proxy_sha256, rel.get("thumb"),
                 rel.get("sheet"), note, job.footage_id, ctx.claim))
            if cur.rowcount == 0:  # the claim is no longer ours: whoever holds it records the result
                log.warning("media job %d: claim %s lost before its result was recorded", job.footage_id, ctx.claim)
            elif "proxy" in rel:
                audit.append(catalog, "media.derive", job.sha256, {
                    "footage": job.footage_id, "kind": task.kind, "plan": task.plan, "encoder": task.encoder,
                    "proxy": rel["proxy"], "proxy_sha256": task.proxy_sha256, "thumbnail": rel.get("thumb"),
                    "contact_sheet": rel.get("sheet"), "note": note, "ffmpeg": ffmpeg_version,
                })
        else:
            f = task.failure
            final = f.permanent or job.attempt >= cfg.max_attempts
            state, not_before = ("failed", now) if final else ("queued", _later(backoff_s(cfg, job.attempt)))
            if not final:
                reason = Message(N_("{reason} (attempt {attempt} of {max_attempts}; retried in {seconds:g} s)"),
                                 reason=f.reason, attempt=job.attempt, max_attempts=cfg.max_attempts,
                                 seconds=backoff_s(cfg, job.attempt))
            elif f.permanent:
                reason = f.reason
            elif job.attempt == 1:
                reason = Message(N_("{reason} (gave up after {n} attempt; `evidock media retry {id}` tries again)"),
                                 reason=f.reason, n=job.attempt, id=job.footage_id)
            else:
                reason = Message(N_("{reason} (gave up after {n} attempts; `evidock media retry {id}` tries again)"),
                                 reason=f.reason, n=job.attempt, id=job.footage_id)
            error = str(reason)
            conn.execute(
                "UPDATE media_jobs SET state=?, claimed_by=NULL, finished_at=?, not_before=?, kind=?, plan=?,"
                " encoder=?, proxy_path=NULL, proxy_sha256=NULL, thumb_path=NULL, sheet_path=NULL, note=?,"
                " error=?, error_msg=?, error_detail=? WHERE footage_id=? AND claimed_by=?",
                (state, now if final else None, not_before,
                 task.kind, task.plan, task.encoder, note, error, dumps(reason), f.detail or None, job.footage_id,
                 ctx.claim))
    if task.failure is None:
        proxy = "done" if "proxy" in rel else "n/a"
    else:
        proxy = "failed" if state == "failed" else "pending"
    path = str(ctx.derived.data_dir / rel["proxy"]) if "proxy" in rel else None
    return Outcome(job.footage_id, job.sha256, job.source_name, state, job.attempt, task.kind, task.plan, proxy, path, error, note,
                   error_msg=reason, note_msgs=list(task.notes))


# -- the runner -------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one ``run_queue`` did: each job's last outcome in this run, and notes."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)
    recovered: list[int] = field(default_factory=list)  # left running by a runner that died
    enqueued: int = 0
    notes: list[Any] = field(default_factory=list)  # messages (str() English, in the JSON)
    stopped: bool = False

    def counts(self) -> dict[str, int]:
        c = {"done": 0, "n/a": 0, "failed": 0, "retrying": 0}
        for o in self.outcomes.values():
            if o.state == "done":
                c["n/a" if o.proxy == "n/a" else "done"] += 1
            else:
                c["failed" if o.state == "failed" else "retrying"] += 1
        return c

    @property
    def exit_code(self) -> int:
        """0: every job worked on ended done; 1: some stayed failed (bad media is a warning: the original
        is safe), or the run was stopped before the queue was empty."""
        failed = any(o.state == "failed" for o in self.outcomes.values())
        return EXIT_WARNING if failed or self.stopped else EXIT_OK

    def summary(self) -> str:
        c = self.counts()
        tail = " (stopped early; the rest stays queued)" if self.stopped else ""
        return (f"media: {c['done']} proxied, {c['n/a']} not media, {c['failed']} failed, "
                f"{c['retrying']} waiting for a retry{tail}")

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), "summary": self.summary(), "stopped": self.stopped, "recovered": self.recovered,
                "enqueued": self.enqueued, "notes": [str(n) for n in self.notes],
                "jobs": [o.to_json() for o in self.outcomes.values()]}


def _never() -> bool:
    return False


def run_queue(
    station: StationContext,
    *,
    should_pause: Callable[[], bool] = _never,
    stop: threading.Event | None = None,
    wait_for_retries: bool = True,
    poll_s: float = 1.0,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> RunReport:
    """Work the media queue until nothing is left to do (or ``stop`` is set).

    At most ``media.max_parallel_transcodes`` jobs run at once. While ``should_pause()`` is true
    no new job starts and the ffmpeg of running ones is stopped (SIGSTOP) until it turns false;
    it is called from worker threads too, so it must be cheap and thread-safe (e.g. an Event's
    ``is_set``). With ``wait_for_retries`` the runner also
    waits out the backoff of jobs that failed and may pass, so that at the end every job it
    touched is done or failed (``evidock media run``); without, it returns when nothing is due.
    """
    config = station.config
    cfg = config.media
    tools = Tools.find(cfg)
    stop = stop or threading.Event()
    store, derived = station.store, station.derived
    report = RunReport()
    with station.catalog() as catalog:
        token = process_token()

        def recover() -> bool:
            found = recover_stale(catalog, cfg, derived)
            report.recovered += list(found)
            for fid in (i for i, state in found.items() if state == "failed"):
                report.outcomes[fid] = _failed_outcome(catalog, fid)
                if on_outcome:
                    on_outcome(report.outcomes[fid])
            return bool(found)

        recover()
        report.enqueued = enqueue_missing(catalog)
        encoder, note = encoders.choose_encoder(tools, cfg)
        if note:
            report.notes.append(note)
        version = tools.version()
        running: dict[Future[MediaTask], tuple[MediaTask, MediaContext]] = {}
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=cfg.max_parallel_transcodes, thread_name_prefix="media")

        def finish(fut: Future[MediaTask]) -> None:
            task, ctx = running.pop(fut)
            try:
                fut.result()
            except Cancelled:
                release(catalog, task.job, ctx.claim)
                return
            except Exception as e:  # one bad job must not take the queue down (invariant 6)
                log.error("media job %d: unexpected error:\n%s", task.job.footage_id, traceback.format_exc())
                task.failure = MediaFailure(N_("unexpected error in the media runner: {error}"), permanent=False,
                                            error=repr(e))
            crashpoint("media-before-record")
            outcome = record(catalog, ctx, task, version)
            report.outcomes[task.job.footage_id] = outcome
            if task.probe is not None and task.probe.duration_s:
                station.footage_probed(catalog, task.job.footage_id)  # e.g. re-segmenting for filing
            if on_outcome:
                on_outcome(outcome)

        try:
            while True:
                while len(running) < cfg.max_parallel_transcodes and not stop.is_set() and not should_pause():
                    job = claim_next(catalog, token)
                    if job is None:
                        break
                    crashpoint("media-after-claim")
                    ctx = MediaContext(tools, cfg, store, derived, encoder, token,
                                       f"{token.replace(':', '-')}-{job.attempt}", cancel,
                                       None if should_pause is _never else should_pause)
                    task = MediaTask(job)
                    running[pool.submit(stages.work, ctx, task)] = (task, ctx)
                if running:
                    done, _ = wait(list(running), timeout=poll_s, return_when=FIRST_COMPLETED)
                    for fut in done:
                        finish(fut)
                    if stop.is_set():
                        cancel.set()
                    continue
                if stop.is_set():
                    report.stopped = True
                    break
                if should_pause():
                    stop.wait(poll_s)
                    continue
                if recover():  # another runner may have died meanwhile
                    continue
                due = _next_due(catalog)
                if due is None or (due > 0 and not wait_for_retries):
                    break
                stop.wait(max(0.05, min(poll_s, due)))
        except BaseException:
            cancel.set()  # ^C or an error in the runner itself: stop ffmpeg, hand the jobs back
            for fut in list(running):
                try:
                    fut.result(timeout=60)
                except BaseException:
                    pass
                task, ctx = running.pop(fut)
                release(catalog, task.job, ctx.claim)
            raise
        finally:
            pool.shutdown(wait=True)
    return report


def _failed_outcome(catalog: Catalog, fid: int) -> Outcome:
    sha, name, attempts, kind, error, error_msg = catalog.conn.execute(
        "SELECT j.sha256, f.source_path, j.attempts, j.kind, j.error, j.error_msg FROM media_jobs j"
        " JOIN footage f ON f.id = j.footage_id WHERE j.footage_id = ?", (fid,)).fetchone()
    return Outcome(fid, sha, name, "failed", attempts, kind, None, "failed", None, error, None,
                   error_msg=Message.from_json(json.loads(error_msg)) if error_msg else None)


def _next_due(catalog: Catalog) -> float | None:
    """Seconds until the next queued job is due (0 if one is due now); None if none is queued."""
    row = catalog.conn.execute("SELECT MIN(not_before) FROM media_jobs WHERE state = 'queued'").fetchone()
    if row[0] is None:
        return None
    t = probe._when(row[0])
    return max(0.0, (t - datetime.now(timezone.utc)).total_seconds()) if t else 0.0
