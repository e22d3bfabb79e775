"""What a bay shows beside its state once a dock stage has run: message ids with params,
rendered in the reader's language where the state is shown (``evidock status``, the demo)."""

from __future__ import annotations

from daemon.display import seconds
from daemon.dock import check as dockcheck
from daemon.dock.jobs import State
from daemon.i18n import N_, Message


def stage_detail(task: dockcheck.DockTask, state: State) -> Message | None:
    """The detail of entering ``state`` after a dock-check stage; ``None``: nothing to add."""
    r = task.reading
    if state is State.IDENTIFIED and task.device:
        return Message(N_("{model} serial {serial}, officer {officer}"), model=task.device.model or "?",
                       serial=task.device.serial, officer=task.device.badge or Message(N_("unbound")))
    if state is State.HEALTH_CHECKED and r:
        b = f"{r.battery.percent}%" if r.battery else Message(N_("not reported"))
        return Message(N_("battery {battery}, {n} alert(s)"), battery=b, n=len(task.alerts))
    if state is State.CLOCK_SYNCED and r:
        d = seconds(r.clock_drift_s, sign=True) if r.clock_drift_s is not None else Message(N_("not measured"))
        if r.clock_set:
            return Message(N_("drift {drift}, clock set"), drift=d)
        return Message(N_("drift {drift}, clock NOT set"), drift=d)
    return None
