"""Bounds on what is read from a recorder (invariant 5): a file is read up to its listed size
plus a margin and no further, a file still growing past it is reported as changing; and how a
failed read is described to people.
"""

from __future__ import annotations

import logging

from daemon.errors import (
    ReadTimeout,
    format_bytes,
)
from daemon.evidence.staging import Partial
from daemon.i18n import N_, Message, is_message
from daemon.ingest.volume import Entry, quoted

log = logging.getLogger(__name__)


# How far past its listed size a file may be read. A file can legitimately be a little longer
# than the directory listing said: a recorder finishing a segment (MP4 index written at close),
# a log it appends a line to, a FAT entry whose size is updated only when the file is closed.
# Those differences are small and scale with the file, hence 1 % of the listed size, with 1 MiB
# as a floor for small files (logs, stills). Anything more is a file still being recorded or a
# broken/hostile volume; reading on would let one file eat the store (a 113 MB file was read as
# 474 MB). The free-space check counts the listed size only: the margin comes out of the
# store's reserve (store.reserve_bytes), and a disk that still fills meets the clean ENOSPC path.
GROWTH_MARGIN_MIN = 1 << 20
GROWTH_MARGIN_PERCENT = 1


def growth_margin(listed: int) -> int:
    """Bytes a file may hold beyond the size listed at the scan: max(1 MiB, 1 %)."""
    return max(GROWTH_MARGIN_MIN, listed * GROWTH_MARGIN_PERCENT // 100)


def read_limit(listed: int) -> int:
    """The most bytes read from a file listed at ``listed`` bytes; past it, it is "changing"."""
    return max(listed, 0) + growth_margin(max(listed, 0))


def _discard_changing(part: Partial, e: Entry) -> None:
    """Drop the partial of a file that grew past its limit.

    Kept, it would help nobody: a file still being written is listed with another size and
    mtime next time, so under another transfer key, and this partial would linger as "stale"
    with a false "no longer on the recorder"; a volume that lies about a size would only hit the
    limit again. Not silent: the file's problem says so, and the session records the problem.
    """
    log.warning("%s grew past its read limit; its partial %s is discarded", quoted(e.rel), part.journal.key)
    try:
        part.finish()
    except OSError as err:
        log.warning("could not remove partial %s (%s); `evidock staging discard %s` removes it",
                    part.journal.key, err.strerror, part.journal.key)


def _changing(e: Entry, limit: int) -> Message:
    return Message(N_("is still changing: it holds more than {limit} bytes, while {size} were listed when the recorder was "
                      "scanned (at most {margin} more are accepted). Not stored: the file stays on "
                      "the recorder and its partial was discarded. Let the recorder finish writing it, then offload again; "
                      "if it keeps growing, the recorder's volume is faulty"),
                   limit=limit, size=e.size, margin=format_bytes(growth_margin(e.size)))


def _why(err: BaseException) -> object:
    """Why a read failed, for a message's param: a ``ReadTimeout`` as its own (translated) message,
    an OS error as its ``strerror``."""
    if isinstance(err, ReadTimeout):
        return err
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return err if is_message(err) else str(err)
