"""The language of messages for people: which one, and the catalog that translates them.

Messages are written in English in the code and marked: ``_("…")`` translates now,
``ngettext(singular, plural, n)`` picks the plural form, ``N_("…")`` only marks a text that is
translated later (a state name in a table, say). The Chinese lives in gettext catalogs,
``daemon/locale/<lang>/LC_MESSAGES/evidock.po`` (sources, in the repo) compiled to ``.mo`` by
``daemon/i18n_build.py`` (``scripts/setup``, the wheel build); this module only reads the
``.mo`` with the standard library, so running the station needs no Babel.

Which language, first match wins: ``evidock --lang zh|en``, ``$EVIDOCK_LANG``, ``[ui] language``
in the config, the locale variables (the first set of ``LC_ALL``, ``LC_MESSAGES``, ``LANG``;
one starting with ``zh`` means Chinese), else English. It is decided from the variables
themselves, never from ``locale.getlocale()`` or ``setlocale``: stations have only ``C.UTF-8``
installed, and no locale has to be.

click prints its own messages (``Usage:``, ``Missing option`` …) through ``gettext.gettext`` in
the default domain; ``route_click_messages`` points them at evidock's catalog, which carries
their Chinese too. Machine output never goes through here: ``--json``, exit codes and audit
event names are the same in every language.

Imports nothing of evidock.
"""

from __future__ import annotations

import gettext as _gettext
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DOMAIN = "evidock"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("zh", "en")
ENV_LANG = "EVIDOCK_LANG"
# The catalog directory of each language (English is the source text: no catalog).
CATALOGS = {"zh": "zh_CN"}
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")

log = logging.getLogger(__name__)

_translations: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def normalize(value: str | None) -> str | None:
    """``zh``/``zh_CN``/``zh-CN.UTF-8`` → ``zh``, ``en…`` → ``en``; anything else → ``None``."""
    if not value:
        return None
    v = value.strip().lower()
    for lang in LANGUAGES:
        if v == lang or v.startswith((lang + "_", lang + "-", lang + ".")):
            return lang
    return None


def language_from_locale(environ: Mapping[str, str] | None = None) -> str | None:
    """``zh`` when the locale variable in force names Chinese, else ``None``.

    As POSIX does: the first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set decides
    (``LC_ALL=C`` with ``LANG=zh_CN.UTF-8`` is not Chinese).
    """
    env = os.environ if environ is None else environ
    for var in LOCALE_VARS:
        value = env.get(var)
        if value:
            return "zh" if value.strip().lower().startswith("zh") else None
    return None


def resolve_language(cli_value: str | None = None, config_value: str | None = None,
                     environ: Mapping[str, str] | None = None) -> str:
    """The language to speak: ``--lang``, ``$EVIDOCK_LANG``, ``[ui] language``, the locale, English.

    A value that names no supported language (``EVIDOCK_LANG=fr``) is passed over here; the
    CLI refuses it as a usage error (``--lang`` reads the variable too).
    """
    env = os.environ if environ is None else environ
    for candidate in (cli_value, env.get(ENV_LANG), config_value):
        lang = normalize(candidate)
        if lang is not None:
            return lang
    return language_from_locale(env) or "en"


