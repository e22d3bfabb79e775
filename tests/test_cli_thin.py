"""The CLI is a thin layer: no SQL and no hand-picked exit codes in daemon/cli; reports carry them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from daemon.demo import DemoReport
from daemon.evidence.auditlog import ChainReport
from daemon.media.listing import Retried

CLI = Path(__file__).resolve().parent.parent / "daemon" / "cli"


def test_no_sql_and_no_exit_constants_in_the_cli() -> None:
    sql = re.compile(r"execute\(|SELECT|INSERT|UPDATE|DELETE|\.query\(")
    found = [f"{p.name}:{n}: {line.strip()}" for p in sorted(CLI.glob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if sql.search(line) or (p.name != "__init__.py" and "EXIT_" in line)]
    assert found == []


def test_reports_carry_their_exit_codes(tmp_path: Path) -> None:
    assert ChainReport().exit_code == 0 and ChainReport(ok=False).exit_code == 2
    assert Retried([1], []).exit_code == 0 and Retried([], [2]).exit_code == 1
    bay = {"state": "READY"}
    assert DemoReport(tmp_path, [bay], ChainReport()).exit_code == 0
    assert DemoReport(tmp_path, [bay, {"state": "DETECTED"}], ChainReport()).exit_code == 1
    assert DemoReport(tmp_path, [bay, {"state": "ERROR"}], ChainReport()).exit_code == 2
    assert DemoReport(tmp_path, [bay], ChainReport(ok=False)).exit_code == 2


def test_the_command_table_names_every_module_of_every_command() -> None:
    """``daemon.cli.COMMANDS`` (which modules a command is loaded from) against what the modules
    register: every command of a top-level command's tree comes from a module its entry names,
    and every command module is in the table."""
    import click

    from daemon.cli import COMMANDS, cli

    def modules(cmd: click.Command) -> set[str]:
        subs = cmd.commands.values() if isinstance(cmd, click.Group) else ()
        own = {cmd.callback.__module__.rpartition(".")[2]} if cmd.callback else set()
        return own.union(*(modules(c) for c in subs))

    assert sorted(cli.commands) == sorted(COMMANDS)
    assert {name: modules(cmd) <= set(COMMANDS[name]) for name, cmd in cli.commands.items()} == \
        {name: True for name in COMMANDS}
    assert {m for mods in COMMANDS.values() for m in mods} == {p.stem for p in CLI.glob("*_cmd.py")}


def test_a_command_imports_only_what_it_needs() -> None:
    """``evidock footage list`` does not import the dock, the report or the scheduler's runner."""
    import subprocess
    import sys

    code = ("import json, sys\nfrom daemon.cli import main\nsys.argv = ['evidock', 'footage', 'list', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    err = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True).stderr
    loaded = set(json.loads(err.strip().splitlines()[-1]))
    assert {"daemon.cli.footage_cmd", "daemon.cli.filing_cmd"} <= loaded
    assert not loaded & {"daemon.dock.manager", "daemon.report.health_report", "daemon.cli.dock_cmd", "pygal",
                         "daemon.schedule.scheduler"}
