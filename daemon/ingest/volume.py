"""Walking a recorder's volume without trusting it (invariant 5).

Everything here works with byte names and directory file descriptors (``openat``-style), so:
- names that are not UTF-8 (a FAT volume read with the wrong codepage) survive losslessly,
  and names with newlines, leading dashes or spaces are just bytes;
- symbolic links are never followed, at any depth (``O_NOFOLLOW`` on every component);
- a directory 40 levels deep never meets ``PATH_MAX``;
- the walk stays on the volume (a directory on another filesystem is not entered);
- FIFOs, sockets and device nodes are reported and never opened.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from daemon.display import shown
from daemon.errors import NotTheSameFile
from daemon.i18n import Message, N_, os_error
from drivers import beneath

MAX_DEPTH = 128  # deeper than any recorder writes; bounds the directory fds held open

_O_DIR = beneath.O_DIR  # the walk opens each directory as the reads and wipes do


@dataclass(frozen=True)
class Entry:
    """One regular file found on the volume."""

    rel: bytes  # path relative to the volume root, b"/"-separated
    size: int
    mtime_ns: int
    dev: int
    ino: int
    important: bool

    @property
    def display(self) -> str:
        return display_path(self.rel)


@dataclass(frozen=True)
class Problem:
    """One entry that was skipped or could not be stored, and why, in words for people."""

    rel: bytes
    reason: Message  # str(): the English (JSON, problems.reason); text(): the reader's language
    severity: str = "warning"  # warning: not a regular file / skipped; error: a file was not stored

    @property
    def display(self) -> str:
        return display_path(self.rel)


def display_path(rel: bytes) -> str:
    """Text form of a byte path: UTF-8 where it decodes, ``\\xNN`` for bytes that do not."""
    return rel.decode("utf-8", "backslashreplace")


def quoted(rel: bytes) -> str:
    """A one-line, quoted form for messages: escaped unambiguously (``daemon.display.shown``)."""
    return "'" + shown(rel) + "'"


_KIND = {
    stat.S_IFIFO: N_("a FIFO (named pipe)"),
    stat.S_IFSOCK: N_("a socket"),
    stat.S_IFCHR: N_("a character device node"),
    stat.S_IFBLK: N_("a block device node"),
}


def scan(root: Path | str, important: re.Pattern[str]) -> tuple[list[Entry], list[Problem]]:
    """All regular files under ``root`` (important first, then oldest first) and the problems met."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    root_fd = os.open(os.fsencode(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        root_dev = os.fstat(root_fd).st_dev
        _walk(root_fd, b"", root_dev, 0, important, entries, problems)
    finally:
        os.close(root_fd)
    entries.sort(key=lambda e: (not e.important, e.mtime_ns, e.rel))
    return entries, problems


def _walk(dfd: int, prefix: bytes, root_dev: int, depth: int, important: re.Pattern[str],
          entries: list[Entry], problems: list[Problem]) -> None:
    try:
        names = sorted(os.fsencode(e.name) for e in os.scandir(dfd))
    except OSError as e:
        problems.append(Problem(prefix.rstrip(b"/") or b".", Message(N_("directory could not be listed ({error}); its files stay on the recorder"), error=os_error(e)), "error"))
        return
    for name in names:
        rel = prefix + name
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError as e:
            problems.append(Problem(rel, Message(N_("vanished or unreadable while scanning ({error})"), error=os_error(e)), "error"))
            continue
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            try:
                target: object = quoted(os.readlink(name, dir_fd=dfd))
            except OSError:
                target = Message(N_("an unreadable target"))
            problems.append(Problem(rel, Message(N_("symbolic link to {target}: links are never followed (a file it points at on the volume is offloaded under its own name)"), target=target)))
        elif stat.S_ISDIR(mode):
            if st.st_dev != root_dev:
                problems.append(Problem(rel, Message(N_("another filesystem is mounted here: not entered (the offload stays on the recorder's volume)"))))
                continue
            if depth + 1 > MAX_DEPTH:
                problems.append(Problem(rel, Message(N_("directory nested deeper than {depth} levels: not entered; its files stay on the recorder"), depth=MAX_DEPTH), "error"))
                continue
            try:
                sub = os.open(name, _O_DIR, dir_fd=dfd)
            except OSError as e:
                problems.append(Problem(rel, Message(N_("directory could not be opened ({error}); its files stay on the recorder"), error=os_error(e)), "error"))
                continue
            try:
                _walk(sub, rel + b"/", root_dev, depth + 1, important, entries, problems)
            finally:
                os.close(sub)
        elif stat.S_ISREG(mode):
            imp = bool(important.search(display_path(name)))
            entries.append(Entry(rel, st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino, imp))
        else:
            known = _KIND.get(stat.S_IFMT(mode))
            kind = Message(known) if known else Message(N_("a special file (mode {mode})"), mode=format(mode, "o"))
            problems.append(Problem(rel, Message(N_("{kind}, not a regular file: not opened"), kind=kind)))


@contextmanager
def open_beneath(root: Path | str, entry: Entry) -> Iterator[int]:
    """Open a scanned regular file for reading, refusing links at every step and any swap since the scan."""
    try:
        opened = beneath.open_beneath(root, entry.rel)
        _, _, fd = opened.__enter__()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotTheSameFile(errno.ELOOP, "became a symbolic link since the scan") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (entry.dev, entry.ino):
            raise NotTheSameFile(errno.ESTALE, "was replaced by another file since the scan")
        os.set_blocking(fd, True)
        yield fd
    finally:
        opened.__exit__(None, None, None)

def volume_alive(root: Path | str) -> bool:
    """Can the volume still be listed? (After a read error: a bad file, or a gone recorder?)"""
    try:
        fd = os.open(os.fsencode(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for _ in os.scandir(fd):
            break
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
