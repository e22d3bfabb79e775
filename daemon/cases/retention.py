"""Retention: when stored footage may go, and the only code that ever deletes evidence.

The defaults follow the Ministry of Public Security's 2016 rule on on-site enforcement
recordings (公安机关现场执法视音频记录工作规定, art. 13): footage is kept at least six months;
footage used as evidence in a case is kept permanently. evidock reads "used as evidence" as
"filed to a case" and lets a bureau configure a number of years after the case closed instead
of for ever (``retention.filed_keep_years``). Regulation art. 17: deletion only by a retention
rule, and on the record.

Each footage row gets the first rule of ``RULES`` that applies to it; the rule says until when
it is kept (``None``: for ever). In order:

- ``legal-hold``: a person put it on hold (``footage hold``) — kept until the hold is lifted;
- ``open-case``: filed to a case that is still open — kept while it is open;
- ``closed-case``: filed only to closed cases — kept ``filed_keep_years`` after the last closed;
- ``ambiguous-open`` / ``ambiguous-closed``: filed to none because it matches several cases —
  treated as if filed to all of them (it belongs to one), so the same two rules apply;
- ``unfiled``: kept ``unfiled_keep_days`` after it was recorded, or after it was ingested if
  that is later (a recorder clock set years back must not make fresh footage deletable).

``plan`` lists what is due as of a time, read-only. ``apply`` deletes what the plan lists as
of now — and, given the id of a plan someone reviewed, only if the plan is still exactly that.
Each item is re-checked inside its own transaction (a hold or a filing made a second ago wins).
Deleting one item: one transaction removes its catalog rows, writes a tombstone
(``retention_deleted``: what it was, which rule, who) and the ``object.delete`` audit entry;
then the object is unlinked and the tombstone marked done. A crash between the two leaves an
object no catalog row points to (``verify`` notes it; never a catalog row without its object,
invariant 4), which the next ``apply`` removes — unless the same bytes were ingested again in
the meantime, in which case the object is kept. The removal holds the object's lock (see
``store``) so that an ingest of the same bytes running right now cannot commit a catalog row for
an object being unlinked.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon.cases.filing import FOOTAGE_TABLES
from daemon.catalog.db import Catalog
from daemon.catalog.schema import MEDIA_TABLES
from daemon.clock import from_iso, iso, now_utc, utcnow
from daemon.config import RetentionConfig
from daemon.crashpoints import crashpoint
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING, EvidockError, NotFound, RetentionError
from daemon.evidence import audit
from daemon.i18n import N_, Message

if TYPE_CHECKING:
    from daemon.context import StationContext

# -- the facts about one footage row and the rules --------------------------------------------


@dataclass
class Facts:
    footage_id: int
    sha256: str
    size: int
    officer: str | None
    device: str | None
    source_path: str | None
    recorded_at: str | None
    ingested_at: str | None
    held: bool = False
    cases: list[tuple[str, str, str | None]] = field(default_factory=list)  # (case_no, status, closed_at)
    candidates: list[tuple[str, str, str | None]] = field(default_factory=list)  # ambiguous: same shape


def _add_years(dt: datetime, years: int) -> datetime:
    try:
        return dt.replace(year=dt.year + years)
    except ValueError:  # 29 February: the day after 28 February keeps "at least N years"
        return dt.replace(year=dt.year + years, month=3, day=1)


def _any_open(cases: list[tuple[str, str, str | None]]) -> bool:
    return any(status == "open" for _, status, _ in cases)


def _after_last_close(cases: list[tuple[str, str, str | None]], cfg: RetentionConfig) -> datetime | None:
    if cfg.filed_keep_years is None:
        return None
    return _add_years(max(from_iso(closed) for _, _, closed in cases if closed), cfg.filed_keep_years)


def _unfiled_until(f: Facts, cfg: RetentionConfig) -> datetime | None:
    starts = [from_iso(t) for t in (f.recorded_at, f.ingested_at) if t]
    if not starts:
        return None  # no time at all: nothing to count from, so nothing is deleted
    return max(starts) + timedelta(days=cfg.unfiled_keep_days)


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[Facts], bool]
    keep_until: Callable[[Facts, RetentionConfig], datetime | None]  # None: kept for ever
    meaning: str


# First match wins; the order is the order of precedence (a hold beats everything).
RULES: tuple[Rule, ...] = (
    Rule("legal-hold", lambda f: f.held, lambda f, c: None, N_("on legal hold: kept until the hold is lifted")),
    Rule("open-case", lambda f: _any_open(f.cases), lambda f, c: None, N_("filed to an open case: kept while it is open")),
    Rule("closed-case", lambda f: bool(f.cases), lambda f, c: _after_last_close(f.cases, c),
         N_("filed to closed cases only: kept retention.filed_keep_years after the last one closed")),
    Rule("ambiguous-open", lambda f: _any_open(f.candidates), lambda f, c: None,
         N_("matches several cases, one of them open: kept while it is open")),
    Rule("ambiguous-closed", lambda f: bool(f.candidates), lambda f, c: _after_last_close(f.candidates, c),
         N_("matches several closed cases: kept as if filed to them")),
    Rule("unfiled", lambda f: True, _unfiled_until,
         N_("filed to no case: kept retention.unfiled_keep_days after recording (or ingest, if later)")),
)


# The rules' names for people (the codes stay in JSON, the audit log and English output).
RULE_LABELS = {"legal-hold": N_("legal-hold"), "open-case": N_("open-case"), "closed-case": N_("closed-case"),
               "ambiguous-open": N_("ambiguous-open"), "ambiguous-closed": N_("ambiguous-closed"),
               "unfiled": N_("unfiled")}


def decide(f: Facts, cfg: RetentionConfig) -> tuple[Rule, datetime | None]:
    """The rule that governs this footage and until when it is kept (None: for ever)."""
    rule = next(r for r in RULES if r.applies(f))
    return rule, rule.keep_until(f, cfg)


BATCH = 2000  # footage rows a step of the walk reads (the plan never holds every row's facts)


def _facts(conn: sqlite3.Connection, footage_id: int) -> list[Facts]:
    """The facts of one footage row (none if it is gone)."""
    return _facts_of(conn, footage_id, footage_id)


def iter_facts(conn: sqlite3.Connection, batch: int | None = None) -> Iterator[Facts]:
    """The facts of every footage row, in id order, read in keyset batches of ``batch`` rows (default
    ``BATCH``; each batch a range of ids: the footage rows, then their holds, links and candidates in
    that range), so memory stays that of one batch whatever the catalog holds."""
    batch = batch or BATCH
    last = 0
    while True:
        row = conn.execute("SELECT MAX(id) FROM (SELECT id FROM footage WHERE id > ? ORDER BY id LIMIT ?)",
                           (last, batch)).fetchone()
        if row[0] is None:
            return
        yield from _facts_of(conn, last + 1, row[0])
        last = row[0]


def _facts_of(conn: sqlite3.Connection, lo: int, hi: int) -> list[Facts]:
    """The facts of the footage rows with ids ``lo`` to ``hi`` (each query a range of a primary key)."""
    args = (lo, hi)
    out = {r[0]: Facts(*r) for r in conn.execute(
        "SELECT f.id, f.sha256, f.size, f.officer_badge, f.device_serial, f.source_path,"
        # The corrected time only: NULL when the recorder's clock was not trusted (a year or more
        # off, ingest.record.corrected_time), so retention counts from the ingest, not a bogus 2057.
        " f.recorded_at_corrected, f.ingested_at FROM footage f WHERE f.id BETWEEN ? AND ? ORDER BY f.id", args)}
    for (fid,) in conn.execute("SELECT footage_id FROM legal_holds WHERE footage_id BETWEEN ? AND ?", args):
        if fid in out:
            out[fid].held = True
    for fid, case_no, status, closed in conn.execute(
        "SELECT fc.footage_id, c.case_no, c.status, c.closed_at FROM footage_cases fc JOIN cases c ON c.case_no = fc.case_no"
        " WHERE fc.footage_id BETWEEN ? AND ? ORDER BY c.case_no", args
    ):
        if fid in out:
            out[fid].cases.append((case_no, status, closed))
    for fid, case_no, status, closed in conn.execute(
        "SELECT a.footage_id, c.case_no, c.status, c.closed_at FROM footage_ambiguous a, json_each(a.candidates) j"
        " JOIN cases c ON c.case_no = j.value WHERE a.footage_id BETWEEN ? AND ? ORDER BY c.case_no", args
    ):
        if fid in out:
            out[fid].candidates.append((case_no, status, closed))
    return list(out.values())


# -- the plan ---------------------------------------------------------------------------------


@dataclass
class PlanItem:
    footage_id: int
    sha256: str
    size: int
    officer: str | None
    recorded_at: str | None
    ingested_at: str | None
    rule: str
    kept_until: str
    cases: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"footage": self.footage_id, "sha256": self.sha256, "size": self.size, "officer": self.officer,
                "recorded_at": self.recorded_at, "ingested_at": self.ingested_at, "rule": self.rule,
                "kept_until": self.kept_until, "cases": self.cases}


@dataclass
class RetentionPlan:
    as_of: str
    delete: list[PlanItem]
    kept: dict[str, int]  # rule -> footage kept under it
    pending: list[str]  # deletions recorded whose object is still to be removed

    @property
    def plan_id(self) -> str:
        """Names exactly what this plan deletes and why (not when it was made)."""
        body = json.dumps(sorted((i.sha256, i.rule) for i in self.delete), separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.delete)

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "plan_id": self.plan_id, "count": len(self.delete), "bytes": self.bytes,
                "delete": [i.to_json() for i in self.delete], "kept": self.kept, "pending_removal": self.pending,
                "rules": {r.name: r.meaning for r in RULES}}


def plan(catalog: Catalog, cfg: RetentionConfig, as_of: datetime | None = None) -> RetentionPlan:
    """What retention would delete as of ``as_of`` (default now), and by which rule. Read-only."""
    as_of = as_of or now_utc()
    delete: list[PlanItem] = []
    kept: Counter[str] = Counter()
    for f in iter_facts(catalog.conn):
        rule, until = decide(f, cfg)
        if until is not None and as_of >= until:
            delete.append(PlanItem(f.footage_id, f.sha256, f.size, f.officer, f.recorded_at, f.ingested_at,
                                   rule.name, iso(until), [c for c, _, _ in f.cases or f.candidates]))
        else:
            kept[rule.name] += 1
    pending = [r[0] for r in catalog.conn.execute(
        "SELECT sha256 FROM retention_deleted WHERE object_state = 'pending' ORDER BY id")]
    return RetentionPlan(iso(as_of), delete, dict(sorted(kept.items())), pending)


# -- applying it ------------------------------------------------------------------------------


class _Row(dict):  # type: ignore[type-arg]
    """A row of the report (the JSON's, with English text) that also carries its text as a message."""

    message: Any = None


def _row(message: Message, key: str, **fields: Any) -> dict[str, Any]:
    """``{**fields, key: English}``, with ``.message`` for people (``row_text``)."""
    row = _Row(fields)
    row[key], row.message = str(message), message
    return row


def row_text(row: dict[str, Any], key: str) -> Any:
    """A report row's text as a message when it has one (shown with ``i18n.text``), else its English."""
    return getattr(row, "message", None) or row[key]


@dataclass
class ApplyReport:
    plan_id: str
    deleted: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)  # pending removals from an earlier run

    @property
    def exit_code(self) -> int:
        return EXIT_ERROR if self.errors else EXIT_WARNING if self.skipped else EXIT_OK

    def summary(self) -> str:
        freed = sum(d["size"] or 0 for d in self.deleted)
        return (f"plan {self.plan_id}: {len(self.deleted)} objects deleted ({freed} bytes), {len(self.skipped)} skipped, "
                f"{len(self.errors)} not deleted because of errors, {len(self.finished)} earlier deletions finished")

    def to_json(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "deleted": self.deleted, "skipped": self.skipped, "errors": self.errors,
                "finished": self.finished, "summary": self.summary()}


