"""How well each ranking signal orders the runs at each rung of the default rule.

For every table of a folder and every rung ``r`` of the default rule (``qhpo``: rungs
``round(E/20) * 2**k < E``, horizon ``h`` = the next rung, or ``E`` after the last), this
replays the rule on the same draws as ``qhpo bench`` (``--trials`` rows per seed, seeds
``--first-seed ..``) and ranks the drawn runs that have a finite final value by

- ``observed``: the rule's anchor at ``r`` (the mean of the last ``w = round(round(E/20)/2)``
  values up to ``r``, floored at the 10 % quantile of the runs' first ``r`` values, in
  "higher is better" units), as the rule ranks at the rung;
- ``predictor``: the value at ``h`` that the rule's in-study predictor (SVR, or
  ``--predictor``) predicts from the floored prefix and the numeric hyperparameters, trained
  as the rule trains it, on the runs of the same replayed study that reached ``h`` (counted
  when the study has ended: the rule, deciding earlier, saw fewer);
- ``best``: the best value so far at ``r`` (a smoothing of noisy curves);
- ``prior``: the final quantile the curve prior (:mod:`qhpo.priors`) predicts from the
  prefix, the prior built from the tables of ``--prior-tables`` (default: the ranked
  folder) less any that shares a row with the ranked table (leave-one-table-out; rungs up
  to 30 % of training only);
- ``obs+prior``: ``(1 - alpha) * Q(observed) + alpha * prior`` (``alpha`` =
  ``--prior-weight``, default 0.5): what the option ``prior`` of the rule ranks by;
- ``oracle h``: the recorded value at ``h`` (what ``--predictor oracle`` hands the rule);
- ``oracle E``: the recorded final value (1.0 by construction: a check of the scoring);
- ``hp``: a model of the final value from the hyperparameters alone (an RBF SVR on the
  min-max scaled hyperparameters, categories one-hot), trained on the runs that the
  replayed study finished, as Bayesian optimisation keeps them (none below 3 finished runs);
- ``hp+obs``: the mean of the ``hp`` rank and the ``observed`` rank;
- ``obs+hp 0.25``: ``0.75 * Q(observed) + 0.25 * Q(hp)`` (``Q`` the quantile among the
  runs): what the option ``configuration_weight = 0.25`` of the rule ranks by at the rungs
  up to 30 % of training (the rule's model, deciding earlier, has seen fewer runs);
- ``observed*``, ``hp*``, ``hp+obs*``: the same three on the runs the study did *not*
  finish only (the ``hp`` model was trained on the others' final values, which it recalls);
- ``random``: the survivorship check: the same predictor trained on as many runs as
  ``predictor``, drawn at random among all the drawn runs (what it would learn if the study
  had trained a random sample to ``h`` instead of the survivors of ``r``);
- ``predictor-``, ``random-``: both predictors on the runs that did not reach ``h`` in the
  replayed study (the late curves the in-study predictor never saw) and that ``random``
  was not trained on; ``random-`` above ``predictor-`` measures the survivorship bias.

Each cell is the mean over seeds of Spearman's correlation with the final value and, after
the slash, the recall of the final top 10 % (of the ``ceil(m / 10)`` best final values, the
share found among the ``ceil(m / 10)`` best scores). ``train`` is the mean number of runs
the predictor was trained on, ``done`` the mean number of finished runs.

Run (the 20 first design seeds, about 6 minutes on 2 cores):

    python benchmarks/ranking.py --seeds 20 --first-seed 100 --json ranking.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

from qhpo.curves import CurveTable, builtin_tables_folder, read_curve_table
from qhpo.policies import PredictionService, rung_epochs
from qhpo.predictors import classical_svr
from qhpo.priors import prior_for_table, quantiles
from qhpo.replay import draw_order, replay_rule

METHODS = (
    "observed",
    "best",
    "predictor",
    "prior",
    "obs+prior",
    "oracle h",
    "oracle E",
    "hp",
    "hp+obs",
    "obs+hp 0.25",
    "observed*",
    "hp*",
    "hp+obs*",
    "random",
    "predictor-",
    "random-",
)
TOP = 0.1
FLOOR_QUANTILE = 0.1  # the default rule's floor_quantile
ETA = 2.0  # the default rule's reduction factor
MIN_HORIZON_TRIALS = 6  # the default rule's min_horizon_trials


def spearman_recall(score, final, top: float = TOP) -> tuple[float, float]:
    """Spearman's correlation of ``score`` with ``final`` and the recall of ``final``'s best
    ``ceil(top * m)`` among ``score``'s best ``ceil(top * m)`` (higher is better in both).

    Example:
        >>> spearman_recall([1, 2, 3, 4], [10, 20, 30, 40], top=0.25)
        (1.0, 1.0)
    """
    score, final = np.asarray(score, dtype=float), np.asarray(final, dtype=float)
    m = len(final)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant score has no correlation: NaN
        rho = float(spearmanr(score, final).statistic)
    n_top = max(1, math.ceil(top * m))
    best = set(np.argsort(-final, kind="stable")[:n_top].tolist())
    chosen = set(np.argsort(-score, kind="stable")[:n_top].tolist())
    return rho, len(best & chosen) / n_top


def default_rungs(epochs: int) -> tuple[tuple[int, ...], int]:
    """The default rule's rungs and anchor window for ``epochs``."""
    min_resource = max(1, round(epochs / 20))
    return rung_epochs(epochs, min_resource, ETA), max(1, round(min_resource / 2))


