"""The CLI's shape (README "The command line"): global options belong to ``evidock`` and stand
before the command; no command takes them after it; a command that needs a directory of its own
names it with its own option. Every command, walked."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import run_evidock

from daemon.cli import cli

GLOBAL = ("--config", "--data-dir")


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((prefix + (name,), cmd))
        if isinstance(cmd, click.Group):
            out += _walk(cmd, prefix + (name,))
    return out


COMMANDS = _walk(cli)


def test_the_walk_finds_the_commands() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"ingest", "verify", "footage list", "case open", "run", "status"} <= names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_global_options_stand_before_every_command(path: tuple[str, ...], cmd: click.Command, tmp_path: Path) -> None:
    cfg = tmp_path / "evidock.toml"
    cfg.write_text("")
    r = CliRunner().invoke(cli, ["--config", str(cfg), "--data-dir", str(tmp_path / "d"), "-v", *path, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example" in r.output, f"`evidock {' '.join(path)} --help` shows no example"
    own = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert not own & set(GLOBAL), f"`evidock {' '.join(path)}` redefines a global option: {own & set(GLOBAL)}"
    if not isinstance(cmd, click.Group):
        r = CliRunner().invoke(cli, [*path, "--data-dir", str(tmp_path / "d")])
        assert r.exit_code != 0 and "No such option" in r.output, (
            f"`evidock {' '.join(path)} --data-dir` was accepted after the command")


def test_global_options_take_effect_before_the_command(tmp_path: Path) -> None:
    data = tmp_path / "from-config"
    cfg = tmp_path / "evidock.toml"
    cfg.write_text(f'[store]\ndata_dir = "{data}"\n')
    assert run_evidock("--config", cfg, "footage", "list", "--json").code == 0
    assert (data / "catalog.sqlite").exists()
    other = tmp_path / "from-option"
    assert run_evidock("--config", cfg, "--data-dir", other, "footage", "list", "--json").code == 0
    assert (other / "catalog.sqlite").exists()
