"""sd_notify for the service: READY=1, STATUS=…, WATCHDOG=1, STOPPING=1, RELOADING=1.

Hand-written rather than a dependency: the protocol is one datagram on the Unix socket named
by ``$NOTIFY_SOCKET`` (an abstract socket when it starts with ``@``), and the PyPI packages
for it are unmaintained or need libsystemd headers to build. Without ``$NOTIFY_SOCKET``
(not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket


def notify(*fields: str) -> bool:
    """Send ``KEY=value`` lines to systemd; True if a notify socket was there to send to."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    msg = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8", "replace")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(msg, addr)
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """Half the watchdog period systemd asked for (``$WATCHDOG_USEC``), in seconds, or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
