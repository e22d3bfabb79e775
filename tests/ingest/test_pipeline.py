"""The one pipeline runner: stages over (context, task), its hooks, its error policy, the overlap."""

from __future__ import annotations

import threading

import pytest

from daemon.errors import EvidockError
from daemon.ingest.pipeline import run_sequential, run_threaded


class Ctx:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def note(self, what: str, task: dict) -> None:
        with self.lock:
            self.calls.append((what, task["n"]))


def first(ctx: Ctx, task: dict) -> None:
    ctx.note("first", task)


def second(ctx: Ctx, task: dict) -> None:
    ctx.note("second", task)
    if task.get("boom"):
        raise task["boom"]


def third(ctx: Ctx, task: dict) -> None:
    ctx.note("third", task)


def test_sequential_runs_every_stage_in_order_with_hooks_around_each() -> None:
    ctx = Ctx()
    run_sequential(ctx, [{"n": 1}, {"n": 2}], (first, second),
                   before=lambda s, c, t: c.note(f"before {s.__name__}", t),
                   on_stage=lambda s, c, t: c.note(f"after {s.__name__}", t))
    assert ctx.calls == [("before first", 1), ("first", 1), ("after first", 1),
                         ("before second", 1), ("second", 1), ("after second", 1),
                         ("before first", 2), ("first", 2), ("after first", 2),
                         ("before second", 2), ("second", 2), ("after second", 2)]


def test_without_a_policy_an_error_ends_the_run() -> None:
    ctx = Ctx()
    with pytest.raises(ValueError, match="bad"):
        run_sequential(ctx, [{"n": 1, "boom": ValueError("bad")}, {"n": 2}], (first, second, third))
    assert ctx.calls == [("first", 1), ("second", 1)]


def test_a_policy_decides_and_done_tasks_skip_the_rest() -> None:
    ctx = Ctx()
    seen: list[tuple[str, int, str]] = []

    def policy(stage, c, task, err) -> None:
        seen.append((stage.__name__, task["n"], str(err)))
        task["failed"] = True

    tasks = [{"n": 1, "boom": EvidockError("store full")}, {"n": 2}]
    run_sequential(ctx, tasks, (first, second, third), on_error=policy, done=lambda t: t.get("failed", False))
    assert seen == [("second", 1, "store full")]
    assert ctx.calls == [("first", 1), ("second", 1), ("first", 2), ("second", 2), ("third", 2)]


def test_threaded_overlaps_stages_of_different_tasks_and_keeps_the_policy() -> None:
    # Task 2's first stage waits until task 1 is in its second stage: this can only finish if the
    # stages of different tasks run at the same time (file n verified while file n+1 is read).
    in_second = threading.Event()
    overlapped: list[bool] = []

    def read(ctx: Ctx, task: dict) -> None:
        if task["n"] == 2:
            overlapped.append(in_second.wait(10))
        ctx.note("read", task)

    def verify(ctx: Ctx, task: dict) -> None:
        in_second.set()
        ctx.note("verify", task)
        if task["n"] == 3:
            raise RuntimeError("a bug")

    failed: list[int] = []
    ctx = Ctx()
    run_threaded(ctx, [{"n": i} for i in (1, 2, 3, 4)], (read, verify),
                 on_error=lambda s, c, t, e: failed.append(t["n"]))
    assert overlapped == [True]
    assert sorted(ctx.calls) == sorted([(w, i) for w in ("read", "verify") for i in (1, 2, 3, 4)])
    assert [n for w, n in ctx.calls if w == "verify"] == [1, 2, 3, 4]  # tasks keep their order
    assert failed == [3]
