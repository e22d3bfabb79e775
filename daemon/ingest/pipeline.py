"""The one pipeline runner (beets' ``util/pipeline.py`` shape): stages over a task, run
sequentially (tests) or one thread per stage with one-slot queues between them, so that file
n is verified while file n+1 is read.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from daemon.errors import (
    EvidockError,
)
from daemon.ingest.stages import STAGES
from daemon.ingest.volume import quoted

if TYPE_CHECKING:
    from daemon.ingest.stages import FileTask, OffloadContext

log = logging.getLogger(__name__)



# -- runners ---------------------------------------------------------------------------------


def _run_stage(stage: Callable[[OffloadContext, FileTask], None], ctx: OffloadContext, task: FileTask) -> None:
    try:
        stage(ctx, task)
    except EvidockError as err:
        ctx.stop_all(err)
        if not task.finished:
            task.fail(f"not stored: {err}")
    except Exception as err:  # one bad file must not take the others down (invariant 6)
        log.error("unexpected error in %s for %s:\n%s", stage.__name__, quoted(task.entry.rel), traceback.format_exc())
        if task.partial is not None:
            task.partial.close()
        if not task.finished:
            task.fail(f"not stored: unexpected error in {stage.__name__}: {err!r}")


def run_sequential(ctx: OffloadContext, tasks: Iterable[FileTask], stages=STAGES) -> None:
    for task in tasks:
        for stage in stages:
            _run_stage(stage, ctx, task)


def run_threaded(ctx: OffloadContext, tasks: Iterable[FileTask], stages=STAGES) -> None:
    """One thread per stage with one-slot queues between them: stages of different files overlap."""
    end = object()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in stages[1:]]

    def worker(i: int) -> None:
        inq, outq = queues[i - 1], (queues[i] if i < len(queues) else None)
        while (task := inq.get()) is not end:
            _run_stage(stages[i], ctx, task)
            if outq is not None:
                outq.put(task)
        if outq is not None:
            outq.put(end)

    threads = [threading.Thread(target=worker, args=(i,), name=f"evidock-{s.__name__}") for i, s in enumerate(stages) if i]
    for t in threads:
        t.start()
    try:
        for task in tasks:
            _run_stage(stages[0], ctx, task)
            queues[0].put(task)
    finally:
        queues[0].put(end)
        for t in threads:
            t.join()
