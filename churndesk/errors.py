"""Exception types raised by churndesk services, each carrying a message written for a user.

Services raise these; the command line prints ``user_message`` on one line and the GUI shows it
in a dialog or message bar, while ``details`` (technical context) goes to the log.
"""

from __future__ import annotations


class ChurndeskError(Exception):
    """Base class: something the user can understand and usually act on."""

    def __init__(
        self,
        user_message: str,
        details: str | None = None,
        help_topic: str | None = None,
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.details = details
        self.help_topic = help_topic

    def __str__(self) -> str:
        return self.user_message


class ValidationError(ChurndeskError):
    """Input was rejected; ``field_errors`` maps a field name to the reason."""

    def __init__(
        self,
        user_message: str,
        field_errors: dict[str, str] | None = None,
        details: str | None = None,
    ) -> None:
        super().__init__(user_message, details)
        self.field_errors: dict[str, str] = dict(field_errors or {})


class NotFoundError(ChurndeskError):
    """The thing asked for does not exist (any more)."""


class StaleEditError(ChurndeskError):
    """Someone else changed the record first; nothing was overwritten."""

    def __init__(
        self,
        user_message: str,
        current: object | None = None,
        details: str | None = None,
    ) -> None:
        super().__init__(user_message, details)
        self.current = current


class ConflictError(ChurndeskError):
    """The operation clashes with work already in progress (e.g. a running scoring run)."""


class PermissionDenied(ChurndeskError):
    """The current user's role does not allow this."""


class Cancelled(ChurndeskError):
    """The user cancelled a long operation; nothing from it was kept."""

    def __init__(self, user_message: str = "The operation was cancelled.") -> None:
        super().__init__(user_message)


class DatabaseUnavailable(ChurndeskError):
    """The database cannot be reached, opened or logged into."""


class SchemaError(ChurndeskError):
    """The database schema is newer than this program or could not be upgraded."""
