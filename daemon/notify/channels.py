"""The two ways a message leaves the station: SMTP e-mail and a webhook POST.

E-mail is the standard library's ``smtplib`` and ``email`` (well kept, and what every SMTP
server speaks). With ``starttls`` (the default) a server that does not offer STARTTLS is
refused before any login, so a password never crosses the wire in clear. The webhook is
``urllib.request`` (standard library) rather than httpx: one POST of one JSON document with a
timeout needs no client library, and the station gains no dependency for it. Proxies from the
environment are not used (the service's unit allows only its own hosts, daemon/backup/dropin.py),
nor are redirects followed (the token would go along).

Every failure becomes one ``NotifyError`` naming the channel and the host and why — never the
password, the token or the URL's query, which may carry one.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from daemon.config import NotifyChannel
from daemon.config_notify import read_secret
from daemon.errors import ConfigError, NotifyError
from daemon.i18n import N_, message_of


def send_mail(channel: NotifyChannel, subject: str, body: str, timeout_s: float) -> None:
    """Send one mail through ``channel`` (kind email)."""
    host = str(channel.host)
    password = _secret(channel, "password_file")
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = str(channel.mail_from)
    msg["To"] = ", ".join(channel.recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=str(channel.mail_from).rpartition("@")[2] or None)
    msg.set_content(body, charset="utf-8")
    try:
        with smtplib.SMTP(host, channel.port, timeout=timeout_s) as smtp:
            smtp.ehlo()
            if channel.starttls:
                if not smtp.has_extn("starttls"):
                    raise NotifyError(N_("channel {channel}: the SMTP server {host} does not offer STARTTLS; nothing "
                                         "was sent (set starttls = false only for a server on a trusted network)"),
                                      channel=channel.name, host=host)
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if channel.user:
                smtp.login(channel.user, password or "")
            refused = smtp.send_message(msg)
    except NotifyError:
        raise
    except smtplib.SMTPResponseException as e:
        raise NotifyError(N_("channel {channel}: the SMTP server {host}:{port} answered {code} {reply}"),
                          channel=channel.name, host=host, port=channel.port, code=e.smtp_code,
                          reply=_reply(e.smtp_error)) from None
    except smtplib.SMTPRecipientsRefused as e:
        raise NotifyError(N_("channel {channel}: the SMTP server {host} refused every recipient ({recipients})"),
                          channel=channel.name, host=host, recipients=", ".join(e.recipients)) from None
    except (smtplib.SMTPException, OSError) as e:
        raise NotifyError(N_("channel {channel}: cannot send through the SMTP server {host}:{port} ({error})"),
                          channel=channel.name, host=host, port=channel.port, error=_os_text(e)) from None
    if refused:
        raise NotifyError(N_("channel {channel}: the SMTP server {host} refused the recipients {recipients}"),
                          channel=channel.name, host=host, recipients=", ".join(sorted(refused)))


def post_json(channel: NotifyChannel, doc: dict[str, Any], timeout_s: float) -> None:
    """POST ``doc`` to ``channel``'s URL (kind webhook); any 2xx answer is delivered."""
    url = str(channel.url)
    host = channel.host_name()
    token = _secret(channel, "token_file")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "evidock"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=json.dumps(doc, ensure_ascii=False).encode("utf-8"), headers=headers,
                                 method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            resp.read(65536)
    except urllib.error.HTTPError as e:
        raise NotifyError(N_("channel {channel}: the webhook at {host} answered HTTP {status}"),
                          channel=channel.name, host=host, status=e.code) from None
    except (urllib.error.URLError, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise NotifyError(N_("channel {channel}: cannot reach the webhook at {host} ({error})"),
                          channel=channel.name, host=host, error=_os_text(reason)) from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not followed: urllib would carry the bearer token to wherever it
    points (and turn the POST into a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _secret(channel: NotifyChannel, key: str) -> str | None:
    path = getattr(channel, key)
    if not path:
        return None
    try:
        return read_secret(path, f"notify.channels.{channel.name}.{key}")
    except ConfigError as e:
        raise NotifyError(message_of(e)) from None


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())[:200]


def _os_text(e: object) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    return " ".join(str(e).split())[:200] or type(e).__name__
