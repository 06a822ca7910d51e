"""SQLite cache files (embeddings, generations): one way to open them and one way to word their errors.

Every cache connection uses write-ahead logging (readers never block the writer, and a killed writer loses at most
its open transaction) and a long busy timeout (:data:`BUSY_TIMEOUT_S`), so a second molesyn run on the same cache
waits for the first one's short write transactions instead of failing after all its work. :func:`explain` turns an
``sqlite3`` error into one line saying what to do: wait or use another cache for a lock, free disk space for a
full disk, delete the named file for a damaged one (a cache is rebuilt from scratch on the next run).
:func:`chunk_lock` is the advisory lock that lets two runs on one cache share the expensive work (encoding,
generation) chunk by chunk instead of each doing all of it.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

#: How long a cache connection waits for another process's lock before giving up, in seconds.
BUSY_TIMEOUT_S = 600.0


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating) the sqlite file at ``path`` with WAL journaling and a :data:`BUSY_TIMEOUT_S` busy timeout.

    Raises ``sqlite3.Error`` (for :func:`explain`) when the file cannot be opened or is not a database.
    """
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode=WAL")  # the first read of the file: a damaged header fails here
    except sqlite3.Error:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def chunk_lock(path: str | Path) -> Iterator[None]:
    """Hold ``<path>.lock`` (``fcntl.flock``, exclusive) while one chunk of a cache's misses is looked up again,
    computed and stored, so a concurrent run waiting on the lock then finds that chunk cached; a no-op where
    ``fcntl`` is missing (Windows: concurrent runs then duplicate work but stay correct)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_damaged(exc: sqlite3.Error) -> bool:
    """True for the errors of a corrupt or foreign file (not for locks, full disks or permissions)."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "file is encrypted" in text or (
        not isinstance(exc, sqlite3.OperationalError) and isinstance(exc, sqlite3.DatabaseError)
        and not isinstance(exc, sqlite3.IntegrityError))


def explain(exc: sqlite3.Error, path: str | Path, what: str, writing: bool = False) -> str:
    """One line for an ``sqlite3`` error on the cache file ``path`` (``what``: e.g. "the embedding cache")."""
    path = Path(path)
    text = str(exc).lower()
    if is_damaged(exc):
        return (f"{what} {path} is damaged ({exc}); delete {path} (and {path.name}-wal / {path.name}-shm beside "
                "it, if present) and rerun: it is rebuilt from scratch")
    if "locked" in text or "busy" in text:
        return (f"{what} {path} stayed locked by another process for over {BUSY_TIMEOUT_S:g} s ({exc}); wait for "
                "the other molesyn run to finish or set MOLESYN_CACHE to another directory")
    if writing or "full" in text or "disk i/o" in text:
        return (f"cannot write to {what} {path} ({exc}); free disk space or set MOLESYN_CACHE to a writable "
                "directory")
    return (f"{what} {path} is not usable: {exc} (is the disk full or the folder read-only? set MOLESYN_CACHE or "
            "pass another cache folder)")


__all__ = ["BUSY_TIMEOUT_S", "chunk_lock", "connect", "explain", "is_damaged"]
