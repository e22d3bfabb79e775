"""Real servers for the alert tests, on loopback ports: aiosmtpd's SMTP server (with a login)
and a webhook receiver on the standard library's http.server. Both run in threads of the test
process and are stopped by their own ``stop``."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received: the parsed mails, and the logins it was offered."""

    mails: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook)
        self.mails.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:``port``; AUTH LOGIN/PLAIN accepted for ``user``/``password``
    without TLS (a loopback test server: the station's side of STARTTLS is tested apart)."""

    def __init__(self, port: int | None = None, user: str = "station", password: str = "s3cret-pw"):
        self.port = port or free_port()
        self.box = Mailbox()
        self.user, self.password = user, password
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port, authenticator=self._auth,
                                     auth_require_tls=False)

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, pw = auth_data.login.decode(), auth_data.password.decode()
            self.box.logins.append((login, pw))
            return AuthResult(success=(login, pw) == (self.user, self.password))
        return AuthResult(success=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def mails(self) -> list[EmailMessage]:
        return self.box.mails


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's hook)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        srv: WebhookServer = self.server.owner  # type: ignore[attr-defined]
        srv.received.append({"headers": dict(self.headers), "json": json.loads(body.decode("utf-8"))})
        self.send_response(srv.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class WebhookServer:
    """A webhook receiver on 127.0.0.1: each POST's headers and JSON; answers ``status``."""

    def __init__(self, status: int = 204):
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/evidock?key=abc"

    def start(self) -> WebhookServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
