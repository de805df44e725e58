"""Bookkeeping steps that a Ctrl-C or a SIGTERM must not cut in half."""

from __future__ import annotations

import contextlib
import os
import signal
import threading


@contextlib.contextmanager
def signals_deferred():
    """SIGINT and SIGTERM wait until the block ends (a second Ctrl-C cannot cut a bookkeeping step).

    The handlers are swapped for ones that only note the signal, and the noted signal is
    handled as usual once the block is done. Python runs signal handlers in the main
    thread only, so elsewhere the block defers nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    deferred = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in deferred}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), received[0])
