"""The rules auto-filing decides by, in one place: which footage is filed at all (``fileable``),
the config numbers the decision uses (``FilingRules``) and the order of the decision (``decide``).

The order (issue 14): the footage's corrected time inside the activity windows (± the margin)
of exactly one of the officer's cases -> that case; else the officer has exactly one case whose
window (opened … closed) holds it -> that case; else ambiguous, its candidates kept (those of
the first rule that found any). A segment (chunks of one recording, ``daemon.cases.segments``)
is decided as one: the union of what its chunks match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.catalog import kinds


def fileable(row: Mapping[str, Any]) -> bool:
    """Whether auto-filing files this footage row (``footage`` columns) at all.

    Its kind decides (``daemon.catalog.kinds``: video, audio, photo and unknown files are;
    tracks and logs follow the media they overlap, system files stay with the recorder); a row
    without a kind yet counts as fileable. A row that is not fileable is neither filed by officer
    and time nor part of a segment; what a person filed stays.
    """
    return kinds.fileable(row.get("kind"))


@dataclass(frozen=True)
class FilingRules:
    """The numbers of ``[filing]`` that auto-filing uses (``daemon.config_filing``)."""

    activity_margin_s: float = 15 * 60
    segment_gap_s: float = 60
    chunk_max_s: float = 900

    @classmethod
    def of(cls, filing: Any) -> FilingRules:
        """From the config's ``[filing]`` section (``config.filing``)."""
        return cls(activity_margin_s=filing.activity_margin_min * 60, segment_gap_s=filing.segment_gap_s,
                   chunk_max_s=filing.chunk_max_s)


@dataclass(frozen=True)
class Decision:
    """What auto-filing decides for one chunk: the case (or None), the candidates when ambiguous,
    and which rule decided (``activity`` | ``window`` | ``none``)."""

    case: str | None
    candidates: list[str]
    rule: str


def decide(activity_cases: Iterable[str], window_cases: Iterable[str], blocked: Iterable[str] = ()) -> Decision:
    """Apply the order above; ``blocked``: cases a person took this footage out of (never auto-filed there)."""
    no = set(blocked)
    for rule, cases in (("activity", activity_cases), ("window", window_cases)):
        left = sorted(set(cases) - no)
        if len(left) == 1:
            return Decision(left[0], [], rule)
        if left:
            return Decision(None, left, rule)
    return Decision(None, [], "none")
