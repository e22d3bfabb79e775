"""The API's handlers and their table: each versioned path, its method, the action of
``daemon.api.roles.ACTIONS`` it needs (None: anyone) and the query parameters it takes.

A handler gets the server's ``Api`` (catalog work in its worker threads, the config in force),
the caller, the ``Grant`` (the scope it may answer in) and its query parameters, checked
against the route's before the handler runs (after the caller is authorized). Listings are the CLI's own
library calls (``daemon.cases.listing``, ``daemon.health_listing``), a page at a time: ``limit``
(default 100, at most 1000) and ``after`` the last row's key; a full page carries ``next``, the
cursor of the page after it. A parameter the path does not take is an error naming it, so that a
typo never widens a listing and nothing in a request passes for the caller (who is the kernel's word).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daemon import clock, health
from daemon.api.roles import OWN, UNIT, Caller, Grant
from daemon.cases.listing import FootageQuery, iter_footage
from daemon.catalog import officers
from daemon.catalog.db import Catalog
from daemon.catalog.kinds import KINDS
from daemon.errors import ApiError, Forbidden
from daemon.health_listing import DeviceQuery, HealthQuery, health_listing, iter_devices
from daemon.i18n import N_

if TYPE_CHECKING:
    from daemon.api.server import Api

PAGE, PAGE_MAX = 100, 1000

Handler = Callable[["Api", Caller, Grant | None, "Params"], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    action: str | None  # the row of roles.ACTIONS it needs; None: anyone (who am I)
    params: tuple[str, ...]
    handler: Handler


class Params:
    """The query parameters of one request, checked against what its path takes."""

    def __init__(self, request: web.Request, allowed: tuple[str, ...], tz: str):
        self.tz = tz
        self.values: dict[str, str] = {}
        for name, value in request.query.items():
            if name not in allowed:
                raise ApiError(N_("unknown parameter {name} for {path}; it takes: {allowed}"), name=name,
                               path=request.path, allowed=", ".join(allowed) or "-")
            if name in self.values:
                raise ApiError(N_("parameter {name} is given twice"), name=name)
            self.values[name] = value

    def text(self, name: str) -> str | None:
        v = self.values.get(name)
        if v is not None and not v.strip():
            raise ApiError(N_("parameter {name} is empty"), name=name)
        return v

    def time(self, name: str) -> str | None:
        v = self.text(name)
        if v is None:
            return None
        # A "+" that was not written %2B arrives as a space: 08:30:00+08:00 is meant, not two words.
        v = re.sub(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$", r"\1+\2", v)
        try:
            return clock.iso(clock.parse_time(v, self.tz))
        except ValueError as e:
            raise ApiError(N_("parameter {name}: {error}"), name=name, error=e) from None

    def number(self, name: str, default: int | None = None, low: int = 0, high: int | None = None) -> int | None:
        v = self.text(name)
        if v is None:
            return default
        if not re.fullmatch(r"[0-9]{1,18}", v) or int(v) < low or (high is not None and int(v) > high):
            raise ApiError(N_("parameter {name}: {value!r} is not a whole number from {low} to {high}"), name=name,
                           value=v, low=low, high=high if high is not None else "…")
        return int(v)

    def flag(self, name: str) -> bool:
        v = self.values.get(name)
        if v is None:
            return False
        if v.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ApiError(N_("parameter {name}: {value!r} is neither true nor false"), name=name, value=v)
        return v.lower() in ("1", "true", "yes")

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        v = self.text(name)
        if v is not None and v not in choices:
            raise ApiError(N_("parameter {name}: {value!r} is not one of {choices}"), name=name, value=v,
                           choices=", ".join(choices))
        return v


def page(rows: list[dict[str, Any]], limit: int, key: str) -> Any:
    """The cursor of the page after ``rows``: the last row's key when the page is full, else None."""
    return rows[-1][key] if rows and len(rows) == limit else None


