"""``evidock probe``: the maintenance bench tool — ask one recorder about itself on its control port."""

from __future__ import annotations

from typing import Any

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.labels import SEVERITY, label
from daemon.display import local_time, pad, seconds, shown, size, width
from daemon.dock.check import probe_port
from daemon import i18n
from daemon.i18n import _, pgettext


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
        click.echo(probe_text(rep, st.config.ui.timezone))
        for n in rep.notes:
            what = _(n.what)  # battery, storage, clock, firmware: the labels of probe_text
            say(_("{severity}: {what}: {message}").format(
                severity=label(SEVERITY, "note" if n.status == "not_reported" else "error"), what=what,
                message=i18n.stored(n.message, n.msg)))
    return rep.exit_code


def probe_text(rep: Any, tz: str) -> str:
    """What a probe found, one labelled line per reading, for people."""
    d = rep.device
    nr = _("not reported")
    b, s, c = rep.items.get("battery"), rep.items.get("storage"), rep.items.get("clock")
    status = {n.what: n.status for n in rep.notes}
    missing = {w: nr if status.get(w, "not_reported") == "not_reported" else _("{status} (see below)").format(
        status=status[w].upper()) for w in ("battery", "storage", "clock")}
    battery = missing["battery"]
    if b:
        parts = [_("{percent} %").format(percent=b["percent"])]
        if b["voltage_mv"]:
            parts.append(f"{b['voltage_mv']} mV")
        if b["charging"]:
            parts.append(_("charging"))
        if b["cycles"] is not None:
            parts.append(_("{n} cycles").format(n=b["cycles"]))
        if b["full_charge_mah"]:
            parts.append(_("full charge {full}/{design} mAh").format(full=b["full_charge_mah"], design=b["design_mah"]))
        battery = pgettext("counts", ", ").join(parts)
    storage = missing["storage"]
    if s:
        storage = _("{free} of {total} free ({used} % used), filesystem {fs}").format(
            free=size(s["free_bytes"]), total=size(s["total_bytes"]), used=s["used_percent"],
            fs=s["fs_state"] or _("not checked"))
    clock = missing["clock"]
    if c:
        clock = _("{time} (drift {drift} against this station)").format(
            time=local_time(c["recorder_time"], tz, seconds=True), drift=seconds(c["drift_s"], sign=True))
    lines = [
        (_("recorder"), _("{serial}  model {model}  firmware {firmware}  resolution {resolution}").format(
            serial=shown(d.serial), model=shown(d.model), firmware=shown(d.firmware or nr),
            resolution=shown(d.resolution or nr))),
        (_("officer"), _("{badge} {name}  unit {unit_no} {unit_name}").format(
            badge=shown(d.badge), name=shown(d.officer_name, ""), unit_no=shown(d.unit_no), unit_name=shown(d.unit_name, ""))),
        (_("battery"), battery),
        (_("storage"), storage),
        (_("clock"), clock),
    ]
    w = max(width(k) for k, _v in lines)
    return "\n".join(f"{pad(k, w)}  {v}".rstrip() for k, v in lines)
