"""One whole offload of a recorder volume into the store: its session, its result, and the
offload's error policy for the pipeline runner.

The shape follows beets' pipeline: a ``FileTask`` per regular file on the volume goes through
``daemon.ingest.stages.STAGES`` — copy (one read, SHA-256 and a check digest taken while written, into
a resumable partial), verify (fsync, then a cold re-read of the partial against the check digest),
commit (rename into objects/,
then the catalog row and its audit entry in one transaction) — on the one runner of
``daemon.ingest.pipeline``; tests run it sequentially, ingests run it threaded so that file *n*
is verified while file *n+1* is read. ``contain_error`` is what the runner does with an error a
stage did not handle.

Invariant 2 is kept by construction: nothing is reported ``stored`` (and so nothing may be
wiped) before its bytes were fsync'd, re-read and matched, and its catalog row committed.
Per-file trouble becomes a ``Problem`` and the walk goes on (invariant 6); trouble that makes
going on pointless (store full, recorder gone, catalog unwritable) stops the offload cleanly,
every partial checkpointed so that the next dock resumes it (invariant 4).

Limits, because nothing from a recorder is trusted (invariant 5):
- a file is read up to the size listed at the scan plus a bounded margin (``read_limit``), never
  further: a file still being written, or a volume serving data without end, is reported as
  changing and left on the recorder instead of filling the store;
- a source that is, holds or lies inside the station's own data dir is refused
  (``refuse_own_data_dir``): the catalog, objects and partials are not footage;
- a file matching a sighting of an object already stored (same recorder, path, size and mtime,
  i.e. the same transfer key) is hashed straight from the recorder and compared with that
  object; it is staged only if the bytes differ (``_confirm_unstaged``). A full store can thus
  still confirm what it holds, and re-docking unwiped files costs one read instead of a copy.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.catalog.sessions import end_session, start_session
from daemon.errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_WARNING,
    CatalogError,
    EvidockError,
    SourceError,
    SourceGone,
)
from daemon.evidence.staging import transfer_key
from daemon.i18n import Message, N_, os_error
from daemon.ingest.confirm import known_objects
from daemon.ingest.pipeline import Stage, run_sequential, run_threaded
from daemon.ingest.stages import STAGES, FileTask, OffloadContext
from daemon.ingest.volume import Problem, quoted, scan

if TYPE_CHECKING:
    from daemon.context import StationContext

log = logging.getLogger(__name__)


# -- one whole offload -----------------------------------------------------------------------


@dataclass
class IngestResult:
    session_id: int
    status: str  # completed | interrupted | failed
    tasks: list[FileTask]
    problems: list[Problem]
    message: str | None = None  # English: the session row, the audit entry, --json
    error: EvidockError | None = None  # what stopped the offload early (store full, recorder gone…)
    message_msg: Message | None = None  # ``message`` as a message for people (``str()`` is ``message``)

    @property
    def exit_code(self) -> int:
        if self.status != "completed" or any(p.severity == "error" for p in self.problems):
            return EXIT_ERROR
        return EXIT_WARNING if self.problems else EXIT_OK

    def counts(self) -> dict[str, int]:
        stored = [t for t in self.tasks if t.status == "stored"]
        return {
            "stored": len(stored),
            "duplicates": sum(t.status == "duplicate" for t in self.tasks),
            "failed": sum(t.status == "failed" for t in self.tasks),
            "bytes_stored": sum(t.size for t in stored),
            "problems": len(self.problems),
        }

    def to_json(self) -> dict[str, Any]:
        files = []
        for t in self.tasks:
            if t.status in ("stored", "duplicate"):
                f: dict[str, Any] = {"path": t.entry.display, "sha256": t.sha256, "size": t.size, "status": t.status}
                if t.resumed_from:
                    f["resumed_from"] = t.resumed_from
                try:
                    t.entry.rel.decode("utf-8")
                except UnicodeDecodeError:  # "path" is lossy then; the exact name, as `footage list --json` gives it
                    f["path_bytes_b64"] = base64.b64encode(t.entry.rel).decode()
                files.append(f)
        return {
            "session": self.session_id,
            "status": self.status,
            "message": self.message,
            **self.counts(),
            "files": files,
            "problems": [{"path": p.display, "reason": str(p.reason), "severity": p.severity} for p in self.problems],
        }


def source_id_for(source: Path, device: str | None) -> str:
    """What a partial's resume is keyed on: the recorder's serial, else the folder's real path."""
    return f"device:{device}" if device else f"path:{os.path.realpath(source)}"


