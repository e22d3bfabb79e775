"""Help texts in the reader's language: click's command and group classes, translated when shown.

Commands keep their help in English where they are written (docstrings, ``help=`` of options);
these classes translate it when help is *rendered*, so the language only has to be known by
then (``evidock --lang zh footage list --help``), and the command tree can be built once, in
any language. The unit of translation is a paragraph with its whitespace folded (click rewraps
paragraphs anyway); a ``\\b`` block (an example) is kept verbatim except its title line
(``Example:``), so the commands in examples are never translated. ``help_messages`` walks a
command tree and lists every such text, for the catalog (``daemon/i18n_build.py``), and
``install_cjk_wrapping`` makes click wrap help by display width.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager

import click

from daemon.display import width
from daemon.i18n import gettext


def fold(text: str) -> str:
    """A paragraph as one line (its msgid)."""
    return " ".join(text.split())


def help_units(text: str | None) -> list[str]:
    """The texts to translate in one help text: its paragraphs and its ``\\b`` blocks' titles."""
    if not text:
        return []
    out = []
    for para in inspect.cleandoc(text).partition("\f")[0].split("\n\n"):
        if para.startswith("\b\n"):
            title = para.split("\n")[1].strip()
            if title.endswith(":"):
                out.append(title)
            out += [desc for _term, desc in _listed(para)]
        elif para.strip():
            out.append(fold(para))
    return out


_LIST_ITEM = re.compile(r"^(\s+[\w@=\[\]-]+): (.+)$")


def _listed(para: str) -> list[tuple[str, str]]:
    """A ``\b`` block that lists terms (``  low-battery: battery at 12 %``), not an example:
    its ``(term, description)`` lines; the descriptions are translated, the terms kept."""
    lines = para.split("\n")
    if len(lines) < 2 or lines[1].strip().lower().startswith("example"):
        return []
    return [(m.group(1), m.group(2)) for line in lines[2:] if (m := _LIST_ITEM.match(line))]


def translate_help(text: str | None) -> str | None:
    """``text`` (a command's or option's help) in the current language, paragraph by paragraph."""
    if not text:
        return text
    paras = []
    for para in inspect.cleandoc(text).partition("\f")[0].split("\n\n"):
        if para.startswith("\b\n"):
            lines = para.split("\n")
            title = lines[1].strip()
            if title.endswith(":"):
                lines[1] = lines[1].replace(title, gettext(title))
            items = dict(_listed(para))
            for i, line in enumerate(lines[2:], 2):
                m = _LIST_ITEM.match(line)
                if m and m.group(1) in items:
                    lines[i] = f"{m.group(1)}: {gettext(m.group(2))}"
            paras.append("\n".join(lines))
        elif para.strip():
            paras.append(gettext(fold(para)))
    return "\n\n".join(paras)


@contextmanager
def _translated(cmd: click.Command) -> Iterator[None]:
    """While help is rendered: the command's and its options' help texts translated."""
    saved = [(cmd, "help", cmd.help), (cmd, "short_help", cmd.short_help), (cmd, "epilog", cmd.epilog)]
    saved += [(p, "help", p.help) for p in cmd.params if isinstance(p, click.Option)]
    try:
        for obj, attr, value in saved:
            setattr(obj, attr, translate_help(value))
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)


class Command(click.Command):
    """A command whose help is shown in the current language."""

    def get_help(self, ctx: click.Context) -> str:
        with _translated(self):
            return super().get_help(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        with _translated(self):
            return super().get_short_help_str(limit)


class Group(Command, click.Group):
    """A group whose help, and whose commands' help, is shown in the current language."""

    command_class = Command


Group.group_class = Group  # subgroups are translated groups too


def help_messages(cmd: click.Command, path: str = "evidock") -> Iterator[tuple[str, str]]:
    """Every help text to translate in the tree under ``cmd``: ``(text, "evidock footage list")``."""
    for text in (cmd.help, cmd.short_help, cmd.epilog):
        for unit in help_units(text):
            yield unit, path
    for p in cmd.params:
        if isinstance(p, click.Option) and p.help:
            for unit in help_units(p.help):
                yield unit, f"{path} {p.opts[-1]}"
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from help_messages(sub, f"{path} {name}")


# --- wrapping help by display width --------------------------------------------------------------
# click wraps help with its own TextWrapper, measuring with ``term_len`` (characters). A Chinese
# character is two cells wide and Chinese has no spaces to break at: measured in characters, a
# Chinese paragraph runs twice the terminal's width and breaks ASCII words ("$XDG_DATA_|HOME").
# So the width is measured in cells and each CJK character is a chunk a line may break after.

_CJK_RUN = re.compile(r"([\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f])")


def _cells(text: str) -> int:
    from click._compat import strip_ansi

    return width(strip_ansi(text))


# Kinsoku: a line never starts with closing punctuation nor ends with an opening one.
_NO_LINE_START = set("，。；：）」』、！？》】”’")
_NO_LINE_END = set("（「『《【“‘")


def _kinsoku(pieces: list[str]) -> list[str]:
    """The chunks a line may break between, closing punctuation glued to the chunk before it and
    opening punctuation to the chunk after it."""
    out: list[str] = []
    for piece in pieces:
        if out and (piece[0] in _NO_LINE_START or (out[-1][-1] in _NO_LINE_END and not piece.isspace())):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def install_cjk_wrapping() -> None:
    """Make click's help wrapping measure display cells and break between CJK characters."""
    try:
        import click._textwrap as tw
        import click.formatting as fmt
    except ImportError:  # pragma: no cover — another click layout: wrapping stays click's own
        return
    if getattr(tw.TextWrapper, "_evidock_cjk", False):
        return
    base = tw.TextWrapper

    class CJKTextWrapper(base):  # type: ignore[misc, valid-type]
        _evidock_cjk = True

        def _split(self, text: str) -> list[str]:
            return _kinsoku([piece for chunk in super()._split(text) for piece in _CJK_RUN.split(chunk) if piece])

    tw.TextWrapper = CJKTextWrapper
    if hasattr(tw, "term_len"):
        tw.term_len = _cells
    if hasattr(fmt, "term_len"):
        fmt.term_len = _cells
