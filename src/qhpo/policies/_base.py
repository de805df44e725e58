"""The contract every stopping policy fulfils.

A policy is pure decision logic: it sees trials as :class:`TrialView` records (the curve so
far, the hyperparameters, whether the trial is running, complete or stopped) and answers
with a :class:`Verdict`: the :class:`Decision` together with the prediction and the value it
was compared with. It does no I/O and knows nothing of Optuna, Ray or the replay
benchmark; the adapters build the views from their own bookkeeping, act on the decision
and store the verdict as it is, so the record always shows what the decision rested on.

Values are raw metric values; ``mode`` says whether higher (``max``) or lower (``min``) is
better, and ``sign`` turns every value into "higher is better".
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qhpo._checks import check_int


class Decision(str, enum.Enum):
    """What to do with a trial after its latest epoch."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"  # keep the checkpoint; the policy may resume the trial later (see StoppingPolicy.promote)


class TrialStatus(str, enum.Enum):
    RUNNING = "running"
    COMPLETE = "complete"  # trained to max_epochs
    STOPPED = "stopped"  # stopped early by a policy (Optuna: pruned)
    PAUSED = "paused"  # stopped with its checkpoint kept; StoppingPolicy.promote may resume it
    FAILED = "failed"  # diverged or crashed; its curve is not used


_VERB = {Decision.CONTINUE: "continued", Decision.STOP: "stopped", Decision.PAUSE: "paused"}


@dataclass(frozen=True)
class Verdict:
    """A decision together with what it rested on.

    Example:
        >>> verdict = Verdict(Decision.STOP, 10, "predicted final 0.61 below the cut-off 0.65",
        ...                   predicted=0.61, std=0.02, threshold=0.65)
        >>> verdict.record("qhpo")["reason"]
        "stopped by policy 'qhpo' at epoch 10: predicted final 0.61 below the cut-off 0.65"

    Attributes:
        decision: What to do with the trial.
        epoch: Epochs the trial had trained when the policy decided.
        reason: Why, in a few words (the adapters store it with the decision).
        predicted: The predicted final value the decision read, in metric units (None
            when the decision rested on no prediction).
        std: Standard deviation of that prediction (None without one).
        threshold: The value the prediction was compared with, in metric units (a rank
            cut-off, a quantile, the best completed final), or None.
        ranked: False when the trial goes on without having been ranked (a start-up rule
            holds it running): the adapters keep the epoch in the trial's
            :attr:`TrialView.unranked`, so that every process, a resumed run and the replay
            know that it took no place at that decision epoch.
    """

    decision: Decision
    epoch: int
    reason: str = ""
    predicted: float | None = None
    std: float | None = None
    threshold: float | None = None
    ranked: bool = True

    @property
    def predictive(self) -> bool:
        """Whether the decision read a prediction."""
        return self.predicted is not None

    def record(self, policy: str = "") -> dict[str, Any]:
        """The verdict as plain JSON data (non-finite numbers become None)."""
        return _record(self, self.decision.value, f"{_VERB[self.decision]}{_by(policy)} at epoch {self.epoch}")

    @property
    def kept(self) -> bool:
        """Whether the adapter must keep this verdict with the trial: it read a prediction,
        ends the trial's training, or lets the trial go on unranked."""
        return self.predictive or self.decision != Decision.CONTINUE or not self.ranked


def _by(policy: str) -> str:
    return f" by policy {policy!r}" if policy else ""


