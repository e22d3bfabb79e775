"""The ``evidock`` command line: a thin layer over the library (sqlite-utils ``cli.py`` style).

One command, one library call. Library errors (``EvidockError``) become a message on stderr and
the error's exit code at this boundary, nowhere else. Every command's help carries an example
(a test checks it). ``--json`` output is one JSON document on stdout; people-facing messages
go to stderr; progress bars only on a terminal.

Messages for people are in Chinese or English (``daemon.i18n``): the language is resolved from
argv, the environment and the config before click parses anything (``EvidockGroup.main``), so
click's own messages and the help texts (translated when shown, ``daemon.cli.helptext``) are in
it too; ``--json`` output, exit codes and audit events never depend on it.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon import i18n
from daemon.cli.helptext import Group, install_cjk_wrapping
from daemon.config import Config, load_config, resolve_data_dir
from daemon.errors import EXIT_ERROR, ConfigError, EvidockError
from daemon.i18n import _
from drivers.errors import DriverError

if TYPE_CHECKING:
    from daemon.catalog.db import Catalog
    from daemon.context import StationContext

i18n.route_click_messages()
install_cjk_wrapping()


@dataclass
class Station:
    """What every command gets: the loaded config, the resolved data dir, and the station context
    built from them on first use (``--help`` builds nothing)."""

    config: Config
    config_path: Path | None
    data_dir: Path
    _context: StationContext | None = None

    @property
    def context(self) -> StationContext:
        if self._context is None:
            # The station's whole library, imported only by a command that uses it.
            from daemon.context import build_context

            self._context = build_context(self.config, self.data_dir)
        return self._context

    def catalog(self) -> Catalog:
        """A catalog connection of this station (``with st.catalog() as catalog: …``)."""
        return self.context.catalog()


pass_station = click.make_pass_decorator(Station)


def emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))


def _write_rows(out: Any, rows: Iterable[Any], indent: str) -> None:
    """A JSON array of ``rows`` written a row at a time, one row to a line, each ``indent`` in."""
    first = True
    for row in rows:
        out.write(("[\n" if first else ",\n") + indent + "  " + json.dumps(row, ensure_ascii=False, default=str))
        first = False
    out.write("[]" if first else "\n" + indent + "]")


def emit_json_rows(rows: Iterable[Any]) -> None:
    """One JSON array, written a row at a time as the rows come (a listing of millions of rows
    never sits in memory), one row to a line: compact rows go through json's C encoder, which
    an indented dump cannot use (five times the time for a big listing)."""
    out = click.get_text_stream("stdout")
    _write_rows(out, rows, "")
    out.write("\n")
    out.flush()


def emit_json_object(head: dict[str, Any], key: str, rows: Iterable[Any]) -> None:
    """One JSON object: ``head``'s fields, then ``key``: an array of ``rows`` written a row at a
    time as they come (as ``emit_json_rows``), so a document of millions of rows never sits in memory."""
    out = click.get_text_stream("stdout")
    text = json.dumps(head, ensure_ascii=False, indent=2, default=str)
    out.write((text[:-2] + ",\n" if head else "{\n") + f"  {json.dumps(key)}: ")
    _write_rows(out, rows, "  ")
    out.write("\n}\n")
    out.flush()


def say(msg: str) -> None:
    """A message for people: stderr."""
    click.echo(msg, err=True)


def prescan(args: list[str]) -> tuple[str | None, str | None]:
    """``--lang`` and ``--config`` among the global options of ``args`` (before the command).

    The language must be known before click parses anything: its messages about a bad argument
    and the help it prints are in that language. click still parses and checks both options.
    """
    lang = config = None
    it = iter(args)
    for a in it:
        if not a.startswith("-") or a == "--":
            break
        name, eq, value = a.partition("=")
        if name in ("--lang", "--config", "--data-dir") and not eq:
            value = next(it, "")
        if name == "--lang":
            lang = value
        elif name == "--config":
            config = value
    return lang, config


def language_before_parsing(args: list[str]) -> str:
    """The language of this run, as far as it is known before parsing (see ``prescan``)."""
    lang, config_file = prescan(args)
    config_lang = None
    try:
        config_lang = load_config(config_file)[0].ui.language
    except ConfigError:
        pass  # the command reports it, in the language of the rest
    return i18n.resolve_language(lang, config_lang)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the message in the reader's language (click's own is fixed at import)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(_("%(prog)s, version %(version)s") % {"prog": "evidock", "version": version("evidock")})
    ctx.exit()


class LangChoice(click.Choice):
    """``--lang``'s values; a bad one from ``$EVIDOCK_LANG`` is named as coming from there."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            if ctx is not None and param is not None and param.name and \
                    ctx.get_parameter_source(param.name) == click.core.ParameterSource.ENVIRONMENT:
                self.fail(_("{value!r} (from ${env}) is not one of {choices}; unset it or use one of them").format(
                    value=value, env=i18n.ENV_LANG, choices=_(", ").join(self.choices)), param, ctx)
            raise


