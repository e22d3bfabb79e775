"""``evidock run``, ``evidock status``, ``evidock demo``, ``evidock devices register``: the dock daemon."""

from __future__ import annotations

import sys
import time

import click

from daemon import i18n
from daemon.catalog.devices import register_device
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.cli.devices_cmd import devices_group
from daemon.cli.labels import STATES, label
from daemon.cli.store_cmd import store_line
from daemon.demo import demo
from daemon.display import Column, local_time, pad, shown, size, table
from daemon.dock.jobs import DockJob
from daemon.dock.station import Station as DockStation
from daemon.dock.station import read_status
from daemon.i18n import N_, _, ngettext
from daemon.schedule.runs import open_job_alerts
from daemon.store.status import store_status
from daemon.stationclock import StationClock


@cli.command("run")
@pass_station
def run_command(st: Station) -> int:
    """Run the docking station: wait for recorders and offload each one docked.

    Detects recorders through udev, identifies and health-checks them, sets their clock,
    mounts their card read-only, offloads and verifies every file, files it, wipes what was
    verified, and reports them ready. SIGTERM stops at a resumable point; SIGHUP reloads
    the config. Meant to run under systemd (systemd/evidock.service, Type=notify).

    \b
    Example:
      evidock --config /etc/evidock/evidock.toml --data-dir /var/lib/evidock run
    """
    station = DockStation(st.data_dir, st.config, st.config_path)
    station.install_signals()
    return station.run()


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--watch", "watch", type=click.FloatRange(min=0.5), default=None, is_flag=False, flag_value=2.0,
              help="Show it again every SECONDS (default 2), in place on a terminal, until Ctrl-C.")
@pass_station
def status_command(st: Station, as_json: bool, watch: float | None) -> int:
    """Show the bays: what is docked, each recorder's state, progress, battery and alerts.

    Exit 0 while the station runs, 3 when it does not (as systemctl status); then the bays it
    last reported are shown as unknown, never as ready.

    \b
    Example:
      evidock status --json
      evidock status --watch
    """
    if watch is None:
        return _status_once(st, as_json)
    in_place = sys.stdout.isatty() and not as_json
    code = 0
    try:
        while True:
            if in_place:
                click.echo("\x1b[H\x1b[2J", nl=False)  # cursor home, clear the screen: refreshed in place
            code = _status_once(st, as_json)
            time.sleep(watch)
    except KeyboardInterrupt:
        return code


def _status_once(st: Station, as_json: bool) -> int:
    status = read_status(st.data_dir)
    doc, alive = status.doc, status.running
    with st.catalog() as catalog:
        job_alerts = open_job_alerts(catalog)  # a nightly job that failed or did not run (issue 15)
        store = store_status(st.config, catalog)  # the upload queue to the bucket (issue 17)
    if as_json:
        # "detail_msg"/"alerts_msg" are the translatable twins of "detail"/"alerts", for the text below: not in the JSON
        bays = {"bays": [{k: v for k, v in b.items() if k not in ("detail_msg", "alerts_msg")} for b in doc["bays"]]} \
            if "bays" in doc else {}
        api = {"api": {k: v for k, v in doc["api"].items() if not k.endswith("_msg")}} if "api" in doc else {}
        emit_json({**doc, **bays, **api, "job_alerts": [{k: v for k, v in a.items() if k != "text"} for a in job_alerts],
                   "store": {k: v for k, v in store.items() if k != "alerts"}})
        return status.exit_code
    tz = st.config.ui.timezone
    head = _("station running (pid {pid})") if alive else _("station NOT running (pid {pid})")
    click.echo(head.format(pid=doc.get("pid")) + _("; ") + _("updated {when}: {offloading} offloading, {queued} queued").format(
        when=local_time(doc.get("updated"), tz, seconds=True), offloading=doc.get("offloading", 0),
        queued=doc.get("queued", 0)))
    cols = [Column(_("bay"), 12), Column(_("recorder"), 20), Column(_("officer"), 10), Column(_("state"), 30),
            Column(_("progress"), align=">"), Column(_("battery"), align=">"), Column(_("detail"), 60)]
    out, alerts = [], []
    for b in doc.get("bays", []):
        done, total = b["progress"]
        stale = b["state"] == "UNKNOWN"  # the station is gone: what it last wrote may no longer hold
        state = _("unknown (was {state})").format(state=label(STATES, b["last_state"])) if stale else label(STATES, b["state"])
        battery = f"{b['battery_percent']}%" if b.get("battery_percent") is not None else "-"
        out.append([b["bay"], b["serial"] or "?", b["officer"], state, f"{100 * done // total}%" if total else "-",
                    battery, (_("when last reported: {detail}") if stale else "{detail}").format(
                        detail=i18n.stored(b["detail"], b.get("detail_msg")))])
        msgs = b.get("alerts_msg") or [None] * len(b.get("alerts", []))
        alerts += [(b["bay"], i18n.stored(a, m)) for a, m in zip(b.get("alerts", []), msgs)]
    click.echo(table(cols, out, empty=_("no recorder docked")))
    if store["backend"] == "s3":
        click.echo(store_line(store, tz))
    for bay, text in alerts:
        click.echo(_("alert: bay {bay}: {message}").format(bay=bay, message=shown(text)))
    api = doc.get("api") or {}
    if api.get("serving") and alive:
        click.echo(_("API for staff: {socket}").format(socket=shown(api["socket"])))
    for key in ("error", "warning"):  # the API not served (the docks run on), or served with a problem
        if api.get(key):
            say(_("alert: API: {message}").format(message=shown(i18n.stored(api[key], api.get(key + "_msg")))))
    clock = doc.get("station_clock") or {}
    if clock.get("state") == "unsynced":
        say(_("alert: {message}").format(message=i18n.text(StationClock(**clock).message())))
    for a in job_alerts:
        say(_("alert: job {job}: {message} (since {since}; see `evidock jobs`)").format(
            job=a["job"], message=i18n.text(a["text"]), since=local_time(a["raised_at"], tz)))
    return status.exit_code


