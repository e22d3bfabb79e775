"""The SQLite catalog: schema, named migrations, connections and transactions.

The catalog is the station's index of what the object store holds and where each object came
from (devices, officers, offload sessions, footage, sightings) plus the hash-chained audit log.
It is opened through sqlite-utils (schema creation, queries); writes on the ingest path are plain
SQL inside explicit ``BEGIN IMMEDIATE`` transactions that we own, so "a catalog row and its audit
entry commit together" does not depend on how a library helper handles transactions (sqlite-utils
3.x wrapped its helpers in ``with conn:``, which commits an enclosing transaction; 4.x, required
here, uses savepoints).

Migrations are *named* (table ``_migrations``) and listed, in order, as data in
``daemon/catalog/schema.py``. The pending ones run together in one transaction, after a copy of
the catalog was saved beside it (``_snapshot``), so a failed upgrade leaves the catalog as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlite_utils

from daemon.catalog.schema import MIGRATIONS
from daemon.clock import utcnow
from daemon.errors import CatalogError, EvidockError
from daemon.i18n import N_, os_error

log = logging.getLogger(__name__)

CATALOG_NAME = "catalog.sqlite"


def _wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch to WAL. Creating the catalog's file races with another process doing the same
    (two first opens at once): the switch needs the file to itself and SQLite answers "locked"
    without waiting for it, so it is tried again for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Catalog:
    """One connection to the catalog of a data dir. Not shared between threads at once."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / CATALOG_NAME
        try:
            Path(data_dir).mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as e:
            raise CatalogError(N_("data dir {path}: cannot create it ({reason}); check the path and its permissions"),
                               path=str(data_dir), reason=os_error(e)) from None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see module docstring).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            _wal(conn)
            # FULL: a committed catalog row must survive a power cut before a recorder is wiped.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            raise CatalogError(N_("catalog {path}: cannot open it ({error}); check the data dir's permissions and disk"),
                               path=str(self.path), error=str(e)) from None
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
            raise CatalogError(N_("catalog {path}: cannot start a write ({error})"), path=str(self.path), error=str(e)) from None
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
            raise CatalogError(N_("catalog {path}: {error}; nothing of this step was recorded — check the disk of the "
                                  "data dir"), path=str(self.path), error=str(e)) from e
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise CatalogError(N_("catalog {path}: commit failed ({error}); nothing of this step was recorded"),
                               path=str(self.path), error=str(e)) from None
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
        """Apply the pending migrations of ``schema.MIGRATIONS`` in one transaction.

        Before a catalog that already holds tables is changed, it is copied beside itself with
        SQLite's online backup API (``catalog.sqlite.before-<migration>``), so an upgrade never
        strands a data dir: a failed migration rolls back and leaves the old catalog as it was,
        and the copy stays for a person to inspect.
        """
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r["name"] for r in self.db.query("SELECT name FROM _migrations")}
        pending = [(name, fn) for name, fn in MIGRATIONS if name not in done]
        if not pending:
            return
        if done:
            self._snapshot(pending[0][0])
        name = pending[0][0]
        try:
            with self.transaction() as conn:
                # Again under the write lock: another process opening the same catalog may have
                # migrated it while this one waited (two first opens at once).
                done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
                for name, fn in pending:
                    if name in done:
                        continue
                    fn(self.db)
                    conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, utcnow()))
        except (sqlite3.Error, CatalogError) as e:
            raise CatalogError(N_("catalog {path}: migration {name} failed ({error}); the catalog is left as it was "
                                  "before the upgrade — keep this data dir and report the message"),
                               path=str(self.path), name=name, error=e if isinstance(e, CatalogError) else str(e)) from None

    def _snapshot(self, first_pending: str) -> Path:
        """Copy the catalog (consistently, WAL included) to ``catalog.sqlite.before-<migration>``."""
        dest = self.path.with_name(f"{self.path.name}.before-{first_pending}")
        # Unique per opener: the daemon and a CLI command may upgrade the same catalog at once.
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            target = sqlite3.connect(tmp)
            try:
                self.conn.backup(target)
            finally:
                target.close()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dest)
        except (sqlite3.Error, OSError) as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CatalogError(N_("catalog {path}: cannot save a copy before upgrading it to {migration} ({error}); "
                                  "nothing was changed — free space in the data dir and try again"),
                               path=str(self.path), migration=first_pending, error=str(e)) from None
        log.warning("catalog %s: upgrading (%s…); the catalog as it was is kept at %s", self.path, first_pending, dest)
        return dest

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
