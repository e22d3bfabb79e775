"""``evidock simulate``: run a simulated recorder (control channel on a pty + its card) until stopped."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import click

from daemon import i18n
from daemon.cli import Station, cli, pass_station, say
from daemon.errors import ConfigError
from daemon.i18n import N_, _
from drivers.sim.simulator import FaultError, SimulatedRecorder, faults_help
from drivers.sim.volume import SampleSpec


@cli.command("simulate", epilog="\b\nFaults (--fault, repeatable):\n" + faults_help())
@click.option("--volume", type=click.Path(file_okay=False, path_type=Path),
              help="The card as a directory; filled with generated footage if empty or missing.")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path),
              help="The card as a FAT32 image; built (mkfs.vfat + mcopy) with generated footage if missing.")
@click.option("--pty-link", type=click.Path(dir_okay=False, path_type=Path),
              help="Make a symlink to the control port's pty here (like /dev/serial/by-id/…).")
@click.option("--fault", "faults", multiple=True, metavar="NAME[=VALUE][@FUNCTION]",
              help="Inject a fault; see the list below.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where mounts and generated cards go (default: a temporary directory, removed at exit).")
@click.option("--clips", type=click.IntRange(1, 50), default=3, show_default=True, help="Clips on a generated card.")
@click.option("--serial", default=SampleSpec.serial, show_default=True, help="The recorder's serial.")
@click.option("--badge", default=SampleSpec.badge, show_default=True, help="The officer badge it is bound to.")
@click.option("--json", "as_json", is_flag=True, help="When ready, print one JSON document (pty, link, volume, …) on stdout.")
@pass_station
def simulate_command(st: Station, volume: Path | None, image: Path | None, pty_link: Path | None, faults: tuple[str, ...],
                     workdir: Path | None, clips: int, serial: str, badge: str, as_json: bool) -> int:
    """Run a simulated recorder until stopped (Ctrl-C or SIGTERM).

    It speaks the GA/T 947 control protocol (drivers/README.md) on a pseudo-terminal and holds
    a card — a directory or a FAT32 image — with real ffmpeg footage (recorder-style names, one
    _IMP important file), a device log and a GPS track. Its passwords are the station's
    ([zfy] in the config), unless --fault wrong-password. Faults make it lie, stall, garble,
    or vanish; unplug-after serves the card through a fault-injecting FUSE mount.

    \b
    Example:
      evidock simulate --pty-link /tmp/zfy0 --fault clock-off=-75 --fault low-battery
      evidock probe /tmp/zfy0
    """
    if volume is not None and image is not None:
        raise ConfigError(N_("give --volume or --image, not both"))
    own_workdir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="evidock-sim-")) if workdir is None else workdir
    password = st.config.zfy.secret()
    try:
        sim = SimulatedRecorder(work, volume=volume, image=image, pty_link=pty_link, faults=list(faults),
                                spec=SampleSpec(serial=serial, badge=badge, clips=clips),
                                admin_password=password, user_password=password)
    except FaultError as e:
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)
        raise click.BadParameter(i18n.text(e), param_hint="--fault") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        say(_("simulate: preparing recorder {serial} (generating footage with ffmpeg if needed)…").format(serial=serial))
        sim.start()
        doc = sim.status()
        if as_json:
            click.echo(json.dumps(doc, ensure_ascii=False))
        else:
            click.echo(_("recorder {serial} (officer {badge}) on {pty}").format(
                serial=doc["serial"], badge=doc["badge"], pty=doc["pty"]) + (f" -> {doc['link']}" if doc["link"] else ""))
            faults = "  " + _("faults: {faults}").format(faults=_(", ").join(doc["faults"])) if doc["faults"] else ""
            click.echo(_("card: {card}").format(card=doc["volume"] or doc["image"]) + faults)
            say(_("simulate: running; Ctrl-C to stop"))
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
        if own_workdir:
            shutil.rmtree(work, ignore_errors=True)
    say(_("simulate: stopped"))
    return 0
