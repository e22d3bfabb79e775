"""Shared by the scheduler's tests: a station context over a test's data dir, and a clock the test moves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from daemon.config import parse_config
from daemon.context import StationContext, build_context


def context(data_dir: Path, **schedule: Any) -> StationContext:
    return build_context(parse_config({"schedule": schedule, "ui": {"timezone": "Asia/Shanghai"}}), data_dir)


class Clock:
    """A clock the test sets: the missed-run logic is about days passing, which a test cannot wait for."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
