"""Adapters that let the replay simulator drive a qhpo policy or an Optuna pruner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qhpo.policies import Decision, PolicyDriver, Resumption, StoppingPolicy, TrialStatus, TrialView


class PolicyAgent:
    """Feeds replayed epochs to a :class:`qhpo.policies.StoppingPolicy`.

    The policy is asked, through a :class:`qhpo.policies.PolicyDriver`, only at its
    :meth:`~qhpo.policies.StoppingPolicy.decision_epochs` (every epoch when it returns None);
    it sees every trial started so far, each curve cut at the epochs that trial has trained.
    A PAUSE from a resuming policy pauses the trial; :meth:`promote` asks the policy's
    :meth:`~qhpo.policies.StoppingPolicy.promote` which paused trials resume (a PAUSE from a
    policy that does not resume counts as STOP). A benchmark's numbers must not come from a
    failing policy, so its errors are raised, not warned.

    Attributes:
        stop_epoch: Epoch at which each stopped or paused trial last ended.
        resumptions: Every :class:`qhpo.policies.Resumption` the policy made, in order.
    """

    def __init__(self, policy: StoppingPolicy, curves: np.ndarray, params: Sequence[Mapping[str, Any]]):
        self.policy = policy
        self.driver = PolicyDriver(policy, on_error="raise")
        self.curves = np.asarray(curves, dtype=float)
        self.params = list(params)
        self.epochs = np.zeros(len(self.curves), dtype=int)
        self.status: dict[int, TrialStatus] = {}
        self.stop_epoch: dict[int, int] = {}
        self.resumptions: list[Resumption] = []
        self.unranked: dict[int, frozenset[int]] = {}  # decision epochs a trial went on unranked
        self.finishing: set[int] = set()  # trials the policy resumed to finish (Resumption.finishing)

    def _view(self, i: int) -> TrialView:
        unranked = self.unranked.get(i, frozenset())
        curve = self.curves[i, : self.epochs[i]]
        return TrialView.of(i, curve, self.params[i], self.status[i], unranked, i in self.finishing)

    def _views(self) -> tuple[list[int], list[TrialView]]:
        keys = list(self.status)
        return keys, [self._view(i) for i in keys]

    def start(self, index: int) -> None:
        self.status[index] = TrialStatus.RUNNING

    def report(self, index: int, epoch: int, value: float) -> Decision:
        self.epochs[index] = epoch
        if epoch >= self.curves.shape[1] or not self.driver.epochs.decides_at(epoch):
            return Decision.CONTINUE
        keys, views = self._views()
        ruling = self.driver.judge(views[keys.index(index)], views)
        unranked = ruling.unranked_after(self.unranked.get(index, ()))
        if unranked is not None:
            self.unranked[index] = unranked
        return ruling.decision

    def finish(self, index: int, status: TrialStatus) -> None:
        self.status[index] = status
        if status in (TrialStatus.STOPPED, TrialStatus.PAUSED):
            self.stop_epoch[index] = int(self.epochs[index])

    def promote(self, limit: int, more_trials: bool = False, budget_left: int | None = None) -> list[int]:
        if TrialStatus.PAUSED not in self.status.values():
            return []
        _, views = self._views()
        resumptions = self.driver.promote(views, limit, more_trials=more_trials, budget_left=budget_left)
        self.resumptions.extend(resumptions)
        self.finishing.update(int(r.key) for r in resumptions if r.finishing)
        return [int(r.key) for r in resumptions]

    def resume(self, index: int) -> None:
        self.status[index] = TrialStatus.RUNNING


class OptunaPrunerAgent:
    """Feeds replayed epochs to an Optuna pruner through a real in-memory Optuna study.

    Each trial is ``study.ask()``-ed when it starts, reports ``trial.report(value, epoch)``
    and asks ``trial.should_prune()`` after every epoch, exactly as an objective function
    would, and is told COMPLETE with its final value, PRUNED, or FAIL when it diverged (as
    Optuna marks a trial whose objective returns NaN; a failed trial is no pruner's rival).
    """

    def __init__(self, pruner, mode: str, epochs: int, seed: int | None = None):
        import optuna

        self._optuna = optuna
        self.study = optuna.create_study(
            study_name=f"qhpo-replay-{seed}",  # HyperbandPruner hashes the name into its brackets
            direction="maximize" if mode == "max" else "minimize",
            pruner=pruner,
            sampler=optuna.samplers.RandomSampler(seed=seed),
        )
        self.epochs = int(epochs)
        self.trials: dict[int, Any] = {}
        self.last_value: dict[int, float] = {}

    def start(self, index: int) -> None:
        self.trials[index] = self.study.ask()

    def report(self, index: int, epoch: int, value: float) -> bool:
        trial = self.trials[index]
        trial.report(value, epoch)
        self.last_value[index] = value
        # the last epoch is never pruned: the trial has already paid for all of it
        return epoch >= self.epochs or not trial.should_prune()

    def promote(self, limit: int, more_trials: bool = False) -> list[int]:
        return []  # an Optuna pruner never pauses a trial

    def resume(self, index: int) -> None:
        raise ValueError("an Optuna pruner never pauses a trial, so none resumes")

    def finish(self, index: int, status: TrialStatus) -> None:
        state = self._optuna.trial.TrialState
        if status == TrialStatus.COMPLETE:
            self.study.tell(self.trials[index], self.last_value[index], state=state.COMPLETE)
        elif status == TrialStatus.FAILED:
            self.study.tell(self.trials[index], state=state.FAIL)
        else:
            self.study.tell(self.trials[index], state=state.PRUNED)
