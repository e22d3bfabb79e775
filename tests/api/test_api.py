"""The station's API through its real socket (issue 20): the caller is who the kernel says, the
role table decides, every refusal is a 403 that says why and an audit entry.

One `evidock run` for the module, inside a private mount namespace whose /etc/passwd and
/etc/group carry the test's users (``support.apiusers`` says how); each client runs as one of
those users under ``setpriv`` and talks httpx (``support/apiclient.py``) or curl over the socket.
The catalog holds three officers — two tied to logins, in units 一队 and 二队, one without a
login in 一队 — with two recordings each, on recorders ZFY-1..3.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, run_evidock
from support.apiusers import User, Users
from support.docktools import wait_until
from support.filing_helpers import ingest_clips, t

from daemon.catalog import officers
from daemon.catalog.db import Catalog

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unshare -m, mount --bind, setpriv")

UNIT1, UNIT2 = "劳动监察一队", "劳动监察二队"
ZHANG, LI, NOLOGIN = "010201", "010202", "010203"  # officers: zhangwei (unit 1), lina (unit 2), no login (unit 1)
GROUPS = {"evidock-staff": 2200, "officers": 2201, "legal": 2202, "admins": 2203}
USERS = [
    User("zhangwei", 2101, ("evidock-staff", "officers")),
    User("lina", 2102, ("evidock-staff", "officers")),
    User("wangfang", 2103, ("evidock-staff",)),           # clerk of unit 1 ([access.units])
    User("zhaolei", 2104, ("evidock-staff", "legal")),    # legal, through the group
    User("liqiang", 2105, ("evidock-staff",)),            # maintenance
    User("sunli", 2106, ("evidock-staff",)),              # may connect, has no role
    User("outsider", 2107, ("legal",)),                   # legal by group, but not in the socket's group
    User("zhouming", 2108, ("evidock-staff",)),           # section head of unit 2
    User("gaofeng", 2109, ("evidock-staff", "admins")),   # admin, through the group
]
CONFIG = f"""
[access.roles]
officer = ["group:officers"]
clerk = ["user:wangfang"]
section-head = ["user:zhouming"]
legal = ["group:legal"]
maintenance = ["user:liqiang"]
admin = ["group:admins"]

