"""The backup tables (issue 16): a migration of ``daemon.catalog.schema``, beside it for its size."""

from __future__ import annotations

import sqlite_utils


def _m006_backup(db: sqlite_utils.Database) -> None:
    # A row is written only after the target verified the copy (daemon/backup): one per object
    # and target, never two (the primary key), so a run killed mid-copy double-marks nothing.
    db.execute("""CREATE TABLE backup_copies (
            sha256 TEXT NOT NULL,
            target TEXT NOT NULL,
            size INTEGER NOT NULL,
            copied_at TEXT NOT NULL,
            version_id TEXT,
            verified_at TEXT NOT NULL,
            retain_until TEXT,
            PRIMARY KEY (sha256, target)
        )""")
    db.execute("CREATE INDEX backup_copies_verified ON backup_copies(target, verified_at)")
    db.execute("""CREATE TABLE backup_runs (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('run', 'verify')),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            result TEXT NOT NULL CHECK (result IN ('running', 'ok', 'failed', 'damaged')),
            counts TEXT,
            error TEXT,
            error_msg TEXT
        )""")
    db.execute("CREATE INDEX backup_runs_target ON backup_runs(target, kind, id)")
