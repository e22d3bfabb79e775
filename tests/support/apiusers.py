"""Real users for the API tests, without touching the machine's own user database.

How: the test writes a copy of ``/etc/passwd`` and ``/etc/group`` with its users and groups
added, and runs the station inside a private mount namespace (``unshare -m --propagation
private``) where those two files are bind-mounted over the real ones — there, and only there,
``pwd``/``grp``/``os.getgrouplist`` know the test's users, as they would know staff on a
station. Clients run as those users for real: ``setpriv --reuid=UID --regid=GID --groups=…``
(the kernel then names them to the station through ``SO_PEERCRED``, and checks the socket's
mode and group against them), the client being ``tests/support/apiclient.py`` (httpx over the
Unix socket) or ``curl --unix-socket``. The tests run as root (setpriv and mount need it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLIENT = Path(__file__).resolve().parent / "apiclient.py"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    groups: tuple[str, ...] = ()  # supplementary groups, by name (the primary group is the user's own)

    @property
    def gid(self) -> int:
        return self.uid  # each user's primary group has the user's name and id, as useradd makes it


@dataclass
class Users:
    """The test's users and groups, written into ``root`` as passwd and group files."""

    root: Path
    users: list[User]
    groups: dict[str, int] = field(default_factory=dict)  # group name -> gid (members: the users naming it)

    def __post_init__(self) -> None:
        passwd = Path("/etc/passwd").read_text().rstrip("\n").split("\n")
        group = Path("/etc/group").read_text().rstrip("\n").split("\n")
        for u in self.users:
            passwd.append(f"{u.name}:x:{u.uid}:{u.gid}:{u.name}:/nonexistent:/usr/sbin/nologin")
            group.append(f"{u.name}:x:{u.gid}:")
        for g, gid in self.groups.items():
            members = ",".join(u.name for u in self.users if g in u.groups)
            group.append(f"{g}:x:{gid}:{members}")
        self.passwd, self.group = self.root / "passwd", self.root / "group"
        self.passwd.write_text("\n".join(passwd) + "\n")
        self.group.write_text("\n".join(group) + "\n")
        for p in (self.passwd, self.group):
            p.chmod(0o644)

    def __getitem__(self, name: str) -> User:
        return next(u for u in self.users if u.name == name)

    def namespaced(self, cmd: list[str]) -> list[str]:
        """``cmd`` in a private mount namespace where the test's passwd and group are the system's."""
        script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"'
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                str(self.passwd), str(self.group), *cmd]

    def as_user(self, user: User, cmd: list[str]) -> list[str]:
        """``cmd`` run as ``user``: their uid, their primary group and their supplementary groups only."""
        gids = [str(self.groups[g]) for g in user.groups]
        return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                f"--groups={','.join(gids)}" if gids else "--clear-groups", *cmd]

    def ask(self, user: User, socket: Path, *requests: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Send ``requests`` (a path, or {method, path, headers, body}) as ``user`` on one connection;
        each answer is {status, body}, or {error, errno} when the socket cannot be reached."""
        reqs = [{"path": r} if isinstance(r, str) else r for r in requests]
        p = subprocess.run(self.as_user(user, [sys.executable, str(CLIENT), str(socket), json.dumps(reqs)]),
                           capture_output=True, text=True, timeout=60, cwd="/", env={"PATH": os.environ["PATH"],
                                                                                     "LANG": "C.UTF-8"})
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
