"""The baseline that never stops a trial."""

from __future__ import annotations

from collections.abc import Sequence

from qhpo.policies._base import Decision, StoppingPolicy, TrialView, Verdict


class NoStopping(StoppingPolicy):
    """Every trial trains for ``max_epochs`` epochs: the cost and regret reference.

    Example:
        >>> from qhpo.policies import TrialView
        >>> NoStopping(max_epochs=10).decide(TrialView(0, [0.1, 0.2]), []).decision
        <Decision.CONTINUE: 'continue'>
    """

    name = "none"

    def decide(self, trial: TrialView, trials: Sequence[TrialView]) -> Verdict:
        return Verdict(Decision.CONTINUE, trial.epochs, "this policy never stops a trial")

    def decision_epochs(self) -> Sequence[int]:
        return ()
