"""Passwords and signing secrets in the OS keyring via ``keyring``; never in files or the database.

On a machine without a keyring backend the lookups return None and saving raises a
ChurndeskError that says so, rather than silently falling back to a plain-text file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

from churndesk.errors import ChurndeskError

log = logging.getLogger(__name__)

SERVICE = "churndesk"


def database_key(url: URL) -> str:
    return f"db:{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def get_secret(key: str, username: str) -> str | None:
    import keyring  # imported on first use: it costs 0.1 s of start-up
    import keyring.errors

    try:
        return keyring.get_password(f"{SERVICE}/{key}", username)
    except keyring.errors.KeyringError as exc:
        log.info("no keyring available for %s: %s", key, exc)
        return None


def set_secret(key: str, username: str, secret: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.set_password(f"{SERVICE}/{key}", username, secret)
    except keyring.errors.KeyringError as exc:
        raise ChurndeskError(
            "This computer has no password store (keyring) available, so the secret was not "
            "saved. You will be asked for it again next time.",
            details=str(exc),
        ) from exc


def delete_secret(key: str, username: str) -> None:
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(f"{SERVICE}/{key}", username)
    except keyring.errors.PasswordDeleteError:
        pass
    except keyring.errors.KeyringError as exc:
        log.info("could not delete %s from the keyring: %s", key, exc)


def get_database_password(url: URL) -> str | None:
    if not url.username:
        return None
    return get_secret(database_key(url), url.username)


def save_database_password(url: URL, password: str) -> None:
    if not url.username:
        raise ChurndeskError("A password can only be saved for a database URL with a user name.")
    set_secret(database_key(url), url.username, password)
