"""Help texts in the reader's language: click's command and group classes, translated when shown.

Commands keep their help in English where they are written (docstrings, ``help=`` of options);
these classes translate it when help is *rendered*, so the language only has to be known by
then (``evidock --lang zh footage list --help``), and the command tree can be built once, in
any language. The unit of translation is a paragraph with its whitespace folded (click rewraps
paragraphs anyway); a ``\\b`` block (an example) is kept verbatim except its title line
(``Example:``), so the commands in examples are never translated. ``help_messages`` walks a
command tree and lists every such text, for the catalog (``daemon/i18n_build.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager

import click

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
        elif para.strip():
            out.append(fold(para))
    return out


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