def _scaled(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    low, span = fit.min(axis=0), np.ptp(fit, axis=0)
    return (x - low) / np.where(span > 0, span, 1.0)


def hyperparameter_model(params: np.ndarray, final: np.ndarray, train: np.ndarray) -> np.ndarray | None:
    """Predicted final values of every row from its hyperparameters alone, fitted on ``train``."""
    if train.sum() < 3 or params.shape[1] == 0:
        return None
    y = final[train]
    span = float(np.ptp(y)) or 1.0
    model = classical_svr().fit(_scaled(params[train], params[train]), (y - y.min()) / span)
    return model.predict(_scaled(params, params[train]))


def seed_ranking(
    table: CurveTable, seed: int, trials: int, predictor: str = "svr", prior=None, prior_weight: float = 0.5
) -> dict:
    """Per rung: each method's ``(spearman, recall)`` on one seed's draw, with the training sizes."""
    drawn = table.take(draw_order(table.n_trials, trials, seed))
    fitted = None if prior is None else prior_for_table(prior, drawn.curves)
    study = replay_rule("qhpo", drawn, seed=seed, predictor=predictor)
    v = drawn.sign * drawn.curves
    final = v[:, -1]
    rows = np.flatnonzero(np.isfinite(final))  # a diverged run has no final value to rank
    numeric, onehot = drawn.numeric_params(), drawn.hyperparameter_matrix()
    finished = study.complete & np.isfinite(final)
    hp = hyperparameter_model(onehot, final, finished)
    rungs, w = default_rungs(drawn.epochs)
    out = {"done": int(finished.sum()), "rungs": {}}
    for k, r in enumerate(rungs):
        h = rungs[k + 1] if k + 1 < len(rungs) else drawn.epochs
        prefix = v[rows, :r]
        floor = float(np.quantile(prefix, FLOOR_QUANTILE))
        anchors = np.maximum(prefix, floor)[:, r - w :].mean(axis=1)
        scores = {"observed": anchors, "best": prefix.max(axis=1), "oracle h": v[rows, h - 1], "oracle E": final[rows]}
        q_hat = None if fitted is None else fitted.predict(prefix, drawn.epochs)
        if q_hat is not None:
            scores["prior"] = q_hat
            scores["obs+prior"] = (1 - prior_weight) * quantiles(anchors) + prior_weight * q_hat
        reached = np.flatnonzero((study.epochs_trained >= h) & np.all(np.isfinite(v[:, :h]), axis=1))
        survivorship: dict = {}
        if len(reached) >= MIN_HORIZON_TRIALS:
            service = in_study_service(predictor, seed, w)
            service.update(np.maximum(v[reached, :h], floor), numeric[reached])
            floored = np.maximum(prefix, floor)
            scores["predictor"] = service.predict(r, floored, numeric[rows], target=h)[0]
            survivorship = _survivorship(
                service, predictor, v, floored, numeric, rows, reached, final, r=r, h=h, w=w, floor=floor, seed=seed
            )
        if hp is not None:
            scores["hp"] = hp[rows]
            scores["hp+obs"] = (rankdata(hp[rows]) + rankdata(anchors)) / 2
            scores["obs+hp 0.25"] = 0.75 * quantiles(anchors) + 0.25 * quantiles(hp[rows])
        scores.update(survivorship.pop("scores", {}))
        cells = {name: spearman_recall(score, final[rows]) for name, score in scores.items()}
        cells.update(survivorship)
        unseen = ~finished[rows]  # the runs the study did not finish: the model of hp never saw their final
        if hp is not None and unseen.sum() >= 10:
            for name in ("observed", "hp", "hp+obs"):
                cells[name + "*"] = spearman_recall(scores[name][unseen], final[rows][unseen])
        out["rungs"][r] = {"horizon": h, "train": len(reached), **cells}
    return out


def in_study_service(predictor: str, seed: int, w: int) -> PredictionService:
    """The prediction service as the default rule builds it for its rungs (anchor window ``w``)."""
    return PredictionService(
        predictor,
        random_state=seed,
        hyperparameters=True,
        relative=True,
        anchor_window=w,
        min_curves=MIN_HORIZON_TRIALS,
        error_estimate=False,
    )


def _survivorship(
    trained, predictor, v, prefix, numeric, rows, reached, final, *, r: int, h: int, w: int, floor: float, seed: int
) -> dict:
    """The in-study predictor ``trained`` (on the runs that reached ``h``) beside the same
    predictor trained on as many runs drawn at random among ``rows``: scores on every row
    (``prefix``: their floored first ``r`` values), and cells on the rows that neither saw
    to ``h`` (none below 10 such rows)."""
    rng = np.random.default_rng([seed, r])
    sample = np.sort(rng.choice(rows, size=len(reached), replace=False))
    service = in_study_service(predictor, seed, w)
    service.update(np.maximum(v[sample, :h], floor), numeric[sample])
    random_scores = service.predict(r, prefix, numeric[rows], target=h)[0]
    out: dict = {"scores": {"random": random_scores}}
    unseen = ~np.isin(rows, reached) & ~np.isin(rows, sample)
    if unseen.sum() >= 10:
        in_study = trained.predict(r, prefix[unseen], numeric[rows][unseen], target=h)[0]
        out["predictor-"] = spearman_recall(in_study, final[rows][unseen])
        out["random-"] = spearman_recall(random_scores[unseen], final[rows][unseen])
    return out


def _job(args):
    return args[0].name, args[1], seed_ranking(*args)


def ranking(
    tables,
    *,
    trials: int,
    seeds: int,
    first_seed: int,
    jobs: int,
    predictor: str = "svr",
    prior=None,
    prior_weight: float = 0.5,
) -> dict:
    """Means over seeds, per table and rung, of each method's Spearman and top-10 % recall."""
    work = [
        (t, s, trials, predictor, prior, prior_weight) for t in tables for s in range(first_seed, first_seed + seeds)
    ]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(_job, work))
    else:
        done = [_job(w) for w in work]
    result = {
        "trials": trials,
        "seeds": seeds,
        "first_seed": first_seed,
        "predictor": predictor,
        "prior_weight": prior_weight,
        "tables": {},
    }
    for table in tables:
        per_seed = [r for name, _, r in done if name == table.name]
        rungs = {}
        for r in per_seed[0]["rungs"]:
            cells = [s["rungs"][r] for s in per_seed]
            row = {"horizon": cells[0]["horizon"], "train": float(np.mean([c["train"] for c in cells]))}
            for name in METHODS:
                got = [c[name] for c in cells if name in c]
                row[name] = (
                    None
                    if not got
                    else {
                        "spearman": float(np.nanmean([g[0] for g in got]))
                        if any(np.isfinite(g[0]) for g in got)
                        else None,
                        "recall": float(np.mean([g[1] for g in got])),
                        "seeds": len(got),
                    }
                )
            rungs[str(r)] = row
        result["tables"][table.name] = {
            "epochs": table.epochs,
            "done": float(np.mean([s["done"] for s in per_seed])),
            "rungs": rungs,
        }
    return result


