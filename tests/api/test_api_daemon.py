"""`evidock run` serves the API (issue 20): it starts with the station, shows in `evidock status`,
stops on SIGTERM and removes its socket; a socket it cannot create is said in the log and in
`status`, naming api.socket, and the docks run on. The socket itself: mode and group before anyone
can connect, a stale one replaced, a live one or a non-socket never taken over."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import REPO, run_evidock
from support.docktools import wait_until

from daemon.api.server import ApiServer
from daemon.catalog.db import Catalog
from daemon.config import parse_config
from daemon.errors import ApiUnavailable


def _run(cfg: Path, data: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDOCK_") and k != "NOTIFY_SOCKET"}
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "daemon", "--config", str(cfg), "--data-dir", str(data), "run"],
                                cwd=REPO, env=env, stdout=out, stderr=out)


def _stop(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()[-3000:]


def _running(data: Path) -> bool:
    r = run_evidock("status", "--json", data_dir=data)
    return r.code == 0 and r.json()["running"]


def test_the_station_serves_the_api_and_removes_its_socket_on_sigterm(tmp_path: Path) -> None:
    sock, data, log = tmp_path / "run" / "api.sock", tmp_path / "data", tmp_path / "daemon.log"
    sock.parent.mkdir()
    cfg = tmp_path / "evidock.toml"
    cfg.write_text(f"[api]\nsocket = '{sock}'\nsocket_group = 'root'\nsocket_mode = '0600'\n"
                   "[access.roles]\nadmin = ['user:root']\n")
    proc = _run(cfg, data, log)
    try:
        wait_until(lambda: sock.exists() or proc.poll() is not None, 60, "the API socket")
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_gid == 0
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://localhost") as c:
            me = c.get("/v1/whoami").json()
        assert (me["uid"], me["user"], me["roles"]) == (0, "root", ["admin"])
        wait_until(lambda: _running(data), 60, "the station's status")
        status = run_evidock("status", "--json", data_dir=data).json()
        assert status["api"] == {"socket": str(sock), "serving": True, "warning": None}
        assert f"API for staff: {sock}" in run_evidock("status", data_dir=data).out
        _stop(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not sock.exists()


def test_a_socket_it_cannot_create_is_said_and_the_docks_run_on(tmp_path: Path) -> None:
    sock, data, log = tmp_path / "no-such-dir" / "api.sock", tmp_path / "data", tmp_path / "daemon.log"
    cfg = tmp_path / "evidock.toml"
    cfg.write_text(f"[api]\nsocket = '{sock}'\n")
    proc = _run(cfg, data, log)
    try:
        wait_until(lambda: _running(data) or proc.poll() is not None, 60, "the station to run")
        assert proc.poll() is None, log.read_text()
        status = run_evidock("status", "--json", data_dir=data)
        api = status.json()["api"]
        assert status.code == 0 and api["serving"] is False and api["socket"] == str(sock)
        assert f"api.socket {sock}: its directory {sock.parent} does not exist" in api["error"]
        text = run_evidock("--lang", "zh", "status", data_dir=data)
        assert "api.socket" in text.err and str(sock.parent) in text.err and "API" in text.err
        assert f"api.socket {sock}" in log.read_text() and "without an API" in log.read_text()
        _stop(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()


def _server(tmp_path: Path, sock: Path) -> ApiServer:
    cfg = parse_config({"api": {"socket": str(sock), "socket_group": "no-such-group-here"}})
    return ApiServer(lambda: Catalog(tmp_path / "data"), lambda: cfg)


def test_a_stale_socket_is_replaced_a_live_one_or_a_file_never_taken(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    first = _server(tmp_path, sock)
    first.start()
    try:
        assert first.status()["warning"].startswith("api.socket_group no-such-group-here: no such group")
        with pytest.raises(ApiUnavailable, match="another process serves there"):
            _server(tmp_path, sock).start()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://localhost") as c:
            assert c.get("/v1/whoami").json()["uid"] == os.getuid()  # the first one still serves
    finally:
        first.stop()
    assert not sock.exists()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # what a killed station leaves: bound, nobody listening
    stale.bind(str(sock))
    stale.close()
    second = _server(tmp_path, sock)
    second.start()
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://localhost") as c:
            assert c.get("/v1/whoami").status_code == 200
    finally:
        second.stop()
    sock.write_text("not a socket")
    with pytest.raises(ApiUnavailable, match="not a socket is there"):
        _server(tmp_path, sock).start()
    assert sock.read_text() == "not a socket"  # left as it was
