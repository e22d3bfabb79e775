"""The catalog side of a file now in the store: its footage row (or, for bytes already stored, a
sighting), the audit entry stating its content, and the after-record hooks — all in one
transaction under the object's lock — plus the recording time on the station's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from daemon.catalog import footage, officers
from daemon.catalog.kinds import COMPANION, kind_of, track_span
from daemon.clock import utcnow
from daemon.errors import (
    StoreError,
)
from daemon.evidence import audit
from daemon.i18n import N_
from drivers.base import clock_trusted

if TYPE_CHECKING:
    from daemon.ingest.stages import FileTask, OffloadContext



# -- the catalog side of a stored file ------------------------------------------------------


def record_file(ctx: OffloadContext, task: FileTask) -> str:
    """Catalog row, sighting and audit entry for a file now in the store; returns its status."""
    sha, e = task.sha256, task.entry
    assert sha is not None
    key = task.partial.journal.key if task.partial else None
    now = utcnow()
    path = e.display
    recorded = datetime.fromtimestamp(e.mtime_ns / 1e9, timezone.utc)
    mtime = recorded.isoformat(timespec="seconds")
    fixed = corrected_time(recorded, ctx.clock_drift_s)
    corrected = fixed.isoformat(timespec="seconds") if fixed is not None else None  # None: clock not trusted
    # The object's lock (re-entrant; commit_stage already holds it) spans the check that the
    # object is there and the commit of the rows naming it: retention cannot delete it between.
    with ctx.store.object_lock(sha), ctx.catalog.transaction() as conn:
        if not ctx.store.exists(sha):
            raise StoreError(N_("object {sha} of {path} is not in the store (removed meanwhile); not catalogued — "
                                "the file stays on the recorder, offload it again"), sha=sha, path=path)
        if task.from_journal and footage.sighted(conn, key, sha):
            return "stored"  # committed by a run that died before it could clear its journal
        footage.add_object(conn, sha, task.size, now)
        known = footage.footage_id(conn, sha)
        # Pooled recorders (issue 13): the officer assigned at the (corrected) recording time, else
        # the recorder's binding; a disagreement is kept and audited. Before filing, which uses it.
        officer, by, assignment = officers.attribute(conn, ctx.device, ctx.officer, corrected)
        if known is None:
            head, tail = task.sample or (None, None)
            kind = kind_of(e.rel, head=head)
            span = track_span(head, tail) if kind in COMPANION else None
            fid = footage.add_footage(conn, sha256=sha, size=task.size, device=ctx.device, officer=officer, path=path,
                                      path_raw=e.rel, recorded_at=mtime, recorded_at_corrected=corrected,
                                      important=e.important, session_id=ctx.session_id, now=now,
                                      bound_officer=ctx.officer, attributed_by=by, kind=kind, span=span)
            if by == "assignment" and ctx.officer and officer != ctx.officer:
                audit.append(ctx.catalog, "footage.attribution", sha, {
                    "footage": fid, "device": ctx.device, "officer": officer, "bound_officer": ctx.officer,
                    "assignment": assignment, "recorded_at": corrected})
            # Filing (art. 11) and the media job, in the transaction that records it: hooks the
            # station context registered (daemon/context.py), so the offload imports neither.
            ctx.on_footage_recorded(ctx.catalog, conn, fid, sha)
        footage.add_sighting(conn, sha256=sha, session_id=ctx.session_id, device=ctx.device, officer=officer,
                             path=path, path_raw=e.rel, size=task.size, mtime=mtime, transfer_key=key, now=now)
        event = "object.ingest" if known is None else "object.sighting"
        audit.append(ctx.catalog, event, sha, {
            "session": ctx.session_id, "device": ctx.device, "officer": officer,
            "bound_officer": ctx.officer, "attributed_by": by,
            "path": path, "size": task.size, "important": e.important,
            # Since issue 9: the row this entry is about and its recording time, so that `verify`
            # can hold each footage row to the entry that created it (older entries lack them).
            "footage": footage.footage_id(conn, sha),
            "recorded_at": mtime,
            **({"kind": kind} if known is None else {}),  # since issue 14
        })
    return "stored" if known is None else "duplicate"


def corrected_time(recorded: datetime, clock_drift_s: float | None) -> datetime | None:
    """The recording time on the station's clock.

    Rule: corrected = reported − drift, where drift = recorder clock − station clock as measured
    when the recorder was docked (before the station set its clock). Assumption: the drift was
    the same when the file was recorded as at the dock — recorder clocks drift slowly and the
    station resets them at every dock, so within one shift the error is small. Unknown drift
    (no control channel): the reported time is kept as the corrected one.

    A clock more than ``drivers.base.CLOCK_TRUST_LIMIT_S`` (a year) from the station's was not
    drifting but set wrong, so nothing says the files were recorded under the same error: the
    time is unknown (None; the footage row keeps the reported time in ``recorded_at``). Filing
    then matches no case — the footage waits in the unfiled queue for a person — and its 2-day
    deadline runs from the ingest (``daemon.cases.filing._T_DUE``).
    """
    if clock_drift_s is None:
        return recorded
    if not clock_trusted(clock_drift_s):
        return None
    try:
        return recorded - timedelta(seconds=clock_drift_s)
    except OverflowError:  # a reported time near datetime's ends
        return None
