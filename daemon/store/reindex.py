"""``evidock reindex --from-store``: a station's whole catalog rebuilt from the evidence store bucket alone.

1. **The chain.** Every audit segment of the station (``audit/<station-id>/…``, daemon.store.segments)
   is read in key order and checked row by row — each row's hash over its content
   (``daemon.evidence.audit.row_hash``), its link to the row before, consecutive ids, and the
   segment's closing ``chain_hash``/``last_row``. A break refuses the whole reindex with an
   error naming the segment's key and the row: nothing is rebuilt from a record that does not
   hold together.
2. **The snapshot.** The newest catalog snapshot of the station (``catalog/<station-id>/…``,
   daemon.store.snapshot) whose audit head is a row of that chain, and whose own ``audit`` table
   is exactly the chain up to that row, becomes the catalog. Snapshots that fail either check are
   skipped and reported. With none, the replay starts from genesis on a fresh catalog.
3. **The replay.** The rows after the snapshot are appended verbatim and their changes applied
   (daemon.store.replay). The segments become the catalog's ``store_audit_segments`` (the
   station carries on its chain where the bucket has it), a ``store.reindex`` entry records the
   rebuild, and the anchor (``audit.head``) is written; ``audit verify`` then checks the result.

Objects stay in the bucket — the local store is a cache; only a ``head_object`` per footage
row replayed is asked (its provenance). Into a data dir without a catalog only: a reindex never
overwrites evidence records; one that fails half way removes the catalog it began. What cannot be rebuilt is reported (``ReindexReport``): entries
whose tables are not rebuilt, footage whose times came from the entry, objects the bucket lacks,
and what is never in the bucket (health readings, dock events, alerts after the snapshot).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.catalog.db import CATALOG_NAME, Catalog
from daemon.clock import iso, now_utc
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING, EvidockError, StoreError
from daemon.evidence import audit
from daemon.i18n import N_, Message, message_of
from daemon.store.replay import Replay, Row, lost_with
from daemon.store.segments import COLUMNS, segment_key

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.store.bucket import StoreBucket

log = logging.getLogger(__name__)



class ReindexError(StoreError):
    """The bucket's record of a station cannot be rebuilt from (names the key and why), or the data dir is taken."""


@dataclass
class Segment:
    key: str
    first_row: int
    last_row: int
    chain_hash: str


@dataclass
class ReindexReport:
    station: str
    bucket: str
    data_dir: str
    segments: int = 0
    rows: int = 0
    head: str = audit.GENESIS
    snapshot: str | None = None
    snapshot_rows: int = 0
    replayed: int = 0
    skipped_snapshots: list[tuple[str, Message]] = field(default_factory=list)
    not_rebuilt: dict[str, int] = field(default_factory=dict)  # event -> entries whose change is not in the catalog
    approximate: list[int] = field(default_factory=list)  # footage ids: first-read time from the entry
    missing: dict[str, int] = field(default_factory=dict)  # sha256 -> footage id: the bucket lacks the object
    # Never in the bucket (not audited): health readings and alerts, dock events, the problems of each
    # offload, notifications — those after this time (the snapshot's audit head; None: all) are not rebuilt.
    unaudited_after: str | None = None
    audit_ok: bool = False

    @property
    def exit_code(self) -> int:
        if not self.audit_ok:
            return EXIT_ERROR
        return EXIT_WARNING if self.missing else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"station": self.station, "bucket": self.bucket, "data_dir": self.data_dir, "segments": self.segments,
                "rows": self.rows, "head": self.head, "snapshot": self.snapshot, "snapshot_rows": self.snapshot_rows,
                "replayed": self.replayed,
                "skipped_snapshots": [{"key": k, "reason": str(m)} for k, m in self.skipped_snapshots],
                "not_rebuilt": [{"event": e, "entries": n, "what": str(lost_with(e))}
                                for e, n in sorted(self.not_rebuilt.items())],
                "approximate": self.approximate,
                "missing": [{"sha256": s, "footage": f} for s, f in sorted(self.missing.items())],
                "unaudited_lost_after": self.unaudited_after, "audit_ok": self.audit_ok,
                "exit_code": self.exit_code}


