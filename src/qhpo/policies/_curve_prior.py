"""The curve prior at the first rungs of the default policy: the runs ranked by their
observed value combined with the final quantile a prior learned from recorded tables
predicts for them (an option of :class:`qhpo.policies.PredictiveHalving`)."""

from __future__ import annotations

from collections.abc import Callable

from qhpo.policies._rungs import RungGroup, RungStanding


def fitted_prior(prior):
    """``prior`` as a fitted prior: a :class:`qhpo.priors.FittedPrior` as it is; a name, a
    path or a :class:`qhpo.priors.CurvePrior` fitted on every table it holds (a replay
    passes one fitted without the replayed table: :func:`qhpo.priors.prior_for_table`)."""
    from qhpo.priors import CurvePrior, FittedPrior, load_prior

    if isinstance(prior, FittedPrior):
        return prior
    if isinstance(prior, CurvePrior):
        return prior.fit()
    if isinstance(prior, str):
        return load_prior(prior).fit()
    raise ValueError(f"prior must be 'builtin', a prior file, a folder of curve tables or a prior, got {prior!r}")


def rung_ranking(prior, weight: float, max_epochs: int) -> Callable[..., RungStanding]:
    """What builds a rung's standing: :class:`RungStanding` without a prior (``None``),
    else :meth:`PriorRanking.standing` of the fitted ``prior``."""
    if prior is None:
        return RungStanding
    return PriorRanking(fitted_prior(prior), weight, max_epochs).standing


class PriorRanking:
    """Builds the standings of the rungs where the prior acts (up to
    :data:`qhpo.priors.MAX_SHARE` of training) and plain ones elsewhere.

    Args:
        prior: A :class:`qhpo.priors.FittedPrior`.
        weight: ``alpha``, the prior's share of the score.
        max_epochs: ``E``.
    """

    def __init__(self, prior, weight: float, max_epochs: int):
        self.prior, self.weight, self.max_epochs = prior, float(weight), int(max_epochs)

    def standing(self, group: RungGroup, **kwargs) -> RungStanding:
        """The standing of ``group``: ranked by the combined score where the prior acts."""
        if self.prior.share_for(group.epoch, self.max_epochs) is None:
            return RungStanding(group, **kwargs)
        return PriorStanding(group, prior=self.prior, weight=self.weight, max_epochs=self.max_epochs, **kwargs)


class PriorStanding(RungStanding):
    """A rung's standing ranked by ``score = (1 - alpha) * Q(a) + alpha * q_hat``, where
    ``Q(a)`` is the quantile of a peer's anchor among the peers and ``q_hat`` the final
    quantile the prior predicts from its prefix (:meth:`qhpo.priors.FittedPrior.predict`).

    The anchors are re-dealt in score order (the best score takes the best anchor, and so
    on), so the cut-off, the places and the predicted rule read as in :class:`RungStanding`;
    :attr:`observed` keeps the anchors as measured, and each reason names both.
    """

    def __init__(self, group: RungGroup, *, prior, weight: float, max_epochs: int, **kwargs):
        from qhpo.priors import quantiles

        super().__init__(group, **kwargs)
        self.observed = self.anchors
        self.prior_quantile = prior.predict(self.values, max_epochs)
        self.score = (1.0 - weight) * quantiles(self.observed) + weight * self.prior_quantile
        # each reason names the value measured, the one it was ranked as, and q_hat
        self.rerank(self.score, "curve prior's predicted final", self.prior_quantile)
