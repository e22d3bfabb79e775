"""Every migration of the catalog, in order, as data: the whole schema in one place.

Each entry of ``MIGRATIONS`` is a name and a function that creates or changes tables through
sqlite-utils. The names are the ones recorded in ``_migrations`` since the first release
(``core-001``, ``audit-001``…), so data dirs written before the schema moved here open unchanged.
A new schema change appends an entry (never edits one) and adds a fixture of the schema before it
under ``tests/fixtures/``. The migrations of the first release are here; those added since (one per issue) are in
``daemon.catalog.schema_later``. Neither imports anything of evidock but the clock and the file
kinds (``daemon.catalog.kinds``), so opening a catalog loads neither the dock nor the drivers.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from daemon.clock import utcnow

Migration = tuple[str, Callable[[sqlite_utils.Database], None]]

# The media tables whose rows hang off a footage row (deleted with it by retention).
MEDIA_TABLES = ("media_jobs", "media_info")


def _m001_audit(db: sqlite_utils.Database) -> None:
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "event": str,
            "subject": str,
            "details": str,  # canonical JSON
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
    )
    db["audit"].create_index(["hash"])



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
            # recorded_at minus the clock drift measured at this dock (see daemon.ingest.record.corrected_time)
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


def _m001_health(db: sqlite_utils.Database) -> None:
    db["health"].create(
        {
            "id": int,
            "device_serial": str,
            "session_id": int,  # the offload session of this dock, once it started (NULL before)
            "at": str,
            "model": str,
            "firmware": str,
            "officer_badge": str,
            "battery_percent": int,
            "battery_voltage_mv": int,
            "battery_charging": int,
            "battery_cycles": int,
            "full_charge_mah": int,
            "design_mah": int,
            "storage_total": int,
            "storage_free": int,
            "fs_state": str,  # clean | errors | NULL (not checked)
            "fs_detail": str,
            "clock_drift_s": float,  # recorder − station, before the station set the clock
            "clock_set": int,  # 1: the station set the recorder's clock at this dock
            "notes": str,  # JSON list of {"what", "status": not_reported|invalid|failed, "message"}
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["health"].create_index(["device_serial", "id"])
    db["health_alerts"].create(
        {
            "id": int,
            "device_serial": str,
            "kind": str,
            "message": str,
            "value": float,
            "threshold": float,
            "health_id": int,  # the record that raised it
            "last_health_id": int,  # the latest record that still raised it
            "raised_at": str,
            "last_seen_at": str,
            "cleared_at": str,  # NULL while open
            "cleared_health_id": int,
        },
        pk="id",
        foreign_keys=[("health_id", "health", "id")],
    )
    db["health_alerts"].create_index(["device_serial", "cleared_at"])


def _m001_dock(db: sqlite_utils.Database) -> None:
    db["dock_events"].create(
        {"id": int, "dock_id": str, "bay": str, "port": str, "usb_id": str, "serial": str, "state": str,
         "detail": str, "session_id": int, "at": str},
        pk="id",
    )
    db["dock_events"].create_index(["dock_id"])
    db["devices"].add_column("registered_at", str)
    db["alerts_usb"].create(
        {"id": int, "at": str, "bay": str, "port": str, "usb_id": str, "product": str, "usb_serial": str, "message": str},
        pk="id",
    )


def _m001_media(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE media_jobs (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            sha256 TEXT NOT NULL REFERENCES objects(sha256),
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before TEXT NOT NULL,        -- queued jobs wait until then (retry backoff)
            claimed_by TEXT,                 -- 'pid:starttime:boot' of the runner working on it
            claimed_at TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            kind TEXT,                       -- video | audio | photo | other
            plan TEXT,                       -- remux | transcode | copy-audio | encode-audio | photo
            encoder TEXT,
            proxy_path TEXT,                 -- relative to the data dir
            proxy_sha256 TEXT,
            thumb_path TEXT,
            sheet_path TEXT,
            note TEXT,                       -- e.g. 'partly decodable: …'
            error TEXT,                      -- the last failure, for people
            error_detail TEXT                -- ffmpeg's last stderr lines with it
        )"""
    )
    db.execute("CREATE INDEX media_jobs_state ON media_jobs (state, not_before)")
    db.execute(
        """CREATE TABLE media_info (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            sha256 TEXT NOT NULL REFERENCES objects(sha256),
            kind TEXT,
            container TEXT,
            duration_s REAL,
            video_codec TEXT,
            width INTEGER,
            height INTEGER,
            fps REAL,
            pix_fmt TEXT,
            audio_codec TEXT,
            sample_rate INTEGER,
            channels INTEGER,
            creation_time TEXT,              -- as the container says (recorder clock)
            recorded_start TEXT,             -- start of the recording, recorder clock, UTC
            recorded_start_source TEXT,      -- creation_time | file_name | file_time
            recorded_start_corrected TEXT,   -- minus the clock drift measured at the dock
            probe_json TEXT,                 -- ffprobe's whole answer
            probed_at TEXT
        )"""
    )
    # Footage stored before media jobs existed gets one job each.
    now = utcnow()
    db.conn.execute(
        "INSERT INTO media_jobs (footage_id, sha256, state, not_before, created_at)"
        " SELECT f.id, f.sha256, 'queued', ?, ? FROM footage f"
        " WHERE NOT EXISTS (SELECT 1 FROM media_jobs j WHERE j.footage_id = f.id)", (now, now))


# -- schema -----------------------------------------------------------------------------------