def load_translations(lang: str) -> _gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English: none, the source text is English)."""
    if lang not in CATALOGS:
        return _gettext.NullTranslations()
    try:
        return _gettext.translation(DOMAIN, str(LOCALE_DIR), languages=[CATALOGS[lang]])
    except OSError:
        log.warning("the %s message catalog is not compiled (%s); messages stay English — run scripts/setup",
                    lang, LOCALE_DIR / CATALOGS[lang] / "LC_MESSAGES" / f"{DOMAIN}.mo")
        return _gettext.NullTranslations()


def set_language(lang: str) -> None:
    """Speak ``lang`` (``zh`` or ``en``) from now on, in evidock's messages and click's."""
    global _translations, _language
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; use one of {', '.join(LANGUAGES)}")
    if lang != _language or not isinstance(_translations, _gettext.GNUTranslations):
        _translations = load_translations(lang)
    _language = lang


def current_language() -> str:
    """``zh`` or ``en``: the language messages are translated to now."""
    return _language


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language."""
    return _translations.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the current language, as meant in ``context`` (one English word, two uses:
    ``pgettext("column", "closed")`` is a header, the status ``closed`` another msgid)."""
    return _translations.pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    """``ngettext`` within ``context``."""
    return _translations.npgettext(context, singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 — the gettext convention
    """Mark ``message`` for the catalog without translating it yet (translate with ``_`` later)."""
    return message


_ = gettext


# --- messages that are translated where they are shown ---------------------------------------

class Message:
    """A message for people, kept as its English ``msgid`` and named ``params`` until shown.

    The library builds these (``Message(N_("store {path} is full"), path=p)``); ``str()`` is the
    English text (logs, ``--json``, the catalog's ``reason`` columns: the same in every language)
    and ``text()`` the reader's language, rendered at the edge. A param that is itself a message
    (a ``Message``, an evidock or driver error) is translated with it. ``to_json()`` /
    ``from_json()`` keep one in the catalog, so that a stored reason is shown translated later.
    """

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, /, **params: Any) -> None:
        self.msgid, self.params = msgid, params

    def __str__(self) -> str:
        return render(self.msgid, self.params, translate=False)

    def __repr__(self) -> str:
        return f"Message({self.msgid!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.msgid, self.params) == (other.msgid, other.params)

    def __hash__(self) -> int:
        return hash(self.msgid)

    def text(self) -> str:
        """The message in the current language."""
        return render(self.msgid, self.params, translate=True)

    def to_json(self) -> dict[str, Any]:
        """``{"id": msgid, "params": {...}}``, nested messages as the same shape."""
        return {"id": self.msgid, "params": {k: _param_json(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """The message ``to_json`` wrote."""
        params = {k: cls.from_json(v) if isinstance(v, Mapping) and "id" in v else v
                  for k, v in (data.get("params") or {}).items()}
        return cls(str(data["id"]), **params)


def dumps(message: object) -> str | None:
    """A message as the JSON text kept in a ``*_msg`` column; ``None`` for a plain string."""
    import json

    if not is_message(message):
        return None
    return json.dumps(Message(message.msgid, **message.params).to_json(),  # type: ignore[attr-defined]
                      ensure_ascii=False, sort_keys=True)


def stored(english: str | None, message_json: str | None) -> str:
    """A stored message in the reader's language: from its ``*_msg`` JSON when the row has one,
    else the English the row was written with (rows from before issue 12, or plain text)."""
    import json

    if message_json:
        try:
            return Message.from_json(json.loads(message_json)).text()
        except (ValueError, KeyError, TypeError):
            log.warning("a stored message does not read back: %r", message_json[:200])
    return english or ""


def _param_json(v: Any) -> Any:
    if is_message(v):
        return Message(v.msgid, **v.params).to_json()
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def is_message(obj: object) -> bool:
    """True for anything carrying ``msgid`` and ``params``: a ``Message``, an evidock or driver error."""
    return isinstance(getattr(obj, "msgid", None), str) and isinstance(getattr(obj, "params", None), Mapping)


def render(msgid: str, params: Mapping[str, Any], translate: bool | Callable[[str], str]) -> str:
    """``msgid`` with ``params`` filled in, nested messages rendered alike: translated into the
    current language (``translate=True``), by a catalog's own gettext (a language not the
    current one: an alert told in both), or the English (False).

    A message without params is not formatted (its braces are literal), as gettext's own.
    """
    template = (translate(msgid) if callable(translate) else gettext(msgid)) if translate else msgid
    if not params:
        return template
    values = {k: (render(v.msgid, v.params, translate) if is_message(v) else v) for k, v in params.items()}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        # A broken translation must not hide the message: fall back to the English.
        log.warning("message catalog: the translation of %r does not fit its params", msgid)
        return msgid.format(**values)


def message_of(e: BaseException) -> Message:
    """An error as the message it carries (evidock and driver errors carry one), else its English."""
    if is_message(e):
        return Message(e.msgid, **e.params)  # type: ignore[attr-defined]
    return Message(N_("{message}"), message=str(e))


def text(obj: object) -> str:
    """Anything shown to people, in the current language: a message or error carrying a ``msgid``
    is translated, a plain string is shown as it is."""
    if is_message(obj):
        return render(obj.msgid, obj.params, translate=True)  # type: ignore[attr-defined]
    return str(obj)

# --- the operating system's words ----------------------------------------------------------------
# ``strerror`` is English (stations run C.UTF-8): the common ones are catalog messages, whose
# English is exactly ``os.strerror`` (anything else, or another libc's wording, stays as it is).

def _os_errors() -> dict[int, str]:
    import errno

    words = {"ENOENT": N_("No such file or directory"), "EACCES": N_("Permission denied"),
             "EPERM": N_("Operation not permitted"), "ENOSPC": N_("No space left on device"),
             "EIO": N_("Input/output error"), "EISDIR": N_("Is a directory"), "ENOTDIR": N_("Not a directory"),
             "EROFS": N_("Read-only file system"), "EEXIST": N_("File exists"),
             "EBUSY": N_("Device or resource busy"), "ENODEV": N_("No such device"),
             "ETIMEDOUT": N_("Connection timed out")}
    return {getattr(errno, k): v for k, v in words.items() if hasattr(errno, k)}


OS_ERRORS = _os_errors()


def os_error(err: BaseException | int | None) -> Message | str:
    """An OSError's words as a param of a message for people: a catalog message when they are
    one of the common ones (the English unchanged: it is ``os.strerror``), else its own text."""
    code = err if isinstance(err, int) else getattr(err, "errno", None)
    english = os.strerror(code) if isinstance(code, int) else None
    strerror = getattr(err, "strerror", None) or english or (str(err) if err is not None else "")
    msgid = OS_ERRORS.get(code) if isinstance(code, int) else None
    if msgid is not None and msgid == strerror:
        return Message(msgid)
    return strerror


# click's modules that translate (``_termui_impl`` is loaded lazily, so it is loaded here first).
CLICK_MODULES = ("click.core", "click.exceptions", "click.parser", "click.types", "click.decorators",
                 "click.formatting", "click.termui", "click.utils", "click._termui_impl", "click.shell_completion")


# The names click's types show in metavars (``INTEGER RANGE``) and messages ("not a valid
# integer range", "Directory '…' is a file"): class attributes, or set when the tree is built,
# so never through ``_``. They are looked up in the catalog each time they are read.
CLICK_TYPE_NAMES = {"StringParamType": N_("text"), "IntParamType": N_("integer"), "IntRange": N_("integer range"),
                    "FloatParamType": N_("float"), "FloatRange": N_("float range"), "BoolParamType": N_("boolean"),
                    "UUIDParameterType": N_("uuid"), "DateTime": N_("datetime"), "File": N_("filename"),
                    "Path": N_("path"), "Choice": N_("choice")}
# click translates these through a variable (``_(extra["required"])``): marked here for the catalog.
CLICK_WORDS = (N_("required"), N_("file"), N_("directory"))


class _TypeName:
    """A click type's ``name``, translated when read; an instance may set its own (``Path``)."""

    def __init__(self, default: str) -> None:
        self.default = default

    def __get__(self, obj: Any, owner: type | None = None) -> str:
        value = self.default if obj is None else obj.__dict__.get("_evidock_name", self.default)
        return gettext(value)

    def __set__(self, obj: Any, value: str) -> None:
        # Built while Chinese is spoken, click set "目录": keep the English, translated when read.
        english = {gettext(w): w for w in (*CLICK_WORDS, *CLICK_TYPE_NAMES.values())}
        obj.__dict__["_evidock_name"] = english.get(value, value)