def _record(made: Verdict | Resumption, decision: str, head: str) -> dict[str, Any]:
    """A verdict's or a resumption's record: ``head``, then its reason, and its numbers."""
    return {
        "epoch": int(made.epoch),
        "decision": decision,
        "predicted_final": _finite_or_none(made.predicted),
        "std": _finite_or_none(made.std),
        "threshold": _finite_or_none(made.threshold),
        "reason": head + (f": {made.reason}" if made.reason else ""),
    }


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Resumption:
    """A paused trial that the policy resumes, and why.

    Example:
        >>> Resumption("7", 10, "predicted value at epoch 20 0.71 ranks within the best 12 of 25",
        ...            predicted=0.71, threshold=0.70).record("qhpo")["reason"]
        "resumed by policy 'qhpo' after epoch 10: predicted value at epoch 20 0.71 ranks within the best 12 of 25"

    Attributes:
        key: The paused trial's key (:attr:`TrialView.key`).
        epoch: Epochs the trial had trained when it was paused; it resumes from there.
        reason: Why, in a few words.
        predicted: The prediction the resumption read, in metric units, or None.
        std: Its standard deviation, or None.
        threshold: The value the prediction was compared with, in metric units, or None.
        finishing: The trial resumes to *finish*: it trains to its last epoch without being
            judged again (the end of a budget, see ``endgame_slack`` of
            :class:`~qhpo.policies.PredictiveHalving`). The adapters keep the mark with the
            trial (:attr:`TrialView.finishing`), so that every process knows it.
    """

    key: Hashable
    epoch: int
    reason: str = ""
    predicted: float | None = None
    std: float | None = None
    threshold: float | None = None
    finishing: bool = False

    def record(self, policy: str = "") -> dict[str, Any]:
        """The resumption as plain JSON data (non-finite numbers become None); a finishing
        resumption's record holds ``"finishing": true``."""
        head = f"resumed{_by(policy)} after epoch {self.epoch}" + (" to finish" if self.finishing else "")
        record = _record(self, "resume", head)
        if self.finishing:
            record["finishing"] = True
        return record


@dataclass(frozen=True)
class TrialView:
    """What a policy knows about one trial.

    Attributes:
        key: The adapter's trial id (Optuna trial number, Ray trial id, table row).
        curve: Metric after epochs ``1..len(curve)``.
        params: Hyperparameters of the trial.
        status: Where the trial stands.
        unranked: Decision epochs at which the trial went on without being ranked
            (:attr:`Verdict.ranked` False), as the adapter recorded them.
        finishing: The policy resumed the trial to finish (:attr:`Resumption.finishing`):
            it trains to its last epoch unjudged.
    """

    key: Hashable
    curve: Sequence[float]
    params: Mapping[str, Any] = field(default_factory=dict)
    status: TrialStatus = TrialStatus.RUNNING
    unranked: frozenset[int] = frozenset()
    finishing: bool = False

    @classmethod
    def of(
        cls,
        key: Hashable,
        curve: Sequence[float],
        params: Mapping[str, Any] | None = None,
        status: TrialStatus = TrialStatus.RUNNING,
        unranked: Iterable[int] = (),
        finishing: bool = False,
    ) -> TrialView:
        """The view an adapter builds from its bookkeeping, with the one rule for failed curves:
        a FAILED trial's curve ends before its first non-finite value (the epoch it diverged
        at counts as trained, but its value is no measurement).

        Example:
            >>> TrialView.of(3, [0.2, 0.4, float("nan")], status=TrialStatus.FAILED).curve
            [0.2, 0.4]
        """
        if status == TrialStatus.FAILED:
            curve = curve[: _finite_length(curve)]
        return cls(key, curve, {} if params is None else params, status, frozenset(unranked), bool(finishing))

    @property
    def epochs(self) -> int:
        return len(self.curve)

    @functools.cached_property
    def finite_epochs(self) -> int:
        """Leading epochs with finite values, counted once per view (adapters reuse views)."""
        return _finite_length(self.curve)


def _finite_length(curve: Sequence[float]) -> int:
    """The number of leading finite values of ``curve``."""
    for count, value in enumerate(curve):
        if not math.isfinite(float(value)):
            return count
    return len(curve)


