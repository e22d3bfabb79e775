"""[schedule] of the config: the station's regular jobs and their times (daemon/schedule), and
what a valid cron expression is. Beside ``daemon/config.py`` (which re-exports it) only to keep
that module under the 500 lines ``tests/test_layering.py`` allows; the same strict schema rules.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.i18n import _

# The [schedule] keys that hold a cron expression, one per job of daemon/schedule/jobs.py.
CRON_KEYS = ("verify", "retention_plan", "audit_verify", "backup", "report", "store_gc")


class _Section(BaseModel):
    # as daemon.config._Section: strict types, unknown keys refused, frozen
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


def cron_trigger(expr: str, tz: str) -> CronTrigger:
    """The APScheduler trigger of a cron expression of ``[schedule]``, in time zone ``tz``.

    Five fields as crontab writes them (minute hour day month weekday), or six with seconds
    first (``30 0 3 * * *``). Weekdays must be named (``mon-fri``, ``sun``): APScheduler 3
    counts 0 as Monday where crontab counts it as Sunday, so a number there would silently
    shift the job by a day. Raises ``ValueError`` with a message for people.
    """
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError(_("a cron expression has 5 fields (minute hour day month weekday), or 6 with seconds first; "
                           "this one has {n}").format(n=len(fields)))
    if re.search(r"\d", fields[-1]):
        raise ValueError(_("name the weekdays (mon, tue, … sun; e.g. mon-fri): numbers mean different days "
                           "in crontab and in APScheduler"))
    second, (minute, hour, day, month, dow) = (fields[0] if len(fields) == 6 else "0"), fields[-5:]
    try:
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
                           timezone=ZoneInfo(tz))
    except ValueError as e:
        raise ValueError(_("not a valid cron expression: {error}").format(error=e)) from None


class ScheduleConfig(_Section):
    """[schedule]: the station's own clock for its regular jobs (daemon/schedule), in ui.timezone."""

    enabled: bool = Field(
        True,
        description="Run the jobs below on their schedule inside `evidock run` (`evidock jobs run NAME` works either way)",
    )
    verify: str = Field(
        "0 3 * * *",
        min_length=1, max_length=200,
        description="Cron expression (minute hour day month weekday, in ui.timezone) of the verify slice (`evidock verify`)",
    )
    retention_plan: str = Field(
        "0 4 * * *",
        min_length=1, max_length=200,
        description="Cron expression of the retention plan: a plan and its report, never an apply",
    )
    audit_verify: str = Field(
        "0 5 * * *",
        min_length=1, max_length=200,
        description="Cron expression of the audit chain check (`evidock audit verify`)",
    )
    backup: str = Field(
        "30 1 * * *",
        min_length=1, max_length=200,
        description="Cron expression of the backup run to every [[backup.targets]] (`evidock backup run`)",
    )
    report: str = Field(
        "0 6 * * *",
        min_length=1, max_length=200,
        description="Cron expression of the daily device health report (`evidock report health`, [report])",
    )
    store_gc: str = Field(
        "0 3 * * sun",
        min_length=1, max_length=200,
        description="Cron expression of the evidence store bucket's gc (`evidock store gc`); runs only at store.gc_station",
    )
    verify_max_duration_s: float = Field(
        3600.0,
        gt=0, le=86400,
        description="Time budget of one scheduled verify slice; the next slice continues where it stopped",
    )
    yield_to_offloads: bool = Field(
        True,
        description="A job does not start while an offload runs (in this process or another): it waits, offloads keep their speed",
    )
    yield_max_wait_s: float = Field(
        6 * 3600.0,
        gt=0, le=7 * 86400,
        description="How long a job waits for offloads to end; then it is recorded as not run, and alerted",
    )
    late_after_s: float = Field(
        3600.0,
        gt=0, le=7 * 86400,
        description="A job not started this long after it was due is alerted as missed",
    )

    @field_validator(*CRON_KEYS)
    @classmethod
    def _cron(cls, v: str) -> str:
        cron_trigger(v, "UTC")  # the fields only; the zone is [ui]'s, checked there
        return v

