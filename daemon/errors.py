"""The station's error tree, with the exit code each error ends a command with.

Modelled on borg's ``helpers/errors.py``: an error carries its own message and exit code, so
the CLI boundary only has to print it. Exit codes (DESIGN.md): 0 all good, 1 finished with
warnings (entries skipped), 2 error (something that should have been stored or checked was not).
Per-entry trouble during an offload is *not* an exception: it is a `Problem` record collected
and reported once at the end (bagit-python's validate style).

Every exception of the daemon is defined here. Three kinds stay outside ``EvidockError`` on
purpose: OS-level conditions that callers handle as the ``OSError`` they are (``ReadFailed``,
``WriteFailed``, ``NotTheSameFile``: with ``errno`` and the bytes that got through), and signals
that are not errors at all (``Cancelled``: told to stop; ``Undocked``: the recorder left the bay),
which must never be reported as failures by a handler of ``EvidockError``. The drivers have a
tree of their own (``drivers/errors.py``); the CLI boundary maps both.
"""

from __future__ import annotations

from typing import Any

from daemon.i18n import N_, Message, is_message, render

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_ERROR = 2
EXIT_NOT_RUNNING = 3  # `evidock status` only, as systemctl status: the station is not running


class EvidockError(Exception):
    """Base of every error evidock raises on purpose. The message says what to do.

    Raised with an English message id and its params, ``StoreError(N_("cannot write {path}"),
    path=p)``: ``str(e)`` is the English (logs, JSON) and ``e.text()`` the reader's language
    (``daemon.i18n.Message``), which the CLI prints.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: object = "", /, **params: Any) -> None:
        if is_message(message) and not params:  # a Message (or another error) passed on whole
            message, params = message.msgid, dict(message.params)  # type: ignore[attr-defined]
        self.msgid, self.params = str(message), params
        super().__init__(render(self.msgid, params, translate=False))

    def text(self) -> str:
        """The message in the current language."""
        return render(self.msgid, self.params, translate=True)


class InvalidValue(EvidockError, ValueError):
    """A value as given (a time, a size, a name) is not one evidock can use; still a ValueError."""


class ConfigError(EvidockError):
    """The configuration file is missing, unreadable or does not match the schema."""


class StoreError(EvidockError):
    """The evidence store (data dir, objects, staging) cannot be used."""


class StoreFullError(StoreError):
    """The store's filesystem has no room for what must be stored next."""

    def __init__(self, store: str, needed: int, free: int, what: str):
        # "needed" is worked out from sizes a recorder reported, which can be wrong: a file that
        # grew while read once made it "-276.4 MiB needed". Callers must pass a lower bound of
        # what is really missing; a figure below one byte is still never shown as such.
        needed, free = max(needed, 1), max(free, 0)
        self.store, self.needed, self.free, self.what = store, needed, free, what
        super().__init__(
            N_("store {store} is full: {needed} needed for {what}, {free} free. Nothing was half-stored; "
               "free space on that filesystem (or move the data dir) and run the offload again: it "
               "resumes from the staged bytes."),
            store=store, needed=format_bytes(needed), free=format_bytes(free), what=what)


class CatalogError(EvidockError):
    """The SQLite catalog cannot be opened, migrated or written."""


class SourceError(EvidockError):
    """A file or folder on a recorder could not be read (gone, unreadable, I/O error)."""


class SourceGone(SourceError):
    """The recorder volume went away mid-read (undock, unplug, I/O error)."""


class StationNotRunning(EvidockError):
    """``evidock status`` on a data dir no station has run with (exit 3, as systemctl status)."""

    exit_code = EXIT_NOT_RUNNING


class NotFound(EvidockError):
    """A named thing (footage id, object, partial) does not exist."""


def format_bytes(n: int) -> str:
    """Human-readable size with binary units, e.g. ``12.0 MiB``.

    Sizes only: a negative count is a bug in the caller's arithmetic and raises ``ValueError``
    rather than reaching a person as "-276.4 MiB".
    """
    if n < 0:
        raise ValueError(f"format_bytes: a size cannot be negative ({n})")
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")




class PartialBusy(StoreError):
    """Another offload holds this partial right now."""


class ReadFailed(OSError):
    """Reading the source failed after ``copied`` bytes reached the partial."""

    def __init__(self, err: OSError, copied: int):
        super().__init__(err.errno, err.strerror)
        self.copied = copied


