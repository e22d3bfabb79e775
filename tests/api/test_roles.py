"""The role table and the decision of one request (daemon.api.roles), without a socket: the
table is issue 20's, a role comes by user or by group, and the widest scope a caller can use
wins — or a refusal that says, in the caller's terms, what is missing."""

from __future__ import annotations

import pytest

from daemon.api.peer import Peer
from daemon.api.roles import ACTIONS, ALL, OWN, UNIT, Action, _table, authorize, caller_of, roles_of
from daemon.config import parse_config
from daemon.errors import Forbidden

ACCESS = parse_config({"access": {"roles": {"officer": ["group:officers"], "clerk": ["user:wangfang", "user:both"],
                                            "legal": ["group:legal"], "maintenance": ["user:liqiang"]},
                                  "units": {"wangfang": "一队"}}}).access


def peer(user: str | None, *groups: str, uid: int = 2000) -> Peer:
    return Peer(pid=1, uid=uid, gid=uid, user=user, groups=groups)


def test_the_table_is_the_issues() -> None:
    who = {name: a.who for name, a in ACTIONS.items()}
    assert who["footage.list"] == {"officer": OWN, "clerk": UNIT, "section-head": UNIT, "legal": ALL, "admin": ALL}
    assert who["footage.file"] == who["cases.edit"] == {"clerk": UNIT, "section-head": UNIT, "legal": ALL}
    assert who["devices.read"] == {"maintenance": ALL, "admin": ALL}
    assert who["station.admin"] == {"admin": ALL}
    assert who["audit.read"] == {"section-head": UNIT, "legal": ALL, "admin": ALL}
    with pytest.raises(ValueError, match="twice"):
        _table(Action("x", "x", {}), Action("x", "x", {}))
    with pytest.raises(ValueError, match="unknown roles or scopes"):
        _table(Action("x", "x", {"boss": ALL}))
    with pytest.raises(ValueError, match="unknown roles or scopes"):
        _table(Action("x", "x", {"clerk": "granted"}))


def test_roles_come_by_user_and_by_group() -> None:
    assert roles_of(ACCESS, "zhangwei", ("zhangwei", "officers")) == ("officer",)
    assert roles_of(ACCESS, "both", ("officers",)) == ("officer", "clerk")
    assert roles_of(ACCESS, "zhaolei", ("legal",)) == ("legal",)
    assert roles_of(ACCESS, "officers", ()) == ()  # a user named like a group is not the group
    assert roles_of(ACCESS, None, ("legal",)) == ()  # a uid without a name has no role


def test_the_widest_usable_scope_wins() -> None:
    officer = {"badge": "010201", "unit": "二队"}
    assert authorize(caller_of(peer("zhaolei", "legal"), ACCESS, None), "footage.list").scope == ALL
    g = authorize(caller_of(peer("wangfang"), ACCESS, None), "footage.list")
    assert (g.scope, g.unit) == (UNIT, "一队")  # [access.units]
    g = authorize(caller_of(peer("zhangwei", "officers"), ACCESS, officer), "footage.list")
    assert (g.scope, g.badge) == (OWN, "010201")
    # a clerk without a unit who is an officer too: their own footage, rather than nothing
    g = authorize(caller_of(peer("both", "officers"), ACCESS, officer), "footage.list")
    assert (g.scope, g.unit) == (UNIT, "二队")  # the officer registry's unit counts for them
    g = authorize(caller_of(peer("both", "officers"), ACCESS, {"badge": "010201", "unit": None}), "footage.list")
    assert (g.scope, g.badge) == (OWN, "010201")


@pytest.mark.parametrize("who, groups, officer, action, says", [
    ("sunli", (), None, "footage.list", "you (sunli) have no role at this station"),
    (None, (), None, "footage.list", "you (uid:2000) have no role"),
    ("liqiang", (), None, "footage.list", "you (liqiang) may not list footage metadata: your roles (maintenance)"),
    ("zhaolei", ("legal",), None, "devices.read", "may not read recorders, their health, reports and recorder models"),
    ("zhangwei", ("officers",), None, "footage.list", "no officer's badge is tied to your login; an administrator "
                                                      "ties it with `evidock officer edit BADGE --user zhangwei`"),
    ("both", (), None, "footage.list", "you (both) may list footage metadata only for your own unit, and you have none"),
])
def test_a_refusal_says_why(who: str | None, groups: tuple, officer: dict | None, action: str, says: str) -> None:
    with pytest.raises(Forbidden, match=says.replace("(", r"\(").replace(")", r"\)")) as e:
        authorize(caller_of(peer(who, *groups), ACCESS, officer), action)
    assert e.value.status == 403 and e.value.code == "forbidden"
