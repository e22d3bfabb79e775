"""The drivers' error tree: every way talking to a recorder can fail, as one typed error.

Modelled on Solaar's ``exceptions.py``/``base.py``: failures are closed at the lowest layer.
A pyserial or OS error on a recorder's port becomes one ``RecorderGone``, raised once, with the
port closed where it happened; a reply that is not what the protocol allows becomes one
``ProtocolError`` subclass naming the request and showing what came back (never the request's
payload, which may hold a password). The root is the drivers' own (drivers sit below the daemon
and import nothing from it); it carries an exit code like the daemon's errors, and the CLI
boundary maps both trees to a message and that code.

    DriverError
    ├── RecorderGone          the port vanished (unplug, pty closed, I/O error)
    ├── ProtocolError         a reply that breaks the wire format
    │   ├── GarbledReply      bytes that are not a frame, or a frame that does not decode
    │   ├── TruncatedReply    a frame that stopped before its declared end
    │   ├── OversizedReply    a frame longer than the maximum reply length, or bytes without end
    │   ├── BadChecksum       the CRC does not match
    │   ├── ReplyTimeout      no reply (or no complete one) within the request's deadline
    │   └── RejectedRequest   the recorder answered with an error status
    ├── AuthError             the recorder refused the password
    ├── InvalidReply          a well-formed reply with impossible values (a recorder that lies)
    ├── Unsupported           a capability this model does not have (not a made-up value)
    ├── NoIdentity            a mass-storage recorder whose identity cannot be read
    ├── ToolError             a helper program (mtools, fsck; ffmpeg for simulated cards) missing or failed
    │   └── FatToolError      a FAT tool
    ├── WireError             inside the zfy codec only: a frame that breaks the format, turned into
    │                         the ProtocolError subclass it names before it leaves the driver
    └── SimError              the simulated fleet (drivers/sim): a bad fault specification

Every message is a message id with params (``DriverError(recorder, N_("… {x} …"), x=v)``), English
in ``str()``; the daemon translates it where it is shown (``daemon.i18n.text``). A text that is
data rather than an error — a problem inside a ``ProtocolError``, a wipe's reason for keeping a
file, a storage check's detail — is a ``Message``: a ``str`` of its English that keeps its id.
"""

from __future__ import annotations

from typing import Any

EXIT_ERROR = 2  # the same code as daemon.errors.EXIT_ERROR: something that should have been read was not

PREVIEW_BYTES = 32


def N_(message: str) -> str:  # noqa: N802 — the gettext convention
    """Mark ``message`` for evidock's catalog (the daemon translates it when it shows the error)."""
    return message


class _Text:
    """A message id with params: English by ``str()``; the daemon's ``i18n.text`` translates it
    (it looks for ``msgid`` and ``params``: the drivers import nothing of the daemon)."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, params: dict[str, Any]) -> None:
        self.msgid, self.params = msgid, params

    def __str__(self) -> str:
        values = {k: str(v) if hasattr(v, "msgid") else v for k, v in self.params.items()}
        return self.msgid.format(**values) if values else self.msgid


class Message(str):
    """A message for people that is also its English text: a ``str`` (so it compares, stores and
    dumps as the English it always was) carrying ``msgid`` and ``params``, which the daemon's
    ``i18n.text`` translates. For texts that are data, not errors: a problem inside an error, a
    wipe's reason for keeping a file, a storage check's detail."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> Message:
        self = super().__new__(cls, str(_Text(msgid, params)))
        self.msgid, self.params = msgid, params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return _message, (self.msgid, self.params)


def _message(msgid: str, params: dict[str, Any]) -> Message:
    return Message(msgid, **params)


def preview(data: bytes, limit: int = PREVIEW_BYTES) -> Message:
    """Hex of the first ``limit`` bytes of what came back, for an error message."""
    if not data:
        return Message(N_("nothing"))
    head = data[:limit].hex(" ")
    if len(data) > limit:
        return Message(N_("{head} … ({n} bytes in all)"), head=head, n=len(data))
    return Message(N_("{head} ({n} bytes)"), head=head, n=len(data))


