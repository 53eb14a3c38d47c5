"""Customer indexes a bulk import left to build after its commit: how many, and finishing them.

A first import into PostgreSQL builds the indexes it dropped after its commit
(:mod:`churndesk.db.pending_indexes`). If that is cut short (the app closed, the connection
lost) the next import finishes them, and so does the desktop app when it opens the database.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from churndesk.db import pending_indexes
from churndesk.errors import Cancelled, ChurndeskError
from churndesk.progress import ProgressFn

log = logging.getLogger(__name__)

#: The progress text of the builds (the import wizard lists it as a step of its own).
BUILD_TEXT = pending_indexes.BUILD_TEXT


def indexes_to_build(engine: Engine) -> int:
    """How many indexes are waiting that this login may build (0 on SQLite)."""
    return len(pending_indexes.pending(engine, owned=True))


def finish_indexes(
    engine: Engine,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[str, ...]:
    """Build the waiting indexes, two at a time; returns what went wrong, for the user.

    An index that fails stays listed and is tried again next time; the message says so. The
    import that calls this is saved already, so it passes no ``cancel``; the desktop app does
    (Cancelled is raised once the indexes being built are done).
    """
    try:
        pending_indexes.build_pending(engine, progress=progress, cancel=cancel)
    except Cancelled:
        raise
    except ChurndeskError as exc:
        log.warning("indexes: %s (%s)", exc.user_message, exc.details)
        return (exc.user_message,)
    except DBAPIError as exc:
        log.warning("indexes: building after the commit failed: %s", exc.orig)
        return (
            "The connection to the database failed while the customer indexes were built; "
            "searches and sorting stay slow until they are. They are tried again the next time "
            "churndesk opens this database or imports customers.",
        )
    return ()
