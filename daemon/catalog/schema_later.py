"""The catalog's migrations added after the first release, one (or a few) per issue, in order.

``daemon.catalog.schema`` lists them in ``MIGRATIONS`` after the first release's; append a new
one there and here, never edit one that has shipped.
"""

from __future__ import annotations

import sqlite_utils

from daemon.catalog.kinds import kind_of


def _m002_messages(db: sqlite_utils.Database) -> None:
    """Messages the station writes for people, kept as a message id and params as well (issue 12).

    The English column stays what ``--json`` and old readers show; the ``*_msg`` column (JSON of
    ``daemon.i18n.Message``, NULL for rows written before) lets human output show the message in
    the reader's language.
    """
    for table, column in MESSAGE_COLUMNS:
        db[table].add_column(column, str)


def _m003_jobs(db: sqlite_utils.Database) -> None:
    """The scheduler's record of runs and its alerts (issue 15, daemon/schedule).

    ``job_runs``: one row per run of a job (schedule, catch-up at start, or by hand), from its
    start to its end; a row left ``running`` by a process that died becomes ``interrupted``.
    ``job_alerts``: a job that failed or did not run when due, open until a later run succeeds
    (as ``health_alerts`` for recorders).
    """
    db.execute("""CREATE TABLE job_runs (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            trigger TEXT NOT NULL,   -- schedule | catch-up | manual
            due_at TEXT,             -- the schedule's time this run is for (NULL: by hand)
            started_at TEXT NOT NULL,
            ended_at TEXT,
            result TEXT NOT NULL,    -- running | ok | warning | failed | interrupted
            counts TEXT,             -- JSON: what the job reports (checked, damaged, …)
            error TEXT,              -- English, as in --json
            error_msg TEXT,          -- the same as daemon.i18n.Message JSON, for people
            pid INTEGER,
            boot_id TEXT
        )""")
    db.execute("CREATE INDEX job_runs_job ON job_runs(job, started_at)")
    db.execute("""CREATE TABLE job_alerts (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            kind TEXT NOT NULL,      -- failed | missed
            message TEXT NOT NULL,
            message_msg TEXT,
            run_id INTEGER REFERENCES job_runs(id),
            raised_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            cleared_at TEXT,
            cleared_run_id INTEGER REFERENCES job_runs(id)
        )""")
    db.execute("CREATE INDEX job_alerts_open ON job_alerts(job, kind, cleared_at)")


def _m004_officers(db: sqlite_utils.Database) -> None:
    """The officer registry and pooled recorders (issue 13, daemon/catalog/officers.py).

    ``officers.registered_at``: set when staff registered the officer (``evidock officer add|import``);
    NULL for an officer only seen (on a recorder's binding or an ingest). ``officer_assignments``:
    who had a pooled recorder when (领用); ``until_at`` NULL: still signed out. ``bound_at``: when
    the assignment was written into the recorder (WriteZFYInfo at a dock). ``footage.bound_officer``:
    the badge the recorder (or the ingest) gave; ``attributed_by``: ``assignment`` when
    ``officer_badge`` came from an assignment, ``binding`` when from the recorder (NULL: before).
    """
    db["officers"].add_column("registered_at", str)
    db.execute("""CREATE TABLE officer_assignments (
            id INTEGER PRIMARY KEY,
            device_serial TEXT NOT NULL,
            badge TEXT NOT NULL,
            from_at TEXT NOT NULL,
            until_at TEXT,
            assigned_at TEXT NOT NULL,
            assigned_by TEXT NOT NULL,
            bound_at TEXT
        )""")
    db.execute("CREATE INDEX officer_assignments_device ON officer_assignments(device_serial, from_at)")
    db.execute("CREATE INDEX officer_assignments_badge ON officer_assignments(badge, from_at)")
    db["footage"].add_column("bound_officer", str)
    db["footage"].add_column("attributed_by", str)