def apply(catalog: Catalog, station: StationContext, cfg: RetentionConfig, the_plan: RetentionPlan | None = None, *,
          expect_plan_id: str | None = None, now: datetime | None = None, actor: str | None = None) -> ApplyReport:
    """Delete exactly what ``the_plan`` lists (default: the plan as of now), each item re-checked as of
    ``now`` when it is deleted; with ``expect_plan_id``, only if the plan is still that one.

    ``now`` is for tests and for a scheduler that must use one clock reading; never a future date.
    """
    actor = actor or audit.current_actor()
    now = now or now_utc()
    the_plan = the_plan or plan(catalog, cfg, now)
    if expect_plan_id is not None and not re.fullmatch(r"[0-9a-f]{16}", expect_plan_id.strip().lower()):
        raise RetentionError(N_("there is no retention plan with the id {expected}: a plan id is the 16 hex digits "
                                "`evidock retention plan` prints; nothing was deleted"), expected=repr(expect_plan_id))
    if expect_plan_id is not None and expect_plan_id.strip().lower() != the_plan.plan_id:
        raise RetentionError(N_("the retention plan is now {plan}, not {expected}: the id is mistyped or "
                                "something changed since it was reviewed; nothing was deleted — review `evidock retention plan` again"),
                             plan=the_plan.plan_id, expected=expect_plan_id)
    rep = ApplyReport(the_plan.plan_id)
    for tomb_id, sha in catalog.conn.execute(
            "SELECT id, sha256 FROM retention_deleted WHERE object_state = 'pending' ORDER BY id").fetchall():
        _finish(catalog, station, tomb_id, sha, rep.finished, rep.errors)
    for item in the_plan.delete:
        # The object's lock spans the deletion of the rows and of the object: the dock's wipe
        # (``dock.check.wipe_stored``) checks under the same lock that the object is still held
        # before it deletes a recorder's copy, so it never deletes the last one.
        with station.store.object_lock(item.sha256):
            try:
                tomb_id = _delete_rows(catalog, cfg, item, the_plan.plan_id, now, actor, rep)
            except sqlite3.IntegrityError as e:
                rep.errors.append(_row(Message(N_("other catalog records still refer to footage {id} ({error}); "
                                                  "nothing of it was deleted"), id=item.footage_id, error=str(e)),
                                       "error", footage=item.footage_id, sha256=item.sha256))
                continue
            except EvidockError as e:
                rep.errors.append({"footage": item.footage_id, "sha256": item.sha256, "error": str(e)})
                continue
            if tomb_id is None:
                continue
            crashpoint("retention-after-commit")
            done: list[dict[str, Any]] = []
            _finish(catalog, station, tomb_id, item.sha256, done, rep.errors)
        if done:
            rep.deleted.append({**item.to_json(), "object": done[0]["object"]})
    return rep


