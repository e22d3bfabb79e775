"""``evidock config …``: print the example config, check a config file."""

from __future__ import annotations

import click

from daemon import i18n
from daemon.backup.dropin import INSTALLED
from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.config import render_example
from daemon.config_check import check_config
from daemon.display import Column, table
from daemon.i18n import _


@cli.group("config")
def config_group() -> None:
    """The configuration file.

    \b
    Example:
      evidock config example > /etc/evidock/evidock.toml
    """


@config_group.command("example")
def config_example() -> int:
    """Print the commented example config (every key, its default and bounds).

    \b
    Example:
      evidock config example
    """
    click.echo(render_example(), nl=False)
    return 0


@config_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the effective config as JSON.")
@pass_station
def config_check(st: Station, as_json: bool) -> int:
    """Validate the config (via --config / EVIDOCK_CONFIG) and show the effective values.

    Also lists the recorder models the station knows (built-in and [[recorders]]) and whether
    the station's clock is synchronised. Exit 1 with warnings (the factory default password),
    2 with errors (a password_file that cannot be read).

    \b
    Example:
      evidock --config /etc/evidock/evidock.toml config check
    """
    rep = check_config(st.config, st.config_path, st.data_dir)
    if as_json:
        emit_json(rep.to_json())
        return rep.exit_code
    click.echo(_("config {file} is valid; data dir {data_dir}").format(
        file=rep.config_file or _("(built-in defaults)"), data_dir=st.data_dir))
    cols = [Column(_("model"), 20), Column(_("vendor"), 16), Column(_("USB ID")), Column(_("product"), 32),
            Column(_("driver")), Column(_("from"))]
    rows = [[m["model"], m["vendor"], m["usb_id"], m["product"] or _("any"), m["driver"],
             _("built-in") if m["source"] == "built-in" else _("config")] for m in rep.models]
    click.echo(_("recorder models known:"))
    click.echo(table(cols, rows, empty=_("no recorder models")))
    click.echo(i18n.text(rep.clock.message()))
    for t in rep.backup_targets:
        click.echo(_("backup target {name}: {kind} {where}{key}").format(
            name=t["name"], kind=t["kind"], where=t["path"] or f"{t['endpoint'] or ''} {t['bucket']}",
            key=_(", access key {key}").format(key=t["access_key_id"]) if t["access_key_id"] else ""))
    if rep.unit_dropin == "matches":
        click.echo(_("the unit drop-in {path} allows the targets' hosts").format(path=INSTALLED))
    for p in rep.problems:
        line = _("evidock: error: {message}") if p.level == "error" else _("evidock: warning: {message}")
        say(line.format(message=i18n.text(p.message)))
    return rep.exit_code


@config_group.command("unit-dropin")
@pass_station
def config_unit_dropin(st: Station) -> int:
    """Print the systemd drop-in that lets the service reach its backup targets' hosts.

    IPAddressAllow= takes addresses only: the S3 endpoints' host names are resolved now.
    scripts/install installs it as /etc/systemd/system/evidock.service.d/backup.conf.

    \b
    Example:
      evidock config unit-dropin > /etc/systemd/system/evidock.service.d/backup.conf
    """
    from daemon.backup.dropin import render

    click.echo(render(st.config), nl=False)
    return 0


@config_group.command("udev-rules")
@pass_station
def config_udev_rules(st: Station) -> int:
    """Print the udev rules for the recorder models of the driver table and [[recorders]] (systemd/70-evidock.rules).

    \b
    Example:
      evidock --config /etc/evidock/evidock.toml config udev-rules > /etc/udev/rules.d/70-evidock.rules
    """
    from daemon.dock.udevrules import render

    click.echo(render(st.config.registry()), nl=False)
    return 0
