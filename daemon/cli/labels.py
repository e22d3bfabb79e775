"""Words for codes in human output: dock states, case status, how a file was filed, alert kinds.

JSON keeps the codes (``READY``, ``open``, ``auto``); a table shows these labels, translated.
A code without a label is shown as the code itself.
"""

from __future__ import annotations

from daemon.i18n import N_, _

STATES = {
    "DETECTED": N_("detected"),
    "IDENTIFIED": N_("identified"),
    "HEALTH_CHECKED": N_("health checked"),
    "CLOCK_SYNCED": N_("clock set"),
    "MOUNTED": N_("mounted"),
    "OFFLOADING": N_("offloading"),
    "VERIFIED": N_("verified"),
    "FILED": N_("filed"),
    "WIPED": N_("wiped"),
    "READY": N_("ready"),
    "ERROR": N_("error"),
    "INTERRUPTED": N_("interrupted"),
}

CASE_STATUS = {"open": N_("open"), "closed": N_("closed")}
SENSITIVITY = {"normal": N_("normal"), "secret": N_("secret")}
FILED_HOW = {"auto": N_("automatically"), "manual": N_("by hand"), "companion": N_("with the recordings it accompanies")}
# A stored file's kind (daemon.catalog.kinds.KINDS).
FILE_KINDS = {"video": N_("video"), "audio": N_("audio"), "photo": N_("photo"), "track": N_("GPS track"),
              "log": N_("device log"), "system": N_("system file"), "other": N_("other file")}
FILE_STATUS = {"stored": N_("stored"), "duplicate": N_("duplicate"), "failed": N_("not stored")}
SESSION_STATUS = {"completed": N_("completed"), "interrupted": N_("interrupted"), "failed": N_("failed")}
HOLD_STATES = {"held": N_("held"), "released": N_("released"), "already held": N_("already held"),
               "not held": N_("not held")}
ALERT_KINDS = {"battery_low": N_("battery low"), "storage_full": N_("card nearly full"), "clock_drift": N_("clock drift"),
               "clock_invalid": N_("clock not trusted"), "fs_errors": N_("card filesystem errors"),
               "capacity_fade": N_("battery capacity fading"), "bad_reply": N_("wrong replies")}
SEEN_AS = {"docked": N_("docked"), "manual": N_("manual import"), "registered": N_("registered, never docked")}
MEDIA_KINDS = {"video": N_("video"), "audio": N_("audio"), "photo": N_("photo"), "other": N_("other")}
PROXY_STATUS = {"done": N_("made"), "n/a": N_("not needed"), "failed": N_("failed"), "pending": N_("pending")}
MEDIA_PLANS = {"remux": N_("remuxed"), "transcode": N_("transcoded"), "copy-audio": N_("audio copied"),
               "encode-audio": N_("audio encoded"), "photo": N_("photo scaled")}
JOB_STATES = {"queued": N_("queued"), "running": N_("running"), "done": N_("done"), "failed": N_("failed"),
              "retry": N_("waiting to retry")}
SEVERITY = {"warning": N_("warning"), "error": N_("error"), "note": N_("note")}


def label(table: dict[str, str], code: str | None) -> str:
    """The translated label of ``code`` in ``table`` (the code itself when it has none)."""
    if code is None:
        return "-"
    return _(table[code]) if code in table else code


def yes_no(value: bool) -> str:
    """``是``/``yes`` for true, ``-`` for false (a column with a header, never a bare ``!``)."""
    return _("yes") if value else "-"
