"""USB devices the station refused: the record of each refusal and ``evidock devices unknown``.

A USB device whose VID:PID (and product string) is in no entry of the station's device table is
never mounted or read (unauthorised USB storage): each time it is plugged in, one ``alerts_usb``
row (bay, port, IDs, product and manufacturer strings, USB serial) and one ``usb.refused`` audit
entry. ``unknown_devices`` groups those rows by device — IDs, strings and serial — with its ports,
first and last time seen and how often, and the ``[[recorders]]`` block an administrator pastes
into the config to make it a known model (daemon/config_recorders.py). A device that the table
knows by now (its block was added) is no longer listed.
"""

from __future__ import annotations

from typing import Any

from daemon.catalog import outbox
from daemon.catalog.db import Catalog
from daemon.clock import utcnow
from daemon.config_recorders import recorder_block
from daemon.dock.hotplug import Docked
from daemon.evidence import audit
from daemon.i18n import N_, Message, dumps
from drivers.registry import Registry


def record_refused(catalog: Catalog, rec: Docked) -> None:
    """One refusal: its alert row and its audit entry, in one transaction."""
    msg = Message(N_("unknown USB device {usb_id} ({product}) on bay {bay} refused: "
                     "not in the recorder table, never mounted or read (unauthorised USB storage)"),
                  usb_id=rec.vidpid, product=rec.product or Message(N_("no product string")), bay=rec.bay)
    at = utcnow()
    with catalog.transaction() as conn:
        cur = conn.execute("INSERT INTO alerts_usb (at, bay, port, usb_id, product, manufacturer, usb_serial, message, message_msg)"
                           " VALUES (?,?,?,?,?,?,?,?,?)",
                           (at, rec.bay, rec.port, rec.vidpid, rec.product, rec.manufacturer, rec.usb_serial, str(msg),
                            dumps(msg)))
        outbox.usb_refused(conn, int(cur.lastrowid), rec.vidpid, rec.usb_serial, msg, at)
        audit.append(catalog, "usb.refused", f"usb:{rec.vidpid}",
                     {"bay": rec.bay, "port": rec.port, "product": rec.product, "manufacturer": rec.manufacturer,
                      "usb_serial": rec.usb_serial})


def unknown_devices(catalog: Catalog, table: Registry) -> list[dict[str, Any]]:
    """Each refused device not in ``table`` (newest last seen first), with its config block."""
    rows = catalog.db.query(
        "SELECT usb_id, product, MAX(manufacturer) AS manufacturer, usb_serial, GROUP_CONCAT(DISTINCT port) AS ports,"
        " GROUP_CONCAT(DISTINCT bay) AS bays, MIN(at) AS first_seen, MAX(at) AS last_seen, COUNT(*) AS times"
        " FROM alerts_usb GROUP BY usb_id, product, usb_serial ORDER BY last_seen DESC, usb_id")
    out = []
    for r in rows:
        vid, _sep, pid = (r["usb_id"] or ":").partition(":")
        if table.is_known(vid, pid, r["product"]):
            continue
        out.append({"usb_id": r["usb_id"], "vendor_id": vid, "product_id": pid, "product": r["product"],
                    "manufacturer": r["manufacturer"], "usb_serial": r["usb_serial"],
                    "ports": sorted((r["ports"] or "").split(",")) if r["ports"] else [],
                    "bays": sorted((r["bays"] or "").split(",")) if r["bays"] else [],
                    "first_seen": r["first_seen"], "last_seen": r["last_seen"], "times": r["times"],
                    "config_block": recorder_block(vid, pid, r["product"], r["manufacturer"])})
    return out
