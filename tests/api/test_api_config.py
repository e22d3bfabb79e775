"""[api] and [access] (issue 20): strict like every section — an unknown role, a malformed
entry, a relative socket or a world-open mode is an error naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_evidock

from daemon.config import Config, parse_config
from daemon.config_access import ROLES
from daemon.errors import ConfigError


def test_defaults() -> None:
    c = Config()
    assert (c.api.socket, c.api.socket_group, c.api.mode) == ("/run/evidock/api.sock", "evidock-staff", 0o660)
    assert c.access.roles == {} and c.access.units == {}
    assert ROLES == ("officer", "clerk", "section-head", "legal", "maintenance", "admin")


def test_roles_and_units_are_read() -> None:
    c = parse_config({"api": {"socket": "/run/x/api.sock", "socket_mode": "0600"},
                      "access": {"roles": {r: [f"user:u{i}", f"group:g{i}"] for i, r in enumerate(ROLES)},
                                 "units": {"wangfang": " 劳动监察一队 "}}})
    assert c.api.mode == 0o600 and c.access.roles["section-head"] == ["user:u2", "group:g2"]
    assert c.access.units == {"wangfang": "劳动监察一队"}  # as the officer registry keeps a unit: trimmed


@pytest.mark.parametrize("data, named", [
    ({"access": {"roles": {"boss": ["user:x"]}}}, r"access\.roles: .*unknown role 'boss'; the roles are officer, clerk"),
    ({"access": {"roles": {"clerk": ["wangfang"]}}}, r"access\.roles\.clerk\.0: .*'wangfang' is neither user:NAME nor group:NAME"),
    ({"access": {"roles": {"legal": ["user:ok", "group:two words"]}}}, r"access\.roles\.legal\.1: .*not a user or group name"),
    ({"access": {"roles": {"clerk": "user:wangfang"}}}, r"access\.roles\.clerk: .*valid list"),
    ({"access": {"units": {"wang fang": "一队"}}}, r"access\.units: .*wang fang: 'wang fang' is not a user"),
    ({"access": {"units": {"wangfang": " "}}}, r"access\.units: .*wangfang: a unit is 1 to 100 characters"),
    ({"access": {"user": {}}}, r"access\.user: unknown key; valid keys in \[access\]: roles, units"),
    ({"api": {"socket": "run/api.sock"}}, r"api\.socket: .*must be absolute"),
    ({"api": {"socket": "/" + "s" * 120}}, r"api\.socket: "),
    ({"api": {"socket_mode": "0666"}}, r"api\.socket_mode: .*others must have no access"),
    ({"api": {"socket_mode": 660}}, r"api\.socket_mode: .*valid string"),
    ({"api": {"socket_group": "staff group"}}, r"api\.socket_group: .*not a user or group name"),
])
def test_a_bad_entry_is_an_error_naming_its_key(data: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_config(data)


def test_config_check_names_the_role(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[access.roles]\nclerk = ["user:wangfang"]\nclerks = ["group:clerks"]\n')
    r = run_evidock("--config", cfg, "config", "check")
    assert r.code == 2 and "access.roles" in r.err and "'clerks'" in r.err and str(cfg) in r.err
