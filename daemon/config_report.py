"""[report] of the config: the daily device health report (daemon/report/health_report.py).

Beside ``daemon/config.py`` (which re-exports it) only to keep that module under the 500 lines
``tests/test_layering.py`` allows; the same strict schema rules.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    # as daemon.config._Section: strict types, unknown keys refused, frozen
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


class ReportConfig(_Section):
    """[report]: the daily health report the `report` job writes into <data-dir>/reports/health/<date>/."""

    keep_days: int = Field(
        90, ge=1, le=3660,
        description="Daily health reports older than this many days are deleted by the `report` job",
    )
    history_days: int = Field(
        365, ge=0, le=3660,
        description="How many days of history the daily report draws (0: all of it; `report health --since` for others)",
    )
