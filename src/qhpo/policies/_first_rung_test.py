"""The first-rung test of the default policy: does the first rung rank the trials as the second does?"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from qhpo.policies._base import TrialStatus, TrialView
from qhpo.policies._predictive import finite_prefix
from qhpo.policies._rungs import anchors_at


class FirstRungTest:
    """The first ``size`` trials (in the order of the views) pass the first rung unjudged and
    test it: once each has reached the second rung or ended, the Spearman correlation
    between their anchors at the two rungs decides whether the first rung stays (``rho >=
    0.5``) or is switched off for every later trial.

    The outcome is a function of the testers' curves up to the second rung, which never
    change once reached; it is kept once known.

    Args:
        size: Trials that test the first rung.
        rungs: The first two rungs ``(r0, r1)``.
        anchor_window: Epochs averaged into an anchor.
    """

    def __init__(self, size: int, rungs: tuple[int, int], anchor_window: int):
        self.size, self.rungs, self.anchor_window = size, rungs, anchor_window
        self.correlation: float | None = None  # once the test has ended
        self._on: bool | None = None
        self._testers: frozenset = frozenset()  # their keys, fixed when the test ends

    def is_on(self, trials: Sequence[TrialView]) -> bool | None:
        """True or False once the test has ended, None while a tester has yet to reach the second rung."""
        if self._on is not None:
            return self._on
        r1 = self.rungs[1]
        testers = trials[: self.size]
        if len(testers) < self.size:
            return None
        reached = []
        for o in testers:
            if o.epochs >= r1 and finite_prefix(o, r1):
                reached.append(o)
            elif o.status in (TrialStatus.RUNNING, TrialStatus.PAUSED) and finite_prefix(o, o.epochs):
                return None  # still on its way to the second rung
        self._testers = frozenset(o.key for o in testers)
        self.correlation = self._spearman(reached) if len(reached) >= 3 else None
        self._on = self.correlation is None or self.correlation >= 0.5
        return self._on

    def _spearman(self, reached: Sequence[TrialView]) -> float:
        from scipy.stats import spearmanr

        a, b = (anchors_at(r, reached, self.anchor_window) for r in self.rungs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant side: NaN, taken as 0 below
            rho = float(spearmanr(a, b).statistic)
        return rho if np.isfinite(rho) else 0.0  # a constant side says nothing about the ranking

    def passed_unjudged(self, view: TrialView, trials: Sequence[TrialView], index: int | None = None) -> bool:
        """Whether ``view`` passed the first rung without a judgement (a tester, or every trial
        once the first rung is off); ``index``: its position in ``trials``, when known."""
        on = self.is_on(trials)
        if on is False:
            return True
        if on is True:
            return view.key in self._testers
        if index is None:
            index = next((i for i, o in enumerate(trials) if o.key == view.key), len(trials))
        return index < self.size
