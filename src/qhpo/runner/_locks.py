"""The locks that serialise a study's processes: an ``flock`` on a file, or PostgreSQL's
advisory lock, each also held by one thread of a process at a time."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

_THREAD_LOCKS: dict[str, threading.Lock] = {}  # one per lock name: threads of one process
_THREAD_LOCKS_GUARD = threading.Lock()
_HELD = threading.local()  # the advisory locks this thread holds: (url, name)
_LOCK_ENGINES: dict[str, Any] = {}  # one SQLAlchemy engine per database URL for the advisory locks
# A dead client's connection (and the advisory lock it holds) ends within about two minutes,
# not the operating system's default two hours; ignored on Unix-domain sockets.
_KEEPALIVES = "-c tcp_keepalives_idle=60 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=6"


def thread_lock(name: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(name, threading.Lock())


@contextlib.contextmanager
def file_lock(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created if missing), one thread of this process
    at a time; the kernel releases it when the holder dies."""
    import fcntl

    with thread_lock(str(path)):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def advisory_lock(url: str, name: str):
    """Hold PostgreSQL's transaction-level advisory lock ``name`` (hashed to 64 bits) on its own connection.

    The server releases it when the transaction ends, and when the holder's connection
    ends (a killed process, a lost node), so no holder can leave it taken. A thread that
    holds it already passes through.
    """
    import sqlalchemy

    held = _HELD.__dict__.setdefault("names", set())
    if (url, name) in held:  # this thread holds it already (a second session would wait for the first forever)
        yield
        return
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    with _THREAD_LOCKS_GUARD:
        engine = _LOCK_ENGINES.get(url)
        if engine is None:
            engine = sqlalchemy.create_engine(
                url, pool_pre_ping=True, pool_size=2, connect_args={"options": _KEEPALIVES}
            )
            _LOCK_ENGINES[url] = engine
    with engine.connect() as connection, connection.begin():
        connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        held.add((url, name))
        try:
            yield
        finally:
            held.discard((url, name))
