"""The API server: an aiohttp app on the Unix socket ``[api] socket``, in a thread of its own
with its own asyncio loop, beside the dock daemon's threads (``evidock run``).

The socket is bound, given its mode (``api.socket_mode``) and group (``api.socket_group``, when
that group exists; the log says so otherwise) and only then listens, so nobody connects through
a mode it was never meant to have. A stale socket a dead station left is replaced; a path where
another process still answers, or that is no socket, is an ``ApiUnavailable`` naming
``api.socket`` — the docks run on without an API, and the log and ``evidock status`` say it.

Every request: the caller from ``SO_PEERCRED`` (``daemon.api.peer``), their roles, unit and
badge (``daemon.api.roles``), the route's action authorized, its query parameters checked, then
its handler. Every error is JSON ``{"error": {"code": …, "message": …, "message_msg": …, "text":
…}}`` with its HTTP status: ``message`` English as all JSON is, ``message_msg`` the message id and
params for a client to show in its reader's language, ``text`` in the station's language. Every
refusal (403) is an audit entry ``api.refused`` (on the record only: reindex appends it, nothing
to rebuild) naming the caller's uid and user, the method, the path, the query and the reason.
Catalog work runs in a small pool of worker threads, each with its own catalog connection.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from daemon import i18n
from daemon.api.peer import Peer, peer_of
from daemon.api.roles import Caller, authorize, caller_of
from daemon.api.routes import ROUTES, Params, Route
from daemon.catalog import officers
from daemon.catalog.db import Catalog
from daemon.config import Config
from daemon.errors import ApiError, ApiUnavailable, EvidockError, Forbidden, NotFound
from daemon.evidence import audit
from daemon.i18n import N_, Message, os_error

log = logging.getLogger(__name__)

T = TypeVar("T")
WORKERS = 4  # catalog readers at once; SQLite in WAL mode reads beside the docks' writes


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)


def error_response(status: int, code: str, message: object) -> web.Response:
    """The one shape of every error the API answers."""
    msg = i18n.message_of(message) if isinstance(message, BaseException) else message
    body = {"code": code, "message": str(msg), "text": i18n.text(msg)}
    if i18n.is_message(msg):
        body["message_msg"] = Message(msg.msgid, **msg.params).to_json()  # type: ignore[union-attr]
    return web.json_response({"error": body}, status=status, dumps=_dumps)


class Api:
    """The app and its worker threads: what the handlers use (``in_catalog``, ``config``)."""

    def __init__(self, catalog: Callable[[], Catalog], config: Callable[[], Config]):
        self._open_catalog, self.config = catalog, config
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="evidock-api")
        self._local = threading.local()
        self._catalogs: list[Catalog] = []
        self._lock = threading.Lock()

    def _catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = self._local.catalog = self._open_catalog()
            with self._lock:
                self._catalogs.append(cat)
        return cat

    async def in_catalog(self, fn: Callable[[Catalog], T]) -> T:
        """``fn(catalog)`` in a worker thread with that thread's catalog connection."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(self._catalog()))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for cat in self._catalogs:
                cat.close()
            self._catalogs.clear()

    # -- the request's way through -----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        for r in ROUTES:
            app.router.add_route(r.method, r.path, self._guarded(r))
        return app

    def _guarded(self, route: Route) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            caller = await self._caller(request)
            try:
                grant = authorize(caller, route.action) if route.action is not None else None
                params = Params(request, route.params, self.config().ui.timezone)
                doc = await route.handler(self, caller, grant, params)
            except Forbidden as e:
                await self._refused(request, caller, e)
                raise
            return web.json_response(doc, dumps=_dumps)
        return handle

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as e:  # Forbidden too, audited where it was raised (``_guarded``)
            return error_response(e.status, e.code, e)
        except NotFound as e:
            return error_response(404, "not_found", e)
        except web.HTTPException as e:  # aiohttp's own: no such path (404), method (405)
            code = {404: "not_found", 405: "method_not_allowed"}.get(e.status, "http_error")
            what = (Message(N_("no such path {path}; the API's paths are {paths}"), path=request.path,
                            paths=", ".join(sorted({r.path for r in ROUTES}))) if e.status == 404
                    else Message(N_("{method} is not allowed on {path}"), method=request.method, path=request.path)
                    if e.status == 405 else Message(N_("{message}"), message=e.reason))
            return error_response(e.status, code, what)
        except EvidockError as e:
            log.error("API %s %s: %s", request.method, request.path, e)
            return error_response(500, "station_error", e)
        except Exception:
            log.exception("API %s %s failed", request.method, request.path)
            return error_response(500, "internal", Message(N_("the station failed to answer this request; its log "
                                                              "(journalctl -u evidock) says why")))

    async def _caller(self, request: web.Request) -> Caller:
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        if sock is None or sock.family != socket.AF_UNIX:  # only ever served on a Unix socket
            raise RuntimeError("an API request without a Unix socket under it")
        peer: Peer = peer_of(sock)
        officer = await self.in_catalog(lambda cat: officers.officer_of_user(cat, peer.user)) if peer.user else None
        return caller_of(peer, self.config().access, officer)

    async def _refused(self, request: web.Request, caller: Caller, e: Forbidden) -> None:
        peer = caller.peer
        details = {"uid": peer.uid, "user": peer.user, "method": request.method, "path": request.path,
                   "query": request.query_string[:500], "reason": str(e)}

        def write(cat: Catalog) -> None:
            with cat.transaction():  # the actor is the caller, as the kernel named them
                audit.append(cat, "api.refused", f"api:{request.path}", details, actor=peer.name)

        try:
            await self.in_catalog(write)
        except EvidockError as err:  # the caller is still refused; the log keeps what the audit could not
            log.error("refusal not audited (%s): %s", err, details)


