"""Building the message catalogs with Babel: extract, update, compile, check.

``python -m daemon.i18n_build update`` after changing messages: it extracts every message into
``daemon/locale/evidock.pot`` and merges it into each ``.po`` (new messages come in untranslated,
gone ones are dropped); then translate the empty entries (``todo`` prints them as JSON, ``fill
FILE.json`` writes a filled copy back). ``compile`` writes each ``.mo`` beside
its ``.po`` (only when it changed: ``scripts/setup`` runs it every time; the wheel build in
``setup.py`` compiles into the build too). ``check`` lists what is wrong (a test runs it).

What is extracted, all with Babel into one catalog:

- evidock's own messages: ``_()``, ``ngettext()``, ``N_()`` … in ``daemon/`` and ``drivers/``
  (Babel's Python extractor);
- help texts: walked from the built ``evidock`` command tree (docstrings and option help,
  paragraph by paragraph, as ``daemon.cli.helptext`` translates them);
- click's own messages (``Usage:``, ``Missing option`` …) from the installed click's modules,
  since click looks them up through evidock's catalog (``daemon.i18n.route_click_messages``).

Babel is a build and test dependency, not a run-time one: this module is never imported by the
station itself.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from daemon.i18n import CATALOGS, DOMAIN, LOCALE_DIR

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
CLICK_FILES = ("core.py", "exceptions.py", "parser.py", "types.py", "decorators.py", "formatting.py")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None,
            "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3)}


def po_path(lang: str) -> Path:
    """The ``.po`` source of ``lang``."""
    return LOCALE_DIR / CATALOGS[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Any:
    """Every message of evidock (code, help texts) and of click, as a Babel ``Catalog``."""
    import click
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir, extract_from_file

    from daemon.cli import cli
    from daemon.cli.helptext import help_messages

    cat = Catalog(project="evidock", domain=DOMAIN, charset="utf-8")
    # The drivers' messages too: they import nothing of the daemon, but their errors are shown
    # to people by it (``drivers.errors.N_`` marks them).
    for top in ("daemon", "drivers"):
        for fname, lineno, message, comments, context in extract_from_dir(
                str(REPO / top), method_map=[("locale/**", "ignore"), ("**.py", "python")],
                keywords=KEYWORDS):
            cat.add(message, locations=[(f"{top}/{fname}", None)], auto_comments=comments, context=context)
    for text, where in help_messages(cli):
        cat.add(text, locations=[(f"help: {where}", None)])
    click_dir = Path(click.__file__).parent
    for name in CLICK_FILES:
        for lineno, message, comments, context in extract_from_file("python", str(click_dir / name),
                                                                    keywords=KEYWORDS):
            cat.add(message, locations=[(f"click/{name}", None)], context=context)
    return cat


def _write(catalog: Any, path: Path, **kw: Any) -> bool:
    """Write ``catalog`` as a ``.po``/``.pot`` at ``path`` if its text changed; True if written."""
    from babel.messages.pofile import write_po

    buf = io.BytesIO()
    write_po(buf, catalog, width=100, include_lineno=False, omit_header=False, **kw)
    data = buf.getvalue()
    if path.exists() and _without_dates(path.read_bytes()) == _without_dates(data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def _without_dates(data: bytes) -> bytes:
    return b"\n".join(line for line in data.split(b"\n") if not line.startswith((b'"POT-Creation-Date', b'"PO-Revision-Date')))


def read_po(lang: str) -> Any:
    """The ``.po`` of ``lang`` as a Babel ``Catalog``."""
    from babel.messages.pofile import read_po as _read

    with po_path(lang).open("rb") as f:
        return _read(f, locale=CATALOGS[lang], domain=DOMAIN)


def update() -> None:
    """Re-extract the template and merge it into every ``.po`` (drops gone messages)."""
    template = extract()
    _write(template, TEMPLATE)
    for lang in CATALOGS:
        path = po_path(lang)
        if path.exists():
            po = read_po(lang)
            po.update(template, no_fuzzy_matching=True)
        else:
            from babel.messages.catalog import Catalog

            po = Catalog(locale=CATALOGS[lang], domain=DOMAIN, project="evidock", charset="utf-8")
            po.update(template, no_fuzzy_matching=True)
        _write(po, path, ignore_obsolete=True)


def compiled(lang: str) -> bytes:
    """The ``.mo`` bytes of ``lang``'s ``.po``."""
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, read_po(lang), use_fuzzy=False)
    return buf.getvalue()


