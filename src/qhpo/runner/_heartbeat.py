"""A running trial's heartbeat: the sign of life that other hosts judge its process by.

While a worker trains a trial, a background thread writes the time into the trial's user
attribute ``qhpo.alive`` every ``interval`` seconds. A process on another host takes the
trial's process as dead once neither that time nor its last finished epoch is younger than
the owner's grace period (``qhpo.runner._recovery``), fails it and enqueues
its retry. A process on the trial's own host reads ``/proc`` instead and needs no heartbeat.
"""

from __future__ import annotations

import threading
import time

import optuna

from qhpo._optuna_schema import ALIVE_ATTR


class TrialHeartbeat:
    """Write ``time.time()`` into a RUNNING trial's :data:`ALIVE_ATTR` every ``interval`` seconds.

    Use as a context manager around training one trial. The first beat comes after one
    interval (the trial's start time stands for it until then). The thread ends with the
    block, or by itself once the trial is finished (a trial that another host took as dead
    and failed refuses the write). A beat that cannot be written (the database is briefly
    unreachable) is tried again at the next interval.

    Args:
        storage: The study's storage.
        trial_id: The trial's storage id (:func:`qhpo._optuna_schema.trial_id`).
        interval: Seconds between beats.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive seconds, not {interval!r}")
        self.storage = storage
        self.trial_id = trial_id
        self.interval = float(interval)
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"qhpo-heartbeat-{trial_id}", daemon=True)

    def __enter__(self) -> TrialHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 30.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.set_trial_user_attr(self.trial_id, ALIVE_ATTR, time.time())
                self.beats += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # finished, or failed by another host's recovery: nothing to keep alive
            except Exception:
                pass  # unreachable for now; the training thread reports a lasting outage
