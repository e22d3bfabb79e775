"""What an alert message says, in both languages: the mail's subject and body, the webhook's JSON.

A message goes to people who may read either language, so it carries both: the station's UI
language first (``[ui] language``; unset: the language the daemon speaks), then the other.
Rendering in a given language uses that language's catalog directly (``in_language``), not
``daemon.i18n.set_language``, which would switch the whole process — the sender is one thread
of the daemon among others.

Recorder serials come from recorders (untrusted): shown through ``display.shown`` in text (no
control character reaches a mail header or a terminal); JSON carries them as they are, escaped
by JSON itself.
"""

from __future__ import annotations

import gettext as _gettext
import json
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from daemon import i18n
from daemon.catalog.outbox import KINDS, TEST_KIND
from daemon.clock import from_iso
from daemon.config import Config
from daemon.display import shown
from daemon.i18n import N_, Message, is_message

_TEST_LABEL = N_("test message")


@lru_cache(maxsize=4)
def _catalog(lang: str) -> _gettext.NullTranslations:
    return i18n.load_translations(lang)


def in_language(obj: object, lang: str) -> str:
    """A message (or a plain string, as it is) in ``lang``, nested messages alike."""
    if not is_message(obj):
        return str(obj)
    return i18n.render(obj.msgid, obj.params, _catalog(lang).gettext)  # type: ignore[attr-defined]


def languages(config: Config) -> tuple[str, str]:
    """The two languages, the station's first."""
    first = config.ui.language or i18n.current_language()
    return (first, "en" if first == "zh" else "zh")


def event_message(row: dict[str, Any]) -> Message | str:
    """An outbox row's own message (its reason), as stored."""
    if row.get("message_msg"):
        try:
            return Message.from_json(json.loads(row["message_msg"]))
        except (ValueError, KeyError, TypeError):
            pass
    return str(row["message"])


def _kind_label(kind: str) -> str:
    return _TEST_LABEL if kind == TEST_KIND else KINDS.get(kind, ("", kind))[1]


def _what(row: dict[str, Any]) -> Message:
    kind = Message(_kind_label(row["kind"]))
    if row.get("serial"):
        return Message(N_("recorder {serial}: {kind}"), serial=shown(row["serial"]), kind=kind)
    if row.get("subject"):
        return Message(N_("{subject}: {kind}"), subject=shown(row["subject"]), kind=kind)
    return kind


def _title(row: dict[str, Any], station: str) -> Message:
    if row["state"] == "raised":
        return Message(N_("[alert] station {station}, {what}"), station=station, what=_what(row))
    if row["state"] == "cleared":
        return Message(N_("[cleared] station {station}, {what}"), station=station, what=_what(row))
    return Message(N_("[test] station {station}: evidock alerts reach you"), station=station)


def local(at: str, tz: str) -> str:
    """An instant in the station's time zone, ISO 8601 with its offset."""
    return from_iso(at).astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def _block(row: dict[str, Any], config: Config, lang: str) -> str:
    tz = config.ui.timezone
    when = from_iso(row["at"]).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
    state = {"raised": Message(N_("raised")), "cleared": Message(N_("cleared")), "test": Message(N_("test"))}[row["state"]]
    lines = [in_language(_what(row), lang),
             in_language(Message(N_("{state} at {time} ({tz})"), state=state, time=when, tz=tz), lang),
             shown(in_language(event_message(row), lang))]
    return "\n".join(lines)


def mail(rows: list[dict[str, Any]], config: Config, digest: bool) -> tuple[str, str]:
    """The subject and plain-text body of one mail: one event, or a day's digest of several."""
    station = config.station.station_id()
    langs = languages(config)
    if digest:
        raised = sum(r["state"] == "raised" for r in rows)
        title = Message(N_("[digest] station {station}: {raised} alerts raised, {cleared} cleared"),
                        station=station, raised=raised, cleared=len(rows) - raised)
    else:
        title = _title(rows[0], station)
    subject = " / ".join(in_language(title, lang) for lang in langs)
    parts = []
    for lang in langs:
        blocks = [_block(r, config, lang) for r in rows]
        footer = in_language(Message(N_("Sent by evidock at station {station}; `evidock health --attention` and "
                                        "`evidock status` show what is open now."), station=station), lang)
        parts.append(in_language(title, lang) + "\n\n" + "\n\n".join(blocks) + "\n\n" + footer)
    return shown(subject), "\n\n----------------------------------------\n\n".join(parts) + "\n"


def event_json(row: dict[str, Any], config: Config) -> dict[str, Any]:
    """One event as the webhook posts it: the same in every language, both texts inside."""
    tz = config.ui.timezone
    msg = event_message(row)
    return {"id": row["id"], "kind": row["kind"], "state": row["state"], "serial": row.get("serial"),
            "subject": row.get("subject"), "station": config.station.station_id(), "at": row["at"],
            "at_local": local(row["at"], tz), "timezone": tz,
            "title": {lang: in_language(_title(row, config.station.station_id()), lang) for lang in ("en", "zh")},
            "message": {lang: in_language(msg, lang) for lang in ("en", "zh")}}


def webhook_document(rows: list[dict[str, Any]], config: Config, digest: bool, now: datetime) -> dict[str, Any]:
    """The JSON document of one POST: one event's fields, or a digest holding its events."""
    if not digest:
        return event_json(rows[0], config)
    return {"digest": True, "station": config.station.station_id(), "at": now.isoformat(timespec="seconds"),
            "at_local": local(now.isoformat(), config.ui.timezone), "timezone": config.ui.timezone,
            "events": [event_json(r, config) for r in rows]}