def _delete_rows(catalog: Catalog, cfg: RetentionConfig, item: PlanItem, plan_id: str, now: datetime, actor: str,
                 rep: ApplyReport) -> int | None:
    """One transaction: re-check, tombstone, catalog rows out, audit entry. None if no longer due."""
    with catalog.transaction() as conn:
        fresh = _facts(conn, item.footage_id)
        if not fresh or fresh[0].sha256 != item.sha256:
            rep.skipped.append(_row(Message(N_("no longer in the catalog")), "why",
                                    footage=item.footage_id, sha256=item.sha256))
            return None
        f = fresh[0]
        rule, until = decide(f, cfg)
        if until is None or now < until or rule.name != item.rule:
            rep.skipped.append(_row(Message(N_("no longer due: now under rule {rule} ({meaning})"),
                                            rule=Message(RULE_LABELS.get(rule.name, rule.name)),
                                            meaning=Message(rule.meaning)), "why",
                                    footage=item.footage_id, sha256=item.sha256))
            return None
        cases = [c for c, _, _ in f.cases or f.candidates]
        reason = f"{rule.meaning}; kept until {iso(until)}"
        cur = conn.execute(
            "INSERT INTO retention_deleted (sha256, footage_id, size, officer, device, source_path, recorded_at,"
            " ingested_at, cases, rule, reason, plan_id, deleted_at, deleted_by, object_state)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'pending')",
            (f.sha256, f.footage_id, f.size, f.officer, f.device, f.source_path, f.recorded_at, f.ingested_at,
             json.dumps(cases, ensure_ascii=False), rule.name, reason, plan_id, utcnow(), actor),
        )
        for table in (*FOOTAGE_TABLES, *MEDIA_TABLES, "legal_holds"):
            conn.execute(f"DELETE FROM {table} WHERE footage_id = ?", (f.footage_id,))
        conn.execute("DELETE FROM sightings WHERE sha256 = ?", (f.sha256,))
        conn.execute("DELETE FROM footage WHERE id = ?", (f.footage_id,))
        conn.execute("DELETE FROM objects WHERE sha256 = ?", (f.sha256,))
        audit.append(catalog, "object.delete", f.sha256, {
            "footage": f.footage_id, "size": f.size, "officer": f.officer, "recorded_at": f.recorded_at,
            "rule": rule.name, "reason": reason, "cases": cases, "plan": plan_id,
        }, actor)
        return int(cur.lastrowid)


