"""The officer registry and pooled recorders (issue 13): officers staff registered by name
(承办人姓名, art. 11), who had which recorder when (领用), and whom a recording is attributed to.

Registered or only seen: every badge evidock met is an ``officers`` row (a recorder's binding,
an ingest's ``--officer``: ``devices.upsert_officer``). Staff *register* an officer
(``evidock officer add|import``): that sets ``registered_at``. A badge whose row has no
``registered_at`` is "not in the registry"; the commands that take a badge accept it with a
warning naming it (exit 1), so that a typo is noticed — once the registry is in use (at least
one officer registered; before that every badge would be "unknown"). A recorder's own name for its officer
still fills in the name of an unregistered row, never a registered one's.

Assignments: ``officer_assignments`` rows (recorder, badge, from, until — NULL: still signed out).
A recording is attributed to the officer assigned to its recorder at the time it was recorded
(its corrected time); without an assignment then, or without a trusted time, to the recorder's
own binding. Both are kept on the footage row (``officer_badge`` attributed, ``bound_officer``,
``attributed_by``). Every change is audited in its transaction.

The user an officer logs in as (``officers.user``, issue 20): the API knows its caller by user
name (the kernel's word); ``officer edit BADGE --user NAME`` ties that user to the badge, so that
an officer's own footage and unit follow. One user is one officer.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from daemon.catalog.db import Catalog
from daemon.clock import iso, utcnow
from daemon.errors import EXIT_OK, EXIT_WARNING, NotFound, OfficerError
from daemon.evidence import audit
from daemon.i18n import N_, Message

BADGE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")


def clean_badge(badge: str) -> str:
    b = unicodedata.normalize("NFC", str(badge)).strip()
    if not BADGE.match(b):
        raise OfficerError(N_("{badge!r} is not a badge number (letters, digits, '-', '_'; at most 32)"), badge=b)
    return b


def clean_text(value: str | None, what: str, required: bool = False, max_len: int = 100) -> str | None:
    """A name or unit as people type it: NFC, trimmed, no control characters."""
    s = "" if value is None else unicodedata.normalize("NFC", str(value)).strip()
    if not s:
        if required:
            raise OfficerError(N_("the officer's {what} is empty"), what=Message(what))
        return None
    if len(s) > max_len:
        raise OfficerError(N_("the officer's {what} is longer than {n} characters"), what=Message(what), n=max_len)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in s):
        raise OfficerError(N_("the officer's {what} {value!r} contains control characters"), what=Message(what), value=s)
    return s


_OFFICER = "SELECT badge, name, unit, user, first_seen, registered_at FROM officers"
USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")  # as daemon.config_access.NAME: a login name
KEEP: Any = object()  # ``store_officer(user=KEEP)``: the officer's user stays as it is


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "registered": r["registered_at"] is not None}


def get_officer(catalog: Catalog, badge: str) -> dict[str, Any] | None:
    rows = list(catalog.db.query(f"{_OFFICER} WHERE badge = ?", [badge]))
    return _row(rows[0]) if rows else None


def officer_of_user(catalog: Catalog, user: str) -> dict[str, Any] | None:
    """The officer the login ``user`` is tied to (``officer edit BADGE --user NAME``), or None."""
    rows = list(catalog.db.query(f"{_OFFICER} WHERE user = ?", [user]))
    return _row(rows[0]) if rows else None


def need_officer(catalog: Catalog, badge: str) -> dict[str, Any]:
    o = get_officer(catalog, badge)
    if o is None:
        raise NotFound(N_("no officer {badge}; `evidock officer list` lists them (add one with `evidock officer add`)"),
                       badge=badge)
    return o


def list_officers(catalog: Catalog, registered_only: bool = False) -> list[dict[str, Any]]:
    """Every officer known here, registered or only seen (``registered``), by badge."""
    where = " WHERE registered_at IS NOT NULL" if registered_only else ""
    return [_row(r) for r in catalog.db.query(f"{_OFFICER}{where} ORDER BY badge")]


def show_officer(catalog: Catalog, badge: str) -> dict[str, Any]:
    """One officer, the recorders bound to them and their assignments (newest first)."""
    o = need_officer(catalog, badge)
    o["devices"] = [r[0] for r in catalog.conn.execute(
        "SELECT serial FROM devices WHERE officer_badge = ? ORDER BY serial", (badge,))]
    o["assignments"] = assignments(catalog, badge=badge)
    return o


def store_officer(catalog: Catalog, badge: str, name: str, unit: str | None, source: str,
                  actor: str | None = None, user: Any = KEEP) -> str:
    """Register (or update) one officer, audited; in the caller's transaction. ``user``: the login
    tied to the badge (None: untied; ``KEEP``: as it is).

    Returns ``created`` (new, or only seen before), ``updated`` or ``unchanged``.
    """
    old = get_officer(catalog, badge)
    now = utcnow()
    same_user = user is KEEP or (old is not None and old["user"] == user)
    if old is not None and old["registered"] and old["name"] == name and (unit is None or old["unit"] == unit) \
            and same_user:
        return "unchanged"
    if old is None:
        catalog.conn.execute("INSERT INTO officers (badge, name, unit, first_seen, registered_at) VALUES (?,?,?,?,?)",
                             (badge, name, unit, now, now))
    else:
        catalog.conn.execute("UPDATE officers SET name = ?, unit = COALESCE(?, unit), "
                             "registered_at = COALESCE(registered_at, ?) WHERE badge = ?", (name, unit, now, badge))
    if not same_user:
        catalog.conn.execute("UPDATE officers SET user = ? WHERE badge = ?", (user, badge))
    action = "updated" if old is not None and old["registered"] else "created"
    details: dict[str, Any] = {"name": name, "unit": unit, "source": source}
    if not same_user:  # only when it changes: the replay of older entries keeps the user (daemon/store/replay.py)
        details["user"] = user
    if old is not None:
        details["previous"] = {"name": old["name"], "unit": old["unit"], "registered": old["registered"]}
        if not same_user:
            details["previous"]["user"] = old["user"]
    audit.append(catalog, "officer.register" if action == "created" else "officer.edit", f"officer:{badge}",
                 details, actor)
    return action


def add_officer(catalog: Catalog, badge: str, name: str, unit: str | None = None,
                actor: str | None = None) -> dict[str, Any]:
    """``evidock officer add``: register an officer; one registered before is an error (use edit)."""
    badge = clean_badge(badge)
    name_ = clean_text(name, N_("name"), required=True)
    unit_ = clean_text(unit, N_("unit"))
    assert name_ is not None
    with catalog.transaction():
        old = get_officer(catalog, badge)
        if old is not None and old["registered"]:
            raise OfficerError(N_("officer {badge} is registered already (as {name}); change them with "
                                  "`evidock officer edit {badge}`"), badge=badge, name=old["name"])
        store_officer(catalog, badge, name_, unit_, "officer add", actor)
    return need_officer(catalog, badge)


def edit_officer(catalog: Catalog, badge: str, name: str | None = None, unit: str | None = None,
                 actor: str | None = None, user: Any = KEEP) -> dict[str, Any]:
    """``evidock officer edit``: change a registered officer's name, unit or user (the login tied
    to the badge; None unties it), audited. A user tied to another officer is an error naming them."""
    if user is not KEEP and user is not None and not USER.match(str(user)):
        raise OfficerError(N_("{user!r} is not a user name (a letter or '_', then letters, digits, '.', '_', '-'; "
                              "at most 32)"), user=user)
    with catalog.transaction():
        old = need_officer(catalog, badge)
        if not old["registered"]:
            raise OfficerError(N_("officer {badge} is not in the registry (only seen on a recorder or an ingest); "
                                  "register them with `evidock officer add {badge} --name …`"), badge=badge)
        if user is not KEEP and user is not None:
            other = officer_of_user(catalog, user)
            if other is not None and other["badge"] != badge:
                raise OfficerError(N_("user {user} is tied to officer {other} already; untie them first with "
                                      "`evidock officer edit {other} --no-user`"), user=user, other=other["badge"])
        name_ = clean_text(name, N_("name")) or old["name"]
        unit_ = clean_text(unit, N_("unit"))
        store_officer(catalog, badge, name_, unit_, "officer edit", actor, user=user)
    return need_officer(catalog, badge)


def unregistered(catalog: Catalog, badges: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """The badges among ``badges`` that staff never registered, sorted.

    A station whose registry is empty (nobody registered yet: the registry is not in use) has
    nothing to hold a badge against, so no badge is reported there.
    """
    known = {r[0] for r in catalog.conn.execute("SELECT badge FROM officers WHERE registered_at IS NOT NULL")}
    return sorted({b for b in badges if b} - known) if known else []


def unregistered_exit_code(missing: list[str]) -> int:
    """A badge accepted though nobody registered it is a warning (exit 1): a typo is noticed."""
    return EXIT_WARNING if missing else EXIT_OK


def names(catalog: Catalog) -> dict[str, str]:
    """badge -> name of every officer with a name."""
    return dict(catalog.conn.execute("SELECT badge, name FROM officers WHERE name IS NOT NULL"))


# -- pooled recorders ---------------------------------------------------------------------------

_ASSIGNMENT = ("SELECT a.id, a.device_serial AS device, a.badge AS officer, o.name AS officer_name, a.from_at, "
               "a.until_at, a.assigned_at, a.assigned_by, a.bound_at FROM officer_assignments a "
               "LEFT JOIN officers o ON o.badge = a.badge")


def assignments(catalog: Catalog, serial: str | None = None, badge: str | None = None) -> list[dict[str, Any]]:
    """The assignment history of one recorder, one officer or all, newest first."""
    where, args = [], []
    if serial is not None:
        where.append("a.device_serial = ?")
        args.append(serial)
    if badge is not None:
        where.append("a.badge = ?")
        args.append(badge)
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    return list(catalog.db.query(f"{_ASSIGNMENT}{cond} ORDER BY a.from_at DESC, a.id DESC", args))


def assign(catalog: Catalog, serial: str, badge: str, from_at: Any = None, until_at: Any = None,
           actor: str | None = None) -> dict[str, Any]:
    """``evidock devices assign``: the recorder ``serial`` is signed out to ``badge`` from ``from_at``
    (default now) until ``until_at`` (None: until the next assignment), audited.

    A still-open assignment of the same recorder that began earlier ends where this one begins
    (the recorder was handed on). Any other overlap is an ``OfficerError`` naming the assignment.
    """
    badge = clean_badge(badge)
    serial = str(serial).strip()
    if not serial:
        raise OfficerError(N_("no recorder serial given"))
    start = iso(from_at) if from_at is not None else iso_now()
    end = iso(until_at) if until_at is not None else None
    if end is not None and end <= start:
        raise OfficerError(N_("the assignment would end ({until}) before it begins ({start})"), until=end, start=start)
    actor = actor or audit.current_actor()
    with catalog.transaction():
        closed = None
        for a in catalog.db.query(_ASSIGNMENT + " WHERE a.device_serial = ? ORDER BY a.from_at", [serial]):
            a_end = a["until_at"]
            if a_end is None and a["from_at"] < start:
                catalog.conn.execute("UPDATE officer_assignments SET until_at = ? WHERE id = ?", (start, a["id"]))
                closed = a["id"]
                continue
            if a["from_at"] < (end or "9999") and start < (a_end or "9999"):
                raise OfficerError(N_("recorder {serial} is assigned to {officer} from {start} until {until} "
                                      "(assignment {id}), which overlaps; nothing was changed"),
                                   serial=serial, officer=a["officer"], start=a["from_at"],
                                   until=a_end or Message(N_("further notice")), id=a["id"])
        if not catalog.conn.execute("SELECT 1 FROM officers WHERE badge = ?", (badge,)).fetchone():
            catalog.conn.execute("INSERT INTO officers (badge, first_seen) VALUES (?,?)", (badge, utcnow()))
        cur = catalog.conn.execute(
            "INSERT INTO officer_assignments (device_serial, badge, from_at, until_at, assigned_at, assigned_by)"
            " VALUES (?,?,?,?,?,?)", (serial, badge, start, end, utcnow(), actor))
        aid = int(cur.lastrowid)
        audit.append(catalog, "device.assign", f"device:{serial}",
                     {"assignment": aid, "officer": badge, "from": start, "until": end, "closed": closed}, actor)
    return next(a for a in assignments(catalog, serial=serial) if a["id"] == aid)


def iso_now() -> str:
    return utcnow()[:19] + "+00:00"


def assigned_at(conn: Any, serial: str | None, when: str | None) -> tuple[int, str] | None:
    """(assignment id, badge) of the assignment of recorder ``serial`` that covers ``when`` (ISO, UTC)."""
    if not serial or not when:
        return None
    row = conn.execute(
        "SELECT id, badge FROM officer_assignments WHERE device_serial = ? AND from_at <= ? "
        "AND (until_at IS NULL OR ? < until_at) ORDER BY from_at DESC, id DESC LIMIT 1", (serial, when, when)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def attribute(conn: Any, serial: str | None, bound: str | None, when: str | None) -> tuple[str | None, str, int | None]:
    """Whom a recording of ``serial`` at ``when`` (corrected; None: not trusted) is attributed to:
    (badge, ``assignment`` | ``binding``, assignment id)."""
    hit = assigned_at(conn, serial, when)
    if hit is None:
        return bound, "binding", None
    return hit[1], "assignment", hit[0]


def current_assignment(catalog: Catalog, serial: str, now: str | None = None) -> dict[str, Any] | None:
    """The assignment of ``serial`` in force now, or None."""
    hit = assigned_at(catalog.conn, serial, now or iso_now())
    return next((a for a in assignments(catalog, serial=serial) if a["id"] == hit[0]), None) if hit else None


def mark_bound(catalog: Catalog, assignment_id: int) -> None:
    """The assignment was written into the recorder (in the caller's transaction)."""
    catalog.conn.execute("UPDATE officer_assignments SET bound_at = ? WHERE id = ?", (utcnow(), assignment_id))
