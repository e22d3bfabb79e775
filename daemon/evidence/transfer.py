"""Moving bytes: one pass over the source that writes and hashes at once, and a cold re-read.

``copy_and_hash`` reads each source byte once. A reader thread pulls chunks from the recorder,
the calling thread writes them to the partial, and a hasher thread feeds SHA-256; the three
overlap because ``os.read``, ``os.write`` and ``hashlib`` all release the GIL on large buffers.
Every read has a deadline: a recorder that stops answering becomes a ``ReadTimeout``, not a hang.
Every read has a bound too: given ``limit``, no more than that many bytes are taken from the
source, and a source that still has data there raises ``GrewPastLimit``. A file the recorder
is still writing, or a broken or hostile volume that serves data without end, cannot fill the
store (a 113 MB file was once read as 474 MB).

With no destination (``dst_fd=None``) the same loop only hashes: that is how a file already in
the store is confirmed without being staged, with the same deadline, bound and cancel checks.

``hash_fd`` re-reads a file after asking the kernel to drop its cached pages
(``posix_fadvise(DONTNEED)`` after an fsync), so verification reads what is on the disk,
not what is still in memory.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable

from daemon.crashpoints import crashpoint
from daemon.errors import Cancelled, GrewPastLimit, ReadFailed, ReadTimeout, WriteFailed

_DONE = object()
_GREW = object()  # the reader found data at the limit
_WRITEBACK_BYTES = 8 << 20


def copy_and_hash(
    src_fd: int,
    dst_fd: int | None,
    start: int,
    hasher: "hashlib._Hash",
    *,
    chunk: int,
    timeout: float,
    checkpoint_every: int = 0,
    checkpoint: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    limit: int | None = None,
) -> int:
    """Copy ``src_fd`` from ``start`` to EOF into ``dst_fd`` at ``start``; return the new length.

    ``hasher`` must already hold the hash of the first ``start`` bytes. ``checkpoint(n)`` is
    called every ``checkpoint_every`` bytes and must make the first ``n`` bytes durable.
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
    to_write: queue.Queue[object] = queue.Queue(maxsize=8)
    to_hash: queue.Queue[object] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def read_loop() -> None:
        pos = start
        try:
            while not stop.is_set():
                want = chunk if limit is None else min(chunk, limit - pos)
                try:
                    # At the limit, one byte more tells "ends here" from "still growing".
                    data = os.read(rfd, want if want > 0 else 1)
                except OSError as e:
                    _put(to_write, e, stop)
                    return
                if want <= 0:
                    _put(to_write, _GREW if data else _DONE, stop)
                    return
                _put(to_write, data if data else _DONE, stop)
                if not data:
                    return
                pos += len(data)
        finally:
            os.close(rfd)

    def hash_loop() -> None:
        while True:
            data = to_hash.get()
            if data is _DONE:
                return
            hasher.update(data)  # type: ignore[arg-type]

    reader = threading.Thread(target=read_loop, name="evidock-read", daemon=True)
    hashing = threading.Thread(target=hash_loop, name="evidock-hash", daemon=True)
    reader.start()
    hashing.start()
    written = flushed = start
    since_ckpt = 0
    first = True
    try:
        while True:
            waited = 0.0
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(copied=written)
                try:
                    item = to_write.get(timeout=min(0.2, timeout - waited))
                    break
                except queue.Empty:
                    waited += 0.2
                    if waited >= timeout:
                        raise ReadTimeout(timeout, written) from None
            if item is _DONE:
                break
            if item is _GREW:
                assert limit is not None
                raise GrewPastLimit(limit, written)
            if isinstance(item, OSError):
                raise ReadFailed(item, written)
            data = memoryview(item)  # type: ignore[arg-type]
            to_hash.put(item)
            if dst_fd is None:
                written += len(data)
            while dst_fd is not None and data:
                try:
                    n = os.write(dst_fd, data)
                except OSError as e:
                    raise WriteFailed(e, written, len(data)) from None
                written += n
                since_ckpt += n
                data = data[n:]
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
                progress(len(item))  # type: ignore[arg-type]
            if checkpoint is not None and since_ckpt >= checkpoint_every:
                try:
                    checkpoint(written)
                except OSError as e:  # the store's trouble (ENOSPC, EIO), not the recorder's
                    raise WriteFailed(e, written) from None
                since_ckpt = 0
    finally:
        stop.set()
        to_hash.put(_DONE)
        hashing.join()
    return written


def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def hash_prefix(fd: int, length: int, hasher: "hashlib._Hash", chunk: int = 4 << 20) -> None:
    """Feed the first ``length`` bytes of ``fd`` (a local partial) into ``hasher``."""
    pos = 0
    while pos < length:
        data = os.pread(fd, min(chunk, length - pos), pos)
        if not data:
            raise OSError(f"partial ends at {pos}, expected {length} bytes")
        hasher.update(data)
        pos += len(data)


def hash_fd(fd: int, *, drop_cache: bool = True, chunk: int = 4 << 20,
            should_stop: Callable[[], bool] | None = None) -> tuple[str, int]:
    """SHA-256 and length of a whole file, read from the disk rather than the page cache."""
    if drop_cache:
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # not every filesystem supports it; the hash is still right
    h = hashlib.sha256()
    size = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    pos = 0
    while True:
        n = os.preadv(fd, [buf], pos)
        if n == 0:
            break
        h.update(view[:n])
        pos += n
        size += n
        if should_stop and should_stop():
            raise InterruptedError("stopped")
    if drop_cache:
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
    return h.hexdigest(), size
