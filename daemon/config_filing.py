"""[filing] of the config: labelling footage with its case (art. 11). Beside ``daemon/config.py``
(which re-exports it) only to keep that module under the 500 lines ``tests/test_layering.py``
allows; the same strict schema rules.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.i18n import _


class _Section(BaseModel):
    # as daemon.config._Section: strict types, unknown keys refused, frozen
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, strict=True)


def _known_zone(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(_("not a known IANA time zone (e.g. 'Asia/Shanghai', 'UTC')")) from None
    return v


class FilingConfig(_Section):
    """[filing]: labelling footage with its case (regulation art. 11)."""

    deadline_days: int = Field(
        2,
        ge=1,
        le=30,
        description="Art. 11: footage must be filed to its case within this many days of recording; later is overdue",
    )
    activity_margin_min: int = Field(
        15,
        ge=0,
        le=24 * 60,
        description="Footage recorded this many minutes before or after an enforcement activity still counts as inside it",
    )
    segment_gap_s: int = Field(
        60,
        ge=0,
        le=3600,
        description="Chunks from one recorder with gaps under this many seconds are one recording, filed together",
    )
    chunk_max_s: int = Field(
        900,
        ge=0,
        le=24 * 3600,
        description="Before a chunk's duration is probed: how long it may last, so the next chunk in name sequence starting within this plus segment_gap_s joins it (0: never)",
    )
    local_timezone: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Deprecated: use ui.timezone (read as ui.timezone when that is not set, with a warning)",
    )

    _known_zone = field_validator("local_timezone")(lambda v: _known_zone(v))