# The command modules, assembled in one place: each top-level command and the modules that
# register it and its subcommands on `cli` (`devices register` is dock_cmd's, `footage file`
# filing_cmd's). A command imports only its own modules: every CLI call pays for what it imports
# (importing them all took 0.5 s here, more than most commands' own work). tests/test_cli_thin.py
# holds this table to what the modules register.
COMMANDS: dict[str, tuple[str, ...]] = {
    "audit": ("audit_cmd",),
    "backup": ("backup_cmd",),
    "case": ("case_cmd",),
    "config": ("config_cmd",),
    "demo": ("dock_cmd",),
    "devices": ("devices_cmd", "dock_cmd", "officer_cmd"),
    "footage": ("footage_cmd", "filing_cmd"),
    "health": ("devices_cmd",),
    "ingest": ("ingest_cmd",),
    "jobs": ("jobs_cmd",),
    "media": ("media_cmd",),
    "notify": ("notify_cmd",),
    "officer": ("officer_cmd",),
    "probe": ("probe_cmd",),
    "report": ("report_cmd",),
    "restore": ("backup_cmd",),
    "retention": ("retention_cmd",),
    "reindex": ("store_cmd",),
    "review": ("review_cmd",),
    "run": ("dock_cmd",),
    "simulate": ("simulate_cmd",),
    "staging": ("staging_cmd",),
    "status": ("dock_cmd",),
    "store": ("store_cmd",),
    "verify": ("verify_cmd",),
}


def load_commands(names: Iterable[str] | None = None) -> None:
    """Import the modules of these top-level commands (default: all of them)."""
    for name in COMMANDS if names is None else names:
        for module in COMMANDS.get(name, ()):
            importlib.import_module(f"daemon.cli.{module}")


class EvidockGroup(Group):
    """The top group: the language is set from argv, env and config before parsing starts, and
    a command's modules are imported when it is looked up (``COMMANDS``)."""

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        """Every command (all modules loaded): for help, docs and tests that walk the tree."""
        load_commands()
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        # Straight into the dict: the `commands` property would import every module while the
        # first one is still being imported.
        self._commands[name or cmd.name or ""] = cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        load_commands([cmd_name])
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def main(self, args: Any = None, *a: Any, **kw: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        i18n.set_language(language_before_parsing(argv))
        return super().main(argv, *a, **kw)


@click.group(cls=EvidockGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="EVIDOCK_CONFIG",
              help="Config file (TOML). Env: EVIDOCK_CONFIG. Default: built-in defaults.")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="EVIDOCK_DATA_DIR",
              help="Data dir (objects, staging, catalog). Env: EVIDOCK_DATA_DIR. Default: $XDG_DATA_HOME/evidock.")
@click.option("--lang", type=LangChoice(i18n.LANGUAGES), envvar=i18n.ENV_LANG,
              help="Language of messages, tables and help: zh or en. Env: EVIDOCK_LANG. "
                   "Default: [ui] language in the config, else the locale (LANG=zh_CN…), else en.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, data_dir: str | None, lang: str | None, verbose: int) -> None:
    """evidock: the docking station for body-worn recorders.

    Offloads recorders into a tamper-evident evidence store, verifies and catalogues every file.

    \b
    Example:
      evidock --data-dir /var/lib/evidock ingest /media/recorder --officer 010203 --device ZFY-0001
    """
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if ctx.resilient_parsing:
        return
    # Loading is lazy for --help; a bad config still fails every real command.
    config, path = load_config(config_file)
    i18n.set_language(i18n.resolve_language(lang, config.ui.language))
    for w in config.warnings():
        say(_("evidock: warning: {message}").format(message=w))
    ctx.obj = Station(config, path, resolve_data_dir(data_dir, config))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn evidock errors into messages and exit codes."""
    try:
        rv = cli.main(args=argv, prog_name="evidock", standalone_mode=False)
    except (EvidockError, DriverError) as e:
        click.echo(_("evidock: error: {message}").format(message=i18n.text(e)), err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_ERROR if e.exit_code == 2 else e.exit_code)
    except click.exceptions.Abort:
        click.echo(_("evidock: aborted"), err=True)
        sys.exit(EXIT_ERROR)
    except Exception:
        # A bug, or an OS condition no error of evidock's names (a full disk under SQLite): its
        # traceback stays in sight, and the exit code is an error's (2), not Python's 1, which
        # would read as "finished with warnings".
        traceback.print_exc()
        click.echo(_("evidock: internal error (traceback above): what was being done may be incomplete; "
                     "check the data disk's free space and the log, and report the traceback if it recurs"), err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(rv if isinstance(rv, int) else 0)