def _m005_activities(db: sqlite_utils.Database) -> None:
    """Enforcement activities of a case (issue 14, daemon/cases/activities.py): a time window, a
    kind (现场检查, 询问 …) and the officers it concerns — all of the case's handlers
    (``all_handlers``, read at filing time) or those in ``case_activity_handlers``. Auto-filing
    decides by them first. The index on footage finds a chunk's neighbours (its segment).
    """
    db.execute("""CREATE TABLE case_activities (
            id INTEGER PRIMARY KEY,
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            kind TEXT NOT NULL,
            start_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            all_handlers INTEGER NOT NULL CHECK (all_handlers IN (0, 1)),
            handlers_key TEXT NOT NULL,   -- the badges joined by ';' ('' for all handlers): one activity once
            source TEXT NOT NULL,         -- cli | import FILE line N
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            CHECK (end_at >= start_at),
            UNIQUE (case_no, kind, start_at, end_at, handlers_key)
        )""")
    db.execute("CREATE INDEX case_activities_time ON case_activities(start_at, end_at)")
    db.execute("""CREATE TABLE case_activity_handlers (
            activity_id INTEGER NOT NULL REFERENCES case_activities(id),
            badge TEXT NOT NULL,
            PRIMARY KEY (activity_id, badge)
        )""")
    db.execute("CREATE INDEX case_activity_handlers_badge ON case_activity_handlers(badge)")
    db.execute("CREATE INDEX footage_chunks ON footage(device_serial, officer_badge, recorded_at_corrected, id)")


def _m006_station(db: sqlite_utils.Database) -> None:
    """Issue 13: a refused USB device's manufacturer string (``evidock devices unknown``), and
    whether the station's own clock was synchronised when a dock measured a recorder's drift
    (``health.station_clock``: synced | unsynced | unknown; NULL for rows from before)."""
    db["alerts_usb"].add_column("manufacturer", str)
    db["health"].add_column("station_clock", str)


def _m007_kinds(db: sqlite_utils.Database) -> None:
    """Each stored file's kind (issue 14, ``daemon.catalog.kinds``) and a track's own time span.

    Rows stored before: the kind the media probe found, else the one the name gives (their
    content is not read here); ``span_*`` stay NULL (filing then goes by the name and the time).
    """
    for column in ("kind", "span_start", "span_end"):
        db["footage"].add_column(column, str)
    probed = dict(db.execute("SELECT footage_id, kind FROM media_info").fetchall())
    rows = [(kind_of(bytes(raw) if raw is not None else name, probed.get(fid)), fid)
            for fid, name, raw in db.execute("SELECT id, source_path, source_path_raw FROM footage").fetchall()]
    db.conn.executemany("UPDATE footage SET kind = ? WHERE id = ?", rows)
    db.execute("CREATE INDEX footage_kind ON footage(kind, device_serial)")
    # A third way a link is made: "companion", a track or log filed with the media it overlaps.
    db.execute("""
        CREATE TABLE footage_cases_new (
            footage_id INTEGER NOT NULL REFERENCES footage(id),
            case_no TEXT NOT NULL REFERENCES cases(case_no),
            filed_at TEXT NOT NULL,
            filed_by TEXT NOT NULL,
            how TEXT NOT NULL CHECK (how IN ('auto', 'manual', 'companion')),
            reason TEXT NOT NULL,
            PRIMARY KEY (footage_id, case_no)
        )""")
    db.execute("INSERT INTO footage_cases_new SELECT footage_id, case_no, filed_at, filed_by, how, reason FROM footage_cases")
    db.execute("DROP TABLE footage_cases")
    db.execute("ALTER TABLE footage_cases_new RENAME TO footage_cases")
    db.execute("CREATE INDEX footage_cases_case ON footage_cases(case_no)")


# (table, column) of every stored message for people, beside its English column (without _msg).
MESSAGE_COLUMNS = (("problems", "reason_msg"), ("health_alerts", "message_msg"), ("dock_events", "detail_msg"),
                   ("alerts_usb", "message_msg"), ("media_jobs", "error_msg"))


def _m008_backup(db: sqlite_utils.Database) -> None:
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


def _m009_listing(db: sqlite_utils.Database) -> None:
    """Indexes for the listings' filters (issue 19): by officer, by recorder, by recorded time (the
    time a listing shows: corrected, else the recorder's), each a range on that time, and each
    ending in the row id the pages are keyed on; for filing after a case change; for the audit
    listing's and the case listing's filters."""
    when = "COALESCE(recorded_at_corrected, recorded_at)"
    db.execute(f"CREATE INDEX footage_officer_time ON footage(officer_badge, {when}, id)")
    db.execute(f"CREATE INDEX footage_device_time ON footage(device_serial, {when}, id)")
    db.execute(f"CREATE INDEX footage_time ON footage({when}, id)")
    db.execute("CREATE INDEX footage_kind_id ON footage(kind, id)")
    # filing after a case change looks at its officers' footage inside the case's window only
    db.execute("CREATE INDEX footage_officer_corrected ON footage(officer_badge, recorded_at_corrected)")
    db.execute("CREATE INDEX audit_event ON audit(event, id)")
    db.execute("CREATE INDEX audit_subject ON audit(subject, id)")
    db.execute("CREATE INDEX audit_at ON audit(at)")
    db.execute("CREATE INDEX cases_opened ON cases(opened_at, case_no)")


