"""``qhpo predict``: how well a predictor forecasts final values on a curve table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qhpo._errors import QhpoError


def register(subparsers) -> None:
    from qhpo.predictors import MODEL_NAMES
    from qhpo.samplers import SAMPLER_NAMES

    parser = subparsers.add_parser(
        "predict",
        help="measure final-value prediction from partial learning curves",
        description=(
            "Train a predictor on N random trials of a curve table, predict the final value of "
            "every other trial from the first FRACTION of its epochs, repeat over S random "
            "splits, and print (and optionally write) R^2, Spearman rank correlation, mean "
            "absolute error and fit time as JSON."
        ),
    )
    parser.add_argument(
        "--curves",
        required=True,
        metavar="TABLE",
        help="curve table: a CSV file with a JSON sidecar, or a built-in name (see qhpo bench --list)",
    )
    parser.add_argument(
        "--at", type=float, default=0.25, metavar="FRACTION", help="fraction of the epochs observed (default 0.25)"
    )
    parser.add_argument("--model", choices=MODEL_NAMES, default="svr", help="predictor (default svr)")
    parser.add_argument("--train", type=int, default=20, metavar="N", help="training trials per split (default 20)")
    parser.add_argument("--splits", type=int, default=10, metavar="S", help="random splits (default 10)")
    parser.add_argument("--seed", type=int, default=0, metavar="X", help="seed of the splits and annealer (default 0)")
    parser.add_argument(
        "--sampler",
        choices=SAMPLER_NAMES,
        default=None,
        help="annealer for qsvr models (default: qhpo.samplers.DEFAULT_SAMPLER)",
    )
    parser.add_argument("--num-reads", type=int, default=None, metavar="R", help="annealer reads per QUBO")
    parser.add_argument("--differences", action="store_true", help="add first and second differences as features")
    parser.add_argument(
        "--hyperparameters", action="store_true", help="add the hyperparameters as features (categories one-hot)"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the JSON result here")
    parser.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from qhpo.curves import read_curve_table, resolve_curve_table
    from qhpo.predictors import evaluate_predictor

    if not 0 < args.at <= 1:
        raise QhpoError(f"--at must be a fraction of the epochs in (0, 1], got {args.at}.")
    if args.splits < 1:
        raise QhpoError(f"--splits must be at least 1, got {args.splits}.")
    if args.num_reads is not None and args.num_reads < 1:
        raise QhpoError(f"--num-reads must be at least 1, got {args.num_reads}.")
    if args.seed < 0:
        raise QhpoError(f"--seed must be a whole number of 0 or more, got {args.seed}.")
    if args.json is not None:
        from qhpo._files import check_writable

        check_writable(args.json, "--json")
    table = read_curve_table(resolve_curve_table(args.curves))
    if not 2 <= args.train <= table.n_trials - 2:
        raise QhpoError(
            f"--train must leave at least 2 trials to predict: choose 2..{table.n_trials - 2} for the "
            f"{table.n_trials} trials of {table.name}, got {args.train}."
        )
    if args.hyperparameters and table.hyperparameter_matrix().shape[1] == 0:
        raise QhpoError(
            f"--hyperparameters needs hyperparameter columns a model can read (numbers, or categories "
            f"seen twice), and {table.name} has none."
        )
    result = evaluate_predictor(
        table,
        at=args.at,
        model=args.model,
        train=args.train,
        splits=args.splits,
        seed=args.seed,
        sampler=args.sampler,
        num_reads=args.num_reads,
        differences=args.differences,
        hyperparameters=args.hyperparameters,
    )
    result["curves"] = str(args.curves)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0
