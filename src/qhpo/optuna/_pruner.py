"""An Optuna pruner that stops trials whose predicted final value is not worth the epochs."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import math
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from qhpo._checks import check_int
from qhpo.optuna._trial_views import PAUSED_ATTR, RETRY_OF_ATTR, UNRANKED_ATTR, TrialViewCache, resumed_after
from qhpo.policies import Decision, Resumption, StoppingPolicy, TrialStatus, TrialView, Verdict
from qhpo.predictors import MODEL_NAMES, ORACLE, ORACLE_FINAL, ORACLE_REFUSAL

#: Trial user attribute holding the list of decision records (see :class:`PredictivePruner`).
DECISIONS_ATTR = "qhpo.decisions"
#: Trial user attribute holding the record of the decision that ended the trial's training
#: (a stop, or a pause: a paused trial carries the same record as ``qhpo.paused`` too).
STOP_ATTR = "qhpo.stop"
#: Study user attribute from which a pruner built without ``max_epochs`` reads it.
MAX_EPOCHS_ATTR = "qhpo.max_epochs"

#: The rule a policy name runs without freeze-thaw (the same rule that stops what it does not keep).
_WITHOUT_FREEZE_THAW = {"qhpo": "qhpo-stop"}


def can_freeze_thaw(policy: str) -> bool:
    """Whether the policy called ``policy`` can pause trials and resume them (freeze-thaw).

    Example:
        >>> can_freeze_thaw("qhpo"), can_freeze_thaw("qhpo-stop"), can_freeze_thaw("poster")
        (True, False, False)
    """
    from qhpo.policies import policy_class

    return "resume" in inspect.signature(policy_class(policy).__init__).parameters


class PredictivePruner(BasePruner):
    """Prunes a trial when a stopping policy, fed with the study's learning curves, says STOP or PAUSE.

    **Steps are epochs.** ``trial.report(value, step)`` gives the value after ``step``
    epochs; a trial's curve is indexed by step (:func:`qhpo.optuna.trial_curve`: a step
    left out carries the value reported before it forward). The policy decides at its
    decision epochs (the rungs of ``qhpo``): a rung ``r`` is reached when a step ``>= r``
    is reported, and the policy then judges the trial on its curve up to ``r``. A trial
    that reports every 5th epoch with ``step=epoch`` is thus judged at the rungs by step,
    once per rung, whenever ``should_prune()`` is next called; a trial whose largest step
    has reached ``max_epochs`` is never pruned. Steps that arrive out of order, or beyond
    ``max_epochs``, are not epochs: the pruner says so once (a ``RuntimeWarning``) and goes
    on reading them as epochs.

    **The rule that runs.** ``PredictivePruner()`` in a plain
    ``study.optimize(objective, n_trials=...)`` loop runs the default rule without
    freeze-thaw: ``qhpo-stop``, the replay's rule of that name (at each rung a trial goes
    on when its observed or its predicted value ranks among the best ``1 / eta`` there, and
    stops for good otherwise). ``freeze_thaw=True`` runs ``qhpo``: at the rung the observed
    rank alone decides and a trial it does not keep is paused (it ends PRUNED with the
    verdict in ``qhpo.paused``); the refitted predictor later resumes the paused trials
    that rank among the best. Optuna cannot resume a trial, so freeze-thaw needs the study
    to enqueue resumptions (:class:`qhpo.optuna.ResumePausedTrials` as a callback of
    ``study.optimize``, or :func:`qhpo.optuna.resumable_trials`) and an objective that
    loads a resumption's checkpoint (:class:`qhpo.optuna.TrialCheckpoint`); a pruner whose
    paused trials nobody asks to resume warns once, since its rule is then successive
    halving. Every record names the rule (``"stopped by policy 'qhpo-stop' ..."``).

    **Several studies.** One pruner may serve several studies (and ``n_jobs`` threads):
    each study (keyed on its storage and id) gets its own policy, direction, epoch budget,
    curves and records. A pruner built around a policy *object* serves the first study it
    sees and lets the trials of any other continue, with one warning.

    **The epoch budget.** ``max_epochs`` given is used as is. Without it the pruner reads
    the study's user attribute ``qhpo.max_epochs``, else takes the largest step any trial
    has reported so far, read again at every decision (the policy is rebuilt when it
    grows); until some trial has reported a step the pruner lets every trial continue.
    Each record states the budget and where it came from (``max_epochs`` and
    ``max_epochs_from``).

    **Pickling.** The pruner pickles, deep-copies and goes through ``joblib.dump(study)``:
    its lock, writer thread and per-study policies are left out and rebuilt on first use
    (a policy keeps no state that the study's trials do not hold, so the copy decides
    from the storage alone, refitting its predictor).

    Predictive policies predict each trial's later value from its first epochs with a
    :class:`~qhpo.predictors.FinalValuePredictor` refitted on the study's curves in a
    background thread; ``prune`` always answers with the last fitted model, so it costs
    milliseconds even with hundreds of trials. Every process that shares the storage
    (several workers on one SQLite or journal file) refits its own predictor from the
    curves in the storage.

    The pruner never fails a trial: a failing or unavailable annealer makes the policy fall
    back to the classical SVR with one warning, and any other error in the policy is
    reported once as a warning and answered with "continue". **NaN**: a reported value
    that is NaN or infinite (a diverged loss) prunes the trial at once, as Optuna's own
    pruners prune a NaN, with a record that says so; a trial that reported nothing is
    never pruned.

    Each decision that rests on a prediction, or that stops the trial, is stored in the
    trial's user attribute ``qhpo.decisions`` as a list of records
    ``{"epoch", "decision", "predicted_final", "std", "threshold", "reason", "step",
    "max_epochs", "max_epochs_from"}``: the :meth:`qhpo.policies.Verdict.record` of the
    policy's verdict (``epoch`` is the rung judged, ``step`` the largest step reported
    then), so the record shows the very prediction the decision read. The record that
    ended the trial is also stored alone as ``qhpo.stop``, and for a pause as
    ``qhpo.paused``.

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
        if isinstance(policy, str):
            from qhpo.policies import POLICY_NAMES

            if policy not in POLICY_NAMES:
                raise ValueError(f"policy must be one of {', '.join(POLICY_NAMES)} or a StoppingPolicy, got {policy!r}")
        elif not isinstance(policy, StoppingPolicy):
            raise ValueError(f"policy must be a policy name or a StoppingPolicy, got {policy!r}")
        if isinstance(predictor, str) and predictor in (ORACLE, ORACLE_FINAL):
            raise ValueError(ORACLE_REFUSAL)
        if isinstance(predictor, str) and predictor not in MODEL_NAMES:
            raise ValueError(f"predictor must be one of {', '.join(MODEL_NAMES)} or an estimator, got {predictor!r}")
        if freeze_thaw is not None and not isinstance(freeze_thaw, bool):
            raise ValueError(f"freeze_thaw must be True, False or None, got {freeze_thaw!r}")
        options = dict(policy_options or {})
        if "resume" in options:
            raise ValueError(
                f"policy_options 'resume' ({options['resume']!r}) is set by the freeze_thaw argument; "
                "pass freeze_thaw=True or False instead"
            )
        if isinstance(policy, StoppingPolicy):
            if freeze_thaw is not None and freeze_thaw != policy.resumes:
                raise ValueError(
                    f"freeze_thaw={freeze_thaw} disagrees with the policy object, whose resumes is {policy.resumes}"
                )
            freeze_thaw = policy.resumes
        else:
            freeze_thaw = bool(freeze_thaw)
            if freeze_thaw and not can_freeze_thaw(policy):
                raise ValueError(f"freeze_thaw=True needs a policy that pauses trials ('qhpo'), not {policy!r}")
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
        self._writer = _AttributeWriter()
        self._studies: dict[tuple[int, int], _StudyState] = {}
        self._warned: set[str] = set()
        self._paused: set[int] = set()  # trial ids whose last verdict here was PAUSE
        self._object_study: tuple[int, int] | None = None  # the study a policy object serves
        self._last_key: tuple[int, int] | None = None  # the study of the last call

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k in _ARGUMENTS}
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
        if isinstance(self.policy, StoppingPolicy):
            return self.policy.label
        return self.policy if self.freeze_thaw else _WITHOUT_FREEZE_THAW.get(self.policy, self.policy)

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
            self._warn_once("error", f"qhpo pruner error ({type(error).__name__}: {error}); trials continue unpruned")
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
            progress = state.trials.get(trial._trial_id)
            if progress is None:
                progress = state.trials[trial._trial_id] = _TrialProgress(judged=_judged_before(trial, last))
            new = sorted(set(values) - progress.steps)
            if not new:
                return progress.answer  # asked again after the same reports
            if progress.steps and new[0] < max(progress.steps):
                self._warn_once(
                    "order",
                    f"trial {trial.number} reported step {new[0]} after step {max(progress.steps)}: "
                    "qhpo reads Optuna steps as epochs, in increasing order; the values are placed by step",
                )
            progress.steps.update(new)
            self._check_resumers(state, trial)
            value = float(values[last])
            if not math.isfinite(value):  # as Optuna's own pruners do: a NaN or infinite value ends the trial
                verdict = Verdict(Decision.STOP, last, f"the reported value {value} at step {last} is not finite")
                self._store(study, trial, state, self._record(verdict, state, last, self.rule), verdict.decision)
                progress.answer = True
                return True
            policy = self._ensure_policy(study, state, last)
            if policy is None:
                return False
            if last > policy.max_epochs:
                self._warn_once(
                    "beyond",
                    f"trial {trial.number} reported step {last}, beyond max_epochs={policy.max_epochs}: "
                    "qhpo reads Optuna steps as epochs; steps that count something else are read as epochs too",
                )
            if last >= policy.max_epochs:
                progress.judged = last
                return False
            if state.decision_epochs is None:
                epochs = [last]  # a policy that may decide at any epoch decides at the last step
            else:
                epochs = [e for e in state.decision_epochs if progress.judged < e <= last]
            progress.judged = last
            if not epochs:
                return False
            views = state.views.views(study, current=trial)
            index = next(i for i, v in enumerate(views) if v.key == trial.number)
            current = views[index]
            held = state.unranked.setdefault(trial._trial_id, set(current.unranked))
            for epoch in epochs:  # each rung reached since the last call, in order; the first that ends it decides
                view = dataclasses.replace(current, curve=tuple(current.curve[:epoch]))
                views[index] = view
                verdict = policy.verdict(view, views)
                if not verdict.ranked and epoch not in held:
                    # every process reads it back from the storage: the trial takes no place at this rung
                    held.add(epoch)
                    study._storage.set_trial_user_attr(trial._trial_id, UNRANKED_ATTR, sorted(held))
                if verdict.predictive or verdict.decision != Decision.CONTINUE:
                    record = self._record(verdict, state, last, policy.label)
                    self._store(study, trial, state, record, verdict.decision)
                if verdict.decision != Decision.CONTINUE:
                    progress.answer = True
                    return True
        return False

    def _record(self, verdict: Verdict, state: _StudyState, step: int, rule: str) -> dict[str, Any]:
        record = verdict.record(rule)
        record.update(step=int(step), max_epochs=state.max_epochs, max_epochs_from=state.max_epochs_from)
        return record

    def paused(self, trial: optuna.Trial | FrozenTrial) -> bool:
        """Whether this pruner's last answer for ``trial`` was a PAUSE (keep its checkpoint).

        An objective calls it after ``should_prune()`` returned True: a paused trial may be
        resumed later (:func:`qhpo.optuna.resumable_trials`), a stopped one never is.
        """
        return trial._trial_id in self._paused

    def promote(
        self,
        study: optuna.Study,
        *,
        limit: int = 1,
        can_resume: Callable[[FrozenTrial], bool] | None = None,
    ) -> list[tuple[FrozenTrial, Resumption]]:
        """The paused trials the policy resumes now, best first, with its resumptions.

        Asks the policy's :meth:`~qhpo.policies.StoppingPolicy.promote` with the study's
        views. ``can_resume(trial)`` False (say, its checkpoint is gone) shows a paused trial
        to the policy as stopped. Empty for a policy that does not resume.
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
            paused = {v.key for v in views if v.status == TrialStatus.PAUSED}
            if not paused:
                return []
            chosen: list[tuple[FrozenTrial, Resumption]] = []
            for resumption in policy.promote(views, limit=limit)[:limit]:
                if resumption.key not in paused:
                    raise ValueError(
                        f"{type(policy).__name__}.promote named trial {resumption.key!r}, which is not paused"
                    )
                paused.discard(resumption.key)
                chosen.append((by_number[resumption.key], resumption))
            return chosen

    # -- per-study state ------------------------------------------------------------------

    def _state(self, study: optuna.Study) -> _StudyState | None:
        """The state of ``study``, made on first sight; None for a second study of a policy object."""
        key = (id(study._storage), study._study_id)
        state = self._studies.get(key)
        if state is not None:
            self._last_key = key
            return state
        if isinstance(self.policy, StoppingPolicy):
            if self._object_study is not None and self._object_study != key:
                self._warn_once(
                    "object",
                    f"this PredictivePruner was built around a {type(self.policy).__name__} object, which serves "
                    f"one study; the trials of study {study.study_name!r} continue unpruned (build the pruner from "
                    "a policy name to serve several studies)",
                )
                return None
            self._object_study = key
        state = self._studies[key] = _StudyState(key=key, storage=study._storage)
        self._last_key = key
        return state

    def _ensure_policy(self, study: optuna.Study, state: _StudyState, step: int = 0) -> StoppingPolicy | None:
        if isinstance(self.policy, StoppingPolicy):
            if state.policy is None:
                state.use(self.policy, self.policy.max_epochs, "the policy object")
            return state.policy
        max_epochs, source = self._budget(study, state, step)
        if max_epochs is None:
            return None
        if state.policy is not None and state.max_epochs == max_epochs:
            return state.policy
        from qhpo.policies import make_policy

        mode = "max" if study.direction == StudyDirection.MAXIMIZE else "min"
        options = {"background": True, **self.policy_options}
        name = self.rule
        if can_freeze_thaw(name):
            options["resume"] = self.freeze_thaw
        state.use(
            make_policy(
                name,
                max_epochs=max_epochs,
                mode=mode,
                predictor=self.predictor,
                sampler=self.sampler,
                random_state=self.random_state,
                **options,
            ),
            max_epochs,
            source,
        )
        return state.policy

    def _budget(self, study: optuna.Study, state: _StudyState, step: int) -> tuple[int | None, str]:
        """``(max_epochs, where it came from)``: the argument, the study's attribute (read once),
        else the largest step reported so far (``step``: the asking trial's), which never shrinks."""
        if self.max_epochs is not None:
            return self.max_epochs, "max_epochs argument"
        if state.max_epochs_from == "study user attribute":
            return state.max_epochs, state.max_epochs_from
        value = study.user_attrs.get(MAX_EPOCHS_ATTR)
        if value is not None:
            return check_int(f"the study user attribute {MAX_EPOCHS_ATTR}", value, least=1), "study user attribute"
        trials = study.get_trials(deepcopy=False)
        longest = max((max(t.intermediate_values) for t in trials if t.intermediate_values), default=0)
        longest = max(longest, step, state.max_epochs or 0)
        return (longest or None), "largest step reported so far"

    def _check_resumers(self, state: _StudyState, trial: FrozenTrial) -> None:
        """Warn once when freeze-thaw is on but trials start after a pause without anyone asking
        which paused trials to resume (the rule is then successive halving)."""
        if state.unanswered is None or not self.freeze_thaw:
            return
        started = trial.datetime_start
        if started is None or started <= state.unanswered or trial._trial_id in state.counted:
            return
        if "fixed_params" in trial.system_attrs:
            return  # an enqueued trial (a retry, a resumption, the user's) rightly goes before any resumption
        state.counted.add(trial._trial_id)
        if len(state.counted) >= 2:
            self._warn_once(
                "resume",
                "freeze-thaw is on but no one asks which paused trials to resume, so none ever is and the rule "
                "is plain successive halving: pass callbacks=[qhpo.optuna.ResumePausedTrials()] to study.optimize "
                "(or call qhpo.optuna.resumable_trials), or build the pruner with freeze_thaw=False",
            )

    def _store(
        self, study: optuna.Study, trial: FrozenTrial, state: _StudyState, record: dict[str, Any], decision: Decision
    ) -> None:
        """Store the record: a stop at once, other records by the writer thread (off the trial's path)."""
        records = state.records.setdefault(trial._trial_id, [])
        records.append(record)
        storage = study._storage
        if decision in (Decision.STOP, Decision.PAUSE):  # the trial ends now: write before it does
            state.records.pop(trial._trial_id, None)
            self._writer.flush()
            storage.set_trial_user_attr(trial._trial_id, DECISIONS_ATTR, records)
            if decision == Decision.PAUSE:
                storage.set_trial_user_attr(trial._trial_id, PAUSED_ATTR, record)
                self._paused.add(trial._trial_id)
                if state.unanswered is None:
                    state.unanswered = datetime.datetime.now()
                    state.counted = set()
            else:
                self._paused.discard(trial._trial_id)
            storage.set_trial_user_attr(trial._trial_id, STOP_ATTR, record)
        else:
            self._writer.put(storage, trial._trial_id, DECISIONS_ATTR, list(records))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every decision record is written to the storage (True) or ``timeout`` passes.

        Records are written by a background thread so that ``prune`` does not wait for a
        storage commit; Optuna refuses attributes of a finished trial, so an objective that
        tells its own trials calls this first (``qhpo run`` does).
        """
        return self._writer.flush(timeout)

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            warnings.warn(message, RuntimeWarning, stacklevel=4)


def _judged_before(trial: FrozenTrial, last: int) -> int:
    """The last step judged before ``trial`` first asks: a resumption was judged up to its
    pause by the trial it continues; a retry reports its checkpoint's epochs again, and the
    trial it retries was judged up to the epoch before its last one (it may have died before
    that decision); any other trial has been judged nowhere."""
    resumed = resumed_after(trial) or 0
    if trial.user_attrs.get(RETRY_OF_ATTR) is not None:
        return max(last - 1, resumed)  # the retry of a resumption keeps the resumption's point
    return resumed


#: The constructor's arguments: what a pickled pruner keeps.
_ARGUMENTS = ("policy", "predictor", "sampler", "max_epochs", "random_state", "policy_options", "freeze_thaw")


@dataclasses.dataclass
class _TrialProgress:
    """What the pruner has seen of one trial: its steps, the last step judged, its last answer."""

    steps: set[int] = dataclasses.field(default_factory=set)
    judged: int = 0
    answer: bool = False


@dataclasses.dataclass
class _StudyState:
    """Everything the pruner keeps for one study."""

    key: tuple[int, int]
    storage: Any  # held so that the id in ``key`` cannot be reused by another storage
    policy: StoppingPolicy | None = None
    decision_epochs: tuple[int, ...] | None = None  # sorted
    max_epochs: int | None = None
    max_epochs_from: str = ""
    views: TrialViewCache = dataclasses.field(default_factory=TrialViewCache)
    records: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    unranked: dict[int, set[int]] = dataclasses.field(default_factory=dict)  # per trial id: qhpo.unranked
    trials: dict[int, _TrialProgress] = dataclasses.field(default_factory=dict)
    asked: datetime.datetime | None = None  # the last promote() call
    unanswered: datetime.datetime | None = None  # the first pause since then
    counted: set[int] = dataclasses.field(default_factory=set)  # trials started after it

    def use(self, policy: StoppingPolicy, max_epochs: int, source: str) -> None:
        epochs = policy.decision_epochs()
        self.decision_epochs = None if epochs is None else tuple(sorted({int(e) for e in epochs}))
        if self.policy is not None and self.policy is not policy:
            service = self.policy.prediction_service
            if service is not None:
                service.close()  # the policy for the shorter budget is done
        self.policy, self.max_epochs, self.max_epochs_from = policy, int(max_epochs), source


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
