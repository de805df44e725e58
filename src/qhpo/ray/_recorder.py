"""The Optuna study a Ray search writes into: every Ray trial that ends becomes a finished trial
of the study, with its curve, its decisions and its Ray trial id."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune import Callback

from qhpo.optuna import DECISIONS_ATTR, STOP_ATTR
from qhpo.policies import TrialStatus
from qhpo.ray._scheduler import DIVERGED_KEY, PredictiveScheduler
from qhpo.ray._trainable import TRIAL_NUMBER_KEY, trial_number
from qhpo.runner import (
    BUDGET_CLOCK_PREFIX,
    BUDGET_CUT_ATTR,
    CHECKPOINT_ATTR,
    EPOCH_SECONDS_ATTR,
    FAILURE_ATTR,
    RAY_BUDGET_EPOCHS_ATTR,
    resolve_storage,
)

_log = logging.getLogger("qhpo.ray._search")  # the search's logger: its records are part of the search

#: File (inside ``<run dir>/<study>``) with the scheduler's state at the end of a run.
SCHEDULER_STATE_FILE = "ray-scheduler.json"
#: Study trial attribute holding the Ray Tune trial id a study trial was recorded from.
RAY_TRIAL_ATTR = "qhpo.ray_trial"


class _SuggestFromSpace:
    """Define-by-run space for ``OptunaSearch``: the workload's own ``space.suggest``, plus
    the Optuna trial number (a bookkeeping key) that seeds the trial's training."""

    def __init__(self, space):
        self.space = space

    def __call__(self, trial) -> dict[str, Any]:
        return {**self.space.suggest(trial), TRIAL_NUMBER_KEY: int(trial.number)}


class StudyRecorder(Callback):
    """Writes each Ray trial into the run's Optuna study as soon as it ends.

    Complete trials become COMPLETE with their final accuracy, stopped ones PRUNED, and
    diverged or crashed ones FAIL; the curve goes in as intermediate values and the
    policy's decision records as the ``qhpo.decisions`` / ``qhpo.stop`` attributes, as the
    Optuna backend writes them. A trial already recorded (a resumed run) is not recorded
    again.
    """

    def __init__(
        self,
        scheduler: PredictiveScheduler,
        storage_url: str,
        study_name: str,
        run_dir: str,
        distributions: dict[str, Any],
    ):
        self.scheduler = scheduler
        self.distributions = distributions
        self.storage_url = storage_url
        self.study_name = study_name
        self.run_dir = run_dir
        self._study = None
        self._recorded: set[str] | None = None

    def __getstate__(self):
        return {**self.__dict__, "_study": None, "_recorded": None}

    def study(self) -> optuna.Study:
        if self._study is None:
            location = resolve_storage(self.storage_url, self.run_dir)
            self._study = optuna.load_study(study_name=self.study_name, storage=location.open())
            self._recorded = {
                t.user_attrs[RAY_TRIAL_ATTR]
                for t in self._study.get_trials(deepcopy=False)
                if RAY_TRIAL_ATTR in t.user_attrs
            }
        return self._study

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._record_safely(trial, error=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._record_safely(trial, error=True)

    def _record_safely(self, trial, *, error: bool) -> None:
        try:
            self.record(trial, error=error)
        except Exception as failure:  # a storage hiccup must not end the whole experiment
            _log.warning(
                "could not record Ray trial %s in study %r (%s: %s); it stays in the Ray experiment",
                trial.trial_id,
                self.study_name,
                type(failure).__name__,
                failure,
            )

    def on_experiment_end(self, trials, **info):
        self.scheduler.save(str(Path(self.run_dir) / self.study_name / SCHEDULER_STATE_FILE))
        budget = self.scheduler.budget
        if budget is not None and budget.budget.unit == "seconds":
            # the driver runs' intervals, where the summary reads a time budget's spending
            study = self.study()
            for start, last in budget.clock:
                study.set_user_attr(f"{BUDGET_CLOCK_PREFIX}ray-driver:{start:.3f}", [start, last])
        elif budget is not None:
            # the account, which counts the epochs trained again after a resume the study holds once
            self.study().set_user_attr(RAY_BUDGET_EPOCHS_ATTR, int(budget.epochs))

    def record(self, trial, *, error: bool = False) -> None:
        study = self.study()
        if trial.trial_id in self._recorded:
            return
        view = next((v for v in self.scheduler.trial_views() if v.key == trial.trial_id), None)
        if view is None and not error:
            return  # stopped before it trained an epoch (a budget that ran out): no configuration tried
        curve = list(view.curve) if view is not None else []
        status = TrialStatus.FAILED if error or view is None else view.status
        last = trial.last_result or {}
        distributions = self.distributions
        params = {k: v for k, v in trial.config.items() if k in distributions}
        attrs: dict[str, Any] = {
            RAY_TRIAL_ATTR: trial.trial_id,
            CHECKPOINT_ATTR: f"ray-{trial_number(trial.config, trial.trial_id)}",
        }
        records = self.scheduler.decision_records(trial.trial_id)
        if records:
            attrs[DECISIONS_ATTR] = records
        if math.isfinite(float(last.get("epoch_seconds", math.nan))):
            attrs[EPOCH_SECONDS_ATTR] = float(last["epoch_seconds"])
        value = None
        if status == TrialStatus.COMPLETE:
            state, value = TrialState.COMPLETE, float(curve[-1])
        elif status in (TrialStatus.STOPPED, TrialStatus.PAUSED):
            state = TrialState.PRUNED
            cut = self.scheduler.budget_cut(trial.trial_id)
            if cut is not None:
                attrs[BUDGET_CUT_ATTR] = cut
            stops = [r for r in records if r.get("decision") in ("stop", "pause")]
            if stops:
                attrs[STOP_ATTR] = stops[-1]
        else:
            state = TrialState.FAIL
            reason = last.get(DIVERGED_KEY)
            attrs[FAILURE_ATTR] = f"diverged: {reason}" if reason else f"crashed on Ray: {_error_of(trial)}"
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value,
                params=params,
                distributions={k: distributions[k] for k in params},
                intermediate_values={e: v for e, v in enumerate(curve, start=1) if math.isfinite(v)},
                user_attrs=attrs,
            )
        )
        self._recorded.add(trial.trial_id)


def _error_of(trial) -> str:
    """Where Ray Tune wrote a crashed trial's error (its ``error_file``), or the Ray logs."""
    path = getattr(trial, "error_file", None)
    return f"its error is in {path}" if path else "see the Ray logs"
