"""``evidock notify test|status|list``: a test message through each channel now, the state of
each channel, and the deliveries, newest first.

``notify test`` sends at once, in the calling process, through every channel (or the one
named), and records each as an outbox row of kind ``test`` with its delivery and attempt — so
``notify list`` shows it beside the alerts. A test is tried once, never retried: its point is
to say whether the channel works now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.catalog import outbox
from daemon.catalog.db import Catalog
from daemon.clock import iso
from daemon.config import Config
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING, NotifyError
from daemon.i18n import N_, Message
from daemon.notify.sender import deliver, record

DELIVERY_STATES = ("queued", "sent", "failed", "dropped")


@dataclass
class TestReport:
    results: list[dict[str, Any]] = field(default_factory=list)  # channel, kind, ok, error (a NotifyError)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.results and all(r["ok"] for r in self.results) else EXIT_ERROR

    def to_json(self) -> dict[str, Any]:
        return {"channels": [{"channel": r["channel"], "kind": r["kind"], "ok": r["ok"],
                              "error": str(r["error"]) if r["error"] else None} for r in self.results],
                "exit_code": self.exit_code}


def send_test(catalog: Catalog, config: Config, now: datetime, channel: str | None = None) -> TestReport:
    """A test message through each channel (or ``channel``) now; raises ``NotifyError`` when there
    is none to send through."""
    chans = list(config.notify.channels)
    if channel is not None:
        chans = [c for c in chans if c.name == channel]
        if not chans:
            raise NotifyError(N_("there is no notify channel {channel}; the channels are: {channels}"), channel=channel,
                              channels=", ".join(c.name for c in config.notify.channels) or "-")
    if not chans:
        raise NotifyError(N_("no notify channels: add [[notify.channels]] to the config (`evidock config example` "
                             "shows one of each kind)"))
    rep = TestReport()
    at = iso(now)
    msg = Message(N_("a test message from evidock station {station}: if you read this, its alerts reach you"),
                  station=config.station.station_id())
    for c in chans:
        with catalog.transaction() as conn:
            oid = outbox.enqueue(conn, outbox.TEST_KIND, "test", msg, at, subject=c.name)
            conn.execute("UPDATE notify_outbox SET fanned_at = ? WHERE id = ?", (at, oid))
            did = int(conn.execute("INSERT INTO notify_deliveries (outbox_id, channel, digest, state, next_at)"
                                   " VALUES (?,?,0,'queued',?)", (oid, c.name, at)).lastrowid)
        row = {**catalog.db["notify_outbox"].get(oid), "delivery_id": did, "attempts": 0}
        try:
            deliver(c, [row], config, False, now)
            error = None
        except NotifyError as e:
            error = e
        record(catalog, config, [row], error, now, retry=False)
        rep.results.append({"channel": c.name, "kind": c.kind, "ok": error is None, "error": error})
    return rep


@dataclass
class NotifyStatus:
    channels: list[dict[str, Any]]
    unsent: int  # outbox rows the sender has not looked at yet (it runs in `evidock run`)

    @property
    def exit_code(self) -> int:
        """1 while a channel's last try failed or a message of it failed for good, else 0."""
        return EXIT_WARNING if any(c["failing"] or c["failed"] for c in self.channels) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        # the *_msg twins are for showing errors translated; JSON keeps the English
        return {"channels": [{k: v for k, v in c.items() if not k.endswith("_msg")} for c in self.channels],
                "outbox_unsent": self.unsent, "exit_code": self.exit_code}


def notify_status(catalog: Catalog, config: Config) -> NotifyStatus:
    """Per configured channel: its deliveries by state, the last try and its error, the next try."""
    out = []
    for c in config.notify.channels:
        counts = dict.fromkeys(DELIVERY_STATES, 0)
        for state, n in catalog.conn.execute("SELECT state, COUNT(*) FROM notify_deliveries WHERE channel = ?"
                                             " GROUP BY state", (c.name,)):
            counts[state] = n
        last = catalog.conn.execute(
            "SELECT a.at, a.ok, a.error, a.error_msg FROM notify_attempts a JOIN notify_deliveries d ON d.id = a.delivery_id"
            " WHERE d.channel = ? ORDER BY a.id DESC LIMIT 1", (c.name,)).fetchone()
        nxt = catalog.conn.execute("SELECT MIN(next_at) FROM notify_deliveries WHERE channel = ? AND state = 'queued'",
                                   (c.name,)).fetchone()[0]
        out.append({"channel": c.name, "kind": c.kind, "host": c.host_name(), "alerts": list(c.alerts),
                    "digest": c.digest, **counts, "last_attempt_at": last[0] if last else None,
                    "failing": bool(last and not last[1]), "last_error": last[2] if last else None,
                    "last_error_msg": last[3] if last else None, "next_at": nxt})
    unsent = catalog.conn.execute("SELECT COUNT(*) FROM notify_outbox WHERE fanned_at IS NULL").fetchone()[0]
    return NotifyStatus(out, int(unsent))


def deliveries(catalog: Catalog, state: str | None = None, channel: str | None = None, before: int | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
    """Deliveries, newest first, with what they tell (``before``: the cursor, a delivery id)."""
    where, params = [], []
    for cond, value in (("d.state = ?", state), ("d.channel = ?", channel), ("d.id < ?", before)):
        if value is not None:
            where.append(cond)
            params.append(value)
    sql = ("SELECT d.id, d.channel, d.digest, d.state AS delivery, d.attempts, d.next_at, d.sent_at, d.last_error,"
           " d.last_error_msg,"
           " o.id AS outbox_id, o.at, o.kind, o.state, o.serial, o.subject, o.message, o.message_msg"
           " FROM notify_deliveries d JOIN notify_outbox o ON o.id = d.outbox_id"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY d.id DESC LIMIT ?")
    return [{**r, "digest": bool(r["digest"])} for r in catalog.db.query(sql, [*params, limit])]
