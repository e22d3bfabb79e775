"""The strict config schema, its generated example, data-dir resolution, and the CLI's contract."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pytest
from conftest import REPO, run_evidock

from daemon.cli import cli
from daemon.config import Config, UiConfig, parse_config, render_example
from daemon.errors import ConfigError


def test_example_config_is_generated_from_the_schema() -> None:
    assert (REPO / "config" / "evidock.toml").read_text() == render_example(), \
        "config/evidock.toml is stale: regenerate with `evidock config example > config/evidock.toml`"
    parsed = tomllib.loads(render_example())
    # every key at its default, except the language: the station's example speaks Chinese
    assert parse_config(parsed) == Config(ui=UiConfig(language="zh"))


def test_every_option_has_a_description_and_default() -> None:
    for name, section in Config.model_fields.items():
        assert section.description, name
        if name == "recorders":  # an array of tables: an entry's IDs, driver and names are required, quirks are not
            for key, f in section.annotation.__args__[0].model_fields.items():
                assert f.description, f"{name}.{key} has no description"
            continue
        for key, f in section.annotation.model_fields.items():
            assert f.description, f"{name}.{key} has no description"
            assert not f.is_required(), f"{name}.{key} has no default"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[offload]\nchunk_size = 4\n")
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2
    assert "offload.chunk_size: unknown key" in r.err and "chunk_bytes" in r.err and str(cfg) in r.err
    with pytest.raises(ConfigError, match="nope: unknown key"):
        parse_config({"nope": {}})


def test_out_of_bounds_and_bad_values_are_named() -> None:
    with pytest.raises(ConfigError, match=r"offload\.chunk_bytes: .*greater than or equal to 65536"):
        parse_config({"offload": {"chunk_bytes": 10}})
    with pytest.raises(ConfigError, match=r"offload\.important_pattern: .*regular expression"):
        parse_config({"offload": {"important_pattern": "(["}})


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\n")
    r = run_evidock("--config", bad, "config", "check")
    assert r.code == 2 and "not valid TOML" in r.err
    r = run_evidock("--config", tmp_path / "missing.toml", "config", "check")
    assert r.code == 2 and "cannot read it" in r.err


def test_data_dir_resolution(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_DATA_HOME": ""}
    r = run_evidock("config", "check", "--json", env=env)
    assert r.json()["data_dir"] == str(home / ".local/share/evidock")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    assert run_evidock("config", "check", "--json", env=env).json()["data_dir"] == str(tmp_path / "xdg/evidock")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[store]\ndata_dir = '{tmp_path / 'fromcfg'}'\n")
    env["EVIDOCK_CONFIG"] = str(cfg)
    assert run_evidock("config", "check", "--json", env=env).json()["data_dir"] == str(tmp_path / "fromcfg")
    env["EVIDOCK_DATA_DIR"] = str(tmp_path / "fromenv")
    assert run_evidock("config", "check", "--json", env=env).json()["data_dir"] == str(tmp_path / "fromenv")
    r = run_evidock("--data-dir", tmp_path / "fromflag", "config", "check", "--json", env=env)
    assert r.json()["data_dir"] == str(tmp_path / "fromflag")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + name + " ")
    return out


@pytest.mark.parametrize("name,cmd", _commands(cli), ids=[n for n, _ in _commands(cli)])
def test_every_command_is_documented_with_an_example(name: str, cmd: click.Command) -> None:
    text = cmd.help or ""
    assert "Example" in text and "evidock" in text.split("Example", 1)[1], f"`evidock {name}` has no example in its help"
    r = run_evidock(*name.split(), "--help")
    assert r.code == 0 and "Example" in r.out


def test_listing_commands_print_one_json_document(evidock) -> None:
    import json

    for args in (["footage", "list"], ["verify"], ["audit", "verify"], ["audit", "list"], ["staging", "list"], ["config", "check"]):
        r = evidock(*args, "--json")
        assert r.code == (1 if args == ["config", "check"] else 0), (args, r.err)  # 1: the factory default password
        json.loads(r.out)


def test_ingest_of_a_missing_source_is_a_clear_error(evidock, tmp_path: Path) -> None:
    r = evidock("ingest", tmp_path / "nope")
    assert r.code == 2 and "does not exist" in r.err and str(tmp_path / "nope") in r.err
    zh = evidock("--lang", "zh", "ingest", tmp_path / "nope")
    assert zh.code == 2 and "不存在" in zh.err and "不是目录" not in zh.err
    (tmp_path / "a-file").write_text("x")
    assert "is a file" in evidock("ingest", tmp_path / "a-file").err


def test_config_file_errors_in_chinese_and_english_in_str(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\n")
    zh = run_evidock("--lang", "zh", "--config", bad, "config", "check")
    assert zh.code == 2 and f"配置文件 {bad}：不是有效的 TOML" in zh.err and "not valid TOML" not in zh.err, zh.err
    en = run_evidock("--lang", "en", "--config", bad, "config", "check")
    assert en.code == 2 and f"config {bad}: not valid TOML" in en.err
    from daemon import i18n
    i18n.set_language("zh")
    try:
        with pytest.raises(ConfigError) as e:
            parse_config({"zfy": {"password_file": str(tmp_path / "none")}}).zfy.secret()
        assert str(e.value).startswith(f"zfy.password_file {tmp_path / 'none'}: cannot read it")  # English for logs
        assert "无法读取" in e.value.text()
    finally:
        i18n.set_language("en")
