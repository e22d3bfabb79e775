"""Who may do what through the API: the role and unit of a caller, and issue 20's action table.

The table (``ACTIONS``) is the one place that says it, as Solaar's device table says what a
model is: one entry per action, each role that may do it with its scope — ``own`` (an officer's
own footage: the badge tied to their login), ``unit`` (the footage of the officers of their unit)
or ``all``. A role not named may not. It is checked when this module loads (an unknown role or
scope is refused). ``authorize`` decides one request: the widest scope among the caller's roles
that they can use (a unit needs a unit, ``own`` a badge), or ``Forbidden`` with the reason in the
caller's terms. Roles come from ``[access.roles]``: ``user:NAME`` is that user, ``group:NAME``
every member of the group (as the user database says: ``daemon.api.peer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.api.peer import Peer
from daemon.config_access import ROLES, AccessConfig
from daemon.errors import Forbidden
from daemon.i18n import N_, Message

OWN, UNIT, ALL = "own", "unit", "all"
SCOPES = (OWN, UNIT, ALL)  # narrowest first


@dataclass(frozen=True)
class Action:
    """One row of the table: what it is (for people: "you may not …") and who may, how far."""

    name: str
    what: str  # an N_ message: "list footage"
    who: dict[str, str]


def _table(*rows: Action) -> dict[str, Action]:
    out: dict[str, Action] = {}
    for a in rows:
        if a.name in out:
            raise ValueError(f"action {a.name} is in the table twice")
        bad = {r: s for r, s in a.who.items() if r not in ROLES or s not in SCOPES}
        if bad:
            raise ValueError(f"action {a.name}: unknown roles or scopes {bad}")
        out[a.name] = a
    return out


# Issue 20's table, the rows whose scopes are own / own unit / all (requesting access, approving,
# viewing and export come with the access requests of the next issue). An endpoint names its row.
ACTIONS = _table(
    Action("footage.list", N_("list footage metadata"),
           {"officer": OWN, "clerk": UNIT, "section-head": UNIT, "legal": ALL, "admin": ALL}),
    Action("footage.file", N_("file, unfile or hold footage"), {"clerk": UNIT, "section-head": UNIT, "legal": ALL}),
    Action("cases.edit", N_("open, edit, close or import cases and their activities"),
           {"clerk": UNIT, "section-head": UNIT, "legal": ALL}),
    Action("devices.read", N_("read recorders, their health, reports and recorder models"),
           {"maintenance": ALL, "admin": ALL}),
    Action("station.admin", N_("run jobs and backups, change the config or apply retention"), {"admin": ALL}),
    Action("audit.read", N_("read the audit log or the access log"), {"section-head": UNIT, "legal": ALL, "admin": ALL}),
)


@dataclass(frozen=True)
class Caller:
    """The peer as the station sees it: their roles (config), unit and badge (config, registry)."""

    peer: Peer
    roles: tuple[str, ...]
    unit: str | None
    badge: str | None

    def to_json(self) -> dict[str, Any]:
        return {"uid": self.peer.uid, "gid": self.peer.gid, "user": self.peer.user, "groups": list(self.peer.groups),
                "roles": list(self.roles), "unit": self.unit, "badge": self.badge}


def roles_of(access: AccessConfig, user: str | None, groups: tuple[str, ...]) -> tuple[str, ...]:
    """The roles ``[access.roles]`` gives this user (by name, or through one of their groups), in table order."""
    if user is None:
        return ()  # a uid without a name: nothing in the config can name it
    mine = {f"user:{user}"} | {f"group:{g}" for g in groups}
    return tuple(r for r in ROLES if mine & set(access.roles.get(r, ())))


def caller_of(peer: Peer, access: AccessConfig, officer: dict[str, Any] | None) -> Caller:
    """The caller ``peer`` with their roles; ``officer`` is the registry's row tied to their login
    (``officers.officer_of_user``), if any: their badge, and their unit unless [access.units] gives one."""
    unit = access.units.get(peer.user) if peer.user is not None else None
    if unit is None and officer is not None:
        unit = officer.get("unit")
    return Caller(peer, roles_of(access, peer.user, peer.groups), unit, officer["badge"] if officer else None)


@dataclass(frozen=True)
class Grant:
    """What ``authorize`` allows: the action, how far, and the caller's badge or unit it is bound to."""

    action: str
    scope: str
    badge: str | None = None
    unit: str | None = None


def authorize(caller: Caller, action: str) -> Grant:
    """The widest scope of ``action`` the caller can use, or ``Forbidden`` saying why."""
    row = ACTIONS[action]
    user, what = caller.peer.name, Message(row.what)
    if not caller.roles:
        raise Forbidden(N_("you ({user}) have no role at this station, so you may only ask who you are "
                           "(GET /v1/whoami); an administrator gives roles in [access.roles] of the config"), user=user)
    scopes = {row.who[r] for r in caller.roles if r in row.who}
    if not scopes:
        raise Forbidden(N_("you ({user}) may not {what}: your roles ({roles}) do not allow it; it needs one of {needed}"),
                        user=user, what=what, roles=", ".join(caller.roles), needed=", ".join(row.who))
    if ALL in scopes:
        return Grant(action, ALL)
    if UNIT in scopes and caller.unit:
        return Grant(action, UNIT, unit=caller.unit)
    if OWN in scopes and caller.badge:
        return Grant(action, OWN, badge=caller.badge)
    if UNIT in scopes:
        raise Forbidden(N_("you ({user}) may {what} only for your own unit, and you have none; an administrator sets it "
                           "in [access.units] of the config (an officer's: the officer registry)"), user=user, what=what)
    raise Forbidden(N_("you ({user}) may {what} only for your own footage, and no officer's badge is tied to your login; "
                       "an administrator ties it with `evidock officer edit BADGE --user {user}`"), user=user, what=what)
