"""``evidock config …``: print the example config, check a config file."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station, say
from daemon.config import render_example
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

    \b
    Example:
      evidock --config /etc/evidock/evidock.toml config check
    """
    from daemon.backup.dropin import INSTALLED, installed_state
    from daemon.backup.targets import masked_dump

    dropin = installed_state(st.config)
    doc = {"config_file": str(st.config_path) if st.config_path else None, "data_dir": str(st.data_dir),
           **masked_dump(st.config), "unit_dropin": dropin}
    if as_json:
        emit_json(doc)
    else:
        click.echo(_("config {file} is valid; data dir {data_dir}").format(
            file=doc["config_file"] or _("(built-in defaults)"), data_dir=st.data_dir))
        for t in doc["backup"]["targets"]:
            click.echo(_("backup target {name}: {kind} {where}{key}").format(
                name=t["name"], kind=t["kind"], where=t["path"] or f"{t['endpoint'] or ''} {t['bucket']}",
                key=_(", access key {key}").format(key=t["access_key_id"]) if t["access_key_id"] else ""))
        if dropin == "missing":
            say(_("the unit drop-in {path} is not installed: the service cannot reach the S3 targets; run "
                  "scripts/install (or `evidock config unit-dropin`)").format(path=INSTALLED))
        elif dropin == "differs":
            say(_("the unit drop-in {path} does not match the config's targets; run scripts/install again").format(
                path=INSTALLED))
        elif dropin == "matches":
            click.echo(_("the unit drop-in {path} allows the targets' hosts").format(path=INSTALLED))
    return 0


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
def config_udev_rules() -> int:
    """Print the udev rules for the recorder models in the driver table (systemd/70-evidock.rules).

    \b
    Example:
      evidock config udev-rules > /etc/udev/rules.d/70-evidock.rules
    """
    from daemon.dock.udevrules import render

    click.echo(render(), nl=False)
    return 0
