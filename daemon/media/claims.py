"""Claims on media jobs: who runs a job (pid, its start time, the boot), so that a job left
running by a dead runner is queued again and a reused pid never passes for it.
"""

from __future__ import annotations

import logging

from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.config import MediaConfig
from daemon.i18n import N_, Message, dumps
from daemon.media.derived import DerivedFiles
from daemon.media.stages import MediaJob
from daemon.proc import token_alive

log = logging.getLogger(__name__)



# -- claims ---------------------------------------------------------------------------------


def recover_stale(catalog: Catalog, cfg: MediaConfig, derived: DerivedFiles) -> dict[int, str]:
    """Queue again the jobs whose runner died while working on them (or fail them, on their last
    attempt); returns their ids and new states."""
    rows = catalog.conn.execute(
        "SELECT footage_id, sha256, attempts, claimed_by FROM media_jobs WHERE state = 'running'").fetchall()
    dead = [r for r in rows if not token_alive(r[3] or "")]
    if not dead:
        return {}
    now = utcnow()
    out = {}
    with catalog.transaction() as conn:
        for fid, sha, attempts, token in dead:
            why = Message(N_("the media runner (process {token}) stopped while working on it"), token=token)
            out[fid] = "failed" if attempts >= cfg.max_attempts else "queued"
            if out[fid] == "failed":
                msg = Message(N_("{why}, on every one of {attempts} attempts: the file may crash ffmpeg or "
                                 "exhaust the station's memory; see `evidock media retry`"), why=why, attempts=attempts)
                conn.execute("UPDATE media_jobs SET state='failed', claimed_by=NULL, finished_at=?, error=?, error_msg=? "
                             "WHERE footage_id=? AND state='running' AND claimed_by IS ?",
                             (now, str(msg), dumps(msg), fid, token))
            else:
                msg = Message(N_("{why}; queued again"), why=why)
                conn.execute("UPDATE media_jobs SET state='queued', claimed_by=NULL, not_before=?, error=?, error_msg=? "
                             "WHERE footage_id=? AND state='running' AND claimed_by IS ?",
                             (now, str(msg), dumps(msg), fid, token))
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