def _m001_cases(db: sqlite_utils.Database) -> None:
    # Plain SQL rather than sqlite-utils' create(): the CHECK constraints keep status, window and
    # the filing vocabulary consistent whoever writes the rows.
    db.execute("""
        CREATE TABLE cases (
            case_no TEXT PRIMARY KEY,
            party TEXT NOT NULL,
            unit TEXT,
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
            sensitivity TEXT NOT NULL DEFAULT 'normal' CHECK (sensitivity IN ('normal', 'secret')),
            notes TEXT,
            source TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            CHECK (closed_at IS NULL OR closed_at >= opened_at),
            CHECK ((status = 'closed') = (closed_at IS NOT NULL))
        )""")
    db.execute("""
        CREATE TABLE case_handlers (
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            badge TEXT NOT NULL,
            PRIMARY KEY (case_no, badge)
        )""")
    db.execute("CREATE INDEX case_handlers_badge ON case_handlers(badge)")
    db.execute("""
        CREATE TABLE footage_cases (
            footage_id INTEGER NOT NULL REFERENCES footage(id),
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            filed_at TEXT NOT NULL,
            filed_by TEXT NOT NULL,
            how TEXT NOT NULL CHECK (how IN ('auto', 'manual')),
            reason TEXT NOT NULL,
            PRIMARY KEY (footage_id, case_no)
        )""")
    db.execute("CREATE INDEX footage_cases_case ON footage_cases(case_no)")
    db.execute("""
        CREATE TABLE filing_blocks (
            footage_id INTEGER NOT NULL REFERENCES footage(id),
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            blocked_at TEXT NOT NULL,
            blocked_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (footage_id, case_no)
        )""")
    db.execute("""
        CREATE TABLE footage_ambiguous (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            candidates TEXT NOT NULL,
            marked_at TEXT NOT NULL
        )""")


def _m001_retention(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE legal_holds (
            footage_id INTEGER PRIMARY KEY REFERENCES footage(id),
            held_at TEXT NOT NULL,
            held_by TEXT NOT NULL,
            reason TEXT NOT NULL
        )""")
    # What was deleted, kept after the footage and object rows are gone (the audit log has the
    # same facts in its object.delete entry; this is the queryable copy).
    db.execute("""
        CREATE TABLE retention_deleted (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL,
            footage_id INTEGER NOT NULL,
            size INTEGER,
            officer TEXT,
            device TEXT,
            source_path TEXT,
            recorded_at TEXT,
            ingested_at TEXT,
            cases TEXT NOT NULL,
            rule TEXT NOT NULL,
            reason TEXT NOT NULL,
            plan_id TEXT NOT NULL,
            deleted_at TEXT NOT NULL,
            deleted_by TEXT NOT NULL,
            object_state TEXT NOT NULL CHECK (object_state IN ('pending', 'removed', 'reingested')),
            object_done_at TEXT
        )""")
    db.execute("CREATE INDEX retention_deleted_sha ON retention_deleted(sha256)")


def _m001_review(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE review_samples (
            id INTEGER PRIMARY KEY,
            sampled_at TEXT NOT NULL,
            sampled_by TEXT NOT NULL,
            seed INTEGER NOT NULL,
            requested INTEGER NOT NULL,
            population INTEGER NOT NULL,
            deadline_days INTEGER NOT NULL
        )""")
    db.execute("""
        CREATE TABLE review_entries (
            sample_id INTEGER NOT NULL REFERENCES review_samples(id),
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            position INTEGER NOT NULL,
            metrics TEXT NOT NULL,
            PRIMARY KEY (sample_id, case_no)
        )""")
    db.execute("""
        CREATE TABLE review_findings (
            id INTEGER PRIMARY KEY,
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            sample_id INTEGER REFERENCES review_samples(id),
            finding TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX review_findings_case ON review_findings(case_no)")


from daemon.catalog.schema_later import (  # noqa: E402 — the migrations after the first release
    MESSAGE_COLUMNS,  # noqa: F401 — re-exported: the stored messages' columns
    _m002_messages,
    _m003_jobs,
    _m004_officers,
    _m005_activities,
    _m006_station,
    _m007_kinds,
    _m008_backup,
    _m009_listing,
    _m010_store_uploads,
    _m011_notify,
    _m012_store_refs,
    _m013_overdue,
    _m014_listings,
    _m015_officer_users,
    _m016_backup_hold,
)

# In the order they were first applied (by the modules that owned them then: catalog, audit,
# health, dock, cases, retention, review, media queue; then one per issue). Append only.
MIGRATIONS: list[Migration] = [
    ("core-001", _m001_core),
    ("audit-001", _m001_audit),
    ("health-001", _m001_health),
    ("dock-001", _m001_dock),
    ("cases-001", _m001_cases),
    ("retention-001", _m001_retention),
    ("review-001", _m001_review),
    ("media-001", _m001_media),
    ("messages-002", _m002_messages),
    ("jobs-003", _m003_jobs),
    ("officers-004", _m004_officers),
    ("activities-005", _m005_activities),
    ("station-006", _m006_station),
    ("kinds-007", _m007_kinds),
    ("backup-008", _m008_backup),
    ("listing-009", _m009_listing),
    ("store-uploads-010", _m010_store_uploads),
    ("notify-011", _m011_notify),
    ("store-refs-012", _m012_store_refs),
    ("overdue-013", _m013_overdue),
    ("listings-014", _m014_listings),
    ("officer-users-015", _m015_officer_users),
    ("backup-hold-016", _m016_backup_hold),
]
