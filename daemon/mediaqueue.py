"""The media work queue, persisted in the catalog: one job per footage row, and its runner.

A job exists iff its footage row exists: ``enqueue_in_tx`` runs inside the transaction that
records the footage (``offload.record_file``), and footage catalogued before this module's
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

import logging
import os
import sqlite3
import threading
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from . import audit, media
from .catalog import Catalog, Migration, utcnow
from .config import Config, MediaConfig
from .crashpoints import crashpoint
from .errors import EXIT_OK, EXIT_WARNING, NotFound
from .media import Cancelled, DerivedFiles, MediaContext, MediaFailure, MediaJob, MediaTask, Tools
from .store import LocalObjectStore

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed")
# What `footage list` shows as `proxy` for each job state (done: 'done', or 'n/a' without a proxy).
PROXY_STATUS = {"queued": "pending", "running": "pending", "failed": "failed", None: "pending"}


def _m001_media(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE media_jobs (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            sha256 TEXT NOT NULL REFERENCES objects(sha256),
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before TEXT NOT NULL,        -- queued jobs wait until then (retry backoff)
            claimed_by TEXT,                 -- 'pid:starttime:boot' of the runner working on it
            claimed_at TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            kind TEXT,                       -- video | audio | photo | other
            plan TEXT,                       -- remux | transcode | copy-audio | encode-audio | photo
            encoder TEXT,
            proxy_path TEXT,                 -- relative to the data dir
            proxy_sha256 TEXT,
            thumb_path TEXT,
            sheet_path TEXT,
            note TEXT,                       -- e.g. 'partly decodable: …'
            error TEXT,                      -- the last failure, for people
            error_detail TEXT                -- ffmpeg's last stderr lines with it
        )"""
    )
    db.execute("CREATE INDEX media_jobs_state ON media_jobs (state, not_before)")
    db.execute(
        """CREATE TABLE media_info (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            sha256 TEXT NOT NULL REFERENCES objects(sha256),
            kind TEXT,
            container TEXT,
            duration_s REAL,
            video_codec TEXT,
            width INTEGER,
            height INTEGER,
            fps REAL,
            pix_fmt TEXT,
            audio_codec TEXT,
            sample_rate INTEGER,
            channels INTEGER,
            creation_time TEXT,              -- as the container says (recorder clock)
            recorded_start TEXT,             -- start of the recording, recorder clock, UTC
            recorded_start_source TEXT,      -- creation_time | file_name | file_time
            recorded_start_corrected TEXT,   -- minus the clock drift measured at the dock
            probe_json TEXT,                 -- ffprobe's whole answer
            probed_at TEXT
        )"""
    )
    _enqueue_missing(db.conn, utcnow())


MIGRATIONS: list[Migration] = [("media-001", _m001_media)]

# Tables keyed by footage id: a retention deletion of the footage row removes its rows here too.
MEDIA_TABLES = ("media_jobs", "media_info")


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


# -- claims ---------------------------------------------------------------------------------


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before ')' may contain spaces


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "noboot"


