"""Case fields as people and case systems give them: one parser per field, every problem collected."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from daemon.clock import iso, parse_time
from daemon.display import local_time
from daemon.i18n import N_, Message, _, is_message, render


class FieldProblem(ValueError):
    """A case field's value is wrong. ``str()`` is English (reports, JSON); ``text()`` is in the
    reader's language. ``what`` (a field's name) is translated too."""

    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid, self.params = msgid, params
        super().__init__(msgid.format(**params))

    def text(self) -> str:
        """The problem in the current language."""
        params = {k: _(v) if k == "what" else v for k, v in self.params.items()}
        return render(self.msgid, params, translate=True)

    def message(self) -> Message:
        """The problem as a ``Message`` (the field's name a message too), to be shown within another."""
        return Message(self.msgid, **{k: Message(v) if k == "what" else v for k, v in self.params.items()})


def joined(problems: list[Any]) -> Message:
    """Several problems as one message: "a; b; c" (in Chinese with a full-width "；")."""
    params: dict[str, Any] = {f"p{i}": p for i, p in enumerate(problems)}
    params["sep"] = Message(N_("; "))
    return Message("{sep}".join(f"{{p{i}}}" for i in range(len(problems))), **params)

# -- case fields ------------------------------------------------------------------------------

FIELDS = ("case_no", "party", "handlers", "opened_at", "closed_at", "unit", "sensitivity", "notes")

# What the bureau's exports write under 密级 (and evidock's own words); anything else is refused.
SENSITIVITY_WORDS = {
    "": "normal", "normal": "normal", "普通": "normal", "一般": "normal", "公开": "normal",
    "内部": "normal", "非密": "normal", "无": "normal",
    "secret": "secret", "秘密": "secret", "机密": "secret", "绝密": "secret", "涉密": "secret",
}

_BADGE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")
# Badges in one cell: ';' as the export writes, and the separators people type in Chinese text.
_BADGE_SEP = re.compile(r"[;；,，、\s]+")


def _clean_text(v: Any, what: str, max_len: int, required: bool) -> str | None:
    s = "" if v is None else unicodedata.normalize("NFC", str(v)).strip()
    if not s:
        if required:
            raise FieldProblem(N_("{what} is empty"), what=what)
        return None
    if len(s) > max_len:
        raise FieldProblem(N_("{what} is longer than {n} characters"), what=what, n=max_len)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in s):
        raise FieldProblem(N_("{what} {value} contains control characters"), what=what, value=repr(s))
    return s


def _p_case_no(v: Any, tz: str) -> str | None:
    return _clean_text(v, N_("case number"), 100, True)


def _p_party(v: Any, tz: str) -> str | None:
    return _clean_text(v, N_("party"), 200, True)


def _p_handlers(v: Any, tz: str) -> tuple[str, ...]:
    items = [str(x) for x in v] if isinstance(v, (list, tuple)) else _BADGE_SEP.split(str(v or ""))
    badges: list[str] = []
    for b in (x.strip() for x in items):
        if not b:
            continue
        if not _BADGE.match(b):
            raise FieldProblem(N_("handler badge {badge} is not a badge number (letters, digits, '-', '_'; at most 32)"),
                               badge=repr(b))
        if b not in badges:
            badges.append(b)
    if not badges:
        raise FieldProblem(N_("no handling officer (badge numbers separated by ';')"))
    return tuple(sorted(badges))


def _p_opened(v: Any, tz: str) -> str | None:
    if v is None or not str(v).strip():
        raise FieldProblem(N_("opened-at time is empty"))
    try:
        return iso(parse_time(str(v), tz))
    except ValueError as e:
        raise FieldProblem(N_("opened-at time (立案时间): {error}"), error=e) from None


def _p_closed(v: Any, tz: str) -> str | None:
    if v is None or not str(v).strip():
        return None
    try:
        return iso(parse_time(str(v), tz, end_of_day=True))
    except ValueError as e:
        raise FieldProblem(N_("closed-at time (结案时间): {error}"), error=e) from None


def _p_unit(v: Any, tz: str) -> str | None:
    return _clean_text(v, N_("unit"), 200, False)


def _p_sensitivity(v: Any, tz: str) -> str:
    word = (str(v) if v is not None else "").strip()
    try:
        return SENSITIVITY_WORDS[word.lower()]
    except KeyError:
        raise FieldProblem(N_("sensitivity {word} is not one of: normal, secret (or 普通, 秘密, 机密, 绝密)"),
                           word=repr(word)) from None


def _p_notes(v: Any, tz: str) -> str | None:
    return _clean_text(v, N_("notes"), 2000, False)


# One parser per field: value as given -> stored value, or ValueError saying what is wrong.
FIELD_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "case_no": _p_case_no,
    "party": _p_party,
    "handlers": _p_handlers,
    "opened_at": _p_opened,
    "closed_at": _p_closed,
    "unit": _p_unit,
    "sensitivity": _p_sensitivity,
    "notes": _p_notes,
}


def parse_fields(given: dict[str, Any], tz: str) -> tuple[dict[str, Any], list[Any]]:
    """Parse the fields present in ``given``; every problem is collected, none raised.

    The problems are messages: ``str()`` English (reports and their JSON), ``i18n.text()`` the
    reader's language.
    """
    out: dict[str, Any] = {}
    problems: list[Any] = []
    for name, value in given.items():
        try:
            out[name] = FIELD_PARSERS[name](value, tz)
        except FieldProblem as e:
            problems.append(e.message())
        except ValueError as e:
            problems.append(e if is_message(e) else str(e))
    return out, problems


def _window_problem(case: dict[str, Any], tz: str) -> Message | None:
    if case.get("closed_at") and case.get("opened_at") and case["closed_at"] < case["opened_at"]:
        return Message(N_("closed ({closed}) before it was opened ({opened})"),
                       closed=local_time(case["closed_at"], tz),
                       opened=local_time(case["opened_at"], tz))
    return None
