"""``evidock devices`` and ``evidock health``: known recorders, their health history and open alerts."""

from __future__ import annotations

from collections.abc import Iterable

import click

from daemon import health
from daemon.catalog import officers
from daemon.catalog.db import Catalog
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.labels import ALERT_KINDS, label
from daemon.display import Column, local_time, seconds, shown, table
from daemon.errors import EXIT_OK, EXIT_WARNING
from daemon.i18n import _, ngettext


def warn_unregistered(catalog: Catalog, badges: Iterable[str | None]) -> int:
    """Warn (stderr) about each badge staff never registered; EXIT_WARNING if there is one."""
    missing = officers.unregistered(catalog, {b for b in badges if b})
    for b in missing:
        say(_("evidock: warning: officer {badge} is not in the officer registry (a typo?); accepted — register "
              "them with `evidock officer add {badge} --name …`").format(badge=shown(b)))
    return EXIT_WARNING if missing else EXIT_OK


@cli.group("devices", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.pass_context
def devices_group(ctx: click.Context, as_json: bool) -> int | None:
    """List each known recorder: its officer, when it was last docked, its last health, open alerts.

    A recorder bound to an officer who is not in the registry is named on stderr (exit 1).

    \b
    Example:
      evidock devices --json | jq '.[] | select(.open_alerts != [])'
    """
    if ctx.invoked_subcommand is not None:
        return None
    st: Station = ctx.find_object(Station)
    with st.catalog() as catalog:
        rows = health.devices(catalog)
        # a recorder bound to a badge the registry does not know: named, exit 1 (issue 13)
        code = warn_unregistered(catalog, [d["officer_badge"] for d in rows])
    if as_json:
        emit_json(health.json_view(rows))
        return code
    tz = st.config.ui.timezone
    cols = [Column(_("recorder"), 20), Column(_("model"), 14), Column(_("officer"), 10), Column(_("name"), 12),
            Column(_("last docked"), 16), Column(_("battery"), align=">"), Column(_("storage used"), align=">"),
            Column(_("clock drift"), align=">"), Column(_("open alerts"), align=">")]
    out = []
    for d in rows:
        h = d["last_health"] or {}
        out.append([d["serial"], d["model"], d["officer_badge"], d["officer_name"], local_time(d["last_seen"], tz),
                    _percent(h.get("battery_percent")), _percent(h.get("storage_used_percent")),
                    _drift(h.get("clock_drift_s")), len(d["open_alerts"])])
    click.echo(table(cols, out, empty=_("no recorders known yet")))
    return code


def _percent(v: float | None) -> str:
    return f"{v}%" if v is not None else _("n/r")


def _drift(v: float | None) -> str:
    return seconds(v, missing=_("n/r"), sign=True)


@cli.command("health")
@click.argument("serial", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest records to show per recorder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: history and open alerts.")
@pass_station
def health_command(st: Station, serial: str | None, limit: int, as_json: bool) -> int:
    """Show the health history (newest first) and the open alerts of one recorder, or of all.

    \b
    Example:
      evidock health ZFY-0001 --json
    """
    with st.catalog() as catalog:
        doc = health.device_report(catalog, serial, limit)
    rows, alerts = doc["history"], doc["open_alerts"]
    if as_json:
        emit_json(health.json_view(doc))
        return 0
    tz = st.config.ui.timezone
    cols = [Column(_("time"), 16), Column(_("recorder"), 20), Column(_("session"), align=">"),
            Column(_("battery"), align=">"), Column(_("capacity"), align=">"), Column(_("storage used"), align=">"),
            Column(_("file system"), 10), Column(_("clock drift"), align=">"), Column(_("firmware"), 16)]
    out = [[local_time(r["at"], tz), r["device_serial"], r["session_id"] or "-", _percent(r["battery_percent"]),
            f"{r['full_charge_mah']} mAh" if r["full_charge_mah"] else _("n/r"), _percent(r.get("storage_used_percent")),
            r["fs_state"] or _("n/r"), _drift(r["clock_drift_s"]), r["firmware"] or _("n/r")] for r in rows]
    click.echo(table(cols, out, empty=_("no health records")))
    click.echo(_("n/r: not reported by the recorder"))
    click.echo(ngettext("{n} open alert", "{n} open alerts", len(alerts)).format(n=len(alerts)))
    for a in alerts:
        click.echo(_("ALERT {serial} {kind}: {message} (since {since})").format(
            serial=shown(a["device_serial"]), kind=label(ALERT_KINDS, a["kind"]), message=shown(health.alert_text(a)),
            since=local_time(a["raised_at"], tz)))
    return 0
