"""Moving bytes: one pass over the source that writes and hashes at once, and a cold re-read.

``copy_and_hash`` reads each source byte once. A reader thread reads chunks from the recorder
into a small pool of reused buffers (``readv`` into a preallocated buffer: no fresh allocation,
page faults or copy through a Python ``bytes`` per chunk), the calling thread writes them to the
partial, and one thread per hasher feeds SHA-256 and the *check digest*; all of them overlap
because ``os.readv``, ``os.write``, ``hashlib`` and ``blake3`` release the GIL on large buffers.
A buffer goes back to the pool once it is written and hashed.
Every read has a deadline: a recorder that stops answering becomes a ``ReadTimeout``, not a hang.
Every read has a bound too: given ``limit``, no more than that many bytes are taken from the
source, and a source that still has data there raises ``GrewPastLimit``. A file the recorder
is still writing, or a broken or hostile volume that serves data without end, cannot fill the
store (a 113 MB file was once read as 474 MB).

With no destination (``dst_fd=None``) the same loop only hashes: that is how a file already in
the store is confirmed without being staged, with the same deadline, bound and cancel checks.

**One SHA-256 per byte.** The SHA-256 is the object's identity and is taken once, from the
bytes read off the recorder. The cold re-read of the staged copy has a narrower job: to prove
that the bytes on the store's disk are the bytes that were read. It does that with a second,
much cheaper digest (``CHECK``) taken from the same buffers as the SHA-256 during the copy and
again on the re-read.

Why BLAKE3 and not XXH3-128. Measured on the station's 2-core machine (2026-12-02, AMD EPYC
with SHA-NI and AVX-512, ``benchmarks/digest_bench.py``), one core hashes SHA-256 at 1.9 GB/s
(0.57 CPU-s per GiB), BLAKE3 at 9.0 GB/s (0.12) and XXH3-128 at 79 GB/s (0.01); all three
release the GIL. The two check passes thus cost 0.24 CPU-s per GiB with BLAKE3 against 0.02
with XXH3 — about a sixth of what an offload now spends per GiB (1.4 CPU-s), and an offload on
this machine waits on its disk (the re-read), not on its CPUs. For those 0.2 CPU-s the verify
step keeps a cryptographic guarantee: XXH3 catches accidental damage, but someone able to write
the staging area between the copy and the re-read could craft a copy with the same XXH3 (it is
not built to resist that), have it stored under the recorder file's SHA-256 and the original
wiped from the recorder against it. Matching a BLAKE3 digest is as infeasible as a SHA-256
collision, so the check proves as much as the second SHA-256 it replaces. The nightly
``verify`` still re-hashes every object with SHA-256 (``hash_fd``).

The re-read (``digest_fd``) bypasses the page cache where the filesystem allows it
(``O_DIRECT`` on a second open of the same file): it reads what is on the disk by
construction, and saves the kernel's copy through the cache. Where ``O_DIRECT`` is refused
(tmpfs, some FUSE filesystems) it falls back to asking the kernel to drop the file's cached
pages (``posix_fadvise(DONTNEED)`` after an fsync) and reading through the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import blake3

from daemon.crashpoints import crashpoint
from daemon.errors import Cancelled, GrewPastLimit, ReadFailed, ReadTimeout, WriteFailed

_DONE = object()
_GREW = object()  # the reader found data at the limit
_WRITEBACK_BYTES = 8 << 20
_POOL = 6  # buffers in flight per copy: enough for the reader to run ahead of a slow hasher
_DIRECT_ALIGN = 4096  # O_DIRECT: buffer, offset and length aligned to the logical block size
# One re-read: large enough that an O_DIRECT read is split into several requests the disk
# serves at once (the block layer cuts at max_sectors_kb, 4 MiB on a virtio disk).
_REREAD_CHUNK = 8 << 20

CHECK = "blake3"  # the check digest's name, as journals record it ("blake3:<hex>")

# BENCHMARKS ONLY (benchmarks/dock_bench.py --read-mbps): called as ``hook(fd, nbytes)`` after
# each read from a source with the bytes it returned, in the reading thread (the time it takes
# counts as the read's), to pace a simulated recorder's USB link inside
# the reading process (a FUSE filesystem doing it would eat the CPU being measured). Always None
# in evidock itself, which never throttles a read.
source_read_hook: Callable[[int, int], None] | None = None


class Hasher(Protocol):
    """What ``hashlib`` and ``blake3`` hashers share and the copy needs."""

    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def check_hasher() -> Hasher:
    """A new hasher of the check digest (``CHECK``), single-threaded: the offload has its own threads."""
    return blake3.blake3()


def check_value(h: Hasher) -> str:
    """The check digest as journals record it: ``"<algorithm>:<hex>"``."""
    return f"{CHECK}:{h.hexdigest()}"


# Buffers kept between calls, per thread (an offload copies and verifies file after file in the
# same threads): a fresh buffer costs a page fault per 4 KiB on its first fill.
_kept = threading.local()


class _Slot:
    """One pooled buffer, handed from the reader to the writer and the hashers and back."""

    __slots__ = ("buf", "view", "n", "refs")

    def __init__(self, size: int):
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.n = 0
        self.refs = 0


def copy_and_hash(
    src_fd: int,
    dst_fd: int | None,
    start: int,
    hasher: Hasher,
    *,
    chunk: int,
    timeout: float,
    check: Hasher | None = None,
    checkpoint_every: int = 0,
    checkpoint: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    limit: int | None = None,
) -> int:
    """Copy ``src_fd`` from ``start`` to EOF into ``dst_fd`` at ``start``; return the new length.

    ``hasher`` (and ``check``, the check digest, if given) must already hold the hash of the
    first ``start`` bytes; both see exactly the bytes written, from the same buffers.
    ``checkpoint(n)`` is called every ``checkpoint_every`` bytes and must make the first ``n``
    bytes durable.
    ``timeout``: the longest one read from the source may take (``ReadTimeout``).
    ``cancel``: checked between chunks and while waiting for one, so an undock or a SIGTERM
    stops a large file within a fraction of a second (``Cancelled``), not at its end.
    ``limit``: the most bytes the source may hold. Reading stops there; a one-byte probe past it
    that returns data raises ``GrewPastLimit`` (the probed byte is neither written nor hashed).
    ``dst_fd=None``: hash only — nothing is written and nothing checkpointed.
    """
    if limit is not None and limit < start:
        raise ValueError(f"limit {limit} is below the resume point {start}")
    if dst_fd is not None:
        os.lseek(dst_fd, start, os.SEEK_SET)
    # The reader owns a duplicate of the source fd: if a read hangs for good, we walk away
    # and the caller may close its own fd without the stuck thread ever reading a reused one.
    rfd = os.dup(src_fd)
    os.lseek(rfd, start, os.SEEK_SET)
    try:
        os.posix_fadvise(rfd, start, 0, os.POSIX_FADV_SEQUENTIAL)
    except OSError:
        pass
    hashers = [h for h in (hasher, check) if h is not None]
    free: queue.Queue[_Slot] = queue.Queue()
    kept: list[_Slot] = getattr(_kept, "slots", [])
    _kept.slots = []
    for _ in range(_POOL):
        free.put(kept.pop() if kept and len(kept[-1].buf) == chunk else _Slot(chunk))
    to_write: queue.Queue[object] = queue.Queue()  # bounded by the pool
    to_hash: list[queue.Queue[object]] = [queue.Queue() for _ in hashers]
    stop = threading.Event()
    refs = threading.Lock()
    reading_since: list[float | None] = [None]  # when the reader's current read began

    def release(slot: _Slot) -> None:
        with refs:
            slot.refs -= 1
            last = slot.refs == 0
        if last:
            free.put(slot)

    def read_loop() -> None:
        pos = start
        try:
            while not stop.is_set():
                want = chunk if limit is None else min(chunk, limit - pos)
                if want <= 0:
                    # At the limit, one byte more tells "ends here" from "still growing".
                    reading_since[0] = time.monotonic()
                    try:
                        probe = os.read(rfd, 1)
                    except OSError as e:
                        _put(to_write, e, stop)
                        return
                    reading_since[0] = None
                    _put(to_write, _GREW if probe else _DONE, stop)
                    return
                try:
                    slot = free.get(timeout=0.2)
                except queue.Empty:
                    continue
                reading_since[0] = time.monotonic()
                try:
                    n = os.readv(rfd, [slot.view[:want]])
                    if n and source_read_hook is not None:
                        source_read_hook(rfd, n)
                except OSError as e:
                    _put(to_write, e, stop)
                    return
                reading_since[0] = None
                if not n:
                    _put(to_write, _DONE, stop)
                    return
                slot.n = n
                _put(to_write, slot, stop)
                pos += n
        finally:
            os.close(rfd)

    def hash_loop(h: Hasher, q: queue.Queue[object]) -> None:
        while True:
            slot = q.get()
            if slot is _DONE:
                return
            assert isinstance(slot, _Slot)
            h.update(slot.view[:slot.n])
            release(slot)

    reader = threading.Thread(target=read_loop, name="evidock-read", daemon=True)
    hashing = [threading.Thread(target=hash_loop, args=(h, q), name=f"evidock-hash-{getattr(h, 'name', '')}", daemon=True)
               for h, q in zip(hashers, to_hash)]
    reader.start()
    for t in hashing:
        t.start()
    written = flushed = start
    since_ckpt = 0
    first = True
    try:
        while True:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(copied=written)
                try:
                    item = to_write.get(timeout=0.2)
                    break
                except queue.Empty:
                    began = reading_since[0]
                    if began is not None and time.monotonic() - began >= timeout:
                        raise ReadTimeout(timeout, written) from None
            if item is _DONE:
                break
            if item is _GREW:
                assert limit is not None
                raise GrewPastLimit(limit, written)
            if isinstance(item, OSError):
                raise ReadFailed(item, written)
            assert isinstance(item, _Slot)
            n = item.n
            item.refs = len(hashers) + 1
            for q in to_hash:
                q.put(item)
            data = item.view[:n]
            if dst_fd is None:
                written += n
            try:
                while dst_fd is not None and data:
                    try:
                        w = os.write(dst_fd, data)
                    except OSError as e:
                        raise WriteFailed(e, written, len(data)) from None
                    written += w
                    since_ckpt += w
                    data = data[w:]
            finally:
                del data
                release(item)
            if dst_fd is not None and written - flushed >= _WRITEBACK_BYTES:
                # On Linux, DONTNEED on dirty pages starts their writeback now (and drops them
                # once clean): the disk stays busy while we read on, so the fsync at the end
                # finds little left to write, and the station's page cache is not flooded.
                try:
                    os.posix_fadvise(dst_fd, flushed, written - flushed, os.POSIX_FADV_DONTNEED)
                except OSError:
                    pass
                flushed = written
            if first and dst_fd is not None:
                first = False
                crashpoint("copy-mid")
            if progress:
                progress(n)
            if checkpoint is not None and since_ckpt >= checkpoint_every:
                try:
                    checkpoint(written)
                except OSError as e:  # the store's trouble (ENOSPC, EIO), not the recorder's
                    raise WriteFailed(e, written) from None
                since_ckpt = 0
    finally:
        stop.set()
        for q in to_hash:
            q.put(_DONE)
        for t in hashing:
            t.join()
        # Keep the buffers that are back in the pool for the next file. A reader that is still
        # stuck in a read keeps its own; nobody else touches a buffer once it is in ``free``.
        back = []
        while True:
            try:
                back.append(free.get_nowait())
            except queue.Empty:
                break
        _kept.slots = back
    return written


def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> None:
    # The queues the reader feeds are unbounded (the pool bounds them): this never waits, but
    # a reader that comes back from a hung read after the copy gave up puts nothing.
    if not stop.is_set():
        q.put(item)


def hash_prefix(fd: int, length: int, *hashers: Hasher, chunk: int = 4 << 20) -> None:
    """Feed the first ``length`` bytes of ``fd`` (a local partial) into each of ``hashers``."""
    buf = bytearray(min(chunk, max(length, 1)))
    view = memoryview(buf)
    pos = 0
    while pos < length:
        n = os.preadv(fd, [view[:min(len(buf), length - pos)]], pos)
        if not n:
            raise OSError(f"partial ends at {pos}, expected {length} bytes")
        for h in hashers:
            h.update(view[:n])
        pos += n


def digest_fd(fd: int, new: Callable[[], Hasher], *, drop_cache: bool = True, chunk: int = _REREAD_CHUNK,
              should_stop: Callable[[], bool] | None = None) -> tuple[Hasher, int]:
    """The digest (a ``new()`` hasher fed the whole file) and length of ``fd``'s file.

    ``drop_cache``: read what is on the disk, not what is still in memory — through a second,
    ``O_DIRECT`` open of the same file where the filesystem allows it, else after dropping the
    file's cached pages; either way its pages are dropped again afterwards, so a scrub or an
    offload does not flood the station's page cache. The caller has fsync'd what it wrote.
    """
    h = new()
    direct = _open_direct(fd) if drop_cache else -1
    if drop_cache and direct < 0:
        _drop(fd)
    size = 0
    chunk = -(-chunk // _DIRECT_ALIGN) * _DIRECT_ALIGN
    mem = getattr(_kept, "direct", None)
    if mem is None or len(mem) != chunk:
        mem = mmap.mmap(-1, chunk)  # page-aligned, as O_DIRECT needs; kept for this thread's next file
    _kept.direct = None  # not shared with a nested call while in use
    view = memoryview(mem)
    try:
        rfd = direct if direct >= 0 else fd
        while True:
            n = os.preadv(rfd, [view], size)
            if n == 0:
                break
            h.update(view[:n])
            size += n
            if should_stop and should_stop():
                raise InterruptedError("stopped")
            if rfd == direct and n < len(view):
                # A short O_DIRECT read is the end of the file; anything else (it grew, a
                # filesystem that reads short) goes on through the cache, dropped first: the
                # next offset is no longer aligned for O_DIRECT.
                if os.fstat(fd).st_size == size:
                    break
                _drop(fd)
                rfd = fd
    finally:
        view.release()
        _kept.direct = mem
        if direct >= 0:
            os.close(direct)
    if drop_cache:
        _drop(fd)
    return h, size


def hash_fd(fd: int, *, drop_cache: bool = True, chunk: int = _REREAD_CHUNK,
            should_stop: Callable[[], bool] | None = None) -> tuple[str, int]:
    """SHA-256 and length of a whole file, read from the disk rather than the page cache."""
    h, size = digest_fd(fd, hashlib.sha256, drop_cache=drop_cache, chunk=chunk, should_stop=should_stop)
    return h.hexdigest(), size


def _drop(fd: int) -> None:
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass  # not every filesystem supports it; the hash is still right


def _open_direct(fd: int) -> int:
    """A second, ``O_DIRECT`` descriptor of ``fd``'s file, or -1 where that is not possible.

    Through ``/proc/self/fd``: the very file ``fd`` has open, whatever its path names now.
    """
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return -1
    try:
        # O_NOATIME carried over (daemon.evidence.cache): a scrub must not make every cached copy "recent"
        flag |= fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_NOATIME", 0)
        direct = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | flag)
    except OSError:
        return -1  # EINVAL: the filesystem has no O_DIRECT (tmpfs); no /proc
    try:
        if not os.path.samestat(os.fstat(direct), os.fstat(fd)):
            os.close(direct)
            return -1
    except OSError:
        os.close(direct)
        return -1
    return direct