class ApiServer:
    """The API in a thread of its own: ``start()`` binds and serves (or raises ``ApiUnavailable``),
    ``stop()`` closes it and removes the socket. ``status()`` is what `evidock status` shows."""

    def __init__(self, catalog: Callable[[], Catalog], config: Callable[[], Config]):
        self.api = Api(catalog, config)
        self._config = config
        self.path = Path(config().api.socket)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._inode: tuple[int, int] | None = None
        self.warning: Message | None = None

    def start(self) -> None:
        sock = self._bind()
        ready = threading.Event()
        failed: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve(sock))
            except BaseException as e:  # noqa: BLE001 — handed to start(), which raises it
                failed.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="evidock-api", daemon=True)
        self._thread.start()
        ready.wait(60)
        if failed:
            self._unlink()
            raise ApiUnavailable(N_("api.socket {path}: cannot serve the API on it ({error})"), path=str(self.path),
                                 error=str(failed[0])) from failed[0]
        log.info("API serving on %s", self.path)

    async def _serve(self, sock: socket.socket) -> None:
        # shutdown_timeout: requests under way on SIGTERM get this long (well inside TimeoutStopSec)
        self._runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()  # listen() happens here, after the mode and group are set

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (requests under way get ``timeout`` to finish), remove the socket."""
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                fut.result(timeout)
            except Exception:  # noqa: BLE001 — stopping goes on: the socket is removed below
                log.exception("API did not stop cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self.api.close()
        self._unlink()
        log.info("API stopped; %s removed", self.path)

    def status(self) -> dict[str, Any]:
        return {"socket": str(self.path), "serving": True, "warning": str(self.warning) if self.warning else None,
                "warning_msg": i18n.dumps(self.warning)}

    # -- the socket ------------------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        path, cfg = self.path, self._config().api
        if not path.parent.is_dir():
            raise ApiUnavailable(N_("api.socket {path}: its directory {dir} does not exist (the unit's "
                                    "RuntimeDirectory=evidock makes /run/evidock); create it or set api.socket"),
                                 path=str(path), dir=str(path.parent))
        self._clear_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
            st = os.lstat(path)
            self._inode = (st.st_dev, st.st_ino)
            os.chmod(path, cfg.mode)
            self._set_group(path, cfg.socket_group)
        except OSError as e:
            sock.close()
            self._unlink()
            raise ApiUnavailable(N_("api.socket {path}: cannot create the socket ({reason}); check the directory's "
                                    "owner and permissions, or set api.socket"), path=str(path), reason=os_error(e)) from None
        sock.setblocking(False)
        return sock

    def _set_group(self, path: Path, group: str) -> None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            self.warning = Message(N_("api.socket_group {group}: no such group, so the socket {path} stays in the "
                                      "station's own group; create the group (systemd/evidock.sysusers) and restart"),
                                   group=group, path=str(path))
            log.warning("%s", self.warning)
            return
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            self.warning = Message(N_("api.socket_group {group}: the station may not give the socket {path} to this "
                                      "group (its user must be a member of it); staff of the group cannot connect"),
                                   group=group, path=str(path))
            log.warning("%s", self.warning)

    def _clear_stale(self, path: Path) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ApiUnavailable(N_("api.socket {path}: something that is not a socket is there; remove it or set "
                                    "api.socket"), path=str(path))
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError as e:
            if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise ApiUnavailable(N_("api.socket {path}: cannot tell whether another process serves there ({reason})"),
                                     path=str(path), reason=os_error(e)) from None
            try:
                path.unlink(missing_ok=True)  # a station that died left it: nobody listens
            except OSError as gone:
                raise ApiUnavailable(N_("api.socket {path}: a stale socket is there and cannot be removed ({reason})"),
                                     path=str(path), reason=os_error(gone)) from None
            return
        finally:
            probe.close()
        raise ApiUnavailable(N_("api.socket {path}: another process serves there (a second station?); stop it or set "
                                "another api.socket"), path=str(path))

    def _unlink(self) -> None:
        # only the socket this server made: a successor's at the same path stays
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if self._inode == (st.st_dev, st.st_ino):
            self.path.unlink(missing_ok=True)
