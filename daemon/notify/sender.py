"""The sender: it works the outbox in a thread of ``evidock run`` — fan out, send, retry, digest.

One ``step``:
1. *Fan out*: each outbox row not looked at yet becomes one delivery per ``[[notify.channels]]``
   entry that wants its kind (``outbox.wanted``): ``queued``, due now — or, on a digest channel,
   at the next ``notify.digest_at`` — or ``dropped`` when the row is older than
   ``notify.max_age_hours`` (a station that ran for weeks without ``[notify]`` does not send
   weeks of old news the day it gets one).
2. *Send* what is due: one message per delivery; a digest channel's due deliveries together in
   one message. The network is talked to outside any transaction (a dock's writes never wait for
   a mail server); each try is then one short transaction: a ``notify_attempts`` row and the
   delivery ``sent``, or tried again after ``retry_base_s`` doubled per attempt (at most
   ``retry_max_s``), or ``failed`` once ``max_attempts`` are used up.

A crash between a send and its record sends that message again at the next start (at least
once, never lost). Channels come from the config of each step, so a SIGHUP reload applies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.catalog import outbox
from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc
from daemon.config import Config, NotifyChannel
from daemon.errors import NotifyError
from daemon.i18n import N_, dumps
from daemon.notify import channels, text

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def next_digest(after: datetime, digest_at: str, tz: str) -> datetime:
    """The first ``digest_at`` (HH:MM in ``tz``) at or after ``after``."""
    hh, mm = (int(x) for x in digest_at.split(":"))
    local = after.astimezone(ZoneInfo(tz))
    at = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if at < local:
        at = (local + timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
    return at


def backoff_s(config: Config, attempts: int) -> float:
    """The wait after the ``attempts``-th failed try."""
    n = config.notify
    return float(min(n.retry_base_s * 2 ** max(attempts - 1, 0), n.retry_max_s))


def fan_out(catalog: Catalog, config: Config, now: datetime) -> int:
    """Make the deliveries of every outbox row not looked at yet; returns how many rows."""
    n = config.notify
    too_old = iso(now - timedelta(hours=n.max_age_hours))
    at = iso(now)
    with catalog.transaction() as conn:
        rows = conn.execute("SELECT id, kind, at FROM notify_outbox WHERE fanned_at IS NULL ORDER BY id").fetchall()
        for oid, kind, raised_at in rows:
            for c in n.channels:
                if not outbox.wanted(kind, c.alerts):
                    continue
                if raised_at < too_old:
                    state, due = "dropped", at
                else:
                    state = "queued"
                    due = iso(next_digest(now, n.digest_at, config.ui.timezone)) if c.digest else at
                conn.execute("INSERT OR IGNORE INTO notify_deliveries (outbox_id, channel, digest, state, next_at)"
                             " VALUES (?,?,?,?,?)", (oid, c.name, int(c.digest), state, due))
            conn.execute("UPDATE notify_outbox SET fanned_at = ? WHERE id = ?", (at, oid))
    return len(rows)


def _due(catalog: Catalog, now: datetime) -> list[dict[str, Any]]:
    return list(catalog.db.query(
        "SELECT d.id AS delivery_id, d.channel, d.digest, d.attempts, o.* FROM notify_deliveries d"
        " JOIN notify_outbox o ON o.id = d.outbox_id WHERE d.state = 'queued' AND d.next_at <= ? ORDER BY d.id",
        [iso(now)]))


def deliver(channel: NotifyChannel, rows: list[dict[str, Any]], config: Config, digest: bool, now: datetime) -> None:
    """Send ``rows`` through ``channel`` as one message; ``NotifyError`` when it was not taken."""
    if channel.kind == "email":
        subject, body = text.mail(rows, config, digest)
        channels.send_mail(channel, subject, body, config.notify.timeout_s)
    else:
        channels.post_json(channel, text.webhook_document(rows, config, digest, now), config.notify.timeout_s)


def record(catalog: Catalog, config: Config, rows: list[dict[str, Any]], error: NotifyError | None, now: datetime,
           retry: bool = True) -> None:
    """The outcome of one try for each delivery in ``rows``: sent, tried again later, or failed."""
    at = iso(now)
    with catalog.transaction() as conn:
        for r in rows:
            attempts = int(r["attempts"]) + 1
            english, stored = (str(error), dumps(error)) if error else (None, None)
            conn.execute("INSERT INTO notify_attempts (delivery_id, at, ok, error, error_msg) VALUES (?,?,?,?,?)",
                         (r["delivery_id"], at, int(error is None), english, stored))
            if error is None:
                conn.execute("UPDATE notify_deliveries SET state='sent', attempts=?, sent_at=?, last_error=NULL,"
                             " last_error_msg=NULL WHERE id=?", (attempts, at, r["delivery_id"]))
            elif retry and attempts < config.notify.max_attempts:
                conn.execute("UPDATE notify_deliveries SET attempts=?, next_at=?, last_error=?, last_error_msg=? WHERE id=?",
                             (attempts, iso(now + timedelta(seconds=backoff_s(config, attempts))), english, stored,
                              r["delivery_id"]))
            else:
                conn.execute("UPDATE notify_deliveries SET state='failed', attempts=?, last_error=?, last_error_msg=?"
                             " WHERE id=?", (attempts, english, stored, r["delivery_id"]))


def send_due(catalog: Catalog, config: Config, now: datetime) -> int:
    """Send every due delivery (digests grouped per channel); returns how many messages were tried."""
    due = _due(catalog, now)
    groups: list[tuple[NotifyChannel | None, str, bool, list[dict[str, Any]]]] = []
    digests: dict[str, list[dict[str, Any]]] = {}
    for r in due:
        c = config.notify.channel(r["channel"])
        if r["digest"] and c is not None and c.digest:
            digests.setdefault(c.name, []).append(r)
        else:
            groups.append((c, r["channel"], False, [r]))
    groups += [(config.notify.channel(name), name, True, rows) for name, rows in digests.items()]
    for c, name, digest, rows in groups:
        if c is None:  # the channel left the config: nothing to send it through
            record(catalog, config, rows, NotifyError(N_("channel {channel} is no longer in the config; its queued "
                                                         "messages are not sent"), channel=name), now, retry=False)
            continue
        try:
            deliver(c, rows, config, digest, now)
            error = None
        except NotifyError as e:
            error = e
            log.warning("alert message not sent (tried again later): %s", e)
        record(catalog, config, rows, error, now)
    return len(groups)


def step(catalog: Catalog, config: Config, now: datetime) -> int:
    """One round: fan out, then send what is due."""
    fan_out(catalog, config, now)
    return send_due(catalog, config, now)


class Sender:
    """The sender thread of ``evidock run``: a ``step`` every ``notify.poll_s`` until ``stop``."""

    def __init__(self, catalog_factory: Callable[[], Catalog], config: Callable[[], Config],
                 stop: threading.Event, clock: Clock = now_utc):
        self.catalog_factory, self.config, self.stop, self.clock = catalog_factory, config, stop, clock
        self.thread = threading.Thread(target=self._loop, name="evidock-notify", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        catalog: Catalog | None = None  # one connection for the thread's life, opened again after a failure
        while True:
            cfg = self.config()
            try:
                if catalog is None:
                    catalog = self.catalog_factory()
                step(catalog, cfg, self.clock())
            except Exception:  # a busy catalog, a bug: alerts wait in the outbox, docks go on
                log.exception("the alert sender failed; trying again")
                if catalog is not None:
                    catalog.close()
                    catalog = None
            if self.stop.wait(cfg.notify.poll_s):
                break
        if catalog is not None:
            catalog.close()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