class DriverError(Exception):
    """Something went wrong talking to a recorder. ``recorder`` names the port or serial."""

    exit_code = EXIT_ERROR

    def __init__(self, recorder: str | None, message: str, /, **params: Any):
        self.recorder = recorder
        if recorder:
            message, params = N_("recorder {recorder}: {message}"), {"recorder": recorder,
                                                                     "message": _Text(message, params)}
        self.msgid, self.params = message, params
        super().__init__(str(_Text(message, params)))


class RecorderGone(DriverError):
    """The recorder's control port went away: unplugged, switched off, or an I/O error."""


class ProtocolError(DriverError):
    """A reply that breaks the wire format (see drivers/README.md)."""

    def __init__(self, recorder: str, request: str, problem: str, got: bytes = b"", hint: str | None = None):
        # ``problem`` (and ``hint``) a ``Message``: ``ProtocolError(r, name, Message(N_("…"), …), got)``
        self.request, self.problem, self.got = request, problem, bytes(got)
        hint = hint or Message(N_("Check the cable and that this port belongs to a GA/T 947 recorder; "
                                  "`evidock probe PORT` shows what it answers"))
        super().__init__(recorder, N_("{request}: {problem}; got {got}. {hint}"),
                         request=request, problem=problem, got=preview(self.got), hint=hint)


class GarbledReply(ProtocolError):
    pass


class TruncatedReply(ProtocolError):
    pass


class OversizedReply(ProtocolError):
    pass


class BadChecksum(ProtocolError):
    pass


class ReplyTimeout(ProtocolError):
    pass


class RejectedRequest(ProtocolError):
    """The recorder understood the request and said no (bad argument, busy)."""

    busy = False  # a busy recorder is asked again after the backoff; a bad argument is not


class AuthError(DriverError):
    """The recorder refused the password (the password itself is never in the message)."""


class InvalidReply(DriverError):
    """A well-formed reply whose values cannot be true (battery 250 %, free space > card size)."""

    def __init__(self, recorder: str, request: str, problem: str):
        self.request, self.problem = request, problem
        super().__init__(recorder, N_("{request}: {problem}; the value is rejected as invalid "
                                      "(the recorder's firmware reports nonsense — have it serviced)"),
                         request=request, problem=problem)


class ClockOutOfRange(InvalidReply):
    """The recorder's clock reads a time no working clock shows (a reset RTC): invalid, yet read.

    ``drift_s`` (recorder − station) is kept, so the station knows how far off the file times of
    this dock are and does not trust them (``drivers.base.clock_trusted``).
    """

    def __init__(self, recorder: str, request: str, problem: str, drift_s: float | None):
        self.drift_s = drift_s
        super().__init__(recorder, request, problem)


class Unsupported(DriverError):
    """A capability this recorder model does not have. Reported as "not reported", never guessed."""

    def __init__(self, recorder: str, capability: str, model: str):
        self.capability, self.model = capability, model
        super().__init__(recorder, N_("{capability} is not supported by model {model}"),
                         capability=capability, model=model)


class NoIdentity(DriverError):
    """A mass-storage recorder with neither a device-info file nor a USB serial."""




class WireError(DriverError, ValueError):
    """A frame or payload that breaks the format; ``kind`` picks the driver's error class."""

    def __init__(self, kind: type[ProtocolError], problem: str, /, got: bytes = b"", **params: Any):
        self.kind, self.got = kind, bytes(got)
        self.problem = Message(problem, **params)  # what the driver puts in its ProtocolError
        super().__init__(None, problem, **params)


class ToolError(DriverError):
    """A helper program is missing or failed; the message names it and what it said."""

    def __init__(self, message: str, /, **params: Any):
        super().__init__(None, message, **params)


class FatToolError(ToolError, RuntimeError):
    """A FAT tool (mtools, dosfstools) is missing or failed on an image or a card."""


class SimError(DriverError, ValueError):
    """The simulated fleet was asked for something it cannot do (a bad fault specification)."""

    def __init__(self, message: str, /, **params: Any):
        super().__init__(None, message, **params)
