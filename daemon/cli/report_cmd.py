"""``evidock report health | list``: the device health report (HTML + CSV) and the daily ones kept."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from daemon import i18n
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.timeopt import AS_OF
from daemon.display import Column, local_time, table
from daemon.i18n import _
from daemon.report.health_report import health_report, json_doc, list_reports


@cli.group("report")
def report_group() -> None:
    """Reports for people: the device health report (art. 15).

    The `report` job writes one every day into <data-dir>/reports/health/<date>/ ([schedule]
    report, 06:00 by default) and keeps report.keep_days of them.

    \b
    Example:
      evidock report list
    """


@report_group.command("health")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Folder to write index.html, health.csv and report.json into (created).")
@click.option("--since", type=AS_OF, metavar="DATE", help="Only the history from this time on (default: all of it).")
@click.option("--lang", "lang", type=click.Choice(i18n.LANGUAGES),
              help="Language of the report (default: the language of this run: --lang before the command, "
                   "EVIDOCK_LANG, [ui] language).")
@click.option("--json", "as_json", is_flag=True, help="Print the report's document as one JSON document.")
@pass_station
def report_health(st: Station, out: str, since: datetime | None, lang: str | None, as_json: bool) -> int:
    """Write the device health report: one self-contained HTML page and a CSV of every dock.

    The page needs nothing from the network (it opens from a USB stick) and prints on A4. The
    CSV is UTF-8 with a BOM, for Excel. Exit 0: nothing needs attention; 1: some recorder does.

    \b
    Example:
      evidock report health --out /media/usb/health --since 2026-11-01 --lang zh
    """
    with st.catalog() as catalog:
        doc = health_report(catalog, st.config, st.data_dir, Path(out), lang or i18n.current_language(), since)
    code = 1 if doc["attention"] else 0
    if as_json:
        emit_json({**json_doc(doc), "exit_code": code})
        return code
    say(_("health report: {recorders} recorders, {attention} need attention; written to {path}").format(
        recorders=doc["summary"]["recorders"], attention=doc["summary"]["attention"], path=doc["files"]["html"]))
    return code


@report_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def report_list(st: Station, as_json: bool) -> int:
    """List the daily health reports kept under <data-dir>/reports/health/, newest first.

    \b
    Example:
      evidock report list --json
    """
    rows = list_reports(st.data_dir)
    if as_json:
        emit_json(rows)
        return 0
    tz = st.config.ui.timezone
    cols = [Column(_("date"), 10), Column(_("generated"), 16), Column(_("recorders"), align=">"),
            Column(_("need attention"), align=">"), Column(_("page"), 40)]
    out = [[r["date"], local_time(r["generated_at"], tz), (r["summary"] or {}).get("recorders", "-"),
            (r["summary"] or {}).get("attention", "-"), r["html"]] for r in rows]
    click.echo(table(cols, out, empty=_("no health reports yet")))
    return 0