def ingest(
    station: StationContext,
    source: Path,
    *,
    device: str | None = None,
    officer: str | None = None,
    clock_drift_s: float | None = None,
    threaded: bool = True,
    progress: Callable[[int], None] | None = None,
    on_scanned: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    only: set[bytes] | None = None,
    important_pattern: str | None = None,
) -> IngestResult:
    """Offload every regular file under ``source`` into the station's store.

    ``only``: offload just these paths (relative to ``source``, bytes), e.g. the files of a
    watch folder that have settled; problems and stale partials elsewhere are not reported.
    ``important_pattern``: the recorder model's rule (its driver's quirk) instead of the config's.
    """
    source = Path(source)
    if not source.exists():
        raise SourceError(N_("source {source}: does not exist (give the recorder's mounted volume or a folder)"),
                          source=str(source))
    if not source.is_dir():
        raise SourceError(N_("source {source}: not a directory (give the recorder's mounted volume or a folder)"),
                          source=str(source))
    data_dir, config = station.data_dir, station.config
    refuse_own_data_dir(source, data_dir)
    with station.catalog() as catalog:
        session_id = start_session(catalog, device, officer, str(source), clock_drift_s)
        ctx = OffloadContext(
            root=source, source_id=source_id_for(source, device), device=device, officer=officer,
            store=station.store, staging=station.staging, catalog=catalog, config=config,
            session_id=session_id, clock_drift_s=clock_drift_s, progress=progress,
            on_footage_recorded=station.footage_recorded,
        )
        if cancel is not None:
            ctx.cancel = cancel
        status, note = "completed", None
        tasks: list[FileTask] = []
        problems: list[Problem] = []
        try:
            entries, problems = scan(source, re.compile(important_pattern or config.offload.important_pattern))
            if only is not None:
                entries = [e for e in entries if e.rel in only]
                problems = [p for p in problems if p.rel in only]
            if on_scanned:
                on_scanned(len(entries), sum(e.size for e in entries))
            known = known_objects(catalog, ctx.source_id, device, entries)
            tasks = [FileTask(e, known_sha256=known.get(e.rel)) for e in entries]
            (run_threaded if threaded else run_sequential)(ctx, tasks, STAGES, on_error=contain_error)
            for t in tasks:
                if t.problem is not None:
                    problems.append(t.problem)
            if ctx.fatal is None and not ctx.cancel.is_set() and only is None:
                problems += stale_partials(ctx, tasks)
        except OSError as err:
            ctx.stop_all(SourceGone(N_("source {source}: {error}"), source=str(source), error=os_error(err)))
        if ctx.fatal is not None:
            status = "failed" if isinstance(ctx.fatal, CatalogError) else "interrupted"
            note = Message(ctx.fatal.msgid, **ctx.fatal.params)
        elif ctx.cancel.is_set():
            status, note = "interrupted", Message(N_("the offload was stopped; partials resume on the next dock"))
        message = str(note) if note is not None else None
        result = IngestResult(session_id, status, tasks, problems, message, ctx.fatal, note)
        try:
            end_session(catalog, result)
        except CatalogError as err:
            # The files stored so far are committed; only the session summary is missing.
            log.error("%s", err)
            result.status = "failed"
            unrecorded = Message(N_("the end of session {session} could not be recorded ({error})"), session=session_id, error=err)
            result.message_msg = (Message(N_("{message}; {more}"), message=note, more=unrecorded) if note is not None
                                  else unrecorded)
            result.message = str(result.message_msg)
        # E.g. the audit anchor on a full disk: everything is committed, so a warning (exit 1), not
        # an error — the anchor only lags (a note in `audit verify`) until the next commit rewrites it.
        for msg in dict.fromkeys(catalog.after_commit_failures):
            # The catalog keeps these as English text (daemon/catalog/db.py): shown as they are.
            result.problems.append(Problem(os.fsencode(data_dir), Message(N_("{message}"), message=msg), "warning"))
        return result


