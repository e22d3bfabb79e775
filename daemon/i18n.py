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
from collections.abc import Mapping
from pathlib import Path

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


def N_(message: str) -> str:  # noqa: N802 — the gettext convention
    """Mark ``message`` for the catalog without translating it yet (translate with ``_`` later)."""
    return message


_ = gettext

# click's modules that translate (``_termui_impl`` is loaded lazily, so it is loaded here first).
CLICK_MODULES = ("click.core", "click.exceptions", "click.parser", "click.types", "click.decorators",
                 "click.formatting", "click.termui", "click.utils", "click._termui_impl", "click.shell_completion")


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
