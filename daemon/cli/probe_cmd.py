"""``evidock probe``: the maintenance bench tool — ask one recorder about itself on its control port."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.dock.check import probe_port


@cli.command("probe")
@click.argument("tty", type=click.Path(dir_okay=False))
@click.option("--timeout", type=click.FloatRange(min=0.05, max=60), metavar="SECONDS",
              help="Deadline of one request (default: zfy.timeout_s from the config).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_station
def probe_command(st: Station, tty: str, timeout: float | None, as_json: bool) -> int:
    """Talk to one recorder on its control port TTY: identity, battery, storage, clock and drift.

    Read-only: nothing is set on the recorder. A recorder that does not answer, or answers
    wrongly, ends in exit 2 with the request and what came back, within (retries + 1) × timeout
    per request. Values a model does not report are shown as "not reported".

    \b
    Example:
      evidock probe /dev/ttyACM0 --json
    """
    rep = probe_port(tty, st.config.zfy, timeout)
    if as_json:
        emit_json(rep.to_json())
    else:
        d = rep.device
        click.echo(f"recorder  {d.serial}  model {d.model}  firmware {d.firmware or 'not reported'}  resolution {d.resolution or 'not reported'}")
        click.echo(f"officer   {d.badge or '-'} {d.officer_name or ''}  unit {d.unit_no or '-'} {d.unit_name or ''}")
        b, s, c = rep.items.get("battery"), rep.items.get("storage"), rep.items.get("clock")
        status = {n.what: n.status for n in rep.notes}
        missing = {w: "not reported" if status.get(w, "not_reported") == "not_reported" else f"{status[w].upper()} (see below)"
                   for w in ("battery", "storage", "clock")}
        click.echo("battery   " + (f"{b['percent']} %" + (f", {b['voltage_mv']} mV" if b["voltage_mv"] else "")
                                   + (", charging" if b["charging"] else "") + (f", {b['cycles']} cycles" if b["cycles"] is not None else "")
                                   + (f", full charge {b['full_charge_mah']}/{b['design_mah']} mAh" if b["full_charge_mah"] else "")
                                   if b else missing["battery"]))
        click.echo("storage   " + (f"{s['free_bytes']} of {s['total_bytes']} bytes free ({s['used_percent']} % used), "
                                   f"filesystem {s['fs_state'] or 'not checked'}" if s else missing["storage"]))
        click.echo("clock     " + (f"{c['recorder_time']} (drift {c['drift_s']:+.3f} s against this station)" if c else missing["clock"]))
        for n in rep.notes:
            say(f"{'note' if n.status == 'not_reported' else 'error'}: {n.what}: {n.message}")
    return rep.exit_code
