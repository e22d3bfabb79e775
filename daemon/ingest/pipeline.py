"""The one pipeline runner (beets' ``util/pipeline.py`` shape): stages over a task.

A *stage* is a callable over ``(context, task)``. The context is what every task of a run
shares (an offload's store and stop flag, a dock check's driver, the dock manager); the task is
what goes through the stages (one file, one recorder's check, one media job, one docked
recorder's walk) and carries what each stage found to the next. Every stage list in evidock is
assembled in one place, next to its stages, and runs here:

- ``run_sequential``: task after task, stage after stage (tests, and one-task runs: a dock
  check, a media job, the dock walk);
- ``run_threaded``: one thread per stage with one-slot queues between them, so that the stages
  of different tasks overlap (the offload: file *n* is verified while file *n+1* is read).

Whoever assembles a run passes its policy as hooks, all optional:

- ``done(task)``: true when the task needs no further stage (a media job that failed);
- ``before(stage, ctx, task)``: called before each stage (the dock: an undock stops the check
  between two stages);
- ``on_stage(stage, ctx, task)``: called after each stage (the dock: enter the states the stage
  reached);
- ``on_error(stage, ctx, task, err)``: the error policy, called with a stage's ``Exception``
  while it is being handled. Without one the error propagates and ends the run (the dock walk
  turns it into ERROR or INTERRUPTED); with one the policy decides and the run goes on (the
  offload's: a typed error stops every file through ``ctx.stop_all(err)``, anything else fails
  only its own file through ``task.fail(reason)``). A threaded run needs a policy, because an
  exception in a stage's thread has nobody to propagate to; for the same reason its hooks must
  not raise.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

C = TypeVar("C")
T = TypeVar("T")

Stage = Callable[[C, T], None]  # one stage over (context, task)
OnStage = Callable[[Stage[C, T], C, T], None]  # a hook around a stage
OnError = Callable[[Stage[C, T], C, T, Exception], None]  # an error policy


def run_stage(stage: Stage[C, T], ctx: C, task: T, *, on_error: OnError[C, T] | None = None,
              before: OnStage[C, T] | None = None, on_stage: OnStage[C, T] | None = None) -> None:
    """Run one stage over one task, with the run's hooks around it (see the module's docstring)."""
    if before is not None:
        before(stage, ctx, task)
    try:
        stage(ctx, task)
    except Exception as err:
        if on_error is None:
            raise
        on_error(stage, ctx, task, err)
    if on_stage is not None:
        on_stage(stage, ctx, task)


def run_sequential(ctx: C, tasks: Iterable[T], stages: Sequence[Stage[C, T]], *,
                   on_error: OnError[C, T] | None = None, before: OnStage[C, T] | None = None,
                   on_stage: OnStage[C, T] | None = None, done: Callable[[T], bool] | None = None) -> None:
    """Every task through every stage, one at a time, in order."""
    step = partial(run_stage, on_error=on_error, before=before, on_stage=on_stage)
    for task in tasks:
        for stage in stages:
            if done is not None and done(task):
                break
            step(stage, ctx, task)


def run_threaded(ctx: C, tasks: Iterable[T], stages: Sequence[Stage[C, T]], *, on_error: OnError[C, T],
                 before: OnStage[C, T] | None = None, on_stage: OnStage[C, T] | None = None,
                 done: Callable[[T], bool] | None = None) -> None:
    """One thread per stage with one-slot queues between them: stages of different tasks overlap.

    The first stage runs in the calling thread; a task reaches stage *i+1* only after stage *i*
    is done with it, and the one-slot queues keep at most one task waiting between two stages
    (the offload holds no more than a few partials open at once).
    """
    if len(stages) < 2:  # nothing to overlap
        run_sequential(ctx, tasks, stages, on_error=on_error, before=before, on_stage=on_stage, done=done)
        return
    step = partial(run_stage, on_error=on_error, before=before, on_stage=on_stage)
    end = object()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in stages[1:]]

    def worker(i: int) -> None:
        inq, outq = queues[i - 1], (queues[i] if i < len(queues) else None)
        while (task := inq.get()) is not end:
            if done is None or not done(task):
                step(stages[i], ctx, task)
            if outq is not None:
                outq.put(task)
        if outq is not None:
            outq.put(end)

    threads = [threading.Thread(target=worker, args=(i,), name=f"evidock-{getattr(s, '__name__', 'stage')}")
               for i, s in enumerate(stages) if i]
    for t in threads:
        t.start()
    try:
        for task in tasks:
            if done is None or not done(task):
                step(stages[0], ctx, task)
            queues[0].put(task)
    finally:
        queues[0].put(end)
        for t in threads:
            t.join()