def compile_all(target: Path = LOCALE_DIR) -> list[Path]:
    """Write every ``.mo`` under ``target`` (default: beside its ``.po``) that is missing or stale."""
    written = []
    for lang in CATALOGS:
        if not po_path(lang).exists():
            continue
        mo = target / CATALOGS[lang] / "LC_MESSAGES" / f"{DOMAIN}.mo"
        data = compiled(lang)
        if not mo.exists() or mo.read_bytes() != data:
            mo.parent.mkdir(parents=True, exist_ok=True)
            mo.write_bytes(data)
            written.append(mo)
    return written


def placeholders(text: str) -> set[str]:
    """The names of ``text``'s ``{name…}`` fields (a translation must keep every one)."""
    import string

    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return {"<unbalanced braces>"}


def todo(lang: str = "zh") -> dict[str, str]:
    """The untranslated or fuzzy messages of ``lang``, as ``{msgid: ""}`` to fill in."""
    return {_key(m): "" for m in read_po(lang) if m.id and isinstance(m.id, str) and (m.fuzzy or not m.string)}


def _key(m: Any) -> Any:
    """A message's key in ``todo``/``fill``/``check``: its id, ``context\x04id`` within a context
    (gettext's own spelling), so ``pgettext("column", "closed")`` and ``"closed"`` stay apart."""
    if m.context and isinstance(m.id, str):
        return f"{m.context}\x04{m.id}"
    return m.id


def fill(translations: dict[str, str], lang: str = "zh") -> list[str]:
    """Write ``translations`` (``{msgid: msgstr}``) into ``lang``'s ``.po``; the ids it does not have."""
    po = read_po(lang)
    missing = []
    for mid, text in translations.items():
        if not text:
            continue
        context, _, msgid = mid.rpartition("\x04")
        m = po.get(msgid, context=context or None)
        if m is None:
            missing.append(mid)
            continue
        m.string = text
        m.flags.discard("fuzzy")
    _write(po, po_path(lang), ignore_obsolete=True)
    return missing


def check() -> list[str]:
    """Every problem of the catalogs: untranslated, fuzzy, stale or missing entries, a stale
    template, a ``.mo`` that is not the compiled ``.po``."""
    from babel.messages.pofile import read_po as _read

    template = extract()
    wanted = {_key(m) for m in template if m.id}
    problems = []
    with TEMPLATE.open("rb") as f:
        pot = {_key(m) for m in _read(f) if m.id}
    if pot != wanted:
        problems.append(f"{TEMPLATE.name} is stale ({len(wanted - pot)} new, {len(pot - wanted)} gone messages): "
                        "run `python -m daemon.i18n_build update`")
    for lang in CATALOGS:
        po = read_po(lang)
        have = {_key(m): m for m in po if m.id}
        for mid in sorted(wanted - have.keys(), key=str):
            problems.append(f"{lang}: not in the .po: {mid!r}")
        for mid in sorted(have.keys() - wanted, key=str):
            problems.append(f"{lang}: stale (no longer in the code): {mid!r}")
        for mid, m in have.items():
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            if m.fuzzy:
                problems.append(f"{lang}: fuzzy: {mid!r}")
            elif not all(strings):
                problems.append(f"{lang}: untranslated: {mid!r}")
            if m.string and not m.fuzzy and not m.pluralizable and placeholders(m.string) != placeholders(mid):
                problems.append(f"{lang}: the translation of {mid!r} has the placeholders "
                                f"{sorted(placeholders(m.string))}, the message {sorted(placeholders(mid))}")
        for m in po.obsolete.values():
            problems.append(f"{lang}: obsolete entry left in the .po: {m.id!r}")
        mo = LOCALE_DIR / CATALOGS[lang] / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if not mo.exists() or mo.read_bytes() != compiled(lang):
            problems.append(f"{lang}: {mo.name} is missing or older than the .po: run scripts/setup")
    return problems


def main(argv: list[str]) -> int:
    """``python -m daemon.i18n_build extract|update|todo|fill FILE.json|compile|check``."""
    cmd = argv[0] if argv else "check"
    if cmd == "extract":
        print("wrote" if _write(extract(), TEMPLATE) else "unchanged", TEMPLATE)
    elif cmd == "update":
        update()
    elif cmd == "compile":
        for p in compile_all():
            print("compiled", p, file=sys.stderr)
    elif cmd == "todo":  # what is left to translate, as JSON to fill in and give to `fill`
        import json

        print(json.dumps(todo(), ensure_ascii=False, indent=1))
    elif cmd == "fill" and len(argv) == 2:
        import json

        missing = fill(json.loads(Path(argv[1]).read_text(encoding="utf-8")))
        for mid in missing:
            print("not in the .po (run update first?):", repr(mid), file=sys.stderr)
        return 1 if missing else 0
    elif cmd == "check":
        problems = check()
        for p in problems:
            print(p)
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