async def whoami(api: Api, caller: Caller, grant: Grant | None, p: Params) -> dict[str, Any]:
    """GET /v1/whoami: the caller as the station sees them (anyone, no role needed)."""
    return caller.to_json()


async def footage(api: Api, caller: Caller, grant: Grant | None, p: Params) -> dict[str, Any]:
    """GET /v1/footage: the footage listing, within the caller's scope (own badge, own unit, all)."""
    assert grant is not None
    config = api.config()
    limit = p.number("limit", PAGE, 1, PAGE_MAX)
    assert limit is not None
    q = FootageQuery(officer=p.text("officer"), device=p.text("device"), case_no=p.text("case"),
                     since=p.time("since"), until=p.time("until"), kind=p.choice("kind", KINDS),
                     unfiled=p.flag("unfiled"), limit=limit, after=p.number("after"))
    user = caller.peer.name

    def read(cat: Catalog) -> list[dict[str, Any]]:
        scoped = q
        if grant.scope == OWN:
            if q.officer is not None and q.officer != grant.badge:
                raise Forbidden(N_("you ({user}) may list only your own footage (officer {badge}), not officer {officer}'s"),
                                user=user, badge=grant.badge, officer=q.officer)
            scoped = replace(q, officer=grant.badge)
        elif grant.scope == UNIT:
            if q.officer is not None:
                o = officers.get_officer(cat, q.officer)
                if o is None or o["unit"] != grant.unit:
                    raise Forbidden(N_("officer {officer} is not of your unit ({unit}): you ({user}) may list only the "
                                       "footage of your unit's officers"), officer=q.officer, unit=grant.unit, user=user)
            scoped = replace(q, unit=grant.unit)
        return list(iter_footage(cat, config.filing.deadline_days, scoped))

    rows = await api.in_catalog(read)
    return {"scope": grant.scope, "footage": rows, "next": page(rows, limit, "id")}


async def devices(api: Api, caller: Caller, grant: Grant | None, p: Params) -> dict[str, Any]:
    """GET /v1/devices: the recorders (maintenance, admin), as `evidock devices --json`."""
    limit = p.number("limit", PAGE, 1, PAGE_MAX)
    assert limit is not None
    q = DeviceQuery(officer=p.text("officer"), model=p.text("model"), attention=p.flag("attention"), limit=limit,
                    after=p.text("after"))
    rows = await api.in_catalog(lambda cat: [health.json_view(d) for d in iter_devices(cat, q)])
    return {"devices": rows, "next": page(rows, limit, "serial")}


async def health_records(api: Api, caller: Caller, grant: Grant | None, p: Params) -> dict[str, Any]:
    """GET /v1/health: open alerts and health records (maintenance, admin), as `evidock health --json`."""
    limit = p.number("limit", PAGE, 1, PAGE_MAX)
    assert limit is not None
    q = HealthQuery(serial=p.text("serial"), officer=p.text("officer"), since=p.time("since"), until=p.time("until"),
                    limit=limit, after=p.number("after"))

    def read(cat: Catalog) -> dict[str, Any]:
        head, records = health_listing(cat, q)
        history = [health.json_view(r) for r in records]
        return {**health.json_view(head), "history": history, "next": page(history, limit, "id")}

    return await api.in_catalog(read)


FOOTAGE_PARAMS = ("officer", "device", "case", "since", "until", "kind", "unfiled", "limit", "after")
DEVICE_PARAMS = ("officer", "model", "attention", "limit", "after")
HEALTH_PARAMS = ("serial", "officer", "since", "until", "limit", "after")

ROUTES = (
    Route("GET", "/v1/whoami", None, (), whoami),
    Route("GET", "/v1/footage", "footage.list", FOOTAGE_PARAMS, footage),
    Route("GET", "/v1/devices", "devices.read", DEVICE_PARAMS, devices),
    Route("GET", "/v1/health", "devices.read", HEALTH_PARAMS, health_records),
)