class StoppingPolicy(ABC):
    """Decides, after each epoch of a trial, whether it continues, and which paused trials resume.

    **Freeze-thaw.** A policy whose :attr:`resumes` is True may answer
    :attr:`Decision.PAUSE`: the adapter ends the trial's training as it would for STOP but
    keeps its checkpoint and shows it to the policy as :attr:`TrialStatus.PAUSED`. Whenever
    a worker falls free (before it starts a new configuration, and when no new
    configuration is left), the adapter calls :meth:`promote`; each :class:`Resumption` it
    returns names a paused trial that then continues from its checkpoint (its view becomes
    RUNNING again, its curve goes on from the epoch it paused at, and its earlier epochs
    are not trained again). A paused trial that is never resumed counts as stopped when the
    search ends. A policy whose :attr:`resumes` is False never answers PAUSE and its
    :meth:`promote` returns nothing.

    Args:
        max_epochs: Epochs of a trial that is never stopped.
        mode: ``"max"`` when higher metric values are better, ``"min"`` otherwise.
    """

    #: Registry name of the policy (``qhpo bench --policies``, ``qhpo run --policy``).
    name: str = ""

    def __init__(self, *, max_epochs: int, mode: str = "max"):
        max_epochs = check_int("max_epochs", max_epochs, least=1)
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.max_epochs = max_epochs
        self.mode = mode

    @property
    def sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    @abstractmethod
    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        """The verdict on ``trial`` after its latest epoch.

        Args:
            trial: The trial that just reported ``trial.curve[-1]``.
            trials: Every trial the adapter knows of (``trial`` among them), in any status.

        Returns:
            The :class:`Decision` with the prediction and threshold it rested on.
        """

    def verdict(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        """:meth:`decide` as the adapters act on it: checked to be a :class:`Verdict`, and a
        PAUSE from a policy that does not resume (:attr:`resumes` False) taken as STOP."""
        verdict = self.decide(trial, trials)
        if not isinstance(verdict, Verdict):
            raise TypeError(f"{type(self).__name__}.decide returned {verdict!r}, not a qhpo.policies.Verdict")
        if verdict.decision == Decision.PAUSE and not self.resumes:
            verdict = dataclasses.replace(verdict, decision=Decision.STOP)  # only a resuming policy brings it back
        return verdict

    @property
    def label(self) -> str:
        """The name records give the policy: its registry name, else its class name."""
        return self.name or type(self).__name__

    def decision_epochs(self) -> Sequence[int] | None:
        """Epochs after which :meth:`decide` may answer other than CONTINUE (None: any); the
        adapters read them once (:class:`qhpo.policies.PolicyDriver`), so they never change."""
        return None

    @property
    def resumes(self) -> bool:
        """Whether the policy pauses trials (answers PAUSE) and may resume them later."""
        return False

    @property
    def reads_budget(self) -> bool:
        """Whether the policy's decisions depend on the search's budget (the ``budget_left``
        that the adapters pass to :meth:`promote`); a replay under a budget then replays each
        budget it reports on of its own, since a smaller budget is another search."""
        return False

    @property
    def prediction_service(self) -> Any:
        """The :class:`qhpo.policies.PredictionService` whose models the decisions read, or
        None for a policy that predicts nothing (an adapter may wait for its fits)."""
        return None

    def promote(
        self, trials: Sequence[TrialView], *, limit: int = 1, more_trials: bool = False, budget_left: int | None = None
    ) -> list[Resumption]:
        """The paused trials to resume now, best first, at most ``limit`` of them.

        Args:
            trials: Every trial the adapter knows of, in any status; candidates are those
                whose status is :attr:`TrialStatus.PAUSED`.
            limit: Free workers: the most resumptions the adapter can start now.
            more_trials: Whether the adapter starts a new configuration when nothing is
                resumed (False, the default: it may not, so nothing paused should wait
                for trials that will not come; see ``quorum`` of
                :class:`~qhpo.policies.PredictiveHalving`).
            budget_left: Epochs left of the search's budget (every epoch any trial trains
                counts), or None without a budget (or when the adapter cannot tell: a
                duration budget before any epoch has been timed).

        Returns:
            Resumptions of paused trials in ``trials`` (none for a policy that does not
            resume, the default).
        """
        return []
