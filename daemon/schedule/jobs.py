"""The job table: every job the station's scheduler runs, one declarative entry each.

An entry names the job (``evidock jobs run NAME``), the ``[schedule]`` key holding its cron
expression (the default time is that key's default: verify 03:00, retention plan 04:00, audit
verify 05:00), the library call it makes and the counts it reports. A later job (backup at
01:30, reports at 06:00) is one more entry here and one more key in ``ScheduleConfig``.
Duplicates and entries without their config key are refused at import time.

A job's call gets the station context and a catalog connection of its own and returns an
``Outcome``: ``ok``, ``warning`` (finished, found something minor: exit 1) or ``failed`` (found
damage, or could not do its work: exit 2), the counts, and for people what went wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.catalog.db import Catalog
from daemon.clock import iso, now_utc
from daemon.config import CRON_KEYS, ScheduleConfig
from daemon.errors import EXIT_ERROR, EXIT_OK, EXIT_WARNING, JobError
from daemon.i18n import N_, Message

if TYPE_CHECKING:
    from daemon.context import StationContext

RESULT_OF_EXIT = {EXIT_OK: "ok", EXIT_WARNING: "warning", EXIT_ERROR: "failed"}
EXIT_OF_RESULT = {"ok": EXIT_OK, "warning": EXIT_WARNING, "failed": EXIT_ERROR}


@dataclass(frozen=True)
class Outcome:
    """How one run of a job ended."""

    result: str  # ok | warning | failed
    counts: dict[str, Any] = field(default_factory=dict)
    message: Message | None = None  # for people: what it found or why it failed

    @property
    def exit_code(self) -> int:
        return EXIT_OF_RESULT[self.result]


@dataclass(frozen=True)
class Job:
    name: str
    cron_key: str  # its key in [schedule]
    call: Callable[[StationContext, Catalog], Outcome]
    counts: tuple[str, ...]
    about: str  # N_: one line for people

    def cron(self, config: ScheduleConfig) -> str:
        return str(getattr(config, self.cron_key))


# -- the jobs' library calls ------------------------------------------------------------------

def _verify(ctx: StationContext, catalog: Catalog) -> Outcome:
    """A slice of ``evidock verify``: at most ``schedule.verify_max_duration_s``, resumed from its checkpoint."""
    from daemon.evidence.verify import verify_store

    rep = verify_store(catalog, ctx.store, ctx.config.schedule.verify_max_duration_s)
    counts = {"checked": rep.checked, "damaged": len(rep.damaged), "missing": len(rep.missing),
              "mismatches": len(rep.mismatches), "strays": len(rep.strays), "complete": rep.complete}
    msg = None
    if rep.exit_code != EXIT_OK:
        msg = Message(N_("verify: {checked} objects checked, {damaged} damaged, {missing} missing, {mismatches} catalog "
                         "row(s) not matching the audit log, {strays} stray file(s) — run `evidock verify` to see "
                         "which"), **{k: v for k, v in counts.items() if k != "complete"})
    return Outcome(RESULT_OF_EXIT[rep.exit_code], counts, msg)


def _retention_plan(ctx: StationContext, catalog: Catalog) -> Outcome:
    """``evidock retention plan``, kept as a report under ``<data-dir>/reports/retention/``; never an apply."""
    from daemon.cases import retention

    p = retention.plan(catalog, ctx.config.retention)
    doc = p.to_json()
    folder = ctx.data_dir / "reports" / "retention"
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
    path = folder / f"plan-{iso(now_utc()).replace(':', '')[:17]}-{p.plan_id}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    os.replace(tmp, path)
    return Outcome("ok", {"to_delete": len(p.delete), "bytes": p.bytes, "pending": len(p.pending),
                          "plan_id": p.plan_id, "report": str(path)})


def _audit_verify(ctx: StationContext, catalog: Catalog) -> Outcome:
    """``evidock audit verify``: the whole hash chain and its anchor."""
    from daemon.evidence.auditlog import check_chain

    rep = check_chain(catalog)
    counts = {"rows": rep.rows, "broken": 0 if rep.ok else 1, "notes": len(rep.notes)}
    if rep.ok:
        return Outcome("ok", counts)
    problem = (rep.first_broken or {}).get("message", "")
    return Outcome("failed", counts, Message(N_("the audit chain is broken: {problem} — run `evidock audit verify`"),
                                             problem=problem))


def _backup(ctx: StationContext, catalog: Catalog) -> Outcome:
    """``evidock backup run`` to every target; then a verify slice of each (as long as the verify job's budget)."""
    from daemon.backup.run import run_backup
    from daemon.backup.verify import verify_copies

    if not ctx.config.backup.targets:
        return Outcome("ok", {"targets": 0})
    rep = run_backup(ctx, catalog)
    counts: dict[str, Any] = rep.counts()
    ver = verify_copies(ctx, catalog, sample=None, max_duration=ctx.config.schedule.verify_max_duration_s / 4)
    counts.update(verified=ver.checked, damaged=len(ver.damaged))
    failed = [r for r in rep.runs if r.result == "failed"]
    if failed:
        return Outcome("failed", counts, Message(N_("backup failed: {errors}"), errors="; ".join(str(r.error) for r in failed)))
    if ver.damaged:
        return Outcome("failed", counts, Message(N_("backup verify found {n} damaged copies — run `evidock backup verify`"),
                                                 n=len(ver.damaged)))
    return Outcome("warning" if rep.exit_code else "ok", counts)


def _report(ctx: StationContext, catalog: Catalog) -> Outcome:
    """``evidock report health`` into ``<data-dir>/reports/health/<date>/``; older than report.keep_days pruned."""
    from daemon import health
    from daemon.report.health_report import daily

    health.check_not_docked(catalog, ctx.config.health, ctx.config.ui.timezone)  # also the daemon's, every 10 min
    return Outcome("ok", daily(catalog, ctx.config, ctx.data_dir))


def _store_gc(ctx: StationContext, catalog: Catalog) -> Outcome:
    """``evidock store gc`` at the one station ``store.gc_station`` names; elsewhere nothing to do."""
    from daemon.store.refs import gc, is_gc_station

    if not is_gc_station(ctx):
        return Outcome("ok", {"objects": 0})
    rep = gc(ctx, catalog)
    if rep.errors:
        return Outcome("warning", rep.counts(), Message(N_("store gc: {n} object(s) could not be checked or deleted; "
                                                           "the next run tries again — run `evidock store gc`"),
                                                        n=len(rep.errors)))
    return Outcome("ok", rep.counts())


JOBS: tuple[Job, ...] = (
    Job("verify", "verify", _verify, ("checked", "damaged", "missing", "mismatches", "strays", "complete"),
        N_("a slice of the store's scrub (evidock verify)")),
    Job("retention-plan", "retention_plan", _retention_plan, ("to_delete", "bytes", "pending", "plan_id", "report"),
        N_("what retention would delete, as a report (never deletes)")),
    Job("audit-verify", "audit_verify", _audit_verify, ("rows", "broken", "notes"),
        N_("the audit log's hash chain (evidock audit verify)")),
    Job("backup", "backup", _backup, ("targets", "copied", "bytes", "deleted", "skipped_secret", "verified", "damaged",
                                      "failed"),
        N_("verified copies to the backup targets (evidock backup run), and a verify slice")),
    Job("report", "report", _report, ("recorders", "attention", "pruned", "report"),
        N_("the daily device health report (evidock report health), older ones pruned")),
    Job("store-gc", "store_gc", _store_gc, ("objects", "gc_deleted", "referenced", "locked", "failed"),
        N_("objects in the evidence store bucket no station refers to, deleted once unlocked (evidock store gc)")),
)

# What each count is called for people (the keys stay the codes in --json).
COUNT_LABELS = {"checked": N_("checked"), "damaged": N_("damaged"), "missing": N_("missing"),
                "mismatches": N_("mismatches"), "strays": N_("strays"), "complete": N_("complete"),
                "to_delete": N_("to delete"), "bytes": N_("bytes"), "pending": N_("pending"),
                "rows": N_("rows"), "broken": N_("broken"), "notes": N_("notes"), "targets": N_("targets"),
                "copied": N_("copied"), "deleted": N_("deleted"), "skipped_secret": N_("secret kept on-site"),
                "verified": N_("verified"), "failed": N_("failed"),
                "recorders": N_("recorders"), "attention": N_("need attention"), "pruned": N_("pruned"),
                "report": N_("report"), "objects": N_("objects"),
                "gc_deleted": N_("deleted from the bucket"), "referenced": N_("still referenced"),
                "locked": N_("still locked")}


def _check_table() -> dict[str, Job]:
    by_name: dict[str, Job] = {}
    for j in JOBS:
        if j.name in by_name:
            raise AssertionError(f"job {j.name} is in the job table twice")
        if j.cron_key not in CRON_KEYS or j.cron_key not in ScheduleConfig.model_fields:
            raise AssertionError(f"job {j.name}: [schedule] {j.cron_key} is not a cron key of the config")
        by_name[j.name] = j
    return by_name


_BY_NAME = _check_table()


def job(name: str) -> Job:
    """The job called ``name``; an unknown name is a ``JobError`` listing the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise JobError(N_("there is no job {job}; the jobs are: {jobs}"), job=name,
                       jobs=", ".join(_BY_NAME)) from None
