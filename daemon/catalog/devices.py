"""Recorders and their officers in the catalog: the one upsert of the ``devices`` table (and of
``officers``), registration to this station with its audit entry, and the device queries.

Every writer of these tables goes through here: the offload session (``sessions.start_session``),
the dock check (identify, officer binding), the dock manager (registered on first dock) and
``evidock devices register``. The upserts never open a transaction of their own: they run inside
the caller's ``catalog.transaction()``, with the change they belong to.
"""

from __future__ import annotations

from typing import Any

from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.evidence import audit

# The one upsert of `devices`. A value not given (NULL) keeps what the row holds; `registered_at`
# is set once and never moved; `last_seen` moves only when the recorder was actually seen.
_UPSERT_DEVICE = (
    "INSERT INTO devices (serial, model, officer_badge, first_seen, last_seen, registered_at) "
    "VALUES (:serial, :model, :officer, :now, :now, :registered_at) "
    "ON CONFLICT(serial) DO UPDATE SET "
    "model = COALESCE(excluded.model, devices.model), "
    "officer_badge = COALESCE(excluded.officer_badge, devices.officer_badge), "
    "last_seen = CASE WHEN :seen THEN excluded.last_seen ELSE devices.last_seen END, "
    "registered_at = COALESCE(devices.registered_at, excluded.registered_at)"
)

_UPSERT_OFFICER = (
    "INSERT INTO officers (badge, name, unit, first_seen) VALUES (?,?,?,?) ON CONFLICT(badge) DO UPDATE SET "
    "name = CASE WHEN officers.registered_at IS NULL THEN COALESCE(excluded.name, officers.name) ELSE officers.name END, "
    "unit = CASE WHEN officers.registered_at IS NULL THEN COALESCE(excluded.unit, officers.unit) ELSE officers.unit END"
)


def upsert_officer(catalog: Catalog, badge: str, name: str | None = None, unit: str | None = None,
                   now: str | None = None) -> None:
    """Insert an officer seen on a recorder or an ingest, or update the name and unit it has.

    An officer staff registered (``daemon.catalog.officers``) keeps the registry's name and unit.
    Run inside ``catalog.transaction()``."""
    catalog.conn.execute(_UPSERT_OFFICER, (badge, name, unit, now or utcnow()))


def upsert_device(catalog: Catalog, serial: str, *, model: str | None = None, officer: str | None = None,
                  seen: bool = True, registered: bool = False, now: str | None = None) -> None:
    """Insert a recorder, or update what is known of it. Run inside ``catalog.transaction()``.

    ``model`` and ``officer`` replace the stored ones only when given; ``seen`` moves ``last_seen``
    to now (a new row always gets first_seen = last_seen = now); ``registered`` sets
    ``registered_at`` to now unless the recorder was registered before.
    """
    now = now or utcnow()
    catalog.conn.execute(_UPSERT_DEVICE, {"serial": serial, "model": model, "officer": officer, "now": now,
                                          "seen": 1 if seen else 0, "registered_at": now if registered else None})


def get_device(catalog: Catalog, serial: str) -> dict[str, Any] | None:
    """The ``devices`` row of one recorder, or None when it was never seen or registered here."""
    rows = list(catalog.db.query("SELECT * FROM devices WHERE serial = ?", [serial]))
    return rows[0] if rows else None


def device_exists(catalog: Catalog, serial: str) -> bool:
    """Whether the catalog knows this recorder (docked, offloaded or registered here)."""
    return catalog.conn.execute("SELECT 1 FROM devices WHERE serial = ?", (serial,)).fetchone() is not None


def registered_at(catalog: Catalog, serial: str) -> str | None:
    """When the recorder was registered to this station, or None if it is not (or unknown)."""
    row = catalog.conn.execute("SELECT registered_at FROM devices WHERE serial = ?", (serial,)).fetchone()
    return row[0] if row else None


def register_device(catalog: Catalog, serial: str, how: str, *, bay: str | None = None,
                    reason: str | None = None, actor: str | None = None) -> str:
    """Register a recorder to this station and audit it, in one transaction.

    ``how`` says who registered it ("by staff", "on first dock"); ``bay`` and ``reason`` go into
    the audit entry when given. A recorder registered before keeps its first ``registered_at``
    (the new registration is still on the record). Returns ``registered_at``.
    """
    details: dict[str, Any] = {"how": how}
    if bay is not None:
        details["bay"] = bay
    if reason is not None:
        details["reason"] = reason
    with catalog.transaction():
        upsert_device(catalog, serial, seen=False, registered=True)
        audit.append(catalog, "device.register", f"device:{serial}", details, actor)
        when = registered_at(catalog, serial)
    assert when is not None
    return when
