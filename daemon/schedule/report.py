"""``evidock jobs``: each job's schedule, next and last run, its result and open alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from daemon.clock import from_iso, now_utc
from daemon.config import cron_trigger
from daemon.errors import EXIT_OK, EXIT_WARNING
from daemon.schedule import runs
from daemon.schedule.jobs import JOBS

if TYPE_CHECKING:
    from daemon.context import StationContext


@dataclass
class JobsReport:
    jobs: list[dict[str, Any]]
    timezone: str
    enabled: bool

    @property
    def exit_code(self) -> int:
        """1 when a job needs attention (an open alert, or late), else 0."""
        return EXIT_WARNING if any(j["alerts"] or j["late_since"] for j in self.jobs) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        def clean(j: dict[str, Any]) -> dict[str, Any]:
            last = j["last_run"]
            if last is not None:
                last = {k: v for k, v in last.items() if k != "error_message"}
            return {**j, "last_run": last, "alerts": [{k: v for k, v in a.items() if k != "text"} for a in j["alerts"]]}
        return {"enabled": self.enabled, "timezone": self.timezone, "jobs": [clean(j) for j in self.jobs]}


def _iso_local(dt: datetime | None, tz: str) -> str | None:
    return dt.astimezone(ZoneInfo(tz)).isoformat() if dt else None


def jobs_report(ctx: StationContext, now: datetime | None = None) -> JobsReport:
    """Every job of the table as this station schedules it, with its record (read-only)."""
    now = now or now_utc()
    cfg, tz = ctx.config.schedule, ctx.config.ui.timezone
    out = []
    with ctx.catalog() as cat:
        since_text = cat.get_meta(runs.SINCE_KEY)
        since = from_iso(since_text) if since_text else now
        for spec in JOBS:
            trigger = cron_trigger(spec.cron(cfg), tz)
            last = runs.last_run(cat, spec.name)
            start = from_iso(last["started_at"]) if last else None
            due = runs.missed_due(trigger, start, since, now)
            late = due if due is not None and (now - due).total_seconds() > cfg.late_after_s else None
            out.append({
                "job": spec.name, "about": spec.about, "schedule": spec.cron(cfg), "config_key": f"schedule.{spec.cron_key}",
                "next_run": _iso_local(runs.next_due(trigger, now), tz) if cfg.enabled else None,
                "last_run": last, "late_since": _iso_local(late, tz),
                "alerts": runs.open_job_alerts(cat, spec.name),
            })
    return JobsReport(out, tz, cfg.enabled)
