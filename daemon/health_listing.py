"""The recorder and health listings (``evidock devices``, ``evidock health``, and the API's): rows
asked for by filters that map to indexed queries, a page at a time or streamed (issue 19).

Recorders come in serial order and are paged on the serial; health records come in id order (the
order the docks wrote them) and are paged on the id — ``after``/``before`` a cursor, never OFFSET,
so rows added between pages neither repeat nor push others out. Migration listings-014 gives each
filter its index. ``iter_devices`` and ``iter_history`` yield rows as SQLite reads them (a
backwards page, at most ``limit`` rows, is read whole and turned round); rendering is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from daemon.catalog.db import Catalog
from daemon.catalog.devices import device_exists
from daemon.errors import NotFound
from daemon.health import _row, open_alerts
from daemon.i18n import N_
from daemon.catalog import keyset

OPEN_ALERT = "EXISTS (SELECT 1 FROM health_alerts a WHERE a.device_serial = d.serial AND a.cleared_at IS NULL)"


@dataclass(frozen=True)
class DeviceQuery:
    """Which recorders: bound to ``officer``, of ``model``, with an open alert (``attention``);
    ``after``/``before`` a serial (the cursor); ``latest``: the last ``limit`` without a cursor."""

    officer: str | None = None
    model: str | None = None
    attention: bool = False
    limit: int | None = None
    after: str | None = None
    before: str | None = None
    latest: bool = False


@dataclass(frozen=True)
class HealthQuery:
    """Which health records: of recorder ``serial``, docked by ``officer``, at ``since`` (inclusive)
    to ``until`` (exclusive, ISO-8601 UTC); ``after``/``before`` a record's id (the cursor)."""

    serial: str | None = None
    officer: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int | None = None
    after: int | None = None
    before: int | None = None
    latest: bool = False


def _backwards(q: DeviceQuery | HealthQuery) -> bool:
    return keyset.backwards(q.before, q.after, q.latest)


def _paged(sql: str, where: list[str], args: list[Any], key: str, q: DeviceQuery | HealthQuery) -> tuple[str, list[Any]]:
    sql += (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY {key}" + (" DESC" if _backwards(q) else "")
    if q.limit is not None:
        sql += " LIMIT ?"
        args.append(q.limit)
    return sql, args


def devices_sql(q: DeviceQuery) -> tuple[str, list[Any]]:
    """The recorder listing's query and its arguments (``EXPLAIN QUERY PLAN`` of it is tested)."""
    where, args = [], []
    for cond, value in (("d.officer_badge = ?", q.officer), ("d.model = ?", q.model),
                        ("d.serial > ?", q.after), ("d.serial < ?", q.before)):
        if value is not None:
            where.append(cond)
            args.append(value)
    if q.attention:
        where.append(OPEN_ALERT)
    sql = ("SELECT d.serial, d.model, d.officer_badge, o.name AS officer_name, o.unit AS officer_unit, d.first_seen,"
           " d.last_seen, d.registered_at, (SELECT MAX(at) FROM dock_events e WHERE e.serial = d.serial) AS last_docked,"
           " EXISTS (SELECT 1 FROM sessions s WHERE s.device_serial = d.serial) AS offloaded"
           " FROM devices d LEFT JOIN officers o ON o.badge = d.officer_badge")
    return _paged(sql, where, args, "d.serial", q)


def iter_devices(catalog: Catalog, q: DeviceQuery = DeviceQuery()) -> Iterator[dict[str, Any]]:
    """Each recorder ``q`` asks for: its officer, when it was last docked, its last health, open alerts."""
    cur = catalog.conn.execute(*devices_sql(q))
    names = [c[0] for c in cur.description]
    for values in keyset.in_order(cur, _backwards(q)):
        d = dict(zip(names, values))
        # docked: through a bay of this station; manual: only offloaded by hand (ingest, the watch
        # folder); registered: registered here but never docked nor offloaded
        d["seen_as"] = "docked" if d["last_docked"] else ("manual" if d.pop("offloaded") else "registered")
        last = list(catalog.db.query("SELECT * FROM health WHERE device_serial = ? ORDER BY id DESC LIMIT 1",
                                     [d["serial"]]))
        d["last_health"] = _row(last[0]) if last else None
        d["open_alerts"] = [{"kind": a["kind"], "message": a["message"], "message_msg": a["message_msg"],
                             "raised_at": a["raised_at"]} for a in open_alerts(catalog, d["serial"])]
        yield d


def history_sql(q: HealthQuery) -> tuple[str, list[Any]]:
    """The health listing's query and its arguments (``EXPLAIN QUERY PLAN`` of it is tested)."""
    where, args = [], []
    for cond, value in (("h.device_serial = ?", q.serial), ("h.officer_badge = ?", q.officer),
                        ("h.at >= ?", q.since), ("h.at < ?", q.until), ("h.id > ?", q.after), ("h.id < ?", q.before)):
        if value is not None:
            where.append(cond)
            args.append(value)
    # A time range alone: SQLite would rather walk every record in id order than sort the range's.
    hint = " INDEXED BY health_at" if (q.since or q.until) and not (q.serial or q.officer) else ""
    return _paged(f"SELECT h.* FROM health h{hint}", where, args, "h.id", q)


def iter_history(catalog: Catalog, q: HealthQuery = HealthQuery()) -> Iterator[dict[str, Any]]:
    """The health records ``q`` asks for, in id order, one at a time."""
    cur = catalog.conn.execute(*history_sql(q))
    names = [c[0] for c in cur.description]
    for values in keyset.in_order(cur, _backwards(q)):
        yield _row(dict(zip(names, values)))


def health_listing(catalog: Catalog, q: HealthQuery = HealthQuery()) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """``evidock health``: the recorder asked for and the open alerts (of it, or of all), and the
    records ``q`` asks for, streamed. A recorder never docked here is ``NotFound``."""
    if q.serial and not device_exists(catalog, q.serial):
        raise NotFound(N_("no recorder {serial} has been docked here; `evidock devices` lists the known ones"),
                       serial=q.serial)
    return {"serial": q.serial, "open_alerts": open_alerts(catalog, q.serial)}, iter_history(catalog, q)
