"""Channel configuration: SMTP and webhooks in shared settings, their secrets in the keyring.

The non-secret parts (SMTP host, port, security, user name, sender address, CA file; webhook
names and URLs; grouping and digest options) are JSON in the ``settings`` table, so every
desktop and worker of a database sees the same configuration. The SMTP password and each
webhook's signing secret live only in the OS keyring of the computers that dispatch (see
docs/notifications.md).
"""

from __future__ import annotations

import base64
import re
import secrets as pysecrets
import zoneinfo
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine

from churndesk import secrets
from churndesk.db.engine import begin_write
from churndesk.errors import ValidationError
from churndesk.services.alert_common import read_setting, write_setting
from churndesk.services.changes import Changes, publish

SMTP_KEY = "notify.smtp"
WEBHOOKS_KEY = "notify.webhooks"
OPTIONS_KEY = "notify.options"
SECURITY_MODES = ("plain", "starttls", "tls")
SMTP_SECRET = "smtp"
WEBHOOK_SECRET = "webhook"
WEBHOOK_SECRET_PREFIX = "whsec_"

EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]+$")
ENDPOINT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_email(text: str) -> bool:
    return bool(EMAIL_RE.match(text))


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the mail server; the password is in the keyring under ``secret_name``.

    ``ca_file``: a PEM file of certificate authorities to trust besides the system ones, for a
    mail server with a private CA (the path must exist on every computer that sends e-mail).
    Certificate and host name verification are always on for ``starttls`` and ``tls``.
    """

    host: str
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    from_address: str = ""
    timeout_s: float = 20.0
    ca_file: str | None = None

    @property
    def secret_name(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SmtpSettings:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class NotifyOptions:
    """Grouping and digest options shared by every dispatcher of a database.

    ``group_wait_s``: an e-mail or webhook message waits this long before its first delivery;
    alerts of the same rule for the same recipient raised meanwhile join it (burst grouping).
    ``digest_hour`` / ``digest_timezone``: when the daily e-mail digest goes out.
    """

    group_wait_s: float = 30.0
    digest_hour: int = 7
    digest_timezone: str = "UTC"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NotifyOptions:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _read(target: Engine | Connection, key: str, default: Any = None) -> Any:
    if isinstance(target, Engine):
        with target.connect() as connection:
            return read_setting(connection, key, default)
    return read_setting(target, key, default)


# --- SMTP ---------------------------------------------------------------------------------


def smtp_settings(target: Engine | Connection) -> SmtpSettings | None:
    """The database's SMTP settings, or None when e-mail is not set up."""
    data = _read(target, SMTP_KEY)
    if not isinstance(data, dict) or not data.get("host"):
        return None
    return SmtpSettings.from_json(data)


def validate_smtp(settings: SmtpSettings) -> SmtpSettings:
    """Normalise and check SMTP settings; raises ValidationError listing every problem."""
    settings = replace(
        settings,
        host=settings.host.strip(),
        username=(settings.username or "").strip() or None,
        from_address=settings.from_address.strip(),
        ca_file=(settings.ca_file or "").strip() or None,
    )
    problems: dict[str, str] = {}
    if not settings.host:
        problems["host"] = "Enter the mail server's host name."
    if not isinstance(settings.port, int) or not 1 <= settings.port <= 65535:
        problems["port"] = "The port must be a whole number from 1 to 65535."
    if settings.security not in SECURITY_MODES:
        problems["security"] = "Security must be one of: plain, starttls, tls."
    if not is_email(settings.from_address):
        problems["from_address"] = f"'{settings.from_address}' is not an e-mail address."
    if not 1 <= settings.timeout_s <= 300:
        problems["timeout_s"] = "The timeout must be between 1 and 300 seconds."
    if problems:
        raise ValidationError(
            "The e-mail settings are incomplete: " + " ".join(problems.values()), problems
        )
    return settings


def save_smtp_settings(
    engine: Engine, settings: SmtpSettings, *, password: str | None = None, actor: str | None
) -> SmtpSettings:
    """Save SMTP settings for the database and, if given, the password in this keyring.

    Raises ValidationError for bad settings and ChurndeskError when no keyring is available for
    the password. Commits.
    """
    settings = validate_smtp(settings)
    if password is not None:
        if not settings.username:
            raise ValidationError(
                "A password needs a user name to log in with.",
                {"username": "Enter the user name for the mail server."},
            )
        secrets.set_secret(SMTP_SECRET, settings.secret_name, password)
    with begin_write(engine) as connection:
        write_setting(connection, SMTP_KEY, settings.to_json(), actor=actor)
        publish(connection, Changes(settings=True))
    return settings