def _m010_store_uploads(db: sqlite_utils.Database) -> None:
    # The upload queue of the S3 evidence store (daemon/store): one row per object, ever. A row is
    # 'stored' only once head_object of the version written returned its SHA-256 (version_id set);
    # 'uploading' carries its runner's process token, so a runner that died is recognised and its
    # row goes back to 'waiting' (and the next attempt first asks the bucket what it already holds).
    db.execute("""CREATE TABLE store_uploads (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('waiting', 'uploading', 'stored')),
            queued_at TEXT NOT NULL,
            not_before TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            version_id TEXT,
            stored_at TEXT,
            retain_until TEXT,
            outcome TEXT,
            error TEXT,
            error_msg TEXT
        )""")
    db.execute("CREATE INDEX store_uploads_due ON store_uploads(state, not_before)")


def _m011_notify(db: sqlite_utils.Database) -> None:
    """Alerts that reach a person (issue 18, daemon/notify): the outbox and its deliveries.

    ``notify_outbox``: one row each time an alert is raised or cleared (written in the same
    transaction as the alert row, ``daemon.catalog.outbox``), and one per ``notify test``.
    ``fanned_at``: when the sender made its deliveries (NULL: not yet looked at). A delivery is
    one message of one row to one ``[[notify.channels]]`` entry: ``queued`` until sent,
    ``sent``, ``failed`` (attempts used up) or ``dropped`` (too old when first seen); each try is
    a ``notify_attempts`` row.
    """
    db.execute("""CREATE TABLE notify_outbox (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,           -- when the alert was raised or cleared
            kind TEXT NOT NULL,         -- daemon.catalog.outbox.KINDS, or 'test'
            state TEXT NOT NULL CHECK (state IN ('raised', 'cleared', 'test')),
            serial TEXT,                -- the recorder's, for recorder alerts
            subject TEXT,               -- what else it is about: a job, a backup target, a USB id
            message TEXT NOT NULL,      -- English
            message_msg TEXT,           -- daemon.i18n.Message JSON: rendered in both languages
            alert_ref TEXT,             -- the alert row: health_alerts:ID, job_alerts:ID, alerts_usb:ID
            fanned_at TEXT
        )""")
    db.execute("CREATE INDEX notify_outbox_unfanned ON notify_outbox(fanned_at)")
    db.execute("""CREATE TABLE notify_deliveries (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL REFERENCES notify_outbox(id),
            channel TEXT NOT NULL,
            digest INTEGER NOT NULL CHECK (digest IN (0, 1)),
            state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed', 'dropped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,      -- not tried before then (back-off; a digest's time)
            last_error TEXT,            -- English; last_error_msg: the same as daemon.i18n.Message JSON
            last_error_msg TEXT,
            sent_at TEXT,
            UNIQUE (outbox_id, channel)
        )""")
    db.execute("CREATE INDEX notify_deliveries_due ON notify_deliveries(state, next_at)")
    db.execute("""CREATE TABLE notify_attempts (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL REFERENCES notify_deliveries(id),
            at TEXT NOT NULL,
            ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
            error TEXT,                 -- English; never a secret (no password, token or URL query)
            error_msg TEXT
        )""")
    db.execute("CREATE INDEX notify_attempts_delivery ON notify_attempts(delivery_id)")


def _m012_store_refs(db: sqlite_utils.Database) -> None:
    # Many stations share one bucket (issue 17): an object there is kept while any station has a
    # reference to it (refs/<sha256>/<station-id>, holds/<sha256>/<station-id>). ``ref`` is this
    # station's reference as the bucket has it: NULL not yet written, 'written', 'drop' (retention
    # removed the object here; the reference is still to be deleted), 'dropped'; ``hold_ref`` 1 while
    # holds/… is written. Indexed so that each pass of the queue finds the few rows to act on.
    db.execute("ALTER TABLE store_uploads ADD COLUMN ref TEXT")
    db.execute("ALTER TABLE store_uploads ADD COLUMN hold_ref INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX store_uploads_ref ON store_uploads(ref)")
    db.execute("CREATE INDEX store_uploads_hold_ref ON store_uploads(hold_ref)")
    # The audit chain in the bucket: one segment per row range (audit/<station-id>/<first>.jsonl). A
    # range is claimed (a row here) before its put, so two runners never write overlapping ranges;
    # written_at stays NULL until the bucket has it, and the next pass puts it again (same rows, same bytes).
    db.execute("""CREATE TABLE store_audit_segments (
            first_row INTEGER PRIMARY KEY,
            last_row INTEGER NOT NULL,
            chain_hash TEXT NOT NULL,
            written_at TEXT
        )""")


