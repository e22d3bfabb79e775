"""The media queue for people: jobs by state, retrying failed jobs, and the media columns of the
footage listing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.errors import EXIT_OK, EXIT_WARNING, NotFound
from daemon.evidence import audit
from daemon.i18n import N_, stored
from daemon.media.queue import PROXY_STATUS, STATES

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


def error_texts(catalog: Catalog) -> dict[int, str]:
    """Each job's error in the reader's language (``status`` keeps the English, for the JSON)."""
    return {fid: stored(error, msg) for fid, error, msg in catalog.conn.execute(
        "SELECT footage_id, error, error_msg FROM media_jobs WHERE error IS NOT NULL")}


def _proxy_status(state: str | None, proxy_path: str | None) -> str:
    if state == "done":
        return "done" if proxy_path else "n/a"
    return PROXY_STATUS[state]


class Retried(NamedTuple):
    """What ``retry`` did: the jobs queued again and those left alone because they were running."""

    queued: list[int]
    busy: list[int]

    @property
    def exit_code(self) -> int:
        """1 when some job was running and left alone, else 0."""
        return EXIT_WARNING if self.busy else EXIT_OK


def retry(catalog: Catalog, ids: Iterable[int] | None = None) -> Retried:
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
                raise NotFound(N_("no media job for footage id(s) {ids}; "
                                  "see `evidock media status` or `evidock footage list`"), ids=", ".join(map(str, unknown)))
        else:
            rows = dict(conn.execute("SELECT footage_id, state FROM media_jobs WHERE state = 'failed'").fetchall())
        busy = sorted(i for i, s in rows.items() if s == "running")
        todo = sorted(i for i, s in rows.items() if s != "running")
        conn.executemany("UPDATE media_jobs SET state='queued', attempts=0, not_before=?, error=NULL, error_msg=NULL, error_detail=NULL,"
                         " note=NULL WHERE footage_id=? AND state != 'running'", [(now, i) for i in todo])
        if todo:
            audit.append(catalog, "media.retry", "media:" + ",".join(map(str, todo)), {"jobs": todo})
    return Retried(todo, busy)


def proxy_columns(catalog: Catalog, state: str | None, proxy_path: str | None, duration: float | None,
                  vcodec: str | None, acodec: str | None) -> dict[str, Any]:
    """`footage list` columns of one footage row from its media job and probe."""
    proxy = _proxy_status(state, proxy_path)
    return {"duration_s": duration, "codec": vcodec or acodec, "proxy": proxy,
            "proxy_path": str(catalog.data_dir / proxy_path) if proxy == "done" and proxy_path else None}
