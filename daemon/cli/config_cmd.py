"""``evidock config …``: print the example config, check a config file."""

from __future__ import annotations

import click

from daemon.cli import Station, cli, emit_json, pass_station
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
    doc = {"config_file": str(st.config_path) if st.config_path else None, "data_dir": str(st.data_dir),
           **st.config.model_dump()}
    if as_json:
        emit_json(doc)
    else:
        click.echo(_("config {file} is valid; data dir {data_dir}").format(
            file=doc["config_file"] or _("(built-in defaults)"), data_dir=st.data_dir))
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