def _finish(catalog: Catalog, station: StationContext, tomb_id: int, sha: str, done: list[dict[str, Any]],
            errors: list[dict[str, Any]]) -> None:
    """Remove the object of a committed deletion, unless the same bytes were catalogued again.

    The object's lock is held from the "no catalog row names it" check until the unlink: an
    ingest that has decided these bytes are already stored (or just linked them in) holds it
    until its own catalog row commits, so it either commits first (and the object is kept) or
    finds the object gone and brings it back from its staged copy. The catalog's write lock
    alone cannot do that: the ingest's decision is made outside any transaction.
    """
    store = station.store
    try:
        with store.object_lock(sha), catalog.transaction() as conn:
            if conn.execute("SELECT 1 FROM objects WHERE sha256 = ?", (sha,)).fetchone():
                state = "reingested"  # the same bytes came back from a recorder: they are evidence again
            else:
                store.delete(sha)
                station.derived.remove_all(sha)  # proxies and thumbnails go with it
                state = "removed"
            conn.execute("UPDATE retention_deleted SET object_state = ?, object_done_at = ? WHERE id = ?",
                         (state, utcnow(), tomb_id))
        done.append({"sha256": sha, "object": state})
        if state == "removed":
            # s3 backend: only this station's reference in the bucket goes, never the object
            # (other stations may hold it; ``evidock store gc`` deletes it once none does)
            from daemon.store.refs import release_ref

            release_ref(station, catalog, sha)
    except EvidockError as e:
        errors.append(_row(Message(N_("{error}; the deletion is recorded and the next `evidock retention apply` "
                                      "retries removing the object"), error=e), "error", sha256=sha))