[access.units]
wangfang = "{UNIT1}"
zhouming = "{UNIT2}"
"""


@dataclass
class Station:
    users: Users
    socket: Path
    data: Path
    proc: subprocess.Popen

    def ask(self, name: str, *requests: dict | str) -> list[dict]:
        return self.users.ask(self.users[name], self.socket, *requests)

    def one(self, name: str, request: dict | str) -> dict:
        return self.ask(name, request)[0]

    def refusals(self) -> list[dict]:
        con = sqlite3.connect(f"file:{self.data / 'catalog.sqlite'}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT actor, subject, details FROM audit WHERE event = 'api.refused' ORDER BY id").fetchall()
        finally:
            con.close()
        return [{"actor": a, "subject": s, **json.loads(d)} for a, s, d in rows]


def _populate(data: Path, work: Path) -> None:
    with Catalog(data) as c:
        officers.add_officer(c, ZHANG, "张伟", UNIT1)
        officers.add_officer(c, LI, "李娜", UNIT2)
        officers.add_officer(c, NOLOGIN, "王五", UNIT1)
        officers.edit_officer(c, ZHANG, user="zhangwei")
        officers.edit_officer(c, LI, user="lina")
    for i, badge in enumerate((ZHANG, LI, NOLOGIN), 1):
        ingest_clips(data, work / f"v{i}", {f"{badge}_a.mp4": t(f"2026-11-2{i} 01:00:00"),
                                            f"{badge}_b.mp4": t(f"2026-11-2{i} 03:00:00")},
                     officer=badge, device=f"ZFY-{i}")


@pytest.fixture(scope="module")
def station() -> Iterator[Station]:
    # Not pytest's tmp_path: its parents are root's alone (0700), and the test users must reach the socket.
    world = Path(tempfile.mkdtemp(prefix="evidock-api-", dir="/tmp"))
    proc = None
    try:
        world.chmod(0o755)
        (world / "run").mkdir(mode=0o755)
        users = Users(world, USERS, GROUPS)
        sock, data = world / "run" / "api.sock", world / "data"
        cfg = world / "evidock.toml"
        cfg.write_text(f"[api]\nsocket = '{sock}'\n" + CONFIG)
        _populate(data, world / "work")
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_") and k != "NOTIFY_SOCKET"}
        log = (world / "daemon.log").open("w")
        proc = subprocess.Popen(users.namespaced([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir",
                                                  str(data), "run"]), cwd=REPO, env=env, stdout=log, stderr=log)
        wait_until(lambda: _listening(sock) or proc.poll() is not None, 60, "the API socket")
        assert proc.poll() is None, (world / "daemon.log").read_text()
        yield Station(users, sock, data, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (world / "daemon.log").read_text()[-3000:]
        assert not sock.exists(), "the station left its socket behind"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(world, ignore_errors=True)


def _listening(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_whoami_names_each_caller_by_the_kernels_word(station: Station) -> None:
    expected = {  # user: (roles, unit, badge)
        "zhangwei": (["officer"], UNIT1, ZHANG),  # unit from the officer registry, through the login
        "lina": (["officer"], UNIT2, LI),
        "wangfang": (["clerk"], UNIT1, None),  # unit from [access.units]
        "zhaolei": (["legal"], None, None),
        "liqiang": (["maintenance"], None, None),
        "zhouming": (["section-head"], UNIT2, None),
        "gaofeng": (["admin"], None, None),
        "sunli": ([], None, None),
    }
    for name, (roles, unit, badge) in expected.items():
        u = station.users[name]
        r = station.one(name, "/v1/whoami")
        assert r["status"] == 200, r
        me = r["body"]
        assert (me["uid"], me["gid"], me["user"]) == (u.uid, u.gid, name)
        assert set(me["groups"]) == {name, *u.groups}
        assert (me["roles"], me["unit"], me["badge"]) == (roles, unit, badge), name


def _footage(station: Station, name: str, query: str = "") -> dict:
    r = station.one(name, f"/v1/footage{query}")
    assert r["status"] == 200, r
    return r["body"]


def test_footage_is_scoped_by_role(station: Station) -> None:
    own = _footage(station, "zhangwei")
    assert own["scope"] == "own" and {r["officer"] for r in own["footage"]} == {ZHANG} and len(own["footage"]) == 2
    assert {r["officer"] for r in _footage(station, "lina")["footage"]} == {LI}
    unit = _footage(station, "wangfang")
    assert unit["scope"] == "unit" and {r["officer"] for r in unit["footage"]} == {ZHANG, NOLOGIN}
    head = _footage(station, "zhouming")
    assert head["scope"] == "unit" and {r["officer"] for r in head["footage"]} == {LI}
    everything = _footage(station, "zhaolei")
    assert everything["scope"] == "all" and len(everything["footage"]) == 6 and everything["next"] is None
    assert [r["id"] for r in _footage(station, "gaofeng")["footage"]] == [r["id"] for r in everything["footage"]]
    # the rows are the CLI's `footage list --json` rows, field for field (but the media queue's, which the
    # station's media thread moves on meanwhile: these clips are no real video)
    cli = run_evidock("footage", "list", "--json", data_dir=station.data)
    assert cli.code == 0 and [_still(r) for r in everything["footage"]] == [_still(r) for r in cli.json()]
    # the listing's filters, within the scope
    assert {r["device"] for r in _footage(station, "zhaolei", "?device=ZFY-2")["footage"]} == {"ZFY-2"}
    day = _footage(station, "wangfang", "?since=2026-11-23T00:00:00%2B00:00&until=2026-11-23T02:00:00Z")["footage"]
    assert [(r["officer"], r["source_path"]) for r in day] == [(NOLOGIN, f"{NOLOGIN}_a.mp4")]
    # the same hours as a person types them: +08:00 not written %2B (it arrives as a space), a bare time in
    # the station's zone (Asia/Shanghai)
    assert _footage(station, "wangfang", "?since=2026-11-23T08:00:00+08:00&until=2026-11-23 10:00")["footage"] == day
    assert [r["id"] for r in _footage(station, "zhangwei", f"?officer={ZHANG}&kind=video")["footage"]] == \
        [r["id"] for r in own["footage"]]


def _still(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in MEDIA}


MEDIA = ("duration_s", "codec", "proxy", "proxy_path")


def test_footage_pages_carry_a_cursor(station: Station) -> None:
    first = _footage(station, "zhaolei", "?limit=4")
    assert len(first["footage"]) == 4 and first["next"] == first["footage"][-1]["id"]
    rest = _footage(station, "zhaolei", f"?limit=4&after={first['next']}")
    assert len(rest["footage"]) == 2 and rest["next"] is None
    ids = [r["id"] for r in first["footage"] + rest["footage"]]
    assert ids == sorted(set(ids)) and len(ids) == 6
    answers = station.ask("zhaolei", "/v1/footage?limit=5000", "/v1/footage?kind=movie", "/v1/footage?unfiled=maybe",
                          "/v1/footage?since=yesterday", "/v1/footage?case=NO-SUCH-CASE", "/v1/footage?limit=1&limit=2",
                          {"method": "DELETE", "path": "/v1/footage"})
    assert [a["status"] for a in answers] == [400, 400, 400, 400, 404, 400, 405]
    assert [a["body"]["error"]["code"] for a in answers] == ["bad_request"] * 4 + ["not_found", "bad_request",
                                                                                "method_not_allowed"]
    for a, names in zip(answers, ("limit", "kind", "unfiled", "since", "NO-SUCH-CASE", "limit", "DELETE")):
        assert names in a["body"]["error"]["message"], a


def test_another_officers_footage_is_refused_and_audited(station: Station) -> None:
    r = station.one("zhangwei", f"/v1/footage?officer={LI}")
    assert r["status"] == 403 and r["body"]["error"]["code"] == "forbidden"
    assert f"only your own footage (officer {ZHANG}), not officer {LI}'s" in r["body"]["error"]["message"]
    r = station.one("wangfang", f"/v1/footage?officer={LI}")
    assert r["status"] == 403 and f"officer {LI} is not of your unit ({UNIT1})" in r["body"]["error"]["message"]
    mine = [e for e in station.refusals() if e["user"] in ("zhangwei", "wangfang") and e["query"] == f"officer={LI}"]
    assert [(e["uid"], e["actor"], e["method"], e["path"]) for e in mine] == [
        (2101, "zhangwei", "GET", "/v1/footage"), (2103, "wangfang", "GET", "/v1/footage")]
    assert "not of your unit" in mine[1]["reason"]


def test_maintenance_reads_recorders_but_not_footage(station: Station) -> None:
    footage, devices, page, health = station.ask("liqiang", "/v1/footage", "/v1/devices", "/v1/devices?limit=2",
                                                 "/v1/health?serial=ZFY-1")
    assert footage["status"] == 403
    assert "may not list footage metadata" in footage["body"]["error"]["message"]
    assert "maintenance" in footage["body"]["error"]["message"]
    assert devices["status"] == 200 and [d["serial"] for d in devices["body"]["devices"]] == ["ZFY-1", "ZFY-2", "ZFY-3"]
    assert page["body"]["next"] == "ZFY-2" and len(page["body"]["devices"]) == 2
    assert health["status"] == 200 and health["body"]["serial"] == "ZFY-1" and health["body"]["history"] == []
    # and the other way round: legal lists footage, not recorders; an admin both
    assert station.one("zhaolei", "/v1/devices")["status"] == 403
    assert station.one("gaofeng", "/v1/devices")["body"]["devices"] == devices["body"]["devices"]


def test_a_caller_with_no_role_may_only_ask_who_they_are(station: Station) -> None:
    answers = station.ask("sunli", "/v1/whoami", "/v1/footage", "/v1/devices", "/v1/health")
    assert answers[0]["status"] == 200 and answers[0]["body"]["roles"] == []
    for a in answers[1:]:
        assert a["status"] == 403, a
        err = a["body"]["error"]
        assert err["code"] == "forbidden" and "you (sunli) have no role at this station" in err["message"]
        assert err["message_msg"]["params"]["user"] == "sunli"  # for a client to say it in its reader's language
    got = [(e["uid"], e["user"], e["method"], e["path"]) for e in station.refusals() if e["uid"] == 2106]
    assert got == [(2106, "sunli", "GET", p) for p in ("/v1/footage", "/v1/devices", "/v1/health")]
    assert all("no role" in e["reason"] for e in station.refusals() if e["uid"] == 2106)
    # written by the API beside the docks' own entries, the chain holds
    assert run_evidock("audit", "verify", data_dir=station.data).code == 0


def test_a_client_cannot_claim_to_be_someone_else(station: Station) -> None:
    claims = {"X-Remote-User": "zhaolei", "X-Forwarded-User": "root", "Authorization": "Basic cm9vdDpyb290"}
    me, listing, query, whoami_query = station.ask(
        "sunli",
        {"path": "/v1/whoami", "headers": claims, "body": {"user": "zhaolei", "uid": 0, "roles": ["admin"]}},
        {"path": "/v1/footage", "headers": claims, "body": {"user": "zhaolei"}},
        "/v1/footage?user=zhaolei", "/v1/whoami?uid=0")
    assert me["status"] == 200 and (me["body"]["uid"], me["body"]["user"], me["body"]["roles"]) == (2106, "sunli", [])
    assert listing["status"] == 403 and "you (sunli)" in listing["body"]["error"]["message"]
    assert query["status"] == 403 and "you (sunli)" in query["body"]["error"]["message"]  # still sunli, still no role
    # a parameter the path does not take is refused by name, never read as who is asking
    assert whoami_query["status"] == 400 and "unknown parameter uid" in whoami_query["body"]["error"]["message"]
    r = station.one("zhangwei", "/v1/footage?user=zhaolei")
    assert r["status"] == 400 and "unknown parameter user" in r["body"]["error"]["message"]


def test_a_user_outside_the_sockets_group_cannot_connect(station: Station) -> None:
    st = os.stat(station.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == GROUPS["evidock-staff"]
    r = station.one("outsider", "/v1/whoami")  # legal through its group, but the kernel refuses the connect
    assert r == {"error": "PermissionError", "errno": 13}


def test_curl_through_the_socket(station: Station) -> None:
    u = station.users["zhaolei"]
    p = subprocess.run(station.users.as_user(u, ["curl", "-sS", "--unix-socket", str(station.socket),
                                                 "-w", "\n%{http_code}", "http://localhost/v1/footage?limit=1"]),
                       capture_output=True, text=True, timeout=60, cwd="/")
    body, code = p.stdout.rsplit("\n", 1)
    assert p.returncode == 0 and code == "200", p.stderr
    assert json.loads(body)["scope"] == "all" and len(json.loads(body)["footage"]) == 1
    p = subprocess.run(station.users.as_user(u, ["curl", "-sS", "--unix-socket", str(station.socket),
                                                 "-w", "\n%{http_code}", "http://localhost/v2/footage"]),
                       capture_output=True, text=True, timeout=60, cwd="/")
    body, code = p.stdout.rsplit("\n", 1)
    assert code == "404" and json.loads(body)["error"]["code"] == "not_found"
