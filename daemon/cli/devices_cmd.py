"""``evidock devices`` and ``evidock health``: known recorders, their health history and open alerts."""

from __future__ import annotations

import click

from daemon import health
from daemon.cli import Station, cli, emit_json, pass_station


@cli.group("devices", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.pass_context
def devices_group(ctx: click.Context, as_json: bool) -> int | None:
    """List each known recorder: its officer, when it was last docked, its last health, open alerts.

    \b
    Example:
      evidock devices --json | jq '.[] | select(.open_alerts != [])'
    """
    if ctx.invoked_subcommand is not None:
        return None
    st: Station = ctx.find_object(Station)
    with st.catalog() as catalog:
        rows = health.devices(catalog)
    if as_json:
        emit_json(rows)
        return 0
    for d in rows:
        h = d["last_health"] or {}
        batt = f"{h['battery_percent']}%" if h.get("battery_percent") is not None else "-"
        used = f"{h['storage_used_percent']}%" if h.get("storage_used_percent") is not None else "-"
        drift = f"{h['clock_drift_s']:+.1f}s" if h.get("clock_drift_s") is not None else "-"
        click.echo(f"{d['serial']:16} {d['model'] or '-':12} {d['officer_badge'] or '-':8} {d['officer_name'] or '':8} "
                   f"last {d['last_seen'] or '-':32} batt {batt:>4} used {used:>6} drift {drift:>7} "
                   f"alerts {len(d['open_alerts'])}")
    return 0


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
        emit_json(doc)
        return 0
    for r in rows:
        batt = f"{r['battery_percent']}%" if r["battery_percent"] is not None else "n/r"
        used = f"{r['storage_used_percent']}%" if r.get("storage_used_percent") is not None else "n/r"
        drift = f"{r['clock_drift_s']:+.2f}s" if r["clock_drift_s"] is not None else "n/r"
        click.echo(f"{r['at']} {r['device_serial']:16} session {r['session_id'] or '-':>5} batt {batt:>4} "
                   f"cap {r['full_charge_mah'] or 'n/r'} used {used:>6} fs {r['fs_state'] or 'n/r':6} drift {drift:>8} "
                   f"fw {r['firmware'] or 'n/r'}")
    click.echo(f"{len(alerts)} open alert(s)")
    for a in alerts:
        click.echo(f"ALERT {a['device_serial']} {a['kind']}: {a['message']} (since {a['raised_at']})")
    return 0