def _broken(key: str, station: str, problem: Message) -> ReindexError:
    return ReindexError(N_("the audit chain of station {station} in the bucket is broken at {key}: {problem}; nothing "
                           "was rebuilt — the bucket's record cannot be trusted as it is (compare it with the last "
                           "printed report or a backup's snapshot)"), station=station, key=key, problem=problem)


def read_chain(b: StoreBucket, station: str) -> tuple[list[Row], list[Segment]]:
    """Every audit row of ``station`` in the bucket, checked; a break raises ``ReindexError`` naming its key."""
    keys = sorted(b.keys(f"audit/{station}/"))
    if not keys:
        raise ReindexError(N_("bucket {bucket} holds no audit segment of station {station} (audit/{station}/): there "
                              "is nothing to rebuild from — name the station with --station"),
                           bucket=b.bucket, station=station)
    rows: list[Row] = []
    segments: list[Segment] = []
    prev = audit.GENESIS
    for key in keys:
        try:
            lines = [json.loads(line) for line in b.read_small(key).decode("utf-8").splitlines() if line.strip()]
        except (UnicodeDecodeError, ValueError):
            raise _broken(key, station, Message(N_("it is not a segment (one JSON object a line)"))) from None
        end = lines[-1] if lines else {}
        if not isinstance(end, dict) or set(end) != {"chain_hash", "last_row"} or len(lines) < 2:
            raise _broken(key, station, Message(N_("it does not end with the chain hash after its last row")))
        for r in lines[:-1]:
            rows.append(_checked(key, station, r, prev, len(rows) + 1))
            prev = r["hash"]
        first = lines[0]["id"]
        if key != segment_key(station, first):
            raise _broken(key, station, Message(N_("its first row is row {row}, which its name does not say"), row=first))
        if end["chain_hash"] != prev or end["last_row"] != rows[-1]["id"]:
            raise _broken(key, station, Message(N_("its closing chain hash does not match its last row {row}"),
                                                row=rows[-1]["id"]))
        segments.append(Segment(key, first, end["last_row"], end["chain_hash"]))
    return rows, segments


def _checked(key: str, station: str, r: Any, prev: str, want_id: int) -> Row:
    if not isinstance(r, dict) or set(r) != set(COLUMNS):
        raise _broken(key, station, Message(N_("a line after row {row} is not an audit row"), row=want_id - 1))
    try:
        intact = audit.row_hash(r["prev_hash"], r["at"], r["actor"], r["event"], r["subject"], r["details"]) == r["hash"]
    except TypeError:
        intact = False
    if r["id"] != want_id:
        raise _broken(key, station, Message(N_("row {row} stands where row {want} should: rows are missing or "
                                               "out of order"), row=r["id"], want=want_id))
    if not intact:
        raise _broken(key, station, Message(N_("row {row} ({event} {subject}) was edited: its content no longer "
                                               "matches its hash"), row=r["id"], event=r["event"], subject=r["subject"]))
    if r["prev_hash"] != prev:
        raise _broken(key, station, Message(N_("row {row} does not follow the row before it"), row=r["id"]))
    return r


