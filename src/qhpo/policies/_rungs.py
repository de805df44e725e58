"""Rungs of asynchronous successive halving: where they sit, who is judged together at one,
and where each trial there stands."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from qhpo.policies._base import TrialStatus, TrialView
from qhpo.policies._predictive import finite_prefix


def rung_epochs(max_epochs: int, min_resource: int, reduction_factor: float) -> tuple[int, ...]:
    """Rungs ``r_k = round(min_resource * reduction_factor**k) < max_epochs``, k = 0, 1, ..."""
    rungs: list[int] = []
    k = 0
    while True:
        r = int(round(min_resource * reduction_factor**k))
        if r >= max_epochs:
            return tuple(rungs)
        if not rungs or r > rungs[-1]:
            rungs.append(r)
        k += 1


@dataclass(frozen=True)
class RungGroup:
    """The trials judged together at rung ``epoch``: the best ``max(1, floor(m / share))`` of
    the ``m`` peers are kept.

    Attributes:
        epoch: The rung.
        peers: The trials judged together (the one asking first, in ``decide``).
        share: ``eta`` (or ``eta**2`` for trials that skipped a rung).
        name: Which group of the rung: ``"all"``, or ``"unjudged"`` for the trials that
            passed the first rung without a judgement.
        note: Why ``share`` is not the policy's ``eta`` (empty where it is).
    """

    epoch: int
    peers: tuple[TrialView, ...]
    share: float
    name: str = "all"
    note: str = ""

    def places(self) -> int:
        """``n = max(1, floor(m / share))``: how many of the ``m`` peers go on."""
        return max(1, math.floor(len(self.peers) / self.share))

    def gone_on(self) -> int:
        """Peers that took a place: trained past the rung, or running or complete at it, less
        those that went on from it unranked (:attr:`TrialView.unranked`)."""
        t = self.epoch
        return sum(
            1
            for o in self.peers
            if t not in o.unranked and (o.epochs > t or o.status in (TrialStatus.RUNNING, TrialStatus.COMPLETE))
        )

    def free_places(self) -> int:
        """Places not yet taken (zero or less: none)."""
        return self.places() - self.gone_on()


class Judgement(NamedTuple):
    """Whether one trial at a rung is kept, and on what.

    Attributes:
        keep: It ranks within the rung's places on its observed or its predicted value.
        reason: Why, in a few words.
        predicted: The predicted value it was judged on, in metric units (None: observed).
        std: The prediction's standard deviation (None: observed).
        threshold: The cut-off it was compared with, in metric units.
        value: The value it was kept on ("higher is better" units), for ordering.
    """

    keep: bool
    reason: str
    predicted: float | None
    std: float | None
    threshold: float
    value: float


class RungStanding:
    """Where the peers of one :class:`RungGroup` stand: their anchors, the cut-off, and the
    predictions when they were made.

    Values are taken as ``v = sign * c`` and floored at the ``floor_quantile`` quantile of
    the peers' first ``t`` values; the anchor is the mean of the last ``anchor_window`` of them.
    """

    def __init__(self, group: RungGroup, *, sign: float, floor_quantile: float, anchor_window: int):
        t = group.epoch
        self.group, self.sign, self.t = group, sign, t
        self.values = sign * np.array([np.asarray(p.curve[:t], dtype=float) for p in group.peers])
        self.floor = float(np.quantile(self.values, floor_quantile))
        self.anchors = np.maximum(self.values, self.floor)[:, max(0, t - anchor_window) :].mean(axis=1)
        self.m = len(group.peers)
        self.keep = group.places()
        self.cut = float(np.sort(self.anchors)[::-1][self.keep - 1])
        self.horizon: int | None = None
        self.prediction: tuple[np.ndarray, np.ndarray] | None = None
        self._scored: tuple[np.ndarray, str, np.ndarray] | None = None  # see rerank()

    def rerank(self, score: np.ndarray, what: str, quantile: np.ndarray) -> None:
        """Deal the anchors out again in the order of ``score`` (higher is better): the best
        score takes the best anchor, and so on, so that the cut-off, the places and the
        predicted rule read as before; each reason then names the anchor measured and
        ``quantile`` (the quantile of ``what`` among the peers)."""
        measured = self.anchors
        dealt = np.empty_like(measured)
        dealt[np.argsort(-np.asarray(score, dtype=float), kind="stable")] = np.sort(measured)[::-1]
        self.anchors = dealt
        self.cut = float(np.sort(dealt)[::-1][self.keep - 1])
        self._scored = (measured, what, np.asarray(quantile, dtype=float))

    def ranks_outside(self, k: int) -> bool:
        """Whether peer ``k`` ranks outside the places on its anchor."""
        return bool(self.anchors[k] < self.cut)

    def judge(self, k: int, *, predicted_rule: bool) -> Judgement:
        """The judgement of peer ``k``: on its anchor, else (``predicted_rule``) on its prediction."""
        judgement = self._judge(k, predicted_rule=predicted_rule)
        if self._scored is None:
            return judgement
        said = f"observed value {self.sign * self.anchors[k]:.4g}"
        return judgement._replace(reason=judgement.reason.replace(said, self.describe(k), 1))

    def describe(self, k: int) -> str:
        """``observed value X`` of peer ``k``, with the value it was ranked as and why when
        :meth:`rerank` dealt the anchors out again."""
        if self._scored is None:
            return f"observed value {self.sign * self.anchors[k]:.4g}"
        measured, what, quantile = self._scored
        return (
            f"observed value {self.sign * measured[k]:.4g} (ranked as {self.sign * self.anchors[k]:.4g} "
            f"by its score with the {what}'s quantile {quantile[k]:.2f})"
        )

    def _judge(self, k: int, *, predicted_rule: bool) -> Judgement:
        sign, anchor = self.sign, float(self.anchors[k])
        ranked = f"the best {self.keep} of {self.m} at rung {self.t}"
        cut = sign * self.cut
        if anchor >= self.cut:
            return Judgement(True, f"observed value {sign * anchor:.4g} ranks within {ranked}", None, None, cut, anchor)
        outside = f"observed value {sign * anchor:.4g} ranks outside {ranked}"
        if not predicted_rule:
            return Judgement(False, f"{outside} (cut-off {cut:.4g})", None, None, cut, anchor)
        if self.prediction is None:
            return Judgement(
                False, f"{outside} (cut-off {cut:.4g}); no predictor is fitted yet", None, None, cut, anchor
            )
        mu, std = self.prediction
        mu_cut = float(np.sort(mu)[::-1][self.keep - 1])
        keep = bool(mu[k] >= mu_cut)
        reason = (
            f"{outside}; predicted value at epoch {self.horizon} {sign * mu[k]:.4g} ranks "
            f"{'within' if keep else 'outside'} {ranked} (cut-off {sign * mu_cut:.4g})"
        )
        return Judgement(keep, reason, sign * float(mu[k]), float(std[k]), sign * mu_cut, float(mu[k]))


def anchors_at(t: int, trials: Sequence[TrialView], anchor_window: int) -> np.ndarray:
    """Each trial's mean of its values at epochs ``t - anchor_window + 1 .. t`` (unfloored, in
    metric units; the trials must have reached ``t``)."""
    return np.array([np.mean(np.asarray(o.curve[max(0, t - anchor_window) : t], dtype=float)) for o in trials])


def peers_at(t: int, trials: Sequence[TrialView]) -> list[TrialView]:
    """Every trial that reached epoch ``t`` with finite values (failed ones excluded)."""
    return [o for o in trials if o.status != TrialStatus.FAILED and o.epochs >= t and finite_prefix(o, t)]


def paused_by_rung(trials: Sequence[TrialView], max_epochs: int) -> dict[int, list[int]]:
    """Indices in ``trials`` of the paused trials with finite curves, by the epoch they paused at."""
    paused: dict[int, list[int]] = {}
    for i, view in enumerate(trials):
        if view.status == TrialStatus.PAUSED and 0 < view.epochs < max_epochs and finite_prefix(view, view.epochs):
            paused.setdefault(view.epochs, []).append(i)
    return paused