def _translate_click_types() -> None:
    import click.core
    import click.types

    for cls_name, word in CLICK_TYPE_NAMES.items():
        cls = getattr(click.types, cls_name, None)
        if cls is not None and not isinstance(cls.__dict__.get("name"), _TypeName):
            cls.name = _TypeName(word)
    if not getattr(click.core.Option.get_help_record, "_evidock", False):
        original = click.core.Option.get_help_record

        def get_help_record(self: Any, ctx: Any) -> tuple[str, str] | None:
            # A default that is a catalog message (``default=N_("registered by staff")``) is
            # shown translated; the value used stays the English.
            default = self.default
            if isinstance(default, str) and default and gettext(default) != default:
                self.default = gettext(default)
                try:
                    rv = original(self, ctx)
                finally:
                    self.default = default
            else:
                rv = original(self, ctx)
            if rv is None or not rv[1].endswith("]") or "  [" not in rv[1]:
                return rv
            text, _sep, extra = rv[1].rpartition("  [")
            return rv[0], f"{text}  [{extra.replace('; ', gettext('; '))}"

        get_help_record._evidock = True  # type: ignore[attr-defined]
        click.core.Option.get_help_record = get_help_record  # type: ignore[method-assign]


_SENTENCE_END = N_(".")  # the end of click's sentence "Missing option '--x'."


def _translate_missing_parameter() -> None:
    """click ends "Missing option '--x'" with a literal ``.``: the sentence's end, translated."""
    import click.exceptions as ce

    cls = ce.MissingParameter
    if getattr(cls.format_message, "_evidock", False):
        return
    original = cls.format_message

    def format_message(self: Any) -> str:
        rv = original(self)
        hint = self.param_hint if self.param_hint is not None else (
            self.param.get_error_hint(self.ctx) if self.param is not None else None)
        hint = ce._join_param_hints(hint)  # type: ignore[attr-defined]
        end = f" {hint}." if hint else "."
        head, found, tail = rv.partition(end)
        return f"{head}{end[:-1]}{gettext(_SENTENCE_END)}{tail}" if found else rv

    format_message._evidock = True  # type: ignore[attr-defined]
    cls.format_message = format_message  # type: ignore[method-assign]


def route_click_messages() -> None:
    """Make click's own messages come from evidock's catalog, in the current language.

    click binds ``gettext.gettext`` / ``gettext.ngettext`` at import (``from gettext import
    gettext as _``); each such name in its modules is pointed at this module's functions, which
    look the language up on every call.
    """
    import importlib

    for name in CLICK_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover — a module of another platform or click version
            continue
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "click" or name.startswith("click.")):
            continue
        for attr, value in list(vars(mod).items()):
            if value is _gettext.gettext:
                setattr(mod, attr, gettext)
            elif value is _gettext.ngettext:
                setattr(mod, attr, ngettext)
    _translate_click_types()
    _translate_missing_parameter()
