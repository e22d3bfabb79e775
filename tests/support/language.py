"""Which English of the catalog shows in output that should be Chinese (issue 12's tests).

A message with placeholders cannot be searched for whole; its literal pieces can. A piece counts
when it is long enough to be a phrase (three words or more) and is not kept in the translation
itself (commands, option names and paths stay verbatim in the Chinese).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from daemon import i18n_build

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _pieces(msgid: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(msgid))
    except ValueError:
        return [msgid]
    return [literal for literal, *_ in parsed if literal]


@lru_cache(maxsize=1)
def english_phrases() -> tuple[re.Pattern[str], ...]:
    """The catalog's English phrases (whole messages, or the literal pieces of a template)."""
    out = []
    for m in i18n_build.read_po("zh"):
        if not isinstance(m.id, str) or not m.id or not m.string or m.id == m.string:
            continue
        for piece in _pieces(m.id):
            piece = piece.strip(" ,.;:()'\"`")
            if len(piece) < 12 or len(piece.split()) < 3 or piece in m.string:
                continue
            if not re.search(r"[A-Za-z]{3}", piece):
                continue
            out.append(re.compile(r"(?<![\w-])" + re.escape(piece) + r"(?![\w-])"))
    return tuple(out)


def english_in(text: str) -> list[str]:
    """The catalog's English phrases found in ``text`` (output that should be all Chinese)."""
    return sorted({p.pattern for p in english_phrases() if p.search(text)})


def chinese_in(text: str, data: tuple[str, ...] = ()) -> list[str]:
    """Chinese characters in ``text`` outside the given data values (English output)."""
    for d in data:
        text = text.replace(d, "")
    return CJK.findall(text)


_VERBATIM = (
    re.compile(r"`[^`]*`"),                              # commands quoted in a message
    re.compile(r"'evidock[^']*'"),                       # click's "Try 'evidock … --help'"
    re.compile(r"\bevidock(?: +(?:--?[\w-]+|[\w./|-]+))*"),  # a command line shown as a hint
    re.compile(r"(?:/[\w.@+~-]+)+/?"),                  # paths
    re.compile(r"\b[0-9a-f]{12,}\b"),                    # hashes
)
_SENTENCE = re.compile(r"\b[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,})+\b")


def english_sentences(text: str, data: tuple[str, ...] = ()) -> list[str]:
    """Runs of two or more English words in ``text``, outside data, commands, paths and hashes:
    what a Chinese reader would see as an untranslated sentence, whether it is in the catalog or not."""
    for d in data:
        text = text.replace(d, " ")
    for pattern in _VERBATIM:
        text = pattern.sub(" ", text)
    return _SENTENCE.findall(text)
