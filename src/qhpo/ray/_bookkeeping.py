"""The bookkeeping of :class:`qhpo.ray.PredictiveScheduler`: each trial's record, the views
the policy reads, and the scheduler's JSON state that Ray Tune's checkpoints carry."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qhpo.policies import TopicWarnings, TrialStatus, TrialView

#: Config keys starting with this are bookkeeping of the trainable, not hyperparameters.
BOOKKEEPING_PREFIX = "__qhpo_"
_STATE_VERSION = 1


@dataclass
class _TrialRecord:
    curve: list[float] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    status: TrialStatus = TrialStatus.RUNNING
    # The verdict of each decision that rested on a prediction or stopped the trial, as
    # Verdict.record() data: {"epoch", "decision", "predicted_final", "std", "threshold", "reason"}.
    records: list[dict[str, Any]] = field(default_factory=list)
    # Decision epochs at which the policy let the trial go on unranked (Verdict.ranked False).
    unranked: list[int] = field(default_factory=list)
    # The epoch after which the search's budget stopped the trial, if it did.
    budget_cut: int | None = None
    # The policy resumed the trial to finish (Resumption.finishing): it trains to its end unjudged.
    finishing: bool = False


def plain_params(config: dict) -> dict[str, Any]:
    """Trial hyperparameters with numpy scalars turned into Python values (JSON-ready)."""
    return {
        k: (v.item() if hasattr(v, "item") else v)
        for k, v in dict(config).items()
        if not str(k).startswith(BOOKKEEPING_PREFIX)
    }


class SchedulerBookkeeping:
    """The trial records of a scheduler (``_records``), their views, and its saved state."""

    def decision_records(self, key: str) -> list[dict[str, Any]]:
        """What the policy predicted at the decisions about trial ``key`` (with ``explain=True``)."""
        record = self._records.get(key)
        return list(record.records) if record is not None else []

    def trial_views(self) -> list[TrialView]:
        """Every trial that reported at least one epoch, in the order trials were added.

        A failed trial's curve ends before its first non-finite value (the epoch it diverged
        at counts as trained, but its value is no measurement: :meth:`qhpo.policies.TrialView.of`).
        """
        return [self._view(key, r) for key, r in self._records.items() if r.curve]

    def _view(self, trial_id: str, record: _TrialRecord) -> TrialView:
        return TrialView.of(
            self._key(trial_id),
            tuple(record.curve),
            dict(record.params),
            record.status,
            record.unranked,
            record.finishing,
        )

    def _key(self, trial_id: str):
        """The key a trial's view carries (its Ray trial id)."""
        return trial_id

    def get_state(self) -> dict[str, Any]:
        """The scheduler's state as plain JSON-ready data."""
        return {
            "version": _STATE_VERSION,
            "metric": self._metric,
            "mode": self.mode,
            "trials": [
                {
                    "key": key,
                    "curve": list(r.curve),
                    "params": dict(r.params),
                    "status": r.status.value,
                    "records": list(r.records),
                    "unranked": list(r.unranked),
                    **({"budget_cut": r.budget_cut} if r.budget_cut is not None else {}),
                    **({"finishing": True} if r.finishing else {}),
                }
                for key, r in self._records.items()
            ],
            "decisions": [list(d) for d in self.decisions_],
            "to_resume": list(self._to_resume),
            **({"budget": self.budget.get_state()} if getattr(self, "budget", None) is not None else {}),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"state version must be {_STATE_VERSION}, got {state.get('version')!r}")
        self._metric = state.get("metric") or self._metric
        self.mode = state.get("mode") or self.mode
        self._records = {
            t["key"]: _TrialRecord(
                list(t["curve"]),
                dict(t["params"]),
                TrialStatus(t["status"]),
                list(t.get("records", [])),
                [int(e) for e in t.get("unranked", [])],
                t.get("budget_cut"),
                bool(t.get("finishing", False)),
            )
            for t in state["trials"]
        }
        if "budget" in state and getattr(self, "budget", None) is not None:
            self.budget.set_state(state["budget"])
        self.decisions_ = [tuple(d) for d in state["decisions"]]
        self._to_resume = [key for key in state.get("to_resume", []) if key in self._records]

    def save(self, checkpoint_path: str):
        Path(checkpoint_path).write_text(json.dumps(self.get_state()), encoding="utf-8")

    def restore(self, checkpoint_path: str):
        self.set_state(json.loads(Path(checkpoint_path).read_text(encoding="utf-8")))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_policy"] = state["_driver"] = None  # rebuilt from its name; a live policy may hold a thread
        if not isinstance(self.policy, str):
            try:
                pickle.dumps(self.policy)
            except (TypeError, pickle.PicklingError, AttributeError):
                state["policy"] = type(self.policy).__name__  # not restorable, see stopping_policy
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_driver", None)  # a scheduler pickled before it had a driver
        self.__dict__.setdefault("_warnings", TopicWarnings())
        self.__dict__.setdefault("budget", None)  # a scheduler pickled before budgets
