"""What a fault met by the scheduler means: a few words for the header and the log, and
whether waiting may cure it (the scheduler retries those, engine/scheduler.py)."""

from __future__ import annotations

import errno
import sqlite3

from .schema import SchemaTooNewError


def describe_fault(exc: BaseException) -> tuple[str, bool]:
    """What went wrong, in a few words, and whether waiting may cure it: a locked or busy
    database, a full disk, an I/O error. A schema too new, a corrupt or unreadable database
    file, or a read-only one will not get better by waiting."""
    if isinstance(exc, SchemaTooNewError):
        return str(exc), False
    if isinstance(exc, sqlite3.Error):
        msg = str(exc) or type(exc).__name__
        low = msg.lower()
        transient = isinstance(exc, sqlite3.OperationalError) and any(
            w in low for w in ("locked", "busy", "disk i/o", "disk is full"))
        return msg, transient
    if isinstance(exc, OSError):
        transient = exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EAGAIN,
                                  errno.EMFILE, errno.ENFILE, errno.ENOMEM)
        return (exc.strerror or str(exc)), transient
    # an unforeseen error: retried, so a passing glitch does not end scheduling, and reported
    return f"{type(exc).__name__}: {exc}", True