def _m013_overdue(db: sqlite_utils.Database) -> None:
    """Whether a footage row is filed to any case (issue 19), so that the overdue list is one
    indexed query rather than a walk of every row.

    ``footage.case_no`` cannot say it: it is NULL both for unfiled footage and for footage filed to
    several cases. ``filed`` is 1 while the row has a ``footage_cases`` link, kept by triggers on
    that table, so every writer (filing, companions, a restore's refile) keeps it in the very
    statement that links or unlinks; rows stored before are set here. The partial indexes hold only
    unfiled rows (few on a station that files), each with the time the deadline runs from and the
    kind: by officer (the summary, the --officer filter), by recorder (the health report's count,
    --device) and by id (the pages).
    """
    due = "COALESCE(recorded_at_corrected, ingested_at)"  # as daemon.cases.filing._T_DUE
    db.execute("ALTER TABLE footage ADD COLUMN filed INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE footage SET filed = 1 WHERE id IN (SELECT footage_id FROM footage_cases)")
    db.execute("""CREATE TRIGGER footage_cases_filed AFTER INSERT ON footage_cases BEGIN
            UPDATE footage SET filed = 1 WHERE id = NEW.footage_id AND filed = 0;
        END""")
    db.execute("""CREATE TRIGGER footage_cases_unfiled AFTER DELETE ON footage_cases BEGIN
            UPDATE footage SET filed = 0 WHERE id = OLD.footage_id
                AND NOT EXISTS (SELECT 1 FROM footage_cases WHERE footage_id = OLD.footage_id);
        END""")
    # The raw times and ``filed`` too: SQLite (3.40) reads an index as covering only when it holds the
    # columns themselves, and the summaries then never touch the table (a fifth of their time).
    covering = "kind, recorded_at_corrected, ingested_at, filed"
    db.execute(f"CREATE INDEX footage_unfiled_officer ON footage(officer_badge, {due}, {covering}) WHERE filed = 0")
    db.execute(f"CREATE INDEX footage_unfiled_device ON footage(device_serial, {due}, {covering}) WHERE filed = 0")
    db.execute(f"CREATE INDEX footage_unfiled_id ON footage(id, {due}, kind) WHERE filed = 0")


def _m014_listings(db: sqlite_utils.Database) -> None:
    """Indexes for the recorder and health listings' filters (issue 19, ``daemon.health_listing``),
    each ending in the key its pages are keyed on (the serial, the record's id); and for each
    recorder's last dock, which the recorder listing shows."""
    db.execute("CREATE INDEX devices_officer ON devices(officer_badge, serial)")
    db.execute("CREATE INDEX devices_model ON devices(model, serial)")
    db.execute("CREATE INDEX dock_events_serial ON dock_events(serial, at)")
    db.execute("CREATE INDEX sessions_device ON sessions(device_serial)")
    db.execute("CREATE INDEX health_officer_at ON health(officer_badge, at, id)")
    db.execute("CREATE INDEX health_device_at ON health(device_serial, at, id)")
    db.execute("CREATE INDEX health_at ON health(at, id)")


def _m015_officer_users(db: sqlite_utils.Database) -> None:
    """The user an officer logs in as (issue 20, ``officer edit BADGE --user NAME``): the API
    names a caller by the kernel's word (their uid's user name), and this ties that user to their
    badge — the footage that is their own, and their unit. One user is one officer: a partial
    unique index (officers with no user are many)."""
    db.execute("ALTER TABLE officers ADD COLUMN user TEXT")
    db.execute("CREATE UNIQUE INDEX officers_user ON officers(user) WHERE user IS NOT NULL")


def _m016_backup_hold(db: sqlite_utils.Database) -> None:
    """Which backup copies carry evidock's legal hold at their S3 target (issue 16).

    Footage on legal hold has no retention date, so its copy's COMPLIANCE lock is never extended
    and in time runs out; an S3 Object Legal Hold on the version keeps it while the hold lasts.
    ``legal_hold`` is 1 once the target accepted the hold ON for the recorded version, 0 again
    once it accepted OFF: a run asks the bucket only about the copies whose footage's hold changed
    (those held and not marked, and the marked ones, found through the partial index), never
    about every object. Path targets have no such thing: their rows stay 0."""
    db.execute("ALTER TABLE backup_copies ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX backup_copies_held ON backup_copies(target) WHERE legal_hold = 1")
