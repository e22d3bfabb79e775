"""``evidock backup run|status|verify`` and ``evidock restore``: verified copies to the targets."""

from __future__ import annotations

import click

from daemon.backup.restore import restore
from daemon.backup.run import run_backup
from daemon.backup.status import backup_status
from daemon.backup.verify import verify_copies
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.display import Column, duration, local_time, size, table
from daemon.i18n import _, text


@cli.group("backup")
def backup_group() -> None:
    """Verified backups of the store and the catalog to [[backup.targets]] (art. 11).

    The `backup` job runs them every night ([schedule] backup, 01:30 by default).

    \b
    Example:
      evidock backup status
    """


@backup_group.command("run")
@click.option("--target", "target", metavar="NAME", help="Only this target (default: all of them).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def backup_run(st: Station, target: str | None, as_json: bool) -> int:
    """Copy what each target lacks, verified there; then a catalog snapshot.

    Incremental: only objects the target holds no verified copy of. Secret footage goes only to
    on-site targets unless the target sets include_secret. Exit 0: ok; 1: objects missing from
    the store; 2: a target failed (the next run catches up).

    \b
    Example:
      evidock backup run --target disk2
    """
    with st.catalog() as catalog:
        rep = run_backup(st.context, catalog, target)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    if not rep.runs:
        say(_("no backup targets: add [[backup.targets]] to the config"))
    for r in rep.runs:
        if r.forgotten:
            say(_("backup {target}: the target does not carry this station's mark (another disk, a wiped share or "
                  "another bucket under the same name?): the {n} copies marked there are made again").format(
                target=r.target, n=r.forgotten))
        if r.result == "failed":
            say(_("backup {target}: failed: {error}").format(target=r.target, error=text(r.error)))
        else:
            click.echo(_("backup {target}: {copied} objects copied ({bytes}), {deleted} deleted, {secret} secret kept "
                         "on-site; snapshot {snapshot}").format(target=r.target, copied=r.copied, bytes=size(r.bytes),
                                                                deleted=r.deleted, secret=r.skipped_secret,
                                                                snapshot=r.snapshot))
        if r.held or r.released:
            click.echo(_("backup {target}: S3 legal hold set on {held} copies of footage on legal hold, lifted on "
                         "{released} whose hold was released").format(target=r.target, held=r.held,
                                                                      released=r.released))
        if r.missing:
            say(_("backup {target}: {n} objects are missing from the store; run `evidock verify`").format(
                target=r.target, n=len(r.missing)))
    return rep.exit_code


@backup_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def backup_status_cmd(st: Station, as_json: bool) -> int:
    """Per target: objects and bytes backed up of all, the lag, last run and last verify.

    Exit 1 when a target lags more than backup.max_lag_hours or has an open alert.

    \b
    Example:
      evidock backup status --json
    """
    with st.catalog() as catalog:
        doc = backup_status(st.config, catalog)
    code = 1 if any(t["lagging"] or t["alerts"] for t in doc["targets"]) else 0
    if as_json:
        for t in doc["targets"]:
            for k in ("last_run", "last_verify"):
                if t[k]:
                    t[k].pop("error_message", None)
            for a in t["alerts"]:
                a.pop("text", None)
        emit_json({**doc, "exit_code": code})
        return code
    tz = st.config.ui.timezone
    cols = [Column(_("target"), 16), Column(_("kind"), 6), Column(_("objects"), align=">"), Column(_("bytes"), align=">"),
            Column(_("lag"), align=">"), Column(_("last run"), 16), Column(_("result"), 8), Column(_("last verify"), 16)]
    rows = []
    for t in doc["targets"]:
        lr, lv = t["last_run"] or {}, t["last_verify"] or {}
        rows.append([t["target"], t["kind"], f"{t['objects']}/{t['objects_total']}",
                     f"{size(t['bytes'])}/{size(t['bytes_total'])}", duration(t["lag_s"], missing=_("none")),
                     local_time(lr.get("started_at"), tz, missing=_("never")), lr.get("result", "-"),
                     local_time(lv.get("started_at"), tz, missing=_("never"))])
    click.echo(table(cols, rows, empty=_("no backup targets")))
    for t in doc["targets"]:
        for a in t["alerts"]:
            say(_("alert: {target}: {message}").format(target=t["target"], message=text(a["text"])))
    return code


@backup_group.command("verify")
@click.option("--target", "target", metavar="NAME", help="Only this target.")
@click.option("--sample", type=click.IntRange(min=1), metavar="N", help="At most N copies per target, oldest verified first.")
@click.option("--all", "all_", is_flag=True, help="Every copy (the default without --sample).")
@click.option("--max-duration", type=click.FloatRange(min=0, min_open=True), metavar="S", help="Stop after S seconds (one copy per target at least); the next slice resumes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def backup_verify(st: Station, target: str | None, sample: int | None, all_: bool, max_duration: float | None,
                  as_json: bool) -> int:
    """Read copies back at the targets and hash them; a damaged copy is alerted and copied again next run.

    Exit 0: all read back intact; 2: damage found, or a target could not be read.

    \b
    Example:
      evidock backup verify --sample 100 --max-duration 600
    """
    if sample is not None and all_:
        raise click.UsageError(_("--sample and --all exclude each other"))
    with st.catalog() as catalog:
        rep = verify_copies(st.context, catalog, target, sample, max_duration)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    click.echo(_("backup verify: {checked} copies read back, {damaged} damaged").format(
        checked=rep.checked, damaged=len(rep.damaged)))
    for d in rep.damaged:
        say(_("damaged: {target}: {sha256}").format(**d))
    for f in rep.failed:
        say(_("failed: {target}: {error}").format(**f))
    return rep.exit_code


@cli.command("restore")
@click.option("--from", "source", required=True, metavar="NAME", help="The backup target to restore from.")
@click.option("--station", metavar="ID", help="The station whose snapshot to take (default: [station] id).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def restore_cmd(st: Station, source: str, station: str | None, as_json: bool) -> int:
    """Rebuild the store and the catalog from a backup target into an empty data dir.

    The data dir is the global --data-dir (before the command, as for every command); it must
    be empty or absent.

    The newest catalog snapshot becomes the catalog; every object is fetched and hashed; then
    the store is verified and the audit chain checked. Exit 0: complete and clean; 2: something
    is missing or damaged (listed).

    \b
    Example:
      evidock --data-dir /var/lib/evidock.new restore --from disk2
    """
    dest = st.data_dir
    rep = restore(st.config, source, dest, station)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    click.echo(_("restored {objects} objects ({bytes}) and the catalog {snapshot} from {target} into {dir}").format(
        objects=rep.objects, bytes=size(rep.bytes), snapshot=rep.snapshot, target=rep.target, dir=dest))
    for m in rep.missing:
        say(_("missing: {sha256}: {reason}").format(**m))
    click.echo(_("verify: {summary}; audit chain: {audit}").format(
        summary=rep.verify.get("summary", "-"), audit=_("intact") if rep.audit_ok else _("BROKEN")))
    return rep.exit_code
