"""The one parser of time options (``--as-of``).

Every time a person types goes through ``daemon.clock.parse_time``, so that all options accept the same
forms and the same range (``clock.TIME_MIN`` … ``clock.TIME_MAX``). A time that cannot be read,
or lies outside that range, is a usage error at the boundary: exit 2 and a message naming the
option and the range — never an ``OverflowError`` traceback from deep in a report.

Case times (``case open --opened-at``, ``case close --closed-at``) are case fields: they go to
the library as typed, which parses them with the same ``parse_time`` (a bare closing date means
the end of that day) and names the case, the field and the range in its ``CaseError`` (exit 2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from daemon import clock, i18n


class TimeParam(click.ParamType):
    """A time option, read in ``ui.timezone`` when it has no offset; a UTC datetime."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        tz = "UTC"
        station = ctx.find_object(_station_type()) if ctx is not None else None
        if station is not None:
            tz = station.config.ui.timezone
        try:
            return clock.parse_time(str(value), tz)
        except ValueError as e:
            self.fail(i18n.text(e), param, ctx)


def _station_type() -> type:
    from daemon.cli import Station  # the CLI package imports this module while it is being built

    return Station


AS_OF = TimeParam()