def refuse_own_data_dir(source: Path, data_dir: Path) -> None:
    """Refuse (``SourceError``, exit 2) a source that is the data dir, lies inside it or holds it.

    Ingesting the station's own data dir stored its ``catalog.sqlite-wal`` as footage. The test
    is by identity (st_dev, st_ino) along real paths, not by comparing strings, so a symlink, a
    ``..``, a second name or a bind mount of the data dir is caught too. One exception: another
    filesystem mounted inside the data dir is not the store — the dock mounts recorders at
    ``<data-dir>/mnt/<bay>`` — and the walk never leaves the source's filesystem.
    """
    src, dd = Path(os.path.realpath(source)), Path(os.path.realpath(data_dir))
    try:
        s = os.stat(src)
    except OSError:
        return  # the walk reports an unreadable source in its own words
    what = Message(N_("Ingesting it would store the station's own catalog, objects and partials as footage. Give the "
                      "recorder's mounted volume, or a folder outside the data dir"))
    for anc in (dd, *dd.parents):  # where the data dir is, or will be created
        try:
            a = os.stat(anc)
        except OSError:
            continue
        if (a.st_dev, a.st_ino) == (s.st_dev, s.st_ino):
            if anc == dd:
                raise SourceError(N_("source {source} is the station's data dir: refused. {what}."),
                                  source=str(source), what=what)
            raise SourceError(N_("source {source} contains the station's data dir {data_dir}: refused. {what}."),
                              source=str(source), data_dir=str(data_dir), what=what)
    try:
        d = os.stat(dd)
    except OSError:
        return  # no data dir yet: nothing can be inside it
    if s.st_dev != d.st_dev:
        return  # another filesystem mounted inside the data dir (a recorder the dock mounted)
    for anc in src.parents:
        try:
            a = os.stat(anc)
        except OSError:
            continue
        if (a.st_dev, a.st_ino) == (d.st_dev, d.st_ino):
            raise SourceError(N_("source {source} is inside the station's data dir {data_dir}: refused. {what}."),
                              source=str(source), data_dir=str(data_dir), what=what)


def contain_error(stage: Stage[OffloadContext, FileTask], ctx: OffloadContext, task: FileTask, err: Exception) -> None:
    """The offload's error policy for the pipeline runner: what a stage did not handle itself.

    A typed error (store, catalog, recorder) makes going on pointless: it stops every file
    (``ctx.stop_all``) and fails this one. Anything else is a bug that must not take the other
    files down (invariant 6): logged with its traceback, this file fails, its partial is closed
    (what was checkpointed resumes on the next dock), and the offload goes on.
    """
    if isinstance(err, EvidockError):
        ctx.stop_all(err)
        if not task.finished:
            task.fail(Message(N_("not stored: {error}"), error=err))
        return
    log.error("unexpected error in %s for %s:\n%s", stage.__name__, quoted(task.entry.rel), traceback.format_exc())
    if task.partial is not None:
        task.partial.close()
    if not task.finished:
        task.fail(Message(N_("not stored: unexpected error in {stage}: {error}"), stage=stage.__name__, error=repr(err)))


def stale_partials(ctx: OffloadContext, tasks: list[FileTask]) -> list[Problem]:
    """Partials of this recorder whose source file is no longer on it: reported, never deleted."""
    # Keyed by what is on the recorder now, not by the partials this run opened: a file another
    # run held (skipped here as busy) is still on the recorder.
    current = {transfer_key(ctx.source_id, t.entry.rel, t.entry.size, t.entry.mtime_ns) for t in tasks}
    out = []
    for p in ctx.staging.list():
        if p["source_id"] == ctx.source_id and p["key"] not in current and not p.get("busy_pid"):  # busy: another run's
            out.append(Problem(
                os.fsencode(p["path"] or p["key"]),
                Message(N_("a partial transfer ({staged} of {size} bytes, staging key {key}) whose source is "
                           "no longer on the recorder; it is kept — see `evidock staging list`, and `evidock staging discard` "
                           "once you are sure the file is gone for good"),
                        staged=p["staged_bytes"], size=p["size"], key=p["key"]),
            ))
    return out
