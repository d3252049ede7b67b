"""E-mail over SMTP: plain text (and an HTML alternative when the text has markup), with
STARTTLS or implicit TLS; the password is read from an environment variable, never logged.

Errors map onto the channel error tree: a refused recipient is Permanent, a dropped connection or
a timeout is Transient (retried while the window lasts), a refused login is AuthError.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from cuikuan.channels.base import (
    AuthError,
    OutgoingMessage,
    Permanent,
    Receipt,
    SendResult,
    Transient,
)


@dataclass
class SmtpChannel:
    host: str
    port: int
    from_address: str
    subject: str
    security: str = "starttls"  # "none", "starttls" or "ssl"
    username: str | None = None
    password_env: str | None = None
    timeout: float = 20.0
    name: str = "smtp"
    max_tps: float = 20.0
    max_parts: int = 0  # e-mail: no SMS parts
    encodings: tuple[str, ...] = ("UTF-8",)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                client.starttls(context=ssl.create_default_context())
        if self.username:
            password = os.environ.get(self.password_env or "", "")
            client.login(self.username, password)
        return client

    def send(self, batch: list[OutgoingMessage], now: datetime) -> list[SendResult]:
        try:
            client = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            return [
                SendResult(m.outbox_id, None, AuthError(f"login refused: {exc.smtp_code}"))
                for m in batch
            ]
        except (OSError, smtplib.SMTPException) as exc:
            return [
                SendResult(
                    m.outbox_id, None, Transient(f"cannot reach {self.host}:{self.port}: {exc}")
                )
                for m in batch
            ]
        results = []
        try:
            for message in batch:
                results.append(self._send_one(client, message))
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
        return results

    def _send_one(self, client: smtplib.SMTP, message: OutgoingMessage) -> SendResult:
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.recipient
        mail["Subject"] = self.subject
        msg_id = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        mail["Message-ID"] = msg_id
        mail.set_content(message.text)
        try:
            client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(
                message.outbox_id,
                None,
                Permanent(f"recipient refused: {list(exc.recipients.values())}"),
            )
        except smtplib.SMTPDataError as exc:
            error = Permanent if 500 <= exc.smtp_code < 600 else Transient
            return SendResult(message.outbox_id, None, error(f"{exc.smtp_code} {exc.smtp_error!r}"))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return SendResult(message.outbox_id, None, Transient(str(exc)))
        return SendResult(message.outbox_id, msg_id.strip("<>"))

    def receipts(self, now: datetime) -> list[Receipt]:
        return []  # SMTP has no delivery receipts; bounces arrive later as mail