def process_token(pid: int | None = None) -> str:
    """Who holds a claim: pid, its start time and the boot, so that neither a reused pid nor a
    process of a later boot (after a power cut) passes for the runner that died."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_proc_start(pid)}:{_boot_id()}"


def _alive(token: str) -> bool:
    pid, _, rest = token.partition(":")
    return pid.isdigit() and f"{_proc_start(int(pid))}:{_boot_id()}" == rest


def _later(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def backoff_s(cfg: MediaConfig, attempts: int) -> float:
    """Wait before attempt ``attempts + 1``: the base, doubled for every attempt after the first."""
    return min(cfg.retry_backoff_s * 2 ** max(attempts - 1, 0), 7 * 86400)


def recover_stale(catalog: Catalog, cfg: MediaConfig, derived: DerivedFiles) -> dict[int, str]:
    """Queue again the jobs whose runner died while working on them (or fail them, on their last
    attempt); returns their ids and new states."""
    rows = catalog.conn.execute(
        "SELECT footage_id, sha256, attempts, claimed_by FROM media_jobs WHERE state = 'running'").fetchall()
    dead = [r for r in rows if not _alive(r[3] or "")]
    if not dead:
        return {}
    now = utcnow()
    out = {}
    with catalog.transaction() as conn:
        for fid, sha, attempts, token in dead:
            why = f"the media runner (process {token}) stopped while working on it"
            out[fid] = "failed" if attempts >= cfg.max_attempts else "queued"
            if out[fid] == "failed":
                conn.execute("UPDATE media_jobs SET state='failed', claimed_by=NULL, finished_at=?, error=? "
                             "WHERE footage_id=? AND state='running' AND claimed_by IS ?",
                             (now, f"{why}, on every one of {attempts} attempts: the file may crash ffmpeg or "
                              "exhaust the station's memory; see `evidock media retry`", fid, token))
            else:
                conn.execute("UPDATE media_jobs SET state='queued', claimed_by=NULL, not_before=?, error=? "
                             "WHERE footage_id=? AND state='running' AND claimed_by IS ?",
                             (now, f"{why}; queued again", fid, token))
    for _, sha, _, _ in dead:
        derived.clean_tmp(sha)
    log.warning("media: %d job(s) left running by a runner that died were recovered", len(dead))
    return out


_CLAIM_COLS = ("j.footage_id, j.sha256, f.size, f.source_path, f.recorded_at, f.recorded_at_corrected, "
               "f.ingested_at, j.attempts")


def claim_next(catalog: Catalog, token: str) -> MediaJob | None:
    """Take the next due job (important footage first, then oldest) for this runner."""
    now = utcnow()
    with catalog.transaction() as conn:
        row = conn.execute(
            f"SELECT {_CLAIM_COLS} FROM media_jobs j JOIN footage f ON f.id = j.footage_id"
            " WHERE j.state = 'queued' AND j.not_before <= ? ORDER BY f.important DESC, j.footage_id LIMIT 1",
            (now,)).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE media_jobs SET state='running', attempts=attempts+1, claimed_by=?, claimed_at=?"
                     " WHERE footage_id=?", (token, now, row[0]))
    fid, sha, size, name, rec, rec_corr, ingested, attempts = row
    return MediaJob(fid, sha, size, name, rec, rec_corr, ingested, attempts + 1)


def release(catalog: Catalog, job: MediaJob, token: str) -> None:
    """Hand a job back untouched (the runner is stopping): the attempt does not count."""
    with catalog.transaction() as conn:
        conn.execute("UPDATE media_jobs SET state='queued', attempts=MAX(attempts-1, 0), claimed_by=NULL"
                     " WHERE footage_id=? AND claimed_by=?", (job.footage_id, token))


def _corrected(start: datetime | None, job: MediaJob) -> str | None:
    """The start on the station's clock: shifted by the drift the offload measured for this file."""
    rec, corr = media._when(job.recorded_at), media._when(job.recorded_at_corrected)
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

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record(catalog: Catalog, ctx: MediaContext, task: MediaTask, ffmpeg_version: str) -> Outcome:
    """Commit one job's result: probe facts, job row, and (for a new proxy) its audit entry."""
    job, cfg, now = task.job, ctx.cfg, utcnow()
    rel = {role: ctx.derived.rel(p) for role, p in task.final.items()} if not task.failed else {}
    note = "; ".join(task.notes) or None
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
        if task.failure is None:
            state, error = "done", None
            cur = conn.execute(
                "UPDATE media_jobs SET state='done', claimed_by=NULL, finished_at=?, kind=?, plan=?, encoder=?,"
                " proxy_path=?, proxy_sha256=?, thumb_path=?, sheet_path=?, note=?, error=NULL, error_detail=NULL"
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
                reason = (f"{f.reason} (attempt {job.attempt} of {cfg.max_attempts}; "
                          f"retried in {backoff_s(cfg, job.attempt):g} s)")
            elif f.permanent:
                reason = f.reason
            else:
                tries = f"{job.attempt} attempt{'s' if job.attempt != 1 else ''}"
                reason = f"{f.reason} (gave up after {tries}; `evidock media retry {job.footage_id}` tries again)"
            error = reason
            conn.execute(
                "UPDATE media_jobs SET state=?, claimed_by=NULL, finished_at=?, not_before=?, kind=?, plan=?,"
                " encoder=?, proxy_path=NULL, proxy_sha256=NULL, thumb_path=NULL, sheet_path=NULL, note=?,"
                " error=?, error_detail=? WHERE footage_id=? AND claimed_by=?",
                (state, now if final else None, not_before,
                 task.kind, task.plan, task.encoder, note, reason, f.detail or None, job.footage_id, ctx.claim))
    if task.failure is None:
        proxy = "done" if "proxy" in rel else "n/a"
    else:
        proxy = "failed" if state == "failed" else "pending"
    path = str(ctx.derived.data_dir / rel["proxy"]) if "proxy" in rel else None
    return Outcome(job.footage_id, job.sha256, job.source_name, state, job.attempt, task.kind, task.plan, proxy, path, error, note)


# -- the runner -------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one ``run_queue`` did: each job's last outcome in this run, and notes."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)
    recovered: list[int] = field(default_factory=list)  # left running by a runner that died
    enqueued: int = 0
    notes: list[str] = field(default_factory=list)
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
                "enqueued": self.enqueued, "notes": self.notes,
                "jobs": [o.to_json() for o in self.outcomes.values()]}


def _never() -> bool:
    return False


