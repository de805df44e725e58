"""An Optuna pruner that stops trials whose predicted final value is not worth the epochs."""

from __future__ import annotations

import dataclasses
import datetime
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from qhpo._checks import check_int
from qhpo._optuna_schema import (
    DECISIONS_ATTR,
    MAX_EPOCHS_ATTR,
    STOP_ATTR,
    UNRANKED,
    storage_of,
    study_key,
    trial_id,
)
from qhpo.optuna._decision_records import DecisionRecords
from qhpo.optuna._pruner_arguments import ARGUMENTS, build_policy, can_freeze_thaw, checked_arguments, rule_name
from qhpo.optuna._pruner_state import StudyState, TrialProgress
from qhpo.policies import (
    Decision,
    PolicyDriver,
    Resumption,
    StoppingPolicy,
    TopicWarnings,
    TrialStatus,
    TrialView,
    Verdict,
)

__all__ = ["DECISIONS_ATTR", "MAX_EPOCHS_ATTR", "STOP_ATTR", "PredictivePruner", "can_freeze_thaw"]


class PredictivePruner(BasePruner):
    """Prunes a trial when a stopping policy, fed with the study's learning curves, says STOP or PAUSE.

    **Steps are epochs.** ``trial.report(value, step)`` gives the value after ``step``
    epochs; a trial's curve is indexed by step (:func:`qhpo.optuna.trial_curve`). The
    policy decides at its decision epochs (the rungs of ``qhpo``): a rung ``r`` is reached
    when a step ``>= r`` is reported, and the trial is judged on its curve up to ``r``, once
    per rung, at the next ``should_prune()``; a trial whose largest step has reached
    ``max_epochs`` is never pruned.

    **The rule that runs.** ``PredictivePruner()`` in a plain
    ``study.optimize(objective, n_trials=...)`` loop runs the default rule without
    freeze-thaw: ``qhpo-stop`` (at each rung a trial goes on when its observed or its
    predicted value ranks among the best ``1 / eta`` there, and stops for good otherwise).
    ``freeze_thaw=True`` runs ``qhpo``: a trial the observed rank does not keep is paused
    (PRUNED, with the verdict in ``qhpo.paused``), and the refitted predictor later resumes
    the paused trials that rank among the best. Optuna cannot resume a trial, so
    freeze-thaw needs the study to enqueue resumptions (:class:`qhpo.optuna.ResumePausedTrials`
    or :func:`qhpo.optuna.resumable_trials`) and an objective that loads a resumption's
    checkpoint (:class:`qhpo.optuna.TrialCheckpoint`); a pruner whose paused trials nobody
    asks to resume warns once.

    Predictive policies refit their :class:`~qhpo.predictors.FinalValuePredictor` on the
    study's curves in a background thread and ``prune`` answers with the last fitted model.
    One pruner serves several studies (each keyed on its storage and id), pickles, and
    never fails a trial (an error in the policy is one warning and "continue"); a NaN or
    infinite reported value prunes the trial at once. Each decision that rests on a
    prediction, or that stops the trial, is stored in the trial's user attribute
    ``qhpo.decisions`` (:meth:`qhpo.policies.Verdict.record` with ``step``, ``max_epochs``
    and ``max_epochs_from``), the one that ended it also as ``qhpo.stop``. The whole
    contract (steps, the epoch budget, several studies, pickling, records) is in
    ``docs/optuna.md``.

    Example:
        >>> import optuna
        >>> from qhpo.optuna import PredictivePruner
        >>> study = optuna.create_study(direction="maximize", pruner=PredictivePruner(max_epochs=20))
        >>> def objective(trial):
        ...     x = trial.suggest_float("x", 0.0, 1.0)
        ...     for epoch in range(1, 21):
        ...         value = x * (1.0 - 0.8 ** epoch)
        ...         trial.report(value, epoch)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return value
        >>> study.optimize(objective, n_trials=30)  # doctest: +SKIP

    Args:
        policy: A policy name of :data:`qhpo.policies.POLICY_NAMES` (built by
            :func:`qhpo.policies.make_policy` for each study on its first decision, when
            the study's direction and the epoch budget are known) or a ready
            :class:`~qhpo.policies.StoppingPolicy`.
        predictor: ``"svr"``, ``"qsvr"`` or ``"qsvr-ensemble"``, or an estimator object;
            ignored when ``policy`` is an object.
        sampler: The dimod sampler (or :func:`qhpo.samplers.make_sampler` name) that trains
            the QSVR; None for the package default.
        max_epochs: Epochs of a trial that is never stopped (the largest step). None: the
            study's user attribute ``qhpo.max_epochs``, else the largest step reported so far.
        random_state: Seed of the policy's predictor.
        policy_options: Further keyword arguments of :func:`qhpo.policies.make_policy`
            (``resume`` is set by ``freeze_thaw``).
        freeze_thaw: Pause the trials the rule does not keep and resume them later
            (``"qhpo"`` only; the study must enqueue the resumptions, see above). None:
            off for a policy name, the policy's own for a policy object.
    """

    def __init__(
        self,
        policy: str | StoppingPolicy = "qhpo",
        predictor: Any = "svr",
        *,
        sampler: Any = None,
        max_epochs: int | None = None,
        random_state: int | None = None,
        policy_options: Mapping[str, Any] | None = None,
        freeze_thaw: bool | None = None,
    ) -> None:
        freeze_thaw, options = checked_arguments(policy, predictor, freeze_thaw, policy_options)
        self.policy = policy
        self.predictor = predictor
        self.sampler = sampler
        self.max_epochs = None if max_epochs is None else check_int("max_epochs", max_epochs, least=1)
        self.random_state = random_state
        self.policy_options = options
        self.freeze_thaw = freeze_thaw
        #: Seconds spent in the last ``prune`` call (for benchmarks and the progress display).
        self.last_prune_seconds_: float = 0.0
        self._setup()

    def _setup(self) -> None:
        """The parts that do not pickle, made anew after unpickling."""
        self._lock = threading.RLock()
        self._records = DecisionRecords()
        self._studies: dict[tuple[int, int], StudyState] = {}
        self._warnings = TopicWarnings()
        self._object_study: tuple[int, int] | None = None  # the study a policy object serves
        self._last_key: tuple[int, int] | None = None  # the study of the last call

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k in ARGUMENTS}
        if isinstance(self.policy, StoppingPolicy):
            import pickle

            try:
                pickle.dumps(self.policy)
            except Exception as error:
                raise TypeError(
                    f"a PredictivePruner built around a {type(self.policy).__name__} object cannot be pickled "
                    f"({type(error).__name__}: {error}); build it from a policy name to pickle it"
                ) from None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.last_prune_seconds_ = 0.0
        self._setup()

    @property
    def rule(self) -> str:
        """The name of the rule this pruner runs (``"qhpo-stop"`` for ``"qhpo"`` without freeze-thaw)."""
        return rule_name(self.policy, self.freeze_thaw)

    @property
    def policy_(self) -> StoppingPolicy | None:
        """The policy of the study this pruner last decided for; None until it has one.

        With several studies, :meth:`policy_for` names the study. A pruner built around a
        policy object always answers that object.
        """
        if isinstance(self.policy, StoppingPolicy):
            return self.policy
        with self._lock:
            state = self._studies.get(self._last_key) if self._last_key is not None else None
        return None if state is None else state.policy

    def policy_for(self, study: optuna.Study) -> StoppingPolicy | None:
        """The policy deciding for ``study`` (None until its epoch budget is known)."""
        with self._lock:
            state = self._state(study)
            return None if state is None else self._ensure_policy(study, state)

    def trial_views(self, study: optuna.Study) -> list[TrialView]:
        """The study's trials as the policy sees them now (curves by step, paused trials as paused)."""
        with self._lock:
            state = self._state(study)
            return [] if state is None else state.views.views(study)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        start = time.perf_counter()
        try:
            return self._prune(study, trial)
        except Exception as error:  # never crash a trial because of its pruner
            self._warnings.warn(
                "error", f"qhpo pruner error ({type(error).__name__}: {error}); trials continue unpruned"
            )
            return False
        finally:
            self.last_prune_seconds_ = time.perf_counter() - start

    def _prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        values = trial.intermediate_values
        if not values:
            return False
        with self._lock:
            state = self._state(study)
            if state is None:
                return False  # a policy object serving another study
            last = max(values)
            progress = state.trials.get(trial_id(trial))
            if progress is None:
                progress = state.trials[trial_id(trial)] = TrialProgress.first_seen(trial, last)
            if not self._take_new_steps(trial, progress):
                return progress.answer  # asked again after the same reports
            self._check_resumers(state, trial)
            value = float(values[last])
            if not math.isfinite(value):  # as Optuna's own pruners do: a NaN or infinite value ends the trial
                verdict = Verdict(Decision.STOP, last, f"the reported value {value} at step {last} is not finite")
                self._store(study, trial, state, state.stamped(verdict.record(self.rule), last), verdict.decision)
                progress.answer = True
                return True
            policy = self._ensure_policy(study, state, last)
            if policy is None:
                return False
            if last > policy.max_epochs:
                self._warnings.warn(
                    "beyond",
                    f"trial {trial.number} reported step {last}, beyond max_epochs={policy.max_epochs}: "
                    "qhpo reads Optuna steps as epochs; steps that count something else are read as epochs too",
                )
            if last >= policy.max_epochs:
                progress.judged = last
                return False
            epochs = state.epochs_to_judge(progress, last)
            if epochs and self._judge(study, trial, state, epochs, last):
                progress.answer = True
                return True
        return False

    def _take_new_steps(self, trial: FrozenTrial, progress: TrialProgress) -> bool:
        """Note the steps ``trial`` reported since the last call; False when there are none."""
        new = sorted(set(trial.intermediate_values) - progress.steps)
        if not new:
            return False
        if progress.steps and new[0] < max(progress.steps):
            self._warnings.warn(
                "order",
                f"trial {trial.number} reported step {new[0]} after step {max(progress.steps)}: "
                "qhpo reads Optuna steps as epochs, in increasing order; the values are placed by step",
            )
        progress.steps.update(new)
        return True

    def _judge(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: StudyState,
        epochs: list[int],
        last: int,
    ) -> bool:
        """Ask the policy at each rung ``trial`` reached since it was last judged, in order; True
        when one ends its training (the first that does decides)."""
        views = state.views.views(study, current=trial)
        index = next(i for i, v in enumerate(views) if v.key == trial.number)
        current = views[index]
        key = trial_id(trial)
        state.unranked.setdefault(key, current.unranked)
        for epoch in epochs:
            views[index] = view = dataclasses.replace(current, curve=tuple(current.curve[:epoch]))
            ruling = state.driver.judge(view, views)
            if ruling is None:
                return False  # the policy failed: warned once, the trial continues
            unranked = ruling.unranked_after(state.unranked[key])
            if unranked is not None:
                # every process reads it back from the storage: the trial takes no place at this rung
                state.unranked[key] = unranked
                UNRANKED.write(study, trial, sorted(unranked))
            if ruling.record is not None:
                self._store(study, trial, state, state.stamped(ruling.record, last), ruling.decision)
            if ruling.ends_training:
                return True
        return False

    def paused(self, trial: optuna.Trial | FrozenTrial) -> bool:
        """Whether this pruner's last answer for ``trial`` was a PAUSE (keep its checkpoint).

        An objective calls it after ``should_prune()`` returned True: a paused trial may be
        resumed later (:func:`qhpo.optuna.resumable_trials`), a stopped one never is.
        """
        return self._records.is_paused(trial)

    def promote(
        self,
        study: optuna.Study,
        *,
        limit: int = 1,
        can_resume: Callable[[FrozenTrial], bool] | None = None,
        more_trials: bool = False,
        budget_left: int | None = None,
    ) -> list[tuple[FrozenTrial, Resumption]]:
        """The paused trials the policy resumes now, best first, with its resumptions.

        Asks the policy's :meth:`~qhpo.policies.StoppingPolicy.promote` with the study's
        views. ``can_resume(trial)`` False (say, its checkpoint is gone) shows a paused trial
        to the policy as stopped. ``more_trials``: a new configuration starts when none
        resumes (see :func:`qhpo.optuna.resumable_trials`); ``budget_left``: epochs left of
        the search's budget, None without one. Empty for a policy that does not resume. A policy that
        fails, or names a trial that is not paused, is warned about once and resumes nothing
        (that trial).
        """
        limit = check_int("limit", limit, least=0)
        with self._lock:
            state = self._state(study)
            if state is None:
                return []
            state.asked = datetime.datetime.now()
            state.unanswered = None
            policy = self._ensure_policy(study, state)
            if policy is None or not policy.resumes or limit == 0:
                return []
            trials = study.get_trials(deepcopy=False)
            by_number = {t.number: t for t in trials}
            views = state.views.views(study, trials=trials)
            if can_resume is not None:
                views = [
                    dataclasses.replace(v, status=TrialStatus.STOPPED)
                    if v.status == TrialStatus.PAUSED and not can_resume(by_number[v.key])
                    else v
                    for v in views
                ]
            chosen = state.driver.promote(views, limit, more_trials=more_trials, budget_left=budget_left)
            return [(by_number[r.key], r) for r in chosen]

    # -- per-study state ------------------------------------------------------------------

    def _state(self, study: optuna.Study) -> StudyState | None:
        """The state of ``study``, made on first sight; None for a second study of a policy object."""
        key = study_key(study)
        state = self._studies.get(key)
        if state is not None:
            self._last_key = key
            return state
        if isinstance(self.policy, StoppingPolicy):
            if self._object_study is not None and self._object_study != key:
                self._warnings.warn(
                    "object",
                    f"this PredictivePruner was built around a {type(self.policy).__name__} object, which serves "
                    f"one study; the trials of study {study.study_name!r} continue unpruned (build the pruner from "
                    "a policy name to serve several studies)",
                )
                return None
            self._object_study = key
        state = self._studies[key] = StudyState(key=key, storage=storage_of(study))
        self._last_key = key
        return state

    def _ensure_policy(self, study: optuna.Study, state: StudyState, step: int = 0) -> StoppingPolicy | None:
        if isinstance(self.policy, StoppingPolicy):
            if state.policy is None:
                state.use(self._driver(self.policy), self.policy.max_epochs, "the policy object")
            return state.policy
        max_epochs, source = state.budget(study, self.max_epochs, step)
        if max_epochs is None:
            return None
        if state.policy is not None and state.max_epochs == max_epochs:
            return state.policy
        state.use(self._driver(build_policy(self, study, max_epochs)), max_epochs, source)
        return state.policy

    def _driver(self, policy: StoppingPolicy) -> PolicyDriver:
        """The driver that asks ``policy``, warning through this pruner (a topic once for all studies)."""
        return PolicyDriver(policy, warnings=self._warnings)

    def _check_resumers(self, state: StudyState, trial: FrozenTrial) -> None:
        """Warn once when freeze-thaw is on but trials start after a pause without anyone asking
        which paused trials to resume (the rule is then successive halving)."""
        if self.freeze_thaw and state.counts_unasked_start(trial):
            self._warnings.warn(
                "resume",
                "freeze-thaw is on but no one asks which paused trials to resume, so none ever is and the rule "
                "is plain successive halving: pass callbacks=[qhpo.optuna.ResumePausedTrials()] to study.optimize "
                "(or call qhpo.optuna.resumable_trials), or build the pruner with freeze_thaw=False",
            )

    def _store(
        self, study: optuna.Study, trial: FrozenTrial, state: StudyState, record: dict[str, Any], decision: Decision
    ) -> None:
        """Store the record: a stop at once, other records by the writer thread (off the trial's path)."""
        self._records.store(study, trial, record, decision)
        if decision == Decision.PAUSE:
            state.note_pause()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every decision record is written to the storage (True) or ``timeout`` passes.

        Records are written by a background thread so that ``prune`` does not wait for a
        storage commit; Optuna refuses attributes of a finished trial, so an objective that
        tells its own trials calls this first (``qhpo run`` does).
        """
        return self._records.flush(timeout)