def _place_snapshot(b: StoreBucket, station: str, rows: list[Row], data_dir: Path, rep: ReindexReport) -> int:
    """The newest snapshot that is a prefix of the chain, put in place as the catalog; its row count (0: none)."""
    index = {r["hash"]: i + 1 for i, r in enumerate(rows)}
    tmp = data_dir / f".{CATALOG_NAME}.reindex"
    for key in reversed(b.snapshots(station)):
        try:
            meta = b.fetch_snapshot(key, tmp)
            head = meta.get("audit_head")
            n = 0 if head == audit.GENESIS else index.get(str(head))
            if n is None:
                rep.skipped_snapshots.append((key, Message(N_("its audit head {head} is not a row of the chain in the "
                                                              "bucket"), head=str(head))))
                continue
            with sqlite3.connect(tmp) as db:
                got = db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id").fetchall()
            db.close()
            if got != [tuple(r[c] for c in COLUMNS) for r in rows[:n]]:
                rep.skipped_snapshots.append((key, Message(N_("its audit table is not the chain in the bucket up to "
                                                              "row {row}"), row=n)))
                continue
            os.replace(tmp, data_dir / CATALOG_NAME)
            rep.snapshot, rep.snapshot_rows = key, n
            return n
        except (EvidockError, sqlite3.Error) as e:
            why = message_of(e) if isinstance(e, EvidockError) else Message(N_("not a catalog ({reason})"), reason=str(e))
            rep.skipped_snapshots.append((key, why))
        finally:
            tmp.unlink(missing_ok=True)
    return 0


def reindex(config: Config, data_dir: Path, station: str | None = None) -> ReindexReport:
    """Rebuild ``station``'s catalog (default: ``[station] id``) from ``[store.s3]``'s bucket into
    ``data_dir``, which must hold no catalog."""
    from daemon.evidence.auditlog import check_chain
    from daemon.store.uploads import open_bucket

    if config.store.backend != "s3":
        raise ReindexError(N_("store.backend is \"local\": there is no bucket to rebuild from (set store.backend = "
                              "\"s3\" and [store.s3])"))
    data_dir = Path(data_dir)
    if (data_dir / CATALOG_NAME).exists():
        raise ReindexError(N_("reindex: {path} already holds a catalog; a reindex never overwrites evidence records — "
                              "name a new or empty data dir with --data-dir"), path=str(data_dir / CATALOG_NAME))
    b = open_bucket(config, station)
    station = b.station_id
    b.check()
    rows, segments = read_chain(b, station)
    rep = ReindexReport(station, b.bucket, str(data_dir), segments=len(segments), rows=len(rows), head=rows[-1]["hash"])
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    try:
        start = _place_snapshot(b, station, rows, data_dir, rep)
        with Catalog(data_dir) as catalog:
            replay = Replay(catalog, station, lambda sha: b.object_head(sha, None))
            with catalog.transaction() as conn:
                for row in rows[start:]:
                    replay.apply(row)
                replay.finish()
                now = iso(now_utc())
                conn.execute("DELETE FROM store_audit_segments")
                conn.executemany("INSERT INTO store_audit_segments (first_row, last_row, chain_hash, written_at)"
                                 " VALUES (?,?,?,?)", [(s.first_row, s.last_row, s.chain_hash, now) for s in segments])
                audit.append(catalog, "store.reindex", f"station:{station}", {
                    "bucket": b.bucket, "segments": len(segments), "rows": len(rows), "head": rep.head,
                    "snapshot": rep.snapshot, "replayed": replay.applied, "missing": len(replay.missing)})
            audit.write_anchor(catalog)
            rep.replayed, rep.not_rebuilt = replay.applied, dict(replay.not_rebuilt)
            rep.approximate, rep.missing = replay.approximate, replay.missing
            rep.unaudited_after = rows[start - 1]["at"] if start else None
            rep.audit_ok = check_chain(catalog).ok
    except BaseException:
        # A rebuild that stopped half way (the bucket went away mid-replay) leaves no catalog
        # behind: the next run starts again, into the same dir. Only files this run created.
        for name in (CATALOG_NAME, CATALOG_NAME + "-wal", CATALOG_NAME + "-shm", audit.ANCHOR_NAME):
            (data_dir / name).unlink(missing_ok=True)
        raise
    log.info("reindex: station %s rebuilt from bucket %s: %d rows, snapshot %s, %d replayed", station, b.bucket,
             len(rows), rep.snapshot, rep.replayed)
    return rep
