"""Named points on the store's write path where a test can make this process die for real.

Invariant 4 says any instant is a safe instant to die. The tests prove it by killing an
`evidock ingest` subprocess with SIGKILL at each step of the write path and then checking the
store. Timing a kill from outside cannot hit "after the rename, before the commit" reliably,
so the process kills *itself* (a real SIGKILL, not a simulated one) when ``EVIDOCK_CRASH_AT``
names the point it has reached. With the variable unset (always, in production) this is inert.
"""

from __future__ import annotations

import os
import signal

ENV = "EVIDOCK_CRASH_AT"

POINTS = (
    "copy-mid",  # some bytes written to the partial, nothing checkpointed yet
    "after-checkpoint",  # a checkpoint of the partial has been journalled
    "after-fsync",  # the whole partial written and fsync'd, not yet verified
    "after-verify",  # re-read and verified, journal says complete, still in staging
    "after-rename",  # renamed into objects/, catalog not yet committed
    "after-commit",  # catalog committed, journal not yet removed
)

# The backup run's points (daemon/backup; tests/backup): not on the store's write path.
BACKUP_POINTS = (
    "backup-copy-mid",  # a backup copy written to its temporary name, not yet fsync'd or verified
    "backup-after-put",  # a backup copy verified at its target, its backup_copies row not yet written
)


def crashpoint(name: str) -> None:
    """Die with SIGKILL here if ``$EVIDOCK_CRASH_AT`` is ``name`` (optionally ``name:N``, the Nth time)."""
    want = os.environ.get(ENV)
    if not want:
        return
    point, _, nth = want.partition(":")
    if point != name:
        return
    if nth:
        count = _hits.get(name, 0) + 1
        _hits[name] = count
        if count != int(nth):
            return
    os.kill(os.getpid(), signal.SIGKILL)


_hits: dict[str, int] = {}
