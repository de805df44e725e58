"""Start ``python -m qhpo ARGS`` and SIGKILL it while a chosen trial is running (slow run tests)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

from optuna.trial import FrozenTrial, TrialState

GLIBC = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"


def kill_run_during(
    args: Sequence[str],
    storage: Path,
    load: Callable[[Path], Sequence[FrozenTrial]],
    choose: Callable[[Sequence[FrozenTrial]], int | None],
    *,
    deadline: float,
    poll: float,
) -> tuple[int | None, str]:
    """Run ``qhpo ARGS`` and poll ``load(storage)`` (the study's trials) every ``poll`` seconds
    until ``choose(trials)`` names a RUNNING trial; then freeze the run (SIGSTOP), make sure
    that trial is still RUNNING (one that finished between the poll and the signal would
    test no interruption) and SIGKILL it. Returns ``(victim, stderr)``: the killed trial's
    number, or None when the run ended first or ``deadline`` seconds passed."""
    env = {**os.environ, "GLIBC_TUNABLES": GLIBC}
    process = subprocess.Popen(
        [sys.executable, "-m", "qhpo", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    victim = None
    end = time.monotonic() + deadline
    try:
        while time.monotonic() < end and process.poll() is None:
            time.sleep(poll)
            if not storage.exists():
                continue
            try:
                chosen = choose(load(storage))
            except Exception:
                continue
            if chosen is None:
                continue
            os.kill(process.pid, signal.SIGSTOP)
            try:
                still = load(storage)[chosen].state == TrialState.RUNNING
            except Exception:
                still = False
            if still:
                victim = chosen
                os.kill(process.pid, signal.SIGKILL)
                break
            os.kill(process.pid, signal.SIGCONT)
    finally:
        if process.poll() is None and victim is None:
            process.kill()
        process.wait()
    return victim, process.stderr.read()


def sqlite_trials(storage: Path) -> list[SimpleNamespace]:
    """Each trial's ``number``, ``state`` and ``user_attrs`` (names only, values None), read
    straight from the SQLite file in about a millisecond: fast enough to poll for a trial
    that runs for under a second, where loading the study through Optuna is not."""
    connection = sqlite3.connect(f"file:{storage}?mode=ro", uri=True, timeout=1.0)
    try:
        rows = connection.execute(
            "SELECT t.number, t.state, GROUP_CONCAT(a.key, char(31)) FROM trials t "
            "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id GROUP BY t.trial_id ORDER BY t.number"
        ).fetchall()
    finally:
        connection.close()
    return [
        SimpleNamespace(number=n, state=TrialState[state], user_attrs=dict.fromkeys((keys or "").split(chr(31))))
        for n, state, keys in rows
    ]
