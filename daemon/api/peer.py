"""Who is on the other end of an API connection: the kernel's word, never the client's.

``SO_PEERCRED`` gives the pid, uid and gid of the process that connected (as they were at
``connect()``); the user name and the groups come from the system's user database (``pwd``,
``grp``, ``os.getgrouplist``), as ``id`` shows them. Nothing a client sends — a header, a query
parameter, a body — enters here.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Any

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a connection. ``user`` is None for a uid the user
    database does not know (it then has no name, no groups and so no role)."""

    pid: int
    uid: int
    gid: int
    user: str | None
    groups: tuple[str, ...]

    @property
    def name(self) -> str:
        """The user's name, or ``uid:N``: how the audit log names the caller."""
        return self.user if self.user is not None else f"uid:{self.uid}"

    def to_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "gid": self.gid, "pid": self.pid, "user": self.user, "groups": list(self.groups)}


def credentials(sock: Any) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer of the Unix socket ``sock`` (a socket, or asyncio's wrapper of one)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def peer_of(sock: Any) -> Peer:
    """The peer of ``sock``, named by the user database."""
    pid, uid, gid = credentials(sock)
    try:
        user: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = None
    gids = {gid}
    if user is not None:
        try:
            gids.update(os.getgrouplist(user, gid))
        except OSError:  # the group database cannot be read: the primary group still counts
            pass
    names = []
    for g in sorted(gids):
        try:
            names.append(grp.getgrgid(g).gr_name)
        except KeyError:
            continue  # a gid without a name matches no group: entry
    return Peer(pid, uid, gid, user, tuple(names))