class ReadTimeout(SourceError):
    """The source gave no data for ``seconds`` (a recorder that hangs) after ``copied`` bytes."""

    def __init__(self, seconds: float, copied: int):
        super().__init__(N_("no data for {seconds:g} s"), seconds=seconds)
        self.seconds, self.copied = seconds, copied


class Cancelled(Exception):
    """Work was told to stop (undock, SIGTERM, a media runner stopping): a signal, not an error.

    An offload carries how many bytes reached the partial (``copied``) so that it can checkpoint
    them; a media job is handed back to its queue untouched, not counted as an attempt.
    """

    def __init__(self, what: str = "stopped on request", copied: int = 0):
        super().__init__(what)
        self.copied = copied


class WriteFailed(OSError):
    """Writing the partial failed (ENOSPC, EIO…) after ``written`` bytes.

    ``pending``: bytes already read from the source that did not reach the partial (the rest of
    the chunk being written), so the caller knows how much more room it needed at least.
    """

    def __init__(self, err: OSError, written: int, pending: int = 0):
        super().__init__(err.errno, err.strerror)
        self.written, self.pending = written, pending


class GrewPastLimit(SourceError):
    """The source still had data at ``limit`` bytes: it is being written to (or lies about its size).

    ``copied``: bytes that reached the partial (or the hasher), never more than ``limit``.
    """

    def __init__(self, limit: int, copied: int):
        super().__init__(N_("still has data after {limit} bytes"), limit=limit)
        self.limit, self.copied = limit, copied


class BackupError(EvidockError):
    """A backup target cannot be used or did not take a copy (names the target and why)."""


class AnchorError(EvidockError):
    """The anchor file could not be rewritten after a commit (the commit itself stands)."""


class NotTheSameFile(OSError):
    """The path now names something else than the file that was scanned."""


class Undocked(Exception):
    """The recorder left the bay while its job was running."""


class Refused(EvidockError):
    """The station will not offload this recorder (not registered, per dock.unknown_serial)."""


class MountError(EvidockError):
    """The volume could not be mounted (or unmounted); says which device and why."""


class MediaError(EvidockError):
    """The media tools cannot be used at all (ffmpeg missing, no way to start processes)."""


class MediaFailure(EvidockError):
    """One job failed: why (for people), ffmpeg's last lines, and whether trying again can help."""

    exit_code = EXIT_WARNING

    def __init__(self, reason: object, /, *, permanent: bool, detail: str = "", **params: Any):
        super().__init__(reason, **params)
        # ``reason``: the message (a ``Message``: ``str()`` English, ``text()`` translated)
        self.reason = Message(self.msgid, **self.params)
        self.permanent, self.detail = permanent, detail


class CaseError(EvidockError):
    """A case as given (command line or file) is not valid, or cannot be changed as asked."""


class CaseImportError(CaseError):
    """A case CSV cannot be imported at all (unreadable, unknown encoding, missing columns)."""


class OfficerError(EvidockError):
    """An officer or a recorder assignment as given cannot be registered or recorded (issue 13)."""


class FilingError(EvidockError):
    """A filing change cannot be made as asked."""


class RetentionError(EvidockError):
    """Retention cannot run as asked (e.g. the plan changed since it was reviewed)."""


class ReviewError(EvidockError):
    """A review cannot be drawn or recorded as asked."""


class ReportError(EvidockError):
    """A report cannot be written (its folder cannot be created or written; daemon/report)."""


class JobError(EvidockError):
    """A scheduled job cannot be run as asked (unknown name; daemon/schedule)."""


class JobBusy(JobError):
    """The job is running right now in this or another process: this start did not run it."""

    exit_code = EXIT_WARNING


class NotifyError(EvidockError):
    """An alert message could not be sent through a channel (names the channel and why, never a secret)."""


class ApiError(EvidockError):
    """A request to the station's API (daemon/api) that is answered with an error: its HTTP status
    and code go into the JSON ``{"error": {"code": …, "message": …}}``."""

    status = 400
    code = "bad_request"


class Forbidden(ApiError):
    """The caller's role does not allow what they asked (403); the message says why, to them."""

    status = 403
    code = "forbidden"


class ApiUnavailable(EvidockError):
    """The API cannot be served (``api.socket`` cannot be created); the docks still run."""
