"""The contract every stopping policy fulfils.

A policy is pure decision logic: it sees trials as :class:`TrialView` records (the curve so
far, the hyperparameters, whether the trial is running, complete or stopped) and answers
:class:`Decision` values. It does no I/O and knows nothing of Optuna, Ray or the replay
benchmark; the adapters build the views from their own bookkeeping and act on the answer.

Values are raw metric values; ``mode`` says whether higher (``max``) or lower (``min``) is
better, and ``sign`` turns every value into "higher is better".
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence


class Decision(str, enum.Enum):
    """What to do with a trial after its latest epoch."""

    CONTINUE = "continue"
    STOP = "stop"
    PAUSE = "pause"  # keep the checkpoint; the policy may promote the trial later


class TrialStatus(str, enum.Enum):
    RUNNING = "running"
    COMPLETE = "complete"  # trained to max_epochs
    STOPPED = "stopped"  # stopped early by a policy (Optuna: pruned)
    PAUSED = "paused"  # waiting for a later promotion
    FAILED = "failed"  # diverged or crashed; its curve is not used


@dataclass(frozen=True)
class TrialView:
    """What a policy knows about one trial.

    Attributes:
        key: The adapter's trial id (Optuna trial number, Ray trial id, table row).
        curve: Metric after epochs ``1..len(curve)``.
        params: Hyperparameters of the trial.
        status: Where the trial stands.
    """

    key: Hashable
    curve: Sequence[float]
    params: Mapping[str, Any] = field(default_factory=dict)
    status: TrialStatus = TrialStatus.RUNNING

    @property
    def epochs(self) -> int:
        return len(self.curve)


class StoppingPolicy(ABC):
    """Decides, after each epoch of a trial, whether it continues.

    Args:
        max_epochs: Epochs of a trial that is never stopped.
        mode: ``"max"`` when higher metric values are better, ``"min"`` otherwise.
    """

    #: Registry name of the policy (``qhpo bench --policies``, ``qhpo run --policy``).
    name: str = ""

    def __init__(self, *, max_epochs: int, mode: str = "max"):
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be a positive number of epochs, got {max_epochs}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.max_epochs = int(max_epochs)
        self.mode = mode

    @property
    def sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    @abstractmethod
    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Decision:
        """Decision for ``trial`` after its latest epoch.

        Args:
            trial: The trial that just reported ``trial.curve[-1]``.
            trials: Every trial the adapter knows of (``trial`` among them), in any status.
        """

    def decision_epochs(self) -> Sequence[int] | None:
        """Epochs after which :meth:`decide` may answer other than CONTINUE (None: any)."""
        return None
