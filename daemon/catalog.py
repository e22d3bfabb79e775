"""The SQLite catalog: schema, named migrations, connections and transactions.

The catalog is the station's index of what the object store holds and where each object came
from (devices, officers, offload sessions, footage, sightings) plus the hash-chained audit log.
It is opened through sqlite-utils (schema creation, queries); writes on the ingest path are plain
SQL inside explicit ``BEGIN IMMEDIATE`` transactions that we own, so "a catalog row and its audit
entry commit together" does not depend on how a library helper handles transactions (sqlite-utils
3.x wrapped its helpers in ``with conn:``, which commits an enclosing transaction; 4.x, required
here, uses savepoints).

Migrations are *named* (table ``_migrations``), not numbered, so each module that owns tables
(catalog, health, media, cases, …) registers its own list without colliding with the others;
the modules are listed in one place, ``MIGRATION_MODULES``. They run in that order, each in its
own transaction, once.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from .errors import CatalogError, EvidockError

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.sqlite"

Migration = tuple[str, Callable[[sqlite_utils.Database], None]]

# Modules whose MIGRATIONS list is applied, in this order. New table owners add themselves here.
MIGRATION_MODULES = ("daemon.catalog", "daemon.audit", "daemon.health", "daemon.dock", "daemon.cases", "daemon.retention",
                     "daemon.review", "daemon.mediaqueue")


def utcnow() -> str:
    """The current UTC time as ISO 8601 with microseconds and an explicit offset."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _m001_core(db: sqlite_utils.Database) -> None:
    db["officers"].create({"badge": str, "name": str, "unit": str, "first_seen": str}, pk="badge")
    db["devices"].create(
        {"serial": str, "model": str, "officer_badge": str, "first_seen": str, "last_seen": str},
        pk="serial",
    )
    db["sessions"].create(
        {
            "id": int,
            "device_serial": str,
            "officer_badge": str,
            "source": str,
            "actor": str,
            # recorder clock minus station clock, seconds, measured at dock (None: not measured)
            "clock_drift_s": float,
            "started_at": str,
            "ended_at": str,
            "status": str,  # running | completed | interrupted | failed
            "pid": int,  # of the offloading process, with boot_id: finds sessions whose process died
            "boot_id": str,
            "files_stored": int,
            "files_duplicate": int,
            "bytes_stored": int,
            "problems": int,
            "message": str,
        },
        pk="id",
    )
    db["objects"].create({"sha256": str, "size": int, "stored_at": str}, pk="sha256")
    db["footage"].create(
        {
            "id": int,
            "sha256": str,
            "size": int,
            "device_serial": str,
            "officer_badge": str,
            "source_path": str,  # display form: UTF-8, undecodable bytes as \xNN
            "source_path_raw": bytes,  # the name exactly as the volume gave it
            "recorded_at": str,  # as the recorder reported it (file mtime, UTC)
            # recorded_at minus the clock drift measured at this dock (see offload.corrected_time)
            "recorded_at_corrected": str,
            "important": int,
            "case_no": str,
            "session_id": int,
            "ingested_at": str,
        },
        pk="id",
        foreign_keys=[("sha256", "objects", "sha256"), ("session_id", "sessions", "id")],
    )
    db["footage"].create_index(["sha256"], unique=True)
    db["footage"].create_index(["officer_badge"])
    db["sightings"].create(
        {
            "id": int,
            "sha256": str,
            "session_id": int,
            "device_serial": str,
            "officer_badge": str,
            "source_path": str,
            "source_path_raw": bytes,
            "size": int,
            "mtime": str,
            "transfer_key": str,
            "seen_at": str,
        },
        pk="id",
        foreign_keys=[("sha256", "objects", "sha256"), ("session_id", "sessions", "id")],
    )
    db["sightings"].create_index(["sha256"])
    db["sightings"].create_index(["transfer_key"])
    db["problems"].create(
        {"id": int, "session_id": int, "path": str, "path_raw": bytes, "reason": str, "severity": str, "at": str},
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["meta"].create({"key": str, "value": str}, pk="key")


MIGRATIONS: list[Migration] = [("core-001", _m001_core)]


class Catalog:
    """One connection to the catalog of a data dir. Not shared between threads at once."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / CATALOG_NAME
        try:
            Path(data_dir).mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as e:
            raise CatalogError(f"data dir {data_dir}: cannot create it ({e.strerror}); check the path and its permissions") from None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see module docstring).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed catalog row must survive a power cut before a recorder is wiped.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            raise CatalogError(f"catalog {self.path}: cannot open it ({e}); check the data dir's permissions and disk") from None
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        self.data_dir = Path(data_dir)
        # Callbacks run once after the current transaction commits (e.g. the audit anchor).
        self._after_commit: list[Callable[[], None]] = []
        self._after_commit_keys: set[str] = set()
        # Messages of after-commit steps that failed, for the caller's summary (e.g. the ingest
        # reports "anchor not updated" as a warning instead of exiting 0 on a full disk).
        self.after_commit_failures: list[str] = []
        self._migrate()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception. Not re-entrant."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise CatalogError(f"catalog {self.path}: cannot start a write ({e})") from None
        self._after_commit, self._after_commit_keys = [], set()
        try:
            yield self.conn
        except sqlite3.IntegrityError:
            self._rollback()
            raise  # a constraint the caller may expect and explain (e.g. rows still referring to footage)
        except sqlite3.Error as e:
            self._rollback()
            # SQLite errors (disk full, I/O error, locked) are the catalog's: typed, so that an
            # offload stops cleanly instead of storing objects it can no longer catalogue.
            raise CatalogError(f"catalog {self.path}: {e}; nothing of this step was recorded — check the disk "
                               "of the data dir") from e
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise CatalogError(f"catalog {self.path}: commit failed ({e}); nothing of this step was recorded") from None
        callbacks, self._after_commit, self._after_commit_keys = self._after_commit, [], set()
        for cb in callbacks:
            try:
                cb()
            except EvidockError as e:  # the transaction is committed: a failed side note must not undo that
                log.warning("%s (the commit itself stands)", e)
                self.after_commit_failures.append(str(e))
            except Exception as e:  # a bug, not a condition: keep the traceback
                log.exception("after-commit step failed (the commit itself stands)")
                self.after_commit_failures.append(f"an after-commit step failed ({e!r}); the commit itself stands")

    def _rollback(self) -> None:
        self._after_commit = []
        if self.conn.in_transaction:  # SQLite may already have rolled back by itself (disk full)
            self.conn.execute("ROLLBACK")

    def after_commit(self, callback: Callable[[], None], key: str | None = None) -> None:
        """Run ``callback`` once the current transaction has committed (not if it rolls back).

        With ``key``, at most one callback per key runs per transaction (e.g. one audit anchor
        write however many entries the transaction appended).
        """
        if key is not None:
            if key in self._after_commit_keys:
                return
            self._after_commit_keys.add(key)
        self._after_commit.append(callback)

    def _migrate(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r["name"] for r in self.db.query("SELECT name FROM _migrations")}
        for modname in MIGRATION_MODULES:
            for name, fn in importlib.import_module(modname).MIGRATIONS:
                if name in done:
                    continue
                try:
                    with self.transaction() as conn:
                        fn(self.db)
                        conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, utcnow()))
                except sqlite3.Error as e:
                    raise CatalogError(f"catalog {self.path}: migration {name} failed ({e})") from None

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
