"""``evidock store upload|status|gc`` and ``evidock reindex --from-store``: the upload queue of the S3
evidence store, its gc, and a station's catalog rebuilt from the bucket (issue 17)."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.display import duration, local_time, shown, size
from daemon.i18n import _, ngettext, text
from daemon.store.refs import gc
from daemon.store.reindex import reindex
from daemon.store.replay import lost_with
from daemon.store.status import store_status
from daemon.store.uploads import run_queue


@cli.group("store")
def store_group() -> None:
    """The evidence store: with store.backend = "s3", the upload queue to the bucket of [store.s3].

    Offloads complete into local staging; the daemon (`evidock run`) uploads each object, checks
    it there and only then lets the recorder be wiped.

    \b
    Example:
      evidock store status
    """


@store_group.command("upload")
@click.option("--no-wait", is_flag=True, help="Only the objects whose retry back-off is over, instead of every waiting one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def store_upload(st: Station, no_wait: bool, as_json: bool) -> int:
    """Work the upload queue until it is empty (for cron and tests; the daemon works it by itself).

    Each object goes up with its SHA-256 as checksum and COMPLIANCE retention, and counts as
    stored once the bucket reports the same SHA-256 for the version written; then this station's
    references (refs/, holds/) and its new audit rows (audit/) go to the bucket. Exit 0: the
    queue is empty; 1: objects, references or audit rows still wait (a failure is retried with
    back-off); 2: not an s3 store.

    \b
    Example:
      evidock store upload --json
    """
    with st.catalog() as catalog:
        rep = run_queue(st.context, catalog, due_only=no_wait)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    if rep.error is not None:
        say(_("store upload failed: {error}").format(error=text(rep.error)))
    click.echo(_("store upload: {uploaded} uploaded ({bytes}), {present} already in the bucket, {failed} failed, "
                 "{waiting} waiting").format(uploaded=rep.uploaded, bytes=size(rep.bytes), present=rep.present,
                                             failed=len(rep.failed), waiting=rep.waiting))
    if rep.cache is not None and rep.cache["evicted"]:
        click.echo(ngettext("local cache: {n} copy evicted ({bytes}), {cached} cached",
                            "local cache: {n} copies evicted ({bytes}), {cached} cached", rep.cache["evicted"]).format(
            n=rep.cache["evicted"], bytes=size(rep.cache["evicted_bytes"]), cached=size(rep.cache["cached_bytes"])))
    for sha, why in rep.failed[:5]:
        say(_("store upload: {sha256}: {error}").format(sha256=sha, error=text(why)))
    for subject, why in rep.later[:5]:
        say(_("store upload: {subject}: tried again at the next pass: {error}").format(subject=subject,
                                                                                     error=text(why)))
    return rep.exit_code


@store_group.command("gc")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def store_gc(st: Station, as_json: bool) -> int:
    """Delete the objects in the bucket that no station refers to, once their Object Lock expired.

    Runs only at the station store.gc_station names (the scheduled job store-gc runs it there).
    An object is kept while any station has a ref (refs/SHA256/STATION) or a legal hold
    (holds/SHA256/STATION) on it; a version still locked is kept and tried again next time.
    Each deletion is in the audit log. Exit 0: done; 1: some objects could not be checked or
    deleted; 2: not the gc station, or the bucket cannot be used.

    \b
    Example:
      evidock store gc --json
    """
    with st.catalog() as catalog:
        rep = gc(st.context, catalog)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    click.echo(_("store gc: {objects} object(s) in the bucket, {deleted} deleted, {referenced} still referenced, "
                 "{locked} still locked, {failed} failed").format(
        objects=rep.objects, deleted=len(rep.deleted), referenced=rep.referenced, locked=len(rep.locked),
        failed=len(rep.errors)))
    for sha, why in rep.errors[:5]:
        say(_("store gc: {sha256}: {error}").format(sha256=sha, error=text(why)))
    return rep.exit_code


@store_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def store_status_cmd(st: Station, as_json: bool) -> int:
    """The upload queue: objects waiting, their bytes, the oldest and its age; open alerts.

    Exit 1 when an object waits longer than store.max_upload_lag_hours or an alert is open.

    \b
    Example:
      evidock store status --json
    """
    with st.catalog() as catalog:
        doc = store_status(st.config, catalog, st.context.store)
    code = 1 if doc["lagging"] or doc["alerts"] else 0
    if as_json:
        for a in doc["alerts"]:
            a.pop("text", None)
        emit_json({**doc, "exit_code": code})
        return code
    click.echo(store_line(doc, st.config.ui.timezone))
    if doc["cache"] is not None:
        c = doc["cache"]
        click.echo(_("local cache: {cached} object(s), {bytes} of store.cache_bytes = {bound}; {remote} in the bucket "
                     "only").format(cached=c["cached"], bytes=size(c["cached_bytes"]), bound=size(c["cache_bytes"]),
                                    remote=c["in_bucket_only"]))
    for a in doc["alerts"]:
        say(_("alert: {message}").format(message=text(a["text"])))
    return code


def store_line(doc: dict, tz: str) -> str:
    """One line about the upload queue (also in `evidock status`)."""
    if doc["backend"] != "s3":
        return _("evidence store: local (the data dir)")
    return _("evidence store: bucket {bucket}: {waiting} object(s) waiting for upload ({bytes}), oldest since {since} "
             "({age}); {stored} stored").format(bucket=doc["bucket"], waiting=doc["waiting"],
                                                bytes=size(doc["waiting_bytes"]),
                                                since=local_time(doc["oldest_waiting"], tz, missing=_("none")),
                                                age=duration(doc["oldest_age_s"], missing="-"), stored=doc["stored"])


@cli.command("reindex")
@click.option("--from-store", "from_store", is_flag=True,
              help="Rebuild from the evidence store bucket ([store.s3]); the one source there is, named for clarity.")
@click.option("--station", metavar="ID", help="The station whose catalog to rebuild (default: [station] id).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def reindex_cmd(st: Station, from_store: bool, station: str | None, as_json: bool) -> int:
    """Rebuild a lost station's catalog from the bucket alone, into a data dir without a catalog.

    The data dir is the global --data-dir (before the command, as for every command); a catalog
    there is never overwritten. The station's audit segments (audit/STATION/) are checked row by
    row: a break refuses the reindex, naming the key. The newest catalog snapshot
    (catalog/STATION/) that is a prefix of that chain becomes the catalog (none: a fresh one),
    and every entry after it is appended as it is and applied. Objects stay in the bucket.
    What cannot be rebuilt is listed. Exit 0: rebuilt, `audit verify` passes; 1: objects the
    chain records are missing from the bucket; 2: refused, or the chain check failed.

    \b
    Example:
      evidock --data-dir /var/lib/evidock reindex --from-store --station st-07
    """
    if not from_store:
        raise click.UsageError(_("say where to rebuild from: --from-store (the bucket of [store.s3])"))
    rep = reindex(st.config, st.data_dir, station)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    tz = st.config.ui.timezone
    click.echo(_("reindex: station {station} rebuilt from bucket {bucket} into {dir}: {rows} audit rows in {segments} "
                 "segment(s), {snapshot_rows} from the snapshot {snapshot}, {replayed} replayed").format(
        station=shown(rep.station), bucket=rep.bucket, dir=rep.data_dir, rows=rep.rows, segments=rep.segments,
        snapshot_rows=rep.snapshot_rows, snapshot=rep.snapshot or _("(none: from the first entry)"),
        replayed=rep.replayed))
    for key, why in rep.skipped_snapshots:
        say(_("reindex: snapshot {key} not used: {reason}").format(key=key, reason=text(why)))
    for event, n in sorted(rep.not_rebuilt.items()):
        say(_("reindex: not rebuilt: {n} {event} entr(ies): {what}").format(n=n, event=event, what=text(lost_with(event))))
    if rep.approximate:
        say(_("reindex: {n} footage row(s) without their provenance in the bucket: their ingest time is the audit "
              "entry's ({ids})").format(n=len(rep.approximate), ids=", ".join(map(str, rep.approximate[:20]))))
    for sha, fid in sorted(rep.missing.items()):
        say(_("reindex: missing from the bucket: {sha256} (footage {id})").format(sha256=sha, id=fid))
    say(_("reindex: not in the bucket (never audited): health readings and alerts, dock events, the problems of each "
          "offload and notifications after {since}").format(
        since=local_time(rep.unaudited_after, tz, missing=_("the first entry"))))
    click.echo(_("reindex: audit chain: {audit}").format(audit=_("intact") if rep.audit_ok else _("BROKEN")))
    return rep.exit_code