# -- legal hold -------------------------------------------------------------------------------


def set_hold(catalog: Catalog, footage_ids: Sequence[int], reason: str, actor: str | None = None) -> list[dict[str, Any]]:
    """Put footage on legal hold: retention never deletes it until the hold is lifted. Audited."""
    return _hold(catalog, footage_ids, reason, actor, on=True)


def release_hold(catalog: Catalog, footage_ids: Sequence[int], reason: str, actor: str | None = None) -> list[dict[str, Any]]:
    """Lift a legal hold (audited); the footage's other rules apply again."""
    return _hold(catalog, footage_ids, reason, actor, on=False)


def _hold(catalog: Catalog, footage_ids: Sequence[int], reason: str, actor: str | None, on: bool) -> list[dict[str, Any]]:
    actor = actor or audit.current_actor()
    reason = (reason or "").strip()
    if not reason:
        raise RetentionError(N_("a legal hold needs a reason (--reason TEXT): it goes into the audit log"))
    out = []
    with catalog.transaction() as conn:
        shas = dict(conn.execute("SELECT id, sha256 FROM footage WHERE id IN (SELECT value FROM json_each(?))",
                                 (json.dumps(list(footage_ids)),)))
        missing = [i for i in footage_ids if i not in shas]
        if missing:
            raise NotFound(N_("no footage with id {ids}; nothing was changed — see `evidock footage list`"),
                           ids=", ".join(map(str, missing)))
        for fid in dict.fromkeys(footage_ids):
            held = conn.execute("SELECT held_at FROM legal_holds WHERE footage_id = ?", (fid,)).fetchone()
            if on == bool(held):
                out.append({"footage": fid, "sha256": shas[fid], "state": "already held" if on else "not held"})
                continue
            if on:
                conn.execute("INSERT INTO legal_holds (footage_id, held_at, held_by, reason) VALUES (?,?,?,?)",
                             (fid, utcnow(), actor, reason))
            else:
                conn.execute("DELETE FROM legal_holds WHERE footage_id = ?", (fid,))
            audit.append(catalog, "footage.hold" if on else "footage.release", f"footage:{fid}",
                         {"footage": fid, "sha256": shas[fid], "reason": reason}, actor)
            out.append({"footage": fid, "sha256": shas[fid], "state": "held" if on else "released"})
    return out


def deleted(catalog: Catalog) -> list[dict[str, Any]]:
    """Tombstones of everything retention deleted."""
    rows = list(catalog.db.query("SELECT * FROM retention_deleted ORDER BY id"))
    for r in rows:
        r["cases"] = json.loads(r["cases"])
    return rows


def keep_until_by_object(catalog: Catalog, cfg: RetentionConfig) -> dict[str, datetime | None]:
    """Until when the retention rules keep each stored object (sha256 -> date; None: for ever,
    e.g. a legal hold or an open case). An object named by several footage rows is kept as long
    as the longest of them. What a backup copy's lock is set to (daemon/backup)."""
    out: dict[str, datetime | None] = {}
    for f in iter_facts(catalog.conn):
        until = decide(f, cfg)[1]
        if f.sha256 in out:
            old = out[f.sha256]
            out[f.sha256] = None if old is None or until is None else max(old, until)
        else:
            out[f.sha256] = until
    return out
