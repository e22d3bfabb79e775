"""Opening a file beneath a root without following a link anywhere on the way: the one walker
used to read a recorder's files (``daemon.ingest.volume``) and to wipe them (``drivers.base``).

Hand-written because Python exposes no ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)``: each
component is opened with ``O_NOFOLLOW`` relative to the directory before it, so a symlink
swapped in at any level is refused (``ELOOP``) instead of followed (invariant 5).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: if a regular file is swapped for a FIFO between scan and open, open must not hang.
O_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


@contextlib.contextmanager
def open_beneath(root: int | str | bytes | os.PathLike[str], rel: bytes) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(parent_fd, name, fd)`` for ``rel`` under ``root`` (a path, or a directory fd that is
    not taken over), the file opened read-only and non-blocking. Raises ``OSError`` as ``os.open``
    does (``ELOOP`` for a link on the way). Both fds are closed on exit."""
    parts = rel.split(b"/")
    first = os.dup(root) if isinstance(root, int) else os.open(os.fsencode(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fds = [first]
    try:
        for d in parts[:-1]:
            fds.append(os.open(d, O_DIR, dir_fd=fds[-1]))
        fd = os.open(parts[-1], O_FILE, dir_fd=fds[-1])
        try:
            yield fds[-1], parts[-1], fd
        finally:
            os.close(fd)
    finally:
        for d in fds:
            os.close(d)
