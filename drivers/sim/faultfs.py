"""faultfs: a fault-injecting, read-only FUSE passthrough filesystem (tests and the simulator).

It lives in ``drivers/sim/`` because the simulated recorder serves its volume through it at run
time (``evidock simulate --fault unplug-after=N``).

evidock copies evidence off body-worn recorders that show up as a mounted volume. Real recorder
volumes fail in ways a plain temporary directory never does: a read returns EIO half way through a
file, the device is unplugged mid-offload, a file shrinks while it is being copied or reports a
size that does not match its content, a file cannot be opened even by root, or a read simply never
returns. To test how evidock reacts, the tests need *real* system-call failures coming from a
*real* mounted filesystem, so that the code under test uses its ordinary ``open``/``read``/``stat``
path unchanged.

No library injects these faults (fault-injection tools on PyPI either mock Python functions, which
would bypass the very code we want to exercise, or need kernel features such as dm-flakey that are
not available to an unprivileged CI container), so this module is a small, hand-written passthrough
filesystem on top of ``mfusepy`` (a maintained fork of fusepy, bound to libfuse 2.9 here).

Usage as a script (foreground, until unmounted or killed)::

    python drivers/sim/faultfs.py SOURCE_DIR MOUNTPOINT RULES_JSON

RULES_JSON is the JSON text itself (starting with ``{``) or a path to a file
holding it::

    {"files": {RELPATH: RULE, ...}, "unplug_after_bytes": N or null, "read_mbps": R or null}

RELPATH is the path relative to SOURCE_DIR as a str; for a name that is not
valid UTF-8 use ``os.fsdecode(raw_bytes)`` (surrogateescape).  RULE is an
object with any of:

``"eio_after": N``
    Reads reaching offset >= N fail with EIO.  A read crossing N first returns only the bytes
    before N (a short read); the next read fails.
``"eacces": true``
    open() (and opendir() for a directory) fails with EACCES, even for root.
``"vanish_on_open": true``
    Listed by readdir and stat-able, but open()/opendir() fails with ENOENT.
``"lie_size": N``
    stat reports st_size N; reads still serve the real content, which may be longer or shorter than
    N.
``"shrink_after": N``
    Once N bytes of this file have been served (counted over all opens), the file behaves as if
    truncated to N bytes: stat reports N and reads at or after N return EOF.  The read that reaches
    N is itself cut at offset N, so a sequential reader gets exactly the first N bytes and then
    EOF.
``"hang_after": N``
    A read reaching offset >= N blocks until the filesystem is unmounted (it then fails with EIO)
    or the process is killed.  A read crossing N first returns only the bytes before N.
``"grow_forever": true``
    The file never ends, like one a writer appends to as fast as it is read (or a broken volume
    serving garbage): reads past the real content return zero bytes instead of EOF, without limit,
    and stat reports the real size or, once more was served, the farthest byte served so far.
``"slow_read_ms": N``
    Every read of this file takes N milliseconds longer (a slow card or USB link): the reader
    always gets its data, just late.
``"unplug_after_bytes": N``
    After N bytes in total have been served from all files, every operation (getattr, readdir,
    open, read, readlink, statfs, ...) fails with EIO, as if the recorder had been unplugged.  The
    read that reaches the budget is cut so that exactly N bytes are served.
``"read_mbps": R``
    All files together are served at R MB/s, as over a recorder's USB link (benchmarks).

Everything else is a plain read-only passthrough: symlinks are reported with lstat semantics and
their target is passed through by readlink (never followed by the filesystem itself),
FIFOs/devices/sockets keep their mode in stat but cannot be opened through the filesystem (EACCES),
names that are not UTF-8 are passed through byte for byte. The mount uses ``direct_io`` and zero
attribute/entry timeouts so that every read and every stat reaches the handlers, which is what
makes ``lie_size``/``shrink_after`` visible at once.

Caveat: the faults are exact for ``read(2)``/``pread(2)``, the path that a copy loop which hashes
what it copies uses. ``sendfile``/``splice`` (which is what ``shutil.copyfile`` uses on Linux) and
``mmap`` bypass ``direct_io`` on this kernel and go through the page cache. That path clamps reads
to the reported size and takes a short read as end of file. So there an
``eio_after``/``unplug_after_bytes`` cut looks like a silently truncated file, and ``lie_size``
smaller than the content truncates the copy.

``drivers/sim/faultfs_mount.py`` runs this script in a subprocess (``mounted_faultfs``), waits for
the mount and always unmounts and reaps it afterwards; ``FaultfsUnavailable`` says why FUSE
cannot be used on the machine (``tests/support/faultfs.py`` turns that into ``pytest.skip``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

if __package__ in (None, ""):  # run as a script (a FUSE process of its own): make `drivers` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from drivers.errors import ToolError  # noqa: E402
from drivers.mounts import is_mounted, mount_points, real  # noqa: E402,F401  (is_mounted: re-exported)
from drivers.sim.pacing import Link  # noqa: E402

# Exit codes of the script.
EXIT_OK = 0
EXIT_ERROR = 1  # unexpected failure (a bug): tests should fail, not skip
EXIT_USAGE = 2  # bad arguments or rules
EXIT_NO_FUSE = 3  # FUSE unusable here / the mount itself failed

_INT_RULES = ("eio_after", "lie_size", "shrink_after", "hang_after", "slow_read_ms")
_BOOL_RULES = ("eacces", "vanish_on_open", "grow_forever")

# mfusepy's default path codec; os.fsdecode/os.fsencode use the same one on Linux.
_ENC = "utf-8"
_ERRS = "surrogateescape"

log = logging.getLogger("faultfs")


class FaultfsUnavailable(ToolError, RuntimeError):
    """FUSE cannot be used on this machine, or the mount did not come up; the message says why."""


# --------------------------------------------------------------------------- rules


def _norm_rel(rel: str | bytes) -> bytes:
    """A relative path (str or bytes) as normalised bytes without leading '/'."""
    raw = os.fsencode(rel) if isinstance(rel, str) else bytes(rel)
    raw = raw.lstrip(b"/")
    if not raw:
        return b""
    raw = os.path.normpath(raw)
    return b"" if raw == b"." else raw


def validate_rules(rules: dict) -> dict:
    """Check a rule set and return it in canonical form (raises ValueError)."""
    if not isinstance(rules, dict):
        raise ValueError("rules must be a JSON object")
    unknown = set(rules) - {"files", "unplug_after_bytes", "read_mbps"}
    if unknown:
        raise ValueError(f"unknown top-level rule keys: {sorted(unknown)}")
    files = rules.get("files") or {}
    if not isinstance(files, dict):
        raise ValueError('"files" must be an object')
    unplug = rules.get("unplug_after_bytes")
    if unplug is not None and (isinstance(unplug, bool) or not isinstance(unplug, int) or unplug < 0):
        raise ValueError('"unplug_after_bytes" must be a non-negative integer or null')
    if (mbps := rules.get("read_mbps")) is not None and (isinstance(mbps, bool) or not isinstance(mbps, (int, float)) or mbps <= 0):
        raise ValueError('"read_mbps" must be a positive number or null')
    out_files: dict[str, dict[str, Any]] = {}
    for rel, rule in files.items():
        if not isinstance(rel, str) or not _norm_rel(rel):
            raise ValueError(f"bad file key {rel!r}: must be a non-empty relative path")
        if not isinstance(rule, dict):
            raise ValueError(f"rule for {rel!r} must be an object")
        bad = set(rule) - set(_INT_RULES) - set(_BOOL_RULES)
        if bad:
            raise ValueError(f"unknown rule keys for {rel!r}: {sorted(bad)}")
        for key in _INT_RULES:
            if key in rule:
                val = rule[key]
                if isinstance(val, bool) or not isinstance(val, int) or val < 0:
                    raise ValueError(f"{rel!r}: {key} must be a non-negative integer")
        for key in _BOOL_RULES:
            if key in rule and not isinstance(rule[key], bool):
                raise ValueError(f"{rel!r}: {key} must be true or false")
        out_files[rel] = dict(rule)
    return {"files": out_files, "unplug_after_bytes": unplug, "read_mbps": mbps}


def _load_rules(arg: str) -> dict:
    text = arg if arg.lstrip().startswith("{") else Path(arg).read_text(encoding="utf-8")
    return validate_rules(json.loads(text))


# ------------------------------------------------------------------ mount table


# ------------------------------------------------------------------- filesystem

try:  # the module must import without mfusepy (fuse_available() reports why)
    from mfusepy import FUSE, FuseOSError, Operations
except Exception as _exc:  # ImportError, or OSError/AttributeError when libfuse is missing/wrong
    FUSE = None  # type: ignore[assignment]
    _MFUSEPY_ERROR: Optional[str] = f"{type(_exc).__name__}: {_exc}"

    class FuseOSError(OSError):  # type: ignore[no-redef]
        def __init__(self, err: int) -> None:
            super().__init__(err, os.strerror(err))

    class Operations:  # type: ignore[no-redef]
        pass

else:
    _MFUSEPY_ERROR = None


class _FileState:
    __slots__ = ("served", "shrunk", "farthest")

    def __init__(self) -> None:
        self.served = 0
        self.shrunk = False
        self.farthest = 0  # grow_forever: the end of the farthest read served


class FaultFS(Operations):
    """Read-only passthrough of ``source`` with the faults described in the module doc."""

    use_ns = True  # st_*time in nanoseconds (and silences mfusepy's deprecation warning)

    def __init__(self, source: str | bytes, rules: dict, mountpoint: str | bytes | None = None) -> None:
        # NB: mfusepy registers every attribute named like a libfuse operation
        # (lock, flush, poll, ...) as a callback, so all state is underscored.
        rules = validate_rules(rules)
        self._root = os.path.realpath(os.fsencode(source))
        self._mountpoint = real(mountpoint) if mountpoint is not None else None
        self._rules: dict[bytes, dict[str, Any]] = {_norm_rel(k): v for k, v in rules["files"].items()}
        self._unplug_after: Optional[int] = rules["unplug_after_bytes"]
        self._total_served = 0
        self._unplugged = self._unplug_after == 0
        self._link = Link(rules["read_mbps"] * 1e6) if rules["read_mbps"] else None
        self._state: dict[bytes, _FileState] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._fds: dict[int, bytes] = {}

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _rel(path: str) -> bytes:
        return _norm_rel(path.encode(_ENC, _ERRS))

    def _full(self, rel: bytes) -> bytes:
        return os.path.join(self._root, rel) if rel else self._root

    def _check_plugged(self) -> None:
        if self._unplugged:
            raise FuseOSError(errno.EIO)

    def _file_state(self, rel: bytes) -> _FileState:
        st = self._state.get(rel)
        if st is None:
            st = self._state[rel] = _FileState()
            rule = self._rules.get(rel, {})
            if rule.get("shrink_after") == 0:
                st.shrunk = True
        return st

    def _still_mounted(self) -> bool:
        if self._mountpoint is None:
            return True
        points = mount_points()
        return True if points is None else self._mountpoint in points

    def _hang(self) -> None:
        # Block like a dead USB device would, but give up once we are unmounted
        # (lazy unmount detaches us from the mount table) or shutting down, so
        # that the reader gets an error and the test can finish.
        while not self._stopping.wait(0.05):
            if not self._still_mounted():
                break
        raise FuseOSError(errno.EIO)

    @staticmethod
    def _lstat(full: bytes) -> os.stat_result:
        try:
            return os.lstat(full)
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None

    # -- metadata ------------------------------------------------------------

    def getattr(self, path: str, fh: Optional[int] = None) -> dict[str, Any]:
        self._check_plugged()
        rel = self._rel(path)
        st = self._lstat(self._full(rel))
        attrs = {
            "st_mode": st.st_mode,
            "st_ino": st.st_ino,
            "st_nlink": st.st_nlink,
            "st_uid": st.st_uid,
            "st_gid": st.st_gid,
            "st_rdev": st.st_rdev,
            "st_size": st.st_size,
            "st_blksize": st.st_blksize,
            "st_blocks": st.st_blocks,
            "st_atime": st.st_atime_ns,
            "st_mtime": st.st_mtime_ns,
            "st_ctime": st.st_ctime_ns,
        }
        rule = self._rules.get(rel)
        if rule and stat.S_ISREG(st.st_mode):
            if "lie_size" in rule:
                attrs["st_size"] = rule["lie_size"]
            if "shrink_after" in rule:
                with self._lock:
                    shrunk = self._file_state(rel).shrunk
                if shrunk:
                    attrs["st_size"] = min(st.st_size, rule["shrink_after"])
            if rule.get("grow_forever"):
                with self._lock:
                    attrs["st_size"] = max(attrs["st_size"], self._file_state(rel).farthest)
        return attrs

    def readlink(self, path: str) -> str:
        self._check_plugged()
        try:
            target = os.readlink(self._full(self._rel(path)))
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None
        return target.decode(_ENC, _ERRS)

    def access(self, path: str, amode: int) -> int:
        self._check_plugged()
        rel = self._rel(path)
        self._lstat(self._full(rel))
        if amode & os.W_OK:
            raise FuseOSError(errno.EROFS)
        if amode & os.R_OK and self._rules.get(rel, {}).get("eacces"):
            raise FuseOSError(errno.EACCES)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        self._check_plugged()
        sv = os.statvfs(self._root)
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(sv, k) for k in keys}

    # -- directories ---------------------------------------------------------

    def opendir(self, path: str) -> int:
        self._check_plugged()
        rel = self._rel(path)
        st = self._lstat(self._full(rel))
        if not stat.S_ISDIR(st.st_mode):
            raise FuseOSError(errno.ENOTDIR)
        rule = self._rules.get(rel, {})
        if rule.get("eacces"):
            raise FuseOSError(errno.EACCES)
        if rule.get("vanish_on_open"):
            raise FuseOSError(errno.ENOENT)
        return 0

    def readdir(self, path: str, fh: int):
        self._check_plugged()
        full = self._full(self._rel(path))
        entries: list = [(".", {"st_mode": stat.S_IFDIR | 0o755}, 0), ("..", {"st_mode": stat.S_IFDIR | 0o755}, 0)]
        try:
            with os.scandir(full) as it:
                for entry in it:
                    try:
                        mode = entry.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue  # vanished between scandir and stat
                    entries.append((entry.name.decode(_ENC, _ERRS), {"st_mode": mode}, 0))
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None
        return entries

    # -- files ---------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        self._check_plugged()
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise FuseOSError(errno.EROFS)
        rel = self._rel(path)
        full = self._full(rel)
        st = self._lstat(full)
        rule = self._rules.get(rel, {})
        if rule.get("vanish_on_open"):
            raise FuseOSError(errno.ENOENT)
        if rule.get("eacces") or not stat.S_ISREG(st.st_mode):
            raise FuseOSError(errno.EACCES)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None
        with self._lock:
            self._fds[fd] = rel
        return fd

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        self._check_plugged()
        with self._lock:
            rel = self._fds.get(fh)
        if rel is None:
            raise FuseOSError(errno.EBADF)
        rule = self._rules.get(rel, {})

        limit = size
        shrink_at = rule.get("shrink_after")
        if shrink_at is not None:
            with self._lock:
                shrunk = self._file_state(rel).shrunk
            if shrunk:
                if offset >= shrink_at:
                    return b""
                limit = min(limit, shrink_at - offset)
        eio_at = rule.get("eio_after")
        if eio_at is not None:
            if offset >= eio_at:
                raise FuseOSError(errno.EIO)
            limit = min(limit, eio_at - offset)
        hang_at = rule.get("hang_after")
        if hang_at is not None:
            if offset >= hang_at:
                self._hang()
            limit = min(limit, hang_at - offset)
        slow = rule.get("slow_read_ms")
        if slow:
            time.sleep(slow / 1000)

        try:
            data = os.pread(fh, limit, offset)
        except OSError as exc:
            raise FuseOSError(exc.errno or errno.EIO) from None
        if rule.get("grow_forever") and len(data) < limit:
            data += bytes(limit - len(data))  # never EOF: the "appended" bytes are zeros
            with self._lock:
                fstate = self._file_state(rel)
                fstate.farthest = max(fstate.farthest, offset + len(data))

        if self._link is not None:
            self._link.carry(len(data))
        with self._lock:
            if shrink_at is not None:
                fstate = self._file_state(rel)
                if not fstate.shrunk and fstate.served + len(data) >= shrink_at:
                    fstate.shrunk = True
                    data = data[: max(0, shrink_at - offset)]
                fstate.served += len(data)
            if self._unplug_after is not None:
                if self._unplugged:
                    raise FuseOSError(errno.EIO)
                budget = self._unplug_after - self._total_served
                data = data[:budget]
                self._total_served += len(data)
                if self._total_served >= self._unplug_after:
                    self._unplugged = True
            else:
                self._total_served += len(data)
        return data

    def release(self, path: str, fh: int) -> int:
        with self._lock:
            self._fds.pop(fh, None)
        with contextlib.suppress(OSError):
            os.close(fh)
        return 0

    def destroy(self, path: str) -> None:
        self._stopping.set()


# ---------------------------------------------------------------- script entry


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="faultfs: %(levelname)s %(name)s: %(message)s")
    if len(argv) != 3:
        print("usage: faultfs.py SOURCE_DIR MOUNTPOINT RULES_JSON", file=sys.stderr)
        return EXIT_USAGE
    source, mountpoint, rules_arg = argv
    try:
        rules = _load_rules(rules_arg)
    except (OSError, ValueError) as exc:
        print(f"faultfs: bad rules: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not os.path.isdir(source) or not os.path.isdir(mountpoint):
        print("faultfs: SOURCE_DIR and MOUNTPOINT must be existing directories", file=sys.stderr)
        return EXIT_USAGE
    if FUSE is None:
        print(f"faultfs: mfusepy/libfuse unusable: {_MFUSEPY_ERROR}", file=sys.stderr)
        return EXIT_NO_FUSE
    ops = FaultFS(source, rules, mountpoint)
    try:
        FUSE(
            ops,
            mountpoint,
            foreground=True,
            nothreads=False,
            ro=True,
            direct_io=True,  # every read reaches read(); no page cache, no i_size clamping
            attr_timeout=0,  # every stat reaches getattr() (lie_size/shrink_after/unplug)
            entry_timeout=0,
            negative_timeout=0,
            fsname="faultfs",
            subtype="faultfs",
        )
    except RuntimeError as exc:  # fuse_main failed: mount refused, /dev/fuse unusable, ...
        print(f"faultfs: mount failed: {exc}", file=sys.stderr)
        return EXIT_NO_FUSE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
