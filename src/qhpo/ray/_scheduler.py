"""A Ray Tune trial scheduler that asks a qhpo stopping policy what to do.

Ray Tune calls the scheduler after every result a trial reports. The scheduler keeps each
trial's learning curve, turns its bookkeeping into :class:`qhpo.policies.TrialView` records
and hands the decision to :meth:`qhpo.policies.StoppingPolicy.decide`; it holds no decision
logic of its own. Predictive policies refit their predictor in a background thread
(``PredictionService(background=True)``) and answer with the last fitted model, so a trial
never waits for the annealer.

Ray Tune 2.x checkpoints the searcher and the callbacks of an experiment but not its
scheduler, so the scheduler's state (curves, statuses, decisions) travels inside
:class:`SchedulerStateCallback`: add it to ``RunConfig(callbacks=[...])`` and
``Tuner.restore`` brings the curves back; a predictive policy refits from them.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers import TrialScheduler

from qhpo._checks import check_int
from qhpo._errors import QhpoError
from qhpo.policies import Decision, PolicyDriver, StoppingPolicy, TopicWarnings, TrialStatus
from qhpo.ray._bookkeeping import BOOKKEEPING_PREFIX as BOOKKEEPING_PREFIX  # public: the trainable's config keys
from qhpo.ray._bookkeeping import SchedulerBookkeeping, _TrialRecord, plain_params
from qhpo.ray._budget import SearchBudget
from qhpo.ray._limiter import RunningTrialLimiter

#: Result key a trainable sets (to a reason) when its training diverged.
DIVERGED_KEY = "diverged"
_RAY_DECISION = {
    Decision.CONTINUE: TrialScheduler.CONTINUE,
    Decision.STOP: TrialScheduler.STOP,
    Decision.PAUSE: TrialScheduler.PAUSE,
}
_STATUS_AFTER = {Decision.STOP: TrialStatus.STOPPED, Decision.PAUSE: TrialStatus.PAUSED}


class PredictiveScheduler(SchedulerBookkeeping, TrialScheduler):
    """Stops (or pauses) Ray Tune trials when a qhpo stopping policy says so.

    After trial ``i`` reports its metric ``y_i(t)`` for epoch ``t`` the scheduler sets
    ``curve_i[t-1] = y_i(t)`` (a trial restored from a checkpoint overwrites the epochs it
    repeats) and, when ``t`` is one of ``policy.decision_epochs()`` (every epoch when that
    is None) and ``t < max_epochs``, returns ``policy.decide(view_i, views)`` where
    ``views`` holds every trial that reported at least one epoch, in the order the trials
    were added. A trial that reaches ``max_epochs`` is COMPLETE and its curve teaches the
    predictor; a trial that reports a non-finite value or sets ``result["diverged"]`` is
    FAILED and its curve is never used. A policy that raises is reported once as a
    warning and answered with CONTINUE: a policy error never ends the experiment.

    The policy sees a trial's config as its hyperparameters, less keys starting with
    ``"__qhpo_"`` (bookkeeping of the trainable).

    **Freeze-thaw.** When the policy resumes trials (``policy.resumes``) and answers PAUSE,
    Ray Tune pauses the trial: it keeps the trial's latest checkpoint and frees its
    resources; the view shows the trial as PAUSED. Each trial that ends (paused, stopped,
    complete or failed) frees a worker; the next time Ray Tune asks which trial to run, the
    scheduler first asks ``policy.promote(views, limit=k)`` with ``k`` the workers freed
    since it last asked, and Ray Tune unpauses each promoted trial before any new one: it
    restarts from its checkpoint, and its curve goes on from the epoch it paused at. Once
    no trial is running or pending and the search algorithm has created all its trials,
    the policy is asked once more (``k`` the most trials seen running at once); the paused
    trials it does not resume then are stopped and count as stopped, so the experiment
    ends. Ray Tune's ``max_concurrent_trials`` counts paused trials as running, so paused
    trials would use up its places and the search would wait forever; cap concurrency with
    :class:`RunningTrialLimiter` instead, which counts only the trials not paused.

    Example:
        >>> from ray import tune
        >>> from qhpo.ray import PredictiveScheduler, SchedulerStateCallback
        >>> def trainable(config):
        ...     for epoch in range(1, 21):
        ...         tune.report({"accuracy": config["x"] * (1.0 - 0.8**epoch)})
        >>> scheduler = PredictiveScheduler("qhpo", max_epochs=20)
        >>> tuner = tune.Tuner(
        ...     trainable,
        ...     param_space={"x": tune.uniform(0.0, 1.0)},
        ...     tune_config=tune.TuneConfig(metric="accuracy", mode="max", scheduler=scheduler, num_samples=30),
        ...     run_config=tune.RunConfig(callbacks=[SchedulerStateCallback(scheduler)]))
        >>> results = tuner.fit()  # doctest: +SKIP

    Args:
        policy: A name from :data:`qhpo.policies.POLICY_NAMES`, built with
            :func:`qhpo.policies.make_policy` when the experiment starts, or a
            :class:`~qhpo.policies.StoppingPolicy` instance.
        max_epochs: Epochs of a trial that is never stopped (taken from ``policy`` when it
            is an instance).
        metric: Result key holding the metric; defaults to ``TuneConfig(metric=...)``.
        mode: ``"max"`` or ``"min"``; defaults to ``TuneConfig(mode=...)``.
        epoch_attr: Result key counting epochs from 1.
        predictor, sampler, random_state: Passed to ``make_policy``.
        background: Refit predictors in a background thread (``make_policy`` option).
        explain: Keep, per trial, the verdict of each decision that read a prediction or
            stopped the trial (the records that :class:`qhpo.optuna.PredictivePruner`
            stores; :meth:`decision_records`).
        budget: A :class:`qhpo.ray.SearchBudget` that bounds the search: a trial still
            training when it is spent is stopped after its epoch, paused trials resume
            only while some is left, and :class:`RunningTrialLimiter` starts no
            configuration whose first rung it cannot hold. None: no budget.
        **policy_options: Further ``make_policy`` options.
    """

    def __init__(
        self,
        policy: str | StoppingPolicy = "qhpo",
        *,
        max_epochs: int | None = None,
        metric: str | None = None,
        mode: str | None = None,
        epoch_attr: str = "training_iteration",
        predictor: Any = "svr",
        sampler: Any = None,
        random_state: int | None = None,
        background: bool = True,
        explain: bool = False,
        budget: SearchBudget | None = None,
        **policy_options: Any,
    ):
        super().__init__()
        if isinstance(policy, StoppingPolicy):
            if max_epochs is not None and int(max_epochs) != policy.max_epochs:
                raise ValueError(f"max_epochs={max_epochs} disagrees with the policy's max_epochs={policy.max_epochs}")
            if mode is not None and mode != policy.mode:
                raise ValueError(f"mode={mode!r} disagrees with the policy's mode={policy.mode!r}")
            max_epochs, mode = policy.max_epochs, policy.mode
        elif not isinstance(policy, str):
            raise ValueError(f"policy must be a policy name or a StoppingPolicy, got {policy!r}")
        if max_epochs is None:
            raise ValueError("max_epochs must be given (a positive number of epochs) with a policy name")
        max_epochs = check_int("max_epochs", max_epochs, least=1)
        if mode not in (None, "max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.policy = policy
        self.max_epochs = int(max_epochs)
        self._metric = metric
        self.mode = mode
        self.epoch_attr = epoch_attr
        self.explain = bool(explain)
        if budget is not None and not isinstance(budget, SearchBudget):
            raise ValueError(f"budget must be a SearchBudget or None, got {budget!r}")
        self.budget = budget
        self.policy_options = dict(
            predictor=predictor,
            sampler=sampler,
            random_state=random_state,
            background=background,
            **policy_options,
        )
        self._policy: StoppingPolicy | None = policy if isinstance(policy, StoppingPolicy) else None
        self._records: dict[str, _TrialRecord] = {}
        self.decisions_: list[tuple[str, int, str]] = []
        self._to_resume: list[str] = []  # promoted trials that Ray Tune has not restarted yet
        self._free_workers = 0  # workers freed since the policy was last asked to promote
        self._most_running = 1  # the most trials seen running at once
        self.decide_seconds_: list[float] = []
        self._warnings = TopicWarnings()
        self._driver: PolicyDriver | None = None

    # -- the policy -------------------------------------------------------------------

    @property
    def stopping_policy(self) -> StoppingPolicy:
        """The policy deciding for this scheduler (built on first use from its name)."""
        if self._policy is None and isinstance(self.policy, StoppingPolicy):
            self._policy = self.policy
        if self._policy is None:
            from qhpo.policies import POLICY_NAMES, make_policy

            if self.policy not in POLICY_NAMES:
                raise QhpoError(
                    f"this scheduler was saved around a {self.policy} object that cannot be pickled, so it "
                    "cannot be restored; build the PredictiveScheduler from a policy name to resume runs."
                )

            self._policy = make_policy(
                self.policy, max_epochs=self.max_epochs, mode=self.mode or "max", **self.policy_options
            )
        return self._policy

    @property
    def driver(self) -> PolicyDriver:
        """The :class:`qhpo.policies.PolicyDriver` that asks :attr:`stopping_policy` (made on first use)."""
        if self._driver is None:
            self._driver = PolicyDriver(self.stopping_policy, warnings=self._warnings)
        return self._driver

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        if (self._metric and metric and metric != self._metric) or (self.mode and mode and mode != self.mode):
            return False
        self._metric = self._metric or metric or DEFAULT_METRIC
        self.mode = self.mode or mode or "max"
        return True

    # -- Ray Tune hooks ---------------------------------------------------------------

    def on_trial_add(self, tune_controller, trial: Trial):
        record = self._records.setdefault(trial.trial_id, _TrialRecord())
        record.params = plain_params(trial.config)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        record = self._records.setdefault(trial.trial_id, _TrialRecord(params=plain_params(trial.config)))
        if self._metric not in result:
            return TrialScheduler.CONTINUE
        epoch = int(result.get(self.epoch_attr, len(record.curve) + 1))
        value = float(result[self._metric])
        del record.curve[epoch - 1 :]
        # NaN marks epochs that never reported (a gap cannot happen with qhpo's trainables).
        record.curve.extend([math.nan] * (epoch - 1 - len(record.curve)) + [value])
        record.status = TrialStatus.RUNNING
        if self.budget is not None:
            self.budget.epoch_reported(result.get("time_this_iter_s"))
        if result.get(DIVERGED_KEY) or not math.isfinite(value):
            record.status = TrialStatus.FAILED
            self._free_workers += 1
            return TrialScheduler.STOP
        if epoch >= self.max_epochs:
            record.status = TrialStatus.COMPLETE
            self._free_workers += 1
            return TrialScheduler.STOP
        if self.budget is not None and self.budget.left() <= 0:
            # the budget is spent: cut after this epoch, as the Optuna backend does
            record.status = TrialStatus.STOPPED
            record.budget_cut = epoch
            self.decisions_.append((trial.trial_id, epoch, "budget"))
            self._free_workers += 1
            return TrialScheduler.STOP
        if not self.driver.epochs.decides_at(epoch):
            return TrialScheduler.CONTINUE
        return self._judge(trial.trial_id, record, epoch)

    def _judge(self, trial_id: str, record: _TrialRecord, epoch: int) -> str:
        """The policy's decision on the trial after ``epoch``, kept in its record, as Ray Tune's value."""
        views = self.trial_views()
        key = self._key(trial_id)
        view = next(v for v in views if v.key == key)
        started = time.perf_counter()
        ruling = self.driver.judge(view, views)
        self.decide_seconds_.append(time.perf_counter() - started)
        if ruling is None:  # the policy failed: warned once, and a policy error never ends the experiment
            return TrialScheduler.CONTINUE
        unranked = ruling.unranked_after(record.unranked)
        if unranked is not None:
            record.unranked = sorted(unranked)
        if self.explain and ruling.record is not None:
            record.records.append(ruling.record)
        decision = ruling.decision
        record.status = _STATUS_AFTER.get(decision, TrialStatus.RUNNING)
        self.decisions_.append((trial_id, epoch, decision.value))
        if decision != Decision.CONTINUE:
            self._free_workers += 1
        return _RAY_DECISION[decision]

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict | None):
        record = self._records.get(trial.trial_id)
        if record is None or record.status != TrialStatus.RUNNING:
            return
        self._free_workers += 1
        if result and result.get(DIVERGED_KEY):
            record.status = TrialStatus.FAILED
        elif len(record.curve) >= self.max_epochs:
            record.status = TrialStatus.COMPLETE
        else:  # ended early by something other than this scheduler (a stop condition)
            record.status = TrialStatus.STOPPED

    def on_trial_error(self, tune_controller, trial: Trial):
        record = self._records.get(trial.trial_id)
        if record is not None:
            if record.status == TrialStatus.RUNNING:
                self._free_workers += 1
            record.status = TrialStatus.FAILED

    def on_trial_remove(self, tune_controller, trial: Trial):
        record = self._records.get(trial.trial_id)
        if record is not None and record.status in (TrialStatus.RUNNING, TrialStatus.PAUSED):
            record.status = TrialStatus.STOPPED if record.curve else TrialStatus.FAILED

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        trials = tune_controller.get_trials()
        limiter = getattr(tune_controller, "search_alg", None)
        if isinstance(limiter, RunningTrialLimiter):
            limiter.scheduler = self  # a restored experiment's limiter follows this scheduler
        busy = sum(t.status in (Trial.RUNNING, Trial.PENDING) for t in trials)
        self._most_running = max(self._most_running, sum(t.status == Trial.RUNNING for t in trials))
        resumed = self._next_promoted(trials)
        if resumed is not None:
            return resumed
        paused = {key for key, r in self._records.items() if r.status == TrialStatus.PAUSED}
        over = bool(paused) and not self._to_resume and self._search_over(tune_controller, trials)
        if paused and self._promotes_on_free() and (self._free_workers > 0 or over) and self._budget_left():
            # Freed workers go to paused trials the policy resumes before any new configuration.
            limit = max(self._free_workers, self._most_running - busy, 1)
            self._free_workers = 0
            if self.promote(limit, more_trials=self._more_trials(tune_controller, trials)):
                return self._next_promoted(trials)
        self._free_workers = 0
        for trial in trials:
            if trial.status == Trial.PENDING:
                return trial
        if over:
            # Nothing will report again and the policy resumed none: the paused trials end as stopped.
            for trial in trials:
                if trial.status == Trial.PAUSED and trial.trial_id in paused:
                    self._records[trial.trial_id].status = TrialStatus.STOPPED
                    tune_controller.stop_trial(trial)
        return None

    def promote(self, limit: int, more_trials: bool = False) -> list[str]:
        """Ask the policy which paused trials resume now (at most ``limit``); their trial ids.
        ``more_trials``: a new configuration starts when none resumes.

        Under a budget the policy is told the epochs left (``qhpo`` then finishes its best
        paused trial at the end; the trial's record keeps the mark, and its view shows it).
        Each promoted trial's view becomes RUNNING at once and Ray Tune restarts it from its
        checkpoint the next time it asks which trial to run. With ``explain=True`` the
        resumption's record joins the trial's decision records.
        """
        by_key = {self._key(trial_id): trial_id for trial_id in self._records}
        promoted: list[str] = []
        told = dict(more_trials=more_trials, budget_left=self._epochs_left())
        for resumption in self.driver.promote(self.trial_views(), int(limit), **told):
            trial_id = by_key[resumption.key]
            record = self._records[trial_id]
            record.status = TrialStatus.RUNNING
            record.finishing = record.finishing or resumption.finishing
            if self.explain:
                record.records.append(resumption.record(self.driver.label))
            self.decisions_.append((trial_id, int(resumption.epoch), "resume"))
            self._to_resume.append(trial_id)
            promoted.append(trial_id)
        return promoted

    def _next_promoted(self, trials) -> Trial | None:
        """The first promoted trial that Ray Tune holds paused (one still pausing waits)."""
        by_id = {t.trial_id: t for t in trials}
        for trial_id in list(self._to_resume):
            trial = by_id.get(trial_id)
            if trial is None or trial.status in (Trial.TERMINATED, Trial.ERROR):
                self._to_resume.remove(trial_id)
            elif trial.status == Trial.PAUSED:
                self._to_resume.remove(trial_id)
                return trial
        return None

    def _epochs_left(self) -> int | None:
        """What is left of the budget in epochs, as the policy reads it (None without a budget)."""
        return None if self.budget is None else self.budget.epochs_left()

    def _budget_left(self) -> bool:
        """No budget, or some of it is left (a paused trial may resume)."""
        return self.budget is None or self.budget.left() > 0

    def room_for_new(self) -> bool:
        """Whether a new configuration may start: no budget, or what is left holds its first
        rung once the running trials have reached theirs."""
        if self.budget is None:
            return True
        running = [len(r.curve) for r in self._records.values() if r.status == TrialStatus.RUNNING]
        return self.budget.room_for_new(running)

    def budget_cut(self, trial_id: str) -> int | None:
        """The epoch after which the budget stopped trial ``trial_id``, or None."""
        record = self._records.get(trial_id)
        return None if record is None else record.budget_cut

    def paused_trial_ids(self) -> set[str]:
        """The ids of the trials paused now (none promoted to resume)."""
        return {trial_id for trial_id, record in self._records.items() if record.status == TrialStatus.PAUSED}

    def _promotes_on_free(self) -> bool:
        """Whether a freed worker makes the scheduler ask ``policy.promote`` itself."""
        return True

    def _more_trials(self, tune_controller, trials) -> bool:
        """A new configuration starts when no paused trial resumes: one waits to start, or the
        search algorithm has more to create."""
        search = getattr(tune_controller, "search_alg", None)
        return any(t.status == Trial.PENDING for t in trials) or (search is not None and not search.is_finished())

    def _search_over(self, tune_controller, trials) -> bool:
        """No trial runs or waits to start, and the search algorithm has created all its trials."""
        return not self._more_trials(tune_controller, trials) and not any(t.status == Trial.RUNNING for t in trials)

    def debug_string(self) -> str:
        counts: dict[str, int] = {}
        for record in self._records.values():
            counts[record.status.value] = counts.get(record.status.value, 0) + 1
        policy = self.policy if isinstance(self.policy, str) else type(self.policy).__name__
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials yet"
        return f"PredictiveScheduler(policy={policy}): {summary}."


class SchedulerStateCallback(Callback):
    """Carries a :class:`PredictiveScheduler`'s state through Ray Tune's experiment checkpoints.

    Ray Tune saves ``get_state()`` of every callback with each experiment checkpoint and
    calls ``set_state`` on ``Tuner.restore``; the scheduler and this callback are pickled
    together into the experiment folder, so the restored callback feeds the restored
    scheduler.
    """

    def __init__(self, scheduler: PredictiveScheduler):
        if not isinstance(scheduler, PredictiveScheduler):
            raise ValueError(f"scheduler must be a PredictiveScheduler, got {scheduler!r}")
        self.scheduler = scheduler

    def get_state(self) -> dict | None:
        return self.scheduler.get_state()

    def set_state(self, state: dict):
        self.scheduler.set_state(state)
