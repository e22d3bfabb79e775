"""The paging options every listing shares (issue 19) and the line that says how to see more.

Listings are keyset pages: ``--limit N`` a page, ``--after CURSOR`` the page after a cursor (the
last row's key), ``--before CURSOR`` the page before one (the first row's key). For people,
without ``--limit``, a listing shows its most recent ``PAGE`` rows; ``--json`` without ``--limit``
streams every row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from daemon.cli import say
from daemon.i18n import _

PAGE = 50  # rows a listing for people shows without --limit

F = TypeVar("F", bound=Callable[..., Any])


def options(cursor: click.ParamType | type = click.IntRange(0), metavar: str = "CURSOR") -> Callable[[F], F]:
    """``--limit``, ``--after`` and ``--before`` on a listing command."""
    def wrap(f: F) -> F:
        f = click.option("--before", type=cursor, metavar=metavar,
                         help="Only rows before this cursor (the key of the first row of a page): the page before it.")(f)
        f = click.option("--after", type=cursor, metavar=metavar,
                         help="Only rows after this cursor: the key of the last row of the page before.")(f)
        return click.option("--limit", type=click.IntRange(1), help="At most this many rows (a page).")(f)
    return wrap


def hint(page: list[dict[str, Any]], limit: int | None, latest: bool, before: Any, key: str,
         after: Any = None) -> None:
    """On stderr, when the page is full: how to see the page before (and after).

    ``latest``: the listing was asked for without ``--limit`` (a page for people); it is the most
    recent page only when no cursor was given either."""
    if not page or len(page) != limit:
        return
    if latest and after is None and before is None:
        text = _("the most recent {n} shown; the page before: --before {first}")
    elif before is not None:
        text = _("the page before: --before {first}; the next: --after {last}")
    else:
        text = _("{n} shown; the next page: --after {last}")
    say(text.format(n=len(page), first=page[0][key], last=page[-1][key]))
