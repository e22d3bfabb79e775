"""[api] and [access] of the config: the daemon's API on a Unix socket and who may do what
through it (issue 20, daemon/api).

Beside ``daemon/config.py`` (which re-exports it) for that module's size; the same strict schema
rules. The caller of the API is who the kernel says (``SO_PEERCRED``); these tables only say
which role a user has and which unit they belong to::

    [api]
    socket = "/run/evidock/api.sock"
    socket_group = "evidock-staff"
    socket_mode = "0660"

    [access.roles]
    officer = ["group:officers"]
    clerk = ["user:wangfang"]
    legal = ["group:legal"]
    admin = ["user:root"]

    [access.units]
    wangfang = "劳动监察一队"

An officer's unit is the officer registry's (``officer edit BADGE --user NAME`` ties the user
to the badge); ``[access.units]`` gives one to anybody else, and wins for an officer too.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from daemon.i18n import _

# The roles of issue 20's table, in its order; daemon/api/roles.py says what each may do.
ROLES = ("officer", "clerk", "section-head", "legal", "maintenance", "admin")
# A user or group name as shadow-utils accepts them (useradd's default rule, upper case allowed).
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
SOCKET_MAX = 107  # sun_path holds 108 bytes with its NUL


class _Section(BaseModel):
    # as daemon.config._Section: strict types, unknown keys refused, frozen
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


def _name(v: str) -> str:
    if not NAME.match(v):
        raise ValueError(_("{name!r} is not a user or group name (a letter or '_', then letters, digits, '.', '_', '-'; "
                           "at most 32)").format(name=v))
    return v


def _entry(v: str) -> str:
    kind, sep, name = v.partition(":")
    if not sep or kind not in ("user", "group"):
        raise ValueError(_("{entry!r} is neither user:NAME nor group:NAME").format(entry=v))
    _name(name)
    return v


def _unit(v: str) -> str:
    # as the officer registry keeps a unit (daemon.catalog.officers.clean_text): NFC, trimmed
    s = unicodedata.normalize("NFC", v).strip()
    if not s or len(s) > 100:
        raise ValueError(_("a unit is 1 to 100 characters"))
    return s


class ApiConfig(_Section):
    """[api]: the daemon's HTTP/JSON API on a Unix socket (`curl --unix-socket … http://localhost/v1/…`)."""

    socket: str = Field(
        "/run/evidock/api.sock", max_length=SOCKET_MAX,
        description="The Unix socket `evidock run` serves the API on (its directory must exist: the unit's "
                    "RuntimeDirectory); \"\": no API")
    socket_group: str = Field(
        "evidock-staff", min_length=1, max_length=32,
        description="The group the socket belongs to: only its members (and the socket's owner) can connect")
    socket_mode: str = Field(
        "0660", min_length=3, max_length=4,
        description="The socket's permission bits, octal (0660: owner and group may connect, nobody else)")

    _group = field_validator("socket_group")(lambda v: _name(v))

    @field_validator("socket")
    @classmethod
    def _socket(cls, v: str) -> str:
        if v and not v.startswith("/"):
            raise ValueError(_("the socket's path must be absolute"))
        if len(v.encode()) > SOCKET_MAX:
            raise ValueError(_("a Unix socket's path is at most {n} bytes").format(n=SOCKET_MAX))
        return v

    @field_validator("socket_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", v):
            raise ValueError(_("not an octal mode such as \"0660\""))
        if int(v, 8) & 0o007:
            raise ValueError(_("others must have no access to the socket (the last digit 0): the group decides who connects"))
        return v

    @property
    def mode(self) -> int:
        return int(self.socket_mode, 8)


class AccessConfig(_Section):
    """[access]: the role and the unit of each user of the API (the kernel names the user)."""

    roles: dict[str, list[Annotated[str, AfterValidator(_entry)]]] = Field(
        default_factory=dict,
        description="Role -> who has it, as \"user:NAME\" and \"group:NAME\" entries, e.g. clerk = [\"group:clerks\"]; "
                    "roles: officer, clerk, section-head, legal, maintenance, admin. A user with no role may only "
                    "ask who they are")
    units: dict[str, str] = Field(
        default_factory=dict,
        description="User -> unit, e.g. wangfang = \"劳动监察一队\": the unit a clerk or section head works for; an "
                    "officer's is the officer registry's (`evidock officer edit BADGE --user NAME`) unless given here")

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = [r for r in v if r not in ROLES]
        if unknown:
            raise ValueError(_("unknown role {roles}; the roles are {known}").format(
                roles=", ".join(repr(r) for r in unknown), known=", ".join(ROLES)))
        return v

    @field_validator("units")
    @classmethod
    def _units(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for user, unit in v.items():
            try:
                out[_name(user)] = _unit(unit)
            except ValueError as e:
                raise ValueError(_("{user}: {error}").format(user=user, error=e)) from None
        return out