def format_ranking(result: dict) -> str:
    lines = [
        f"{len(result['tables'])} tables, {result['trials']} trials x seeds {result['first_seed']}-"
        f"{result['first_seed'] + result['seeds'] - 1}, predictor {result['predictor']}; "
        f"each cell: Spearman with the final value / recall of the final top {TOP:.0%}",
        f"{'table':<22}{'rung':>5}{'h':>5}{'train':>7}{'done':>6}" + "".join(f"{m:>14}" for m in METHODS),
    ]
    for name, t in result["tables"].items():
        for r, row in t["rungs"].items():
            cells = ""
            for m in METHODS:
                c = row[m]
                if c is None:
                    cells += f"{'-':>14}"
                else:
                    rho = "nan" if c["spearman"] is None else f"{c['spearman']:.2f}"
                    cells += f"{rho + ' / ' + format(c['recall'], '.2f'):>14}"
            lines.append(f"{name:<22}{r:>5}{row['horizon']:>5}{row['train']:>7.1f}{t['done']:>6.1f}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=None, help="folder of curve tables (*.csv; default: the built-in tables)")
    parser.add_argument("--curves", default=None, help="one curve table (CSV with its JSON sidecar) instead")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--predictor", default="svr", help="the rule's predictor: svr (default) or qsvr")
    parser.add_argument(
        "--prior-tables", default=None, help="folder of the tables the prior learns from (default: the ranked ones)"
    )
    parser.add_argument("--prior-weight", type=float, default=0.5, help="alpha of obs+prior (default 0.5)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if args.curves:
        paths = [Path(args.curves)]
    else:
        paths = sorted((Path(args.suite) if args.suite else builtin_tables_folder()).glob("*.csv"))
    tables = [read_curve_table(p) for p in paths]
    prior = args.prior_tables or str(paths[0].parent)
    result = ranking(
        tables,
        trials=args.trials,
        seeds=args.seeds,
        first_seed=args.first_seed,
        jobs=args.jobs,
        predictor=args.predictor,
        prior=prior,
        prior_weight=args.prior_weight,
    )
    print(format_ranking(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
