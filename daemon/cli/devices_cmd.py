"""``evidock devices`` and ``evidock health``: known recorders, their health history and open alerts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import click

from daemon import health, i18n
from daemon.catalog import officers
from daemon.catalog.db import Catalog
from daemon.cli import Station, cli, emit_json, emit_json_object, emit_json_rows, pass_station, paging, say
from daemon.cli.labels import ALERT_KINDS, SEEN_AS, label
from daemon.cli.timeopt import TimeParam
from daemon.clock import iso
from daemon.display import Column, local_time, seconds, shown, table
from daemon.dock.unknown import unknown_devices
from daemon.health_listing import DeviceQuery, HealthQuery, health_listing, iter_devices
from daemon.i18n import _, ngettext
from daemon.report.health_report import attention as attention_doc
from daemon.report.health_report import reason_text


def warn_unregistered(catalog: Catalog, badges: Iterable[str | None]) -> int:
    """Warn (stderr) about each badge staff never registered; exit 1 (a warning) if there is one."""
    missing = officers.unregistered(catalog, {b for b in badges if b})
    for b in missing:
        say(_("evidock: warning: officer {badge} is not in the officer registry (a typo?); accepted — register "
              "them with `evidock officer add {badge} --name …`").format(badge=shown(b)))
    return officers.unregistered_exit_code(missing)


@cli.group("devices", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (streamed row by row: every recorder unless --limit).")
@click.option("--officer", metavar="BADGE", help="Only recorders bound to this officer.")
@click.option("--model", help="Only recorders of this model.")
@click.option("--attention", is_flag=True, help="Only recorders with an open alert.")
@paging.options(click.STRING, "SERIAL")
@click.pass_context
def devices_group(ctx: click.Context, as_json: bool, officer: str | None, model: str | None, attention: bool,
                  limit: int | None, after: str | None, before: str | None) -> int | None:
    """List each known recorder: its officer, when it was last docked, its last health, open alerts.

    Recorders come in serial order; for people, without --limit, the first 50 (the line after
    them says how to see the next page). Pages are keyed on the serial (--after, --before).
    A recorder bound to an officer who is not in the registry is named on stderr (exit 1).

    \b
    Example:
      evidock devices --json | jq '.[] | select(.open_alerts != [])'
      evidock devices --officer 010203 --attention
      evidock devices --limit 100 --after ZFY-0100
    """
    if ctx.invoked_subcommand is not None:
        return None
    st: Station = ctx.find_object(Station)
    people_page = not as_json and limit is None
    q = DeviceQuery(officer=officer, model=model, attention=attention, limit=paging.PAGE if people_page else limit,
                    after=after, before=before)
    badges: set[str] = set()

    def seen(rows: Iterable[dict]) -> Iterator[dict]:
        for d in rows:
            if d["officer_badge"]:
                badges.add(d["officer_badge"])
            yield d

    with st.catalog() as catalog:
        rows = seen(iter_devices(catalog, q))
        if as_json:
            emit_json_rows(health.json_view(d) for d in rows)
        else:
            page = list(rows)
        # a recorder bound to a badge the registry does not know: named, exit 1 (issue 13)
        code = warn_unregistered(catalog, badges)
    if as_json:
        return code
    tz = st.config.ui.timezone
    cols = [Column(_("recorder"), 20), Column(_("model"), 14), Column(_("seen as"), 24), Column(_("officer"), 10),
            Column(_("name"), 12), Column(_("last docked"), 16), Column(_("battery"), align=">"), Column(_("storage used"), align=">"),
            Column(_("clock drift"), align=">"), Column(_("open alerts"), align=">")]
    out = []
    for d in page:
        h = d["last_health"] or {}
        out.append([d["serial"], d["model"], label(SEEN_AS, d["seen_as"]), d["officer_badge"], d["officer_name"],
                    local_time(d["last_docked"], tz), _percent(h.get("battery_percent")),
                    _percent(h.get("storage_used_percent")), _drift(h.get("clock_drift_s"), h.get("station_clock")),
                    len(d["open_alerts"])])
    click.echo(table(cols, out, empty=_("no recorders known yet")))
    if any((d["last_health"] or {}).get("station_clock") == "unsynced" for d in page):
        click.echo(UNSYNCED_NOTE())
    paging.hint(page, q.limit, q.latest, before, "serial", after)
    return code


def UNSYNCED_NOTE() -> str:  # noqa: N802
    return _("*: measured against an unsynchronised station clock")


@devices_group.command("unknown")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_station
def devices_unknown(st: Station, as_json: bool) -> int:
    """List the USB devices the station refused, each with the [[recorders]] block to add it.

    A device in no entry of the recorder table is never mounted or read. If it is one of your
    fleet's recorders, paste its block into the config (check driver, model and vendor), run
    `evidock config udev-rules` into /etc/udev/rules.d/70-evidock.rules and restart the station.

    \b
    Example:
      evidock devices unknown
    """
    with st.catalog() as catalog:
        rows = unknown_devices(catalog, st.context.registry)
    if as_json:
        emit_json(rows)
        return 0
    tz = st.config.ui.timezone
    cols = [Column(_("USB ID")), Column(_("product"), 24), Column(_("manufacturer"), 20), Column(_("USB serial"), 16),
            Column(_("port"), 28), Column(_("first seen"), 16), Column(_("last seen"), 16), Column(_("times"), align=">")]
    out = [[r["usb_id"], r["product"], r["manufacturer"], r["usb_serial"], ", ".join(r["ports"]),
            local_time(r["first_seen"], tz), local_time(r["last_seen"], tz), r["times"]] for r in rows]
    click.echo(table(cols, out, empty=_("no refused USB devices")))
    for r in rows:
        click.echo("")
        click.echo(_("# {usb_id} ({product}): add to the config to accept it as a recorder").format(
            usb_id=r["usb_id"], product=shown(r["product"])))
        click.echo(shown_block(r["config_block"]), nl=False)
    return 0


def shown_block(block: str) -> str:
    """The block line by line through ``shown`` (the strings came from a USB device)."""
    return "".join(shown(line) + "\n" for line in block.splitlines())


def _percent(v: float | None) -> str:
    return f"{v}%" if v is not None else _("n/r")


def _drift(v: float | None, station_clock: str | None = None) -> str:
    """A drift; ``*`` when it was measured against an unsynchronised station clock (UNSYNCED_NOTE)."""
    if v is None:
        return _("n/r")
    return seconds(v, sign=True) + ("*" if station_clock == "unsynced" else "")


@cli.command("health")
@click.argument("serial", required=False)
@click.option("--officer", metavar="BADGE", help="Only records of docks by this officer.")
@click.option("--since", type=TimeParam(), help="Only records at or after this time (station time zone).")
@click.option("--until", type=TimeParam(), help="Only records before this time (station time zone).")
@paging.options()
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document: the open alerts, then the history (streamed: every record unless --limit).")
@click.option("--attention", is_flag=True,
              help="Only what needs a person: recorders with open alerts or not docked for health.not_docked_hours, "
                   "and failed or missed nightly jobs; exit 1 when there is any.")
@pass_station
def health_command(st: Station, serial: str | None, officer: str | None, since: datetime | None, until: datetime | None,
                   limit: int | None, after: int | None, before: int | None, as_json: bool, attention: bool) -> int:
    """Show the health history and the open alerts of one recorder, or of all.

    Records come in id order (the order the docks wrote them); for people, without --limit, the
    most recent 50, and the line after them says how to see the page before. Pages are keyed on
    the record's id (--after, --before), so docks meanwhile never repeat or shift a page.

    \b
    Example:
      evidock health ZFY-0001 --json
      evidock health --officer 010203 --since 2026-11-01 --limit 100
      evidock health --attention
    """
    if attention:
        return _attention(st, as_json)
    people_page = not as_json and limit is None
    q = HealthQuery(serial=serial, officer=officer, since=iso(since) if since else None,
                    until=iso(until) if until else None, limit=paging.PAGE if people_page else limit,
                    after=after, before=before, latest=people_page)
    with st.catalog() as catalog:
        head, records = health_listing(catalog, q)
        if as_json:
            emit_json_object(health.json_view(head), "history", (health.json_view(r) for r in records))
            return 0
        rows = list(records)
        fleet = not (serial or officer or since or until or after or before)
        need = attention_doc(catalog, st.config) if fleet else None
    alerts = head["open_alerts"]
    tz = st.config.ui.timezone
    if need is not None:  # the fleet: what needs a person first, as the health report lists it
        click.echo(_attention_table(need, tz))
        click.echo("")
    cols = [Column(_("time"), 16), Column(_("recorder"), 20), Column(_("session"), align=">"),
            Column(_("battery"), align=">"), Column(_("capacity"), align=">"), Column(_("storage used"), align=">"),
            Column(_("file system"), 10), Column(_("clock drift"), align=">"), Column(_("firmware"), 16)]
    out = [[local_time(r["at"], tz), r["device_serial"], r["session_id"] or "-", _percent(r["battery_percent"]),
            f"{r['full_charge_mah']} mAh" if r["full_charge_mah"] else _("n/r"), _percent(r.get("storage_used_percent")),
            r["fs_state"] or _("n/r"), _drift(r["clock_drift_s"], r.get("station_clock")), r["firmware"] or _("n/r")]
           for r in rows]
    click.echo(table(cols, out, empty=_("no health records")))
    if any(r.get("station_clock") == "unsynced" for r in rows):
        click.echo(UNSYNCED_NOTE())
    click.echo(_("n/r: not reported by the recorder"))
    paging.hint([{"id": r["id"]} for r in rows], q.limit, q.latest, before, "id", after)
    click.echo(ngettext("{n} open alert", "{n} open alerts", len(alerts)).format(n=len(alerts)))
    for a in alerts:
        click.echo(_("ALERT {serial} {kind}: {message} (since {since})").format(
            serial=shown(a["device_serial"]), kind=label(ALERT_KINDS, a["kind"]), message=shown(health.alert_text(a)),
            since=local_time(a["raised_at"], tz)))
    return 0


def _attention_table(doc: dict, tz: str) -> str:
    """The attention list as a table: one row per reason, the recorder named on its first."""
    cols = [Column(_("recorder"), 20), Column(_("officer"), 10), Column(_("name"), 12), Column(_("why"), 60)]
    out = []
    for r in doc["recorders"]:
        for i, why in enumerate(r["reasons"]):
            first = i == 0
            out.append([r["serial"] if first else "", (r["officer_badge"] or "-") if first else "",
                        (r["officer_name"] or "-") if first else "", reason_text(why, tz)])
    return table(cols, out, empty=_("nothing needs attention"))


def _attention(st: Station, as_json: bool) -> int:
    with st.catalog() as catalog:
        doc = attention_doc(catalog, st.config)
    if as_json:
        emit_json(health.json_view({**doc, "job_alerts": [{k: v for k, v in a.items() if k != "text"}
                                                          for a in doc["job_alerts"]]}))
        return doc["exit_code"]
    tz = st.config.ui.timezone
    if not doc["recorders"] and not doc["job_alerts"]:
        click.echo(_("nothing needs attention"))
    for r in doc["recorders"]:
        who = f" ({shown(r['officer_badge'])} {shown(r['officer_name'])})" if r["officer_badge"] else ""
        click.echo(f"{shown(r['serial'])}{who}:")
        for why in r["reasons"]:
            click.echo("  " + shown(reason_text(why, tz)))
    for a in doc["job_alerts"]:
        click.echo(_("job {job}: {message} (since {since}; see `evidock jobs`)").format(
            job=a["job"], message=i18n.text(a["text"]), since=local_time(a["raised_at"], tz)))
    return doc["exit_code"]