def smtp_password(settings: SmtpSettings) -> str | None:
    if not settings.username:
        return None
    return secrets.get_secret(SMTP_SECRET, settings.secret_name)


# --- Webhooks -----------------------------------------------------------------------------


def webhook_endpoints(target: Engine | Connection) -> dict[str, str]:
    """Webhook endpoint names and their URLs."""
    data = _read(target, WEBHOOKS_KEY, {})
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def generate_webhook_secret() -> str:
    """A new signing secret in the Standard Webhooks form ``whsec_<base64 of 32 bytes>``."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(pysecrets.token_bytes(32)).decode("ascii")


def check_webhook_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; raises ValidationError if it is malformed."""
    raw = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) < 24 or len(key) > 64:
        raise ValidationError(
            "A webhook signing secret is 'whsec_' followed by 24 to 64 base64-encoded bytes.",
            {"secret": "Malformed signing secret."},
        )
    return key


def validate_webhook(name: str, url: str) -> tuple[str, str]:
    name, url = name.strip(), url.strip()
    problems: dict[str, str] = {}
    if not ENDPOINT_NAME_RE.match(name):
        problems["name"] = (
            f"'{name}' is not a usable endpoint name: use up to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems["url"] = f"'{url}' is not an http:// or https:// address."
    if problems:
        raise ValidationError(" ".join(problems.values()), problems)
    return name, url


def set_webhook_endpoint(
    engine: Engine, name: str, url: str, *, secret: str | None = None, actor: str | None
) -> str:
    """Add or change a webhook endpoint; returns its signing secret (new unless given or kept).

    The secret is stored in this computer's keyring, keyed by URL, so a receiver keeps its
    secret when an endpoint is renamed. Raises ValidationError, or ChurndeskError when there is
    no keyring. Commits.
    """
    name, url = validate_webhook(name, url)
    if secret is not None:
        check_webhook_secret(secret)
    else:
        secret = webhook_secret(url) or generate_webhook_secret()
    secrets.set_secret(WEBHOOK_SECRET, url, secret)
    with begin_write(engine) as connection:
        endpoints = webhook_endpoints(connection)
        endpoints[name] = url
        write_setting(connection, WEBHOOKS_KEY, endpoints, actor=actor)
        publish(connection, Changes(settings=True))
    return secret


def remove_webhook_endpoint(engine: Engine, name: str, *, actor: str | None) -> bool:
    """Forget an endpoint (its secret stays in the keyring); returns whether it existed. Commits."""
    with begin_write(engine) as connection:
        endpoints = webhook_endpoints(connection)
        if endpoints.pop(name, None) is None:
            return False
        write_setting(connection, WEBHOOKS_KEY, endpoints, actor=actor)
        publish(connection, Changes(settings=True))
    return True


def webhook_secret(url: str) -> str | None:
    return secrets.get_secret(WEBHOOK_SECRET, url)


# --- Options ------------------------------------------------------------------------------


def notify_options(target: Engine | Connection) -> NotifyOptions:
    data = _read(target, OPTIONS_KEY, {})
    return NotifyOptions.from_json(data) if isinstance(data, dict) else NotifyOptions()


def save_notify_options(engine: Engine, options: NotifyOptions, *, actor: str | None) -> None:
    """Save grouping and digest options; raises ValidationError. Commits."""
    problems: dict[str, str] = {}
    if not 0 <= options.group_wait_s <= 3600:
        problems["group_wait_s"] = "The grouping wait must be between 0 and 3600 seconds."
    if not isinstance(options.digest_hour, int) or not 0 <= options.digest_hour <= 23:
        problems["digest_hour"] = "The digest hour must be a whole number from 0 to 23."
    try:
        zoneinfo.ZoneInfo(options.digest_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems["digest_timezone"] = f"'{options.digest_timezone}' is not a known time zone."
    if problems:
        raise ValidationError(" ".join(problems.values()), problems)
    with begin_write(engine) as connection:
        write_setting(connection, OPTIONS_KEY, asdict(options), actor=actor)
        publish(connection, Changes(settings=True))