@cli.command("demo")
@click.option("--recorders", type=click.IntRange(1, 16), default=2, show_default=True, help="Simulated recorders docked at once.")
@click.option("--clips", type=click.IntRange(1, 20), default=3, show_default=True, help="Video clips on each recorder.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary instead of the text report.")
@pass_station
def demo_command(st: Station, recorders: int, clips: int, as_json: bool) -> int:
    """Dock simulated recorders (pty control channel + ffmpeg footage) and run the main job.

    Each goes through the same dock manager as `evidock run`: identify, health check, clock
    sync, offload with verification, filing, wipe of verified files, ready. Uses the data dir
    (the embedded default unless --data-dir is given).

    \b
    Example:
      evidock --data-dir /tmp/evidock-demo demo --recorders 3
    """
    tty = sys.stderr.isatty() and not as_json

    def show(job: DockJob) -> None:
        if tty or not as_json:
            done, total = job.bytes_done, job.bytes_total
            pct = f" {100 * done // total:3d}%" if total else ""
            say(f"  {job.rec.bay}  {pad(shown(job.serial or job.rec.usb_serial or '?'), 14)} "
                f"{pad(label(STATES, job.state.value), 14)}{pct}  {shown(i18n.text(job.detail_msg or job.detail))}")

    say(ngettext("demo: {n} simulated recorder, footage generated with ffmpeg; data dir {data_dir}",
                 "demo: {n} simulated recorders, footage generated with ffmpeg; data dir {data_dir}", recorders).format(
        n=recorders, data_dir=st.data_dir))
    rep = demo(st.data_dir, st.config, recorders, clips, on_change=show)
    bays, chain = rep.bays, rep.chain
    if as_json:
        emit_json(rep.to_json())
    else:
        click.echo("")
        for b in bays:
            click.echo(_("{bay}: {serial} (officer {officer}) {state} — {stored} stored ({size}), {duplicates} already "
                         "stored; {detail}").format(
                bay=b["bay"], serial=shown(b["serial"]), officer=shown(b["officer"]), state=label(STATES, b["state"]),
                stored=b["files_stored"], size=size(b["bytes_stored"]), duplicates=b["files_duplicate"],
                detail=shown(i18n.stored(b["detail"], b.get("detail_msg")))))
            msgs = b.get("alerts_msg") or [None] * len(b["alerts"])
            for a, m in zip(b["alerts"], msgs):
                click.echo("    " + _("alert: {alert}").format(alert=shown(i18n.stored(a, m))))
        chain_text = _("audit chain intact ({rows} rows).") if chain.ok else _("audit chain BROKEN ({rows} rows).")
        click.echo(_("{sentence} {next}").format(sentence=chain_text.format(rows=chain.rows), next=_("See: {command}").format(
            command=f"evidock --data-dir {st.data_dir} footage list | devices | health")))
    return rep.exit_code


@devices_group.command("register")
@click.argument("serial")
@click.option("--reason", default=N_("registered by staff"), show_default=True, help="Why (goes into the audit log).")
@pass_station
def devices_register(st: Station, serial: str, reason: str) -> int:
    """Register a recorder to this station (needed when dock.unknown_serial = 'refuse').

    \b
    Example:
      evidock devices register ZFY-0001 --reason "issued to officer 010203"
    """
    with st.catalog() as cat:
        register_device(cat, serial, "by staff", reason=reason)
    say(_("recorder {serial} registered to this station").format(serial=shown(serial)))
    return 0
