"""``evidock media …``: the media queue — probe, viewing proxies, thumbnails (daemon/media/queue.py)."""

from __future__ import annotations

import signal
import threading

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.labels import JOB_STATES, MEDIA_KINDS, MEDIA_PLANS, PROXY_STATUS, label
from daemon.display import Column, local_time, shown, table
from daemon import i18n
from daemon.i18n import _
from daemon.media.listing import error_texts, retry, status
from daemon.media.queue import Outcome, run_queue


def _q(text: str | None) -> str:
    """A recorder's file name on one line, escaped (newlines, control characters)."""
    return shown(text or "")


@cli.group("media")
def media_group() -> None:
    """Probing, viewing proxies and thumbnails of stored footage, and their work queue.

    Every stored file gets a media job. Originals are never touched: proxies (H.264/AAC MP4,
    AAC M4A, JPEG) and thumbnails are separate files under the data dir's proxies/ and thumbs/.

    \b
    Example:
      evidock media run && evidock media status
    """


@media_group.command("run")
@click.option("--no-wait", is_flag=True, help="Return once nothing is due now, instead of waiting out retry back-offs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: every job worked on, counts, notes.")
@pass_station
def media_run(st: Station, no_wait: bool, as_json: bool) -> int:
    """Work the media queue until it is empty (for cron and tests).

    Each job probes the stored file (codecs, duration, size, frame rate, recording start),
    makes its proxy (a video already H.264 at <= 720p is remuxed, not re-encoded) and, for a
    video, a thumbnail and a contact sheet. A job that fails for a reason that may pass is
    retried with back-off, up to media.max_attempts times; bad media fails at once with a reason.

    Exit 0: every job worked on is done; 1: some ended failed (the originals are safe; see
    `evidock media status`), or it was stopped (SIGINT/SIGTERM) and running jobs were handed
    back to the queue; 2: error (ffmpeg missing, catalog unwritable).

    \b
    Example:
      evidock media run --json | jq '.jobs[] | select(.state == "failed")'
    """

    done: list[list[object]] = []

    def on_outcome(o: Outcome) -> None:
        if as_json:
            return
        if o.state == "done":
            done.append([label(PROXY_STATUS, o.proxy), o.footage_id, label(MEDIA_KINDS, o.kind),
                         label(MEDIA_PLANS, o.plan), o.sha256[:16], o.source_path or ""])
        else:
            what = _("failed: footage {id} {path}: {error}") if o.state == "failed" else _("retry: footage {id} {path}: {error}")
            error = i18n.text(o.error_msg) if o.error_msg is not None else o.error
            say(what.format(id=o.footage_id, path=_q(o.source_path), error=error))
        if o.note:
            note = _("; ").join(map(i18n.text, o.note_msgs)) if o.note_msgs else o.note
            say(_("note: footage {id}: {note}").format(id=o.footage_id, note=note))

    # SIGINT/SIGTERM (^C, cron or systemd stopping it): stop ffmpeg and hand running jobs back to
    # the queue, so that they neither count as an attempt nor wait for a dead runner to be noticed.
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = run_queue(st.context, stop=stop, wait_for_retries=not no_wait, on_outcome=on_outcome)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        emit_json(report.to_json())
    else:
        if done:
            click.echo(table([Column(_("proxy")), Column(_("footage"), align=">"), Column(_("kind")),
                              Column(_("how")), Column(_("SHA-256"), 16), Column(_("file"), 60)], done, empty=""))
        for n in report.notes:
            say(_("note: {note}").format(note=i18n.text(n)))
        if report.recovered:
            say(_("note: job(s) {ids} were left running by a runner that died; queued again").format(
                ids=_(", ").join(map(str, report.recovered))))
        c = report.counts()
        tail = _(" (stopped early; the rest stays queued)") if report.stopped else ""
        say(_("media: {done} proxied, {na} not media, {failed} failed, {retrying} waiting for a retry").format(
            done=c["done"], na=c["n/a"], failed=c["failed"], retrying=c["retrying"]) + tail)
    return report.exit_code


@media_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: counts and every job with its probe facts.")
@pass_station
def media_status(st: Station, as_json: bool) -> int:
    """Show the media queue: jobs by state, proxies by status, and jobs that failed or wait.

    \b
    Example:
      evidock media status --json | jq '.jobs[] | select(.proxy == "failed") | {id, error}'
    """
    with st.catalog() as catalog:
        doc = status(catalog)
        errors = {} if as_json else error_texts(catalog)
    if as_json:
        emit_json(doc)
        return 0
    rows = []
    for j in doc["jobs"]:
        if j["state"] == "failed":
            rows.append([label(JOB_STATES, "failed"), j["id"], j["source_path"], errors.get(j["id"], j["error"])])
        elif j["state"] == "running":
            rows.append([label(JOB_STATES, "running"), j["id"], j["source_path"],
                         _("attempt {attempts}, runner {runner}").format(attempts=j["attempts"], runner=j["claimed_by"])])
        elif j["state"] == "queued" and j["error"]:
            rows.append([label(JOB_STATES, "retry"), j["id"], j["source_path"], _("after {when}: {error}").format(
                when=local_time(j["not_before"], st.config.ui.timezone, seconds=True),
                error=errors.get(j["id"], j["error"]))])
    if rows:
        click.echo(table([Column(_("state")), Column(_("job"), align=">"), Column(_("file"), 50),
                          Column(_("detail"), 80)], rows, empty=""))
    c, p = doc["jobs_by_state"], doc["proxies"]
    click.echo(_("jobs: {queued} queued, {running} running, {done} done, {failed} failed; "
                 "proxies: {p_done} done, {p_pending} pending, {p_failed} failed, {p_na} n/a").format(
        queued=c["queued"], running=c["running"], done=c["done"], failed=c["failed"], p_done=p["done"],
        p_pending=p["pending"], p_failed=p["failed"], p_na=p["n/a"]))
    return 0


@media_group.command("retry")
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@pass_station
def media_retry(st: Station, ids: tuple[int, ...]) -> int:
    """Queue media jobs again from their first attempt (audited); then run `evidock media run`.

    Without IDs: every failed job. With footage IDs: those jobs, also done ones (their proxy
    and thumbnails are made again). Exit 1 if some job was running and left alone.

    \b
    Example:
      evidock media retry 17 18 && evidock media run
    """
    with st.catalog() as catalog:
        done = retry(catalog, ids)
    queued, busy = done
    if queued:
        say(_("queued again: {ids}; run `evidock media run`").format(ids=_(", ").join(map(str, queued))))
    elif not busy:
        say(_("no failed media jobs to retry"))
    if busy:
        say(_("warning: job(s) {ids} are running right now and were left alone").format(ids=_(", ").join(map(str, busy))))
    return done.exit_code
