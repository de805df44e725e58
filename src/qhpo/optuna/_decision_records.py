"""Where the pruner's decision records go: the trial's user attributes, off the trial's path.

A record that ends a trial (a stop or a pause) is written at once, before the trial
ends; the others go through one background thread, in the order they were made, so that
``prune`` does not wait for a storage commit.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from qhpo._optuna_schema import DECISIONS, PAUSED, STOP, storage_of, study_key, trial_id
from qhpo.policies import Decision


class DecisionRecords:
    """Stores each trial's decision records (``qhpo.decisions``, ``qhpo.stop``, ``qhpo.paused``)
    and remembers which trials this process paused."""

    def __init__(self) -> None:
        self._writer = _AttributeWriter()
        self._records: dict[tuple[int, int, int], list[dict[str, Any]]] = {}  # per study and trial id
        self._paused: set[int] = set()  # trial ids whose last decision here was PAUSE

    def store(self, study: optuna.Study, trial: FrozenTrial, record: dict[str, Any], decision: Decision) -> None:
        """Add ``record`` to the trial's list: written now when ``decision`` ends the trial, later otherwise."""
        key = trial_id(trial)
        records = self._records.setdefault((*study_key(study), key), [])
        records.append(record)
        if decision not in (Decision.STOP, Decision.PAUSE):
            self._writer.put(storage_of(study), key, DECISIONS.key, list(records))
            return
        del self._records[(*study_key(study), key)]  # the trial ends now: write before it does
        self._writer.flush()
        DECISIONS.write(study, trial, records)
        if decision == Decision.PAUSE:
            PAUSED.write(study, trial, record)
            self._paused.add(key)
        else:
            self._paused.discard(key)
        STOP.write(study, trial, record)

    def is_paused(self, trial: optuna.Trial | FrozenTrial) -> bool:
        """Whether the last decision stored here for ``trial`` was a PAUSE."""
        return trial_id(trial) in self._paused

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued record is written (True) or ``timeout`` passes."""
        return self._writer.flush(timeout)


class _AttributeWriter:
    """Writes trial user attributes in one worker thread, in the order they were queued."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future] = set()
        self._lock = threading.Lock()

    def put(self, storage, trial_id: int, key: str, value: Any) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qhpo-pruner-writer")
            future = self._executor.submit(self._write, storage, trial_id, key, value)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def flush(self, timeout: float | None = 30.0) -> bool:
        with self._lock:
            pending = list(self._pending)
        return not wait_for(pending, timeout=timeout).not_done

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)

    @staticmethod
    def _write(storage, trial_id: int, key: str, value: Any) -> None:
        try:
            storage.set_trial_user_attr(trial_id, key, value)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # the trial ended before its last record was written; its stop record is kept
        except Exception as error:  # a storage hiccup must not lose the records queued after it
            warnings.warn(f"qhpo pruner could not store a decision record ({error})", RuntimeWarning, stacklevel=1)
