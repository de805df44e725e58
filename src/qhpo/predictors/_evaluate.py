"""How well a predictor forecasts final values on a recorded curve table."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, r2_score

from qhpo._checks import check_int
from qhpo._seeds import derived_seed
from qhpo.predictors._final_value import FinalValuePredictor


def decision_epoch(at: float, epochs: int) -> int:
    """The number of epochs ``t = max(1, round(at * epochs))`` observed at fraction ``at``."""
    if not 0 < at <= 1:
        raise ValueError(f"at must be a fraction of the epochs in (0, 1], got {at!r}")
    return max(1, int(round(at * epochs)))


def _split_scores(predictor: FinalValuePredictor, table, params, fit_idx, test_idx) -> dict[str, float]:
    """Fit ``predictor`` on the trials ``fit_idx`` and score its predictions of the others' final values."""
    y = table.final_values
    predictor.fit(table.curves[fit_idx], y[fit_idx], None if params is None else params[fit_idx])
    predicted = predictor.predict(table.curves[test_idx], None if params is None else params[test_idx])
    return {
        "r2": float(r2_score(y[test_idx], predicted)),
        "spearman": float(spearmanr(predicted, y[test_idx])[0]),
        "mae": float(mean_absolute_error(y[test_idx], predicted)),
        "fit_seconds": float(predictor.fit_seconds_),
    }


def evaluate_predictor(
    table,
    *,
    at: float,
    model="svr",
    train: int = 20,
    splits: int = 10,
    seed: int = 0,
    sampler=None,
    num_reads=None,
    differences: bool = False,
    hyperparameters: bool = False,
) -> dict:
    """Train on ``train`` random trials, predict the others' final values from ``t`` epochs.

    Split ``s`` (``s = 0..splits-1``) draws its training trials with
    ``numpy.random.default_rng([seed, s])``, so two models evaluated with the same ``seed``
    see the same splits. Per split: ``R^2 = 1 - sum (y - yhat)^2 / sum (y - mean y)^2``,
    Spearman's rank correlation of ``yhat`` and ``y``, the mean absolute error, and the
    seconds ``fit`` took (the held-out error estimate that ``predict(return_std=True)``
    needs is not part of it). Returns the medians and the per-split values. Trials that
    diverged (NaN final value) are left out.
    """
    t = decision_epoch(at, table.epochs)
    table = table.take(np.flatnonzero(~table.diverged))  # a diverged curve has no final value to predict
    n = table.n_trials
    train = check_int("train", train, least=2, most=n - 2)
    splits = check_int("splits", splits, least=1)
    params = table.hyperparameter_matrix() if hyperparameters else None  # categories one-hot
    per_split = {"r2": [], "spearman": [], "mae": [], "fit_seconds": []}
    for split in range(int(splits)):
        order = np.random.default_rng([int(seed), split]).permutation(n)
        predictor = FinalValuePredictor(
            model,
            t=t,
            differences=differences,
            hyperparameters=hyperparameters,
            sampler=sampler,
            num_reads=num_reads,
            random_state=derived_seed(seed, split),
            error_estimate=False,
        )
        for key, value in _split_scores(predictor, table, params, order[: int(train)], order[int(train) :]).items():
            per_split[key].append(value)
    result = {
        "table": table.name,
        "model": model if isinstance(model, str) else type(model).__name__,
        "at": float(at),
        "t": t,
        "train": int(train),
        "test": n - int(train),
        "splits": int(splits),
        "seed": int(seed),
        "sampler": sampler if sampler is None or isinstance(sampler, str) else type(sampler).__name__,
        "num_reads": num_reads,
    }
    result.update({f"{key}_median": float(np.median(values)) for key, values in per_split.items()})
    result.update(per_split)
    return result
