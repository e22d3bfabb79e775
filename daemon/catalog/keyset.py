"""Keyset pages, the way every listing pages (issue 19): ``after``/``before`` a cursor (a row's
key), never OFFSET. A page before a cursor, and the latest page (``latest`` without a cursor), are
read backwards — ``ORDER BY key DESC LIMIT n`` — and handed out in key order again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def backwards(before: Any, after: Any, latest: bool | None) -> bool:
    """Is the page read backwards: before a cursor, or the latest without one?"""
    return before is not None or (bool(latest) and after is None)


def in_order(rows: Iterable[T], backward: bool) -> Iterable[T]:
    """The page's rows in key order: a backwards page is at most ``limit`` rows, read whole."""
    return reversed(list(rows)) if backward else rows
