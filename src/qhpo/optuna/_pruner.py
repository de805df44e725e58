"""An Optuna pruner that stops trials whose predicted final value is not worth the epochs."""

from __future__ import annotations

import dataclasses
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
from optuna.trial import FrozenTrial, TrialState

from qhpo._checks import check_int
from qhpo.optuna._trial_views import PAUSED_ATTR, UNRANKED_ATTR, TrialViewCache, trial_curve
from qhpo.policies import Decision, Resumption, StoppingPolicy, TrialStatus, Verdict
from qhpo.predictors import MODEL_NAMES

#: Trial user attribute holding the list of decision records (see :class:`PredictivePruner`).
DECISIONS_ATTR = "qhpo.decisions"
#: Trial user attribute holding the record of the decision that ended the trial's training
#: (a stop, or a pause: a paused trial carries the same record as ``qhpo.paused`` too).
STOP_ATTR = "qhpo.stop"
#: Study user attribute from which a pruner built without ``max_epochs`` reads it.
MAX_EPOCHS_ATTR = "qhpo.max_epochs"


class PredictivePruner(BasePruner):
    """Prunes a trial when a stopping policy, fed with the study's learning curves, says STOP or PAUSE.

    After every reported epoch the pruner turns the study into policy views (each trial's
    intermediate values in step order as its curve; COMPLETE -> complete, PRUNED -> stopped,
    or paused when it carries ``qhpo.paused``, RUNNING -> running, FAIL -> failed) and asks
    the policy about the reporting trial. ``prune`` returns True when the answer is STOP or
    PAUSE. An Optuna trial cannot be resumed, so a paused trial ends as PRUNED with the
    verdict record in ``qhpo.paused``; a later trial carrying ``qhpo.resume_of = N``
    continues paused trial ``N`` from its checkpoint (:func:`qhpo.optuna.resumable_trials`
    lists the paused trials the policy resumes now, :meth:`paused` tells an objective to keep
    the checkpoint of the trial it just pruned). Predictive policies predict each
    trial's final value :math:`\\hat y_E` from its first :math:`t` epochs with a
    :class:`~qhpo.predictors.FinalValuePredictor` refitted on the completed curves in a
    background thread; ``prune`` always answers with the last fitted model, so it costs
    milliseconds even with hundreds of trials. Every process that shares the storage
    (several workers on one SQLite or journal file) refits its own predictor from the
    curves in the storage.

    The pruner never fails a trial: a failing or unavailable annealer makes the policy fall
    back to the classical SVR with one warning, and any other error in the policy is
    reported once as a warning and answered with "continue". A non-finite reported value
    (a diverged loss) prunes the trial at once, as Optuna's own pruners do.

    Each decision that rests on a prediction, or that stops the trial, is stored in the
    trial's user attribute ``qhpo.decisions`` as a list of records
    ``{"epoch", "decision", "predicted_final", "std", "threshold", "reason"}``: the
    :meth:`qhpo.policies.Verdict.record` of the policy's verdict, so the record shows the
    very prediction the decision read. The record that ended the trial is also stored alone
    as ``qhpo.stop``, and for a pause as ``qhpo.paused``.

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
            :func:`qhpo.policies.make_policy` on the first call, when the study's direction
            and the epoch budget are known) or a ready :class:`~qhpo.policies.StoppingPolicy`.
        predictor: ``"svr"``, ``"qsvr"`` or ``"qsvr-ensemble"``, or an estimator object;
            ignored when ``policy`` is an object.
        sampler: The dimod sampler (or :func:`qhpo.samplers.make_sampler` name) that trains
            the QSVR; None for the package default.
        max_epochs: Epochs of a trial that is never stopped. None reads the study's user
            attribute ``qhpo.max_epochs``, else the longest completed curve; until one of
            these exists the pruner lets every trial continue.
        random_state: Seed of the policy's predictor.
        policy_options: Further keyword arguments of :func:`qhpo.policies.make_policy`.
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
    ) -> None:
        if isinstance(policy, str):
            from qhpo.policies import POLICY_NAMES

            if policy not in POLICY_NAMES:
                raise ValueError(f"policy must be one of {', '.join(POLICY_NAMES)} or a StoppingPolicy, got {policy!r}")
        elif not isinstance(policy, StoppingPolicy):
            raise ValueError(f"policy must be a policy name or a StoppingPolicy, got {policy!r}")
        if isinstance(predictor, str) and predictor not in MODEL_NAMES:
            raise ValueError(f"predictor must be one of {', '.join(MODEL_NAMES)} or an estimator, got {predictor!r}")
        self.policy = policy
        self.predictor = predictor
        self.sampler = sampler
        self.max_epochs = None if max_epochs is None else check_int("max_epochs", max_epochs, least=1)
        self.random_state = random_state
        self.policy_options = dict(policy_options or {})
        self._policy: StoppingPolicy | None = None
        self._decision_epochs: frozenset[int] | None = None
        if isinstance(policy, StoppingPolicy):
            self._use_policy(policy)
        self._views = TrialViewCache()
        self._records: dict[int, list[dict[str, Any]]] = {}
        self._lock = threading.RLock()
        self._warned = False
        self._writer = _AttributeWriter()
        self._paused: set[int] = set()  # ids of trials whose last verdict here was PAUSE
        self._unranked: dict[int, set[int]] = {}  # per trial id: the epochs stored in qhpo.unranked
        #: Seconds spent in the last ``prune`` call (for benchmarks and the progress display).
        self.last_prune_seconds_: float = 0.0

    @property
    def policy_(self) -> StoppingPolicy | None:
        """The policy in use; None until the first decision that could build it."""
        return self._policy

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        start = time.perf_counter()
        try:
            return self._prune(study, trial)
        except Exception as error:  # never crash a trial because of its pruner
            self._warn_once(f"qhpo pruner error ({type(error).__name__}: {error}); trials continue unpruned")
            return False
        finally:
            self.last_prune_seconds_ = time.perf_counter() - start

    def _prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        curve = trial_curve(trial)
        if not curve:
            return False
        if not math.isfinite(curve[-1]):  # as Optuna's own pruners do: a NaN or infinite value ends the trial
            with self._lock:
                verdict = Verdict(Decision.STOP, len(curve), f"the reported value {curve[-1]} is not finite")
                self._store(study, trial, verdict.record(), verdict.decision)
            return True
        with self._lock:
            policy = self._ensure_policy(study)
            if policy is None or len(curve) >= policy.max_epochs:
                return False
            if self._decision_epochs is not None and len(curve) not in self._decision_epochs:
                return False  # the policy answers CONTINUE between its decision epochs
            views = self._views.views(study, current=trial)
            view = next(v for v in views if v.key == trial.number)
            verdict = policy.verdict(view, views)
            held = self._unranked.setdefault(trial._trial_id, set(view.unranked))
            if not verdict.ranked and len(curve) not in held:
                # every process reads it back from the storage: the trial takes no place at this rung
                held.add(len(curve))
                study._storage.set_trial_user_attr(trial._trial_id, UNRANKED_ATTR, sorted(held))
            if verdict.predictive or verdict.decision != Decision.CONTINUE:
                self._store(study, trial, verdict.record(policy.label), verdict.decision)
        return verdict.decision in (Decision.STOP, Decision.PAUSE)

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
            policy = self._ensure_policy(study)
            if policy is None or not policy.resumes or limit == 0:
                return []
            trials = study.get_trials(deepcopy=False)
            by_number = {t.number: t for t in trials}
            views = self._views.views(study, trials=trials)
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

    def _use_policy(self, policy: StoppingPolicy) -> None:
        epochs = policy.decision_epochs()
        self._decision_epochs = None if epochs is None else frozenset(int(e) for e in epochs)
        self._policy = policy

    def _ensure_policy(self, study: optuna.Study) -> StoppingPolicy | None:
        if self._policy is not None:
            return self._policy
        max_epochs = self.max_epochs or _study_max_epochs(study)
        if max_epochs is None:
            return None
        from qhpo.policies import make_policy

        mode = "max" if study.direction == StudyDirection.MAXIMIZE else "min"
        options = {"background": True, **self.policy_options}
        self._use_policy(
            make_policy(
                self.policy,
                max_epochs=max_epochs,
                mode=mode,
                predictor=self.predictor,
                sampler=self.sampler,
                random_state=self.random_state,
                **options,
            )
        )
        return self._policy

    def _store(self, study: optuna.Study, trial: FrozenTrial, record: dict[str, Any], decision: Decision) -> None:
        """Store the record: a stop at once, other records by the writer thread (off the trial's path)."""
        records = self._records.setdefault(trial._trial_id, [])
        records.append(record)
        storage = study._storage
        if decision in (Decision.STOP, Decision.PAUSE):  # the trial ends now: write before it does
            self._records.pop(trial._trial_id, None)
            self._writer.flush()
            storage.set_trial_user_attr(trial._trial_id, DECISIONS_ATTR, records)
            if decision == Decision.PAUSE:
                storage.set_trial_user_attr(trial._trial_id, PAUSED_ATTR, record)
                self._paused.add(trial._trial_id)
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

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(message, RuntimeWarning, stacklevel=3)


def _study_max_epochs(study: optuna.Study) -> int | None:
    value = study.user_attrs.get(MAX_EPOCHS_ATTR)
    if value is not None:
        return int(value)
    lengths = [len(t.intermediate_values) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return max(lengths) if lengths else None


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