def run_queue(
    data_dir: Path,
    config: Config,
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
    cfg = config.media
    tools = Tools.find(cfg)
    stop = stop or threading.Event()
    store = LocalObjectStore(data_dir)
    derived = DerivedFiles(data_dir)
    report = RunReport()
    with Catalog(data_dir) as catalog:
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
        encoder, note = media.choose_encoder(tools, cfg)
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
                task.failure = MediaFailure(f"unexpected error in the media runner: {e!r}", permanent=False)
            crashpoint("media-before-record")
            outcome = record(catalog, ctx, task, version)
            report.outcomes[task.job.footage_id] = outcome
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
                    running[pool.submit(media.work, ctx, task)] = (task, ctx)
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
    sha, name, attempts, kind, error = catalog.conn.execute(
        "SELECT j.sha256, f.source_path, j.attempts, j.kind, j.error FROM media_jobs j JOIN footage f ON f.id = j.footage_id"
        " WHERE j.footage_id = ?", (fid,)).fetchone()
    return Outcome(fid, sha, name, "failed", attempts, kind, None, "failed", None, error, None)


def _next_due(catalog: Catalog) -> float | None:
    """Seconds until the next queued job is due (0 if one is due now); None if none is queued."""
    row = catalog.conn.execute("SELECT MIN(not_before) FROM media_jobs WHERE state = 'queued'").fetchone()
    if row[0] is None:
        return None
    t = media._when(row[0])
    return max(0.0, (t - datetime.now(timezone.utc)).total_seconds()) if t else 0.0


# -- status, retry, footage columns -------------------------------------------------------------


def status(catalog: Catalog) -> dict[str, Any]:
    """Counts by state and by proxy status, and every job with its probe facts."""
    jobs = []
    for r in catalog.db.query(
        "SELECT j.footage_id AS id, j.sha256, f.source_path, j.state, j.attempts, j.not_before, j.claimed_by,"
        " j.kind, j.plan, j.encoder, j.proxy_path, j.thumb_path, j.sheet_path, j.note, j.error, j.error_detail,"
        " j.finished_at, i.duration_s, i.container, i.video_codec, i.audio_codec, i.width, i.height, i.fps,"
        " i.recorded_start, i.recorded_start_source, i.recorded_start_corrected"
        " FROM media_jobs j JOIN footage f ON f.id = j.footage_id"
        " LEFT JOIN media_info i ON i.footage_id = j.footage_id ORDER BY j.footage_id"
    ):
        r["proxy"] = _proxy_status(r["state"], r["proxy_path"])
        for k in ("proxy_path", "thumb_path", "sheet_path"):
            if r[k]:
                r[k] = str(catalog.data_dir / r[k])
        jobs.append(r)
    counts = {s: 0 for s in STATES}
    proxies = {s: 0 for s in ("pending", "done", "failed", "n/a")}
    for j in jobs:
        counts[j["state"]] += 1
        proxies[j["proxy"]] += 1
    return {"jobs_by_state": counts, "proxies": proxies, "jobs": jobs}


def _proxy_status(state: str | None, proxy_path: str | None) -> str:
    if state == "done":
        return "done" if proxy_path else "n/a"
    return PROXY_STATUS[state]


def retry(catalog: Catalog, ids: Iterable[int] | None = None) -> tuple[list[int], list[int]]:
    """Queue jobs again from their first attempt: the given ones (done ones are redone: their
    derived files regenerated), or every failed one. Returns (queued, skipped because running)."""
    ids = list(ids or [])
    now = utcnow()
    with catalog.transaction() as conn:
        if ids:
            rows = dict(conn.execute(
                f"SELECT footage_id, state FROM media_jobs WHERE footage_id IN ({','.join('?' * len(ids))})", ids).fetchall())
            unknown = [i for i in ids if i not in rows]
            if unknown:
                raise NotFound(f"no media job for footage id(s) {', '.join(map(str, unknown))}; "
                               "see `evidock media status` or `evidock footage list`")
        else:
            rows = dict(conn.execute("SELECT footage_id, state FROM media_jobs WHERE state = 'failed'").fetchall())
        busy = sorted(i for i, s in rows.items() if s == "running")
        todo = sorted(i for i, s in rows.items() if s != "running")
        conn.executemany("UPDATE media_jobs SET state='queued', attempts=0, not_before=?, error=NULL, error_detail=NULL,"
                         " note=NULL WHERE footage_id=? AND state != 'running'", [(now, i) for i in todo])
        if todo:
            audit.append(catalog, "media.retry", "media:" + ",".join(map(str, todo)), {"jobs": todo})
    return todo, busy


def footage_columns(catalog: Catalog) -> dict[int, dict[str, Any]]:
    """`footage list` columns per footage id: duration_s, codec, proxy, proxy_path."""
    out = {}
    for fid, state, proxy_path, duration, vcodec, acodec in catalog.conn.execute(
        "SELECT f.id, j.state, j.proxy_path, i.duration_s, i.video_codec, i.audio_codec FROM footage f"
        " LEFT JOIN media_jobs j ON j.footage_id = f.id LEFT JOIN media_info i ON i.footage_id = f.id"
    ):
        proxy = _proxy_status(state, proxy_path)
        out[fid] = {"duration_s": duration, "codec": vcodec or acodec, "proxy": proxy,
                    "proxy_path": str(catalog.data_dir / proxy_path) if proxy == "done" else None}
    return out
