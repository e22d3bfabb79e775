"""``evidock ingest``: offload a mounted recorder volume or a folder into the store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.devices_cmd import warn_unregistered
from daemon.cli.labels import FILE_STATUS, SESSION_STATUS, SEVERITY, label
from daemon.display import Column, size, table
from daemon import i18n
from daemon.i18n import _, ngettext
from daemon.ingest.offload import ingest, refuse_own_data_dir
from daemon.ingest.volume import quoted


@cli.command("ingest")
@click.argument("src", type=click.Path(file_okay=False, path_type=Path))
@click.option("--officer", metavar="BADGE", help="Badge number (警号) of the officer the footage belongs to.")
@click.option("--device", metavar="SERIAL", help="Serial of the recorder the volume belongs to (keys resume).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: files, problems, counts.")
@pass_station
def ingest_command(st: Station, src: Path, officer: str | None, device: str | None, as_json: bool) -> int:
    """Offload every regular file under SRC into the evidence store.

    Each file is read once, hashed while written, fsync'd, re-read and verified, then stored
    under its SHA-256 and catalogued with an audit entry. Links, FIFOs, devices and unreadable
    entries are reported and skipped. An interrupted offload resumes where it stopped.

    Exit 0: everything stored; 1: every regular file stored, some entries skipped;
    2: some regular file not stored.

    \b
    Example:
      evidock ingest /media/recorder --officer 010203 --device ZFY-0001 --json
    """
    bar = None
    progress = None
    on_scanned = None
    if not as_json and sys.stderr.isatty():
        def on_scanned(n: int, total: int) -> None:
            nonlocal bar
            label_text = ngettext("offloading {n} file", "offloading {n} files", n).format(n=n)
            bar = click.progressbar(length=total, label=label_text, file=sys.stderr)
            bar.__enter__()

        def progress(n: int) -> None:
            if bar is not None:
                bar.update(n)
    try:
        refuse_own_data_dir(src, st.data_dir)  # before the context creates a data dir inside the source
        result = ingest(st.context, src, device=device, officer=officer,
                        progress=progress, on_scanned=on_scanned)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        emit_json(result.to_json())
    else:
        rows = [[label(FILE_STATUS, t.status), t.sha256[:16], size(t.size), t.entry.rel]
                for t in result.tasks if t.status in ("stored", "duplicate")]
        if rows:
            click.echo(table([Column(_("result"), 10), Column(_("SHA-256"), 16), Column(_("size"), 10, ">"),
                              Column(_("file"), 80)], rows, empty=""))
        for p in result.problems:
            say(_("{severity}: {path}: {reason}").format(severity=label(SEVERITY, p.severity), path=quoted(p.rel),
                                                        reason=i18n.text(p.reason)))
        c = result.counts()
        say(_("session {session} {status}: {stored} stored, {duplicates} already stored, {failed} not stored, "
              "{problems} problem(s)").format(session=result.session_id, status=label(SESSION_STATUS, result.status),
                                             stored=c["stored"], duplicates=c["duplicates"], failed=c["failed"],
                                             problems=c["problems"]))
    if result.message:
        say(_("evidock: {message}").format(message=i18n.text(result.message_msg or result.message)))
    with st.catalog() as catalog:
        warned = warn_unregistered(catalog, [officer])
    return max(result.exit_code, warned)
