"""What every adapter does around a stopping policy, done once.

An adapter (the replay's :class:`qhpo.replay.PolicyAgent`, :class:`qhpo.optuna.PredictivePruner`,
:class:`qhpo.ray.PredictiveScheduler`) feeds a :class:`~qhpo.policies.StoppingPolicy` from its
framework's bookkeeping and acts on the answer. Around the call the work is the same in every
framework, and :class:`PolicyDriver` does it:

- **when to ask**: only at the policy's decision epochs (:class:`DecisionEpochs`, every epoch
  when the policy names none);
- **what the answer leaves behind**: a :class:`Ruling` with the verdict, the trial's
  unranked decision epochs when this decision added one, and the record to keep when the
  decision read a prediction or ends the trial's training;
- **what a failing policy does**: one ``RuntimeWarning`` per topic and the trial continues
  (a paused trial stays paused), or, for a benchmark, the error itself;
- **which paused trials resume**: the policy's resumptions, at most ``limit``, each naming a
  trial that is paused.

What stays with the adapter is its framework: turning its trials into views (with
:meth:`qhpo.policies.TrialView.of`), storing the unranked epochs and the records where its
other processes and its checkpoints find them, and mapping the decision to its own values.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qhpo._checks import accepts_keyword
from qhpo.policies._base import Decision, Resumption, StoppingPolicy, TrialStatus, TrialView, Verdict

_ERROR_POLICIES = ("warn", "raise")


class TopicWarnings:
    """Issues each topic's ``RuntimeWarning`` once: a problem that recurs at every trial is told once.

    Example:
        >>> import warnings
        >>> told = TopicWarnings()
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     for _ in range(3):
        ...         told.warn("order", "steps arrive out of order")
        >>> len(caught), told.told("order")
        (1, True)
    """

    def __init__(self) -> None:
        self._told: set[str] = set()

    def warn(self, topic: str, message: str) -> None:
        """Warn ``message`` unless a warning on ``topic`` was already issued."""
        if topic not in self._told:
            self._told.add(topic)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def told(self, topic: str) -> bool:
        """Whether a warning on ``topic`` was issued."""
        return topic in self._told


@dataclass(frozen=True)
class DecisionEpochs:
    """The epochs after which a policy may decide (``epochs`` None: after every epoch).

    Example:
        >>> rungs = DecisionEpochs(frozenset({10, 20, 40}))
        >>> rungs.decides_at(20), rungs.decides_at(21), rungs.reached(9, 25), rungs.first(below=200)
        (True, False, [10, 20], 10)
        >>> DecisionEpochs().decides_at(7), DecisionEpochs().reached(5, 7)
        (True, [7])
    """

    epochs: frozenset[int] | None = None
    _ordered: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.epochs is not None:
            object.__setattr__(self, "epochs", frozenset(int(e) for e in self.epochs))
            object.__setattr__(self, "_ordered", tuple(sorted(self.epochs)))

    @classmethod
    def of(cls, policy: StoppingPolicy) -> DecisionEpochs:
        """The decision epochs of ``policy`` (:meth:`~qhpo.policies.StoppingPolicy.decision_epochs`)."""
        epochs = policy.decision_epochs()
        return cls(None if epochs is None else frozenset(epochs))

    def decides_at(self, epoch: int) -> bool:
        """Whether the policy may decide after ``epoch`` epochs."""
        return self.epochs is None or epoch in self.epochs

    def reached(self, after: int, last: int) -> list[int]:
        """The decision epochs ``e`` with ``after < e <= last``, in order: those a trial reached
        between a report after ``after`` epochs and one after ``last`` (with steps left out
        between two reports, several). A policy that may decide at any epoch decides at ``last``."""
        if self.epochs is None:
            return [last]
        return [e for e in self._ordered if after < e <= last]

    def first(self, below: int) -> int:
        """The first decision epoch before ``below`` (1 when any epoch decides, ``below`` when none does)."""
        if self.epochs is None:
            return 1
        return next((e for e in self._ordered if 1 <= e < below), int(below))


@dataclass(frozen=True)
class Ruling:
    """A verdict and what the adapter keeps of it.

    Attributes:
        verdict: The policy's :class:`~qhpo.policies.Verdict` (a PAUSE from a policy that
            does not resume already turned into STOP).
        unranked_at: The decision epoch at which the trial goes on unranked
            (:attr:`Verdict.ranked` False), else None; :meth:`unranked_after` adds it to
            the epochs the adapter holds for the trial.
        record: :meth:`Verdict.record` when the adapter keeps it (the decision read a
            prediction or ends the trial's training), else None.
    """

    verdict: Verdict
    unranked_at: int | None = None
    record: dict[str, Any] | None = None

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    @property
    def ends_training(self) -> bool:
        """Whether the trial stops or pauses here."""
        return self.verdict.decision != Decision.CONTINUE

    def unranked_after(self, held: Iterable[int]) -> frozenset[int] | None:
        """The trial's unranked epochs once this decision is added to ``held`` (those the
        adapter stores for it); None when it adds none, so there is nothing to store."""
        held = frozenset(int(e) for e in held)
        if self.unranked_at is None or self.unranked_at in held:
            return None
        return held | {self.unranked_at}


class PolicyDriver:
    """Asks a stopping policy on an adapter's behalf, with one rule for errors and bookkeeping.

    Example:
        >>> from qhpo.policies import OneEpoch, TrialView
        >>> driver = PolicyDriver(OneEpoch(max_epochs=10, share=0.5))
        >>> driver.epochs.decides_at(1), driver.epochs.decides_at(2)
        (True, False)
        >>> views = [TrialView(0, [0.5]), TrialView(1, [0.3])]
        >>> driver.judge(views[1], views).decision.value
        'stop'

    Args:
        policy: The policy to ask.
        label: The name the records give the policy (default: :attr:`StoppingPolicy.label`).
        on_error: ``"warn"``: an exception of the policy is one ``RuntimeWarning`` per topic
            (deciding, promoting, a resumption of a trial that is not paused) and the trial
            continues, a paused trial stays paused; for adapters that must never end a
            user's search. ``"raise"``: the exception goes to the caller; for benchmarks,
            whose numbers a failing policy must not produce.
        warnings: The :class:`TopicWarnings` to warn through (an adapter serving several
            policies shares one, so that a topic is told once in all); a new one by default.
    """

    def __init__(
        self,
        policy: StoppingPolicy,
        *,
        label: str | None = None,
        on_error: str = "warn",
        warnings: TopicWarnings | None = None,
    ) -> None:
        if not isinstance(policy, StoppingPolicy):
            raise ValueError(f"policy must be a qhpo.policies.StoppingPolicy, got {policy!r}")
        if on_error not in _ERROR_POLICIES:
            raise ValueError(f"on_error must be 'warn' or 'raise', got {on_error!r}")
        self.policy = policy
        self.label = policy.label if label is None else str(label)
        self.on_error = on_error
        self.warnings = TopicWarnings() if warnings is None else warnings
        #: The policy's decision epochs, read once.
        self.epochs = DecisionEpochs.of(policy)
        self._tells_more = accepts_keyword(policy.promote, "more_trials")  # a promote written before it: not told
        self._tells_budget = accepts_keyword(policy.promote, "budget_left")

    def judge(self, view: TrialView, views: Sequence[TrialView]) -> Ruling | None:
        """The policy's ruling on ``view`` (one of ``views``) after its latest epoch.

        None when the policy failed (``on_error="warn"``): the warning is issued once and
        the trial continues.
        """
        try:
            verdict = self.policy.verdict(view, views)
        except Exception as error:
            self._failed("decide", error, "the trial continues")
            return None
        unranked_at = None if verdict.ranked else view.epochs
        record = verdict.record(self.label) if verdict.predictive or verdict.decision != Decision.CONTINUE else None
        return Ruling(verdict, unranked_at, record)

    def promote(
        self, views: Sequence[TrialView], limit: int, *, more_trials: bool = False, budget_left: int | None = None
    ) -> list[Resumption]:
        """The paused trials among ``views`` that the policy resumes now, at most ``limit``, best first.

        ``more_trials``: whether the adapter starts a new configuration when none resumes;
        ``budget_left``: epochs left of the search's budget, None without one (both passed
        to :meth:`~qhpo.policies.StoppingPolicy.promote`).

        Asks :meth:`~qhpo.policies.StoppingPolicy.promote` only when the policy resumes, a
        worker is free and a trial is paused. A resumption that names no paused trial (or
        one named before) is left out, warned once, or raised with ``on_error="raise"``.
        """
        if not self.policy.resumes or limit < 1:
            return []
        paused = {v.key for v in views if v.status == TrialStatus.PAUSED}
        if not paused:
            return []
        try:
            told = {"more_trials": bool(more_trials)} if self._tells_more else {}
            if self._tells_budget and budget_left is not None:
                told["budget_left"] = int(budget_left)
            resumptions = list(self.policy.promote(views, limit=int(limit), **told))[: int(limit)]
        except Exception as error:
            self._failed("promote", error, "paused trials stay paused")
            return []
        chosen: list[Resumption] = []
        for resumption in resumptions:
            if not isinstance(resumption, Resumption) or resumption.key not in paused:
                problem = ValueError(
                    f"{type(self.policy).__name__}.promote named {resumption!r}, which is not a paused trial"
                )
                self._failed("resumption", problem, "it is left out")
                continue
            paused.discard(resumption.key)
            chosen.append(resumption)
        return chosen

    def _failed(self, topic: str, error: Exception, consequence: str) -> None:
        if self.on_error == "raise":
            raise error
        self.warnings.warn(topic, f"qhpo policy {self.label!r} failed ({type(error).__name__}: {error}); {consequence}")
