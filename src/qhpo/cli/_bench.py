"""``qhpo bench``: replay recorded learning curves through every stopping rule."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from qhpo._errors import QhpoError
from qhpo.cli._bench_checks import _check
from qhpo.cli._bench_format import (
    _format,
    _format_budget,
    _format_builtin_tables,
    _format_suite,
)


def register(subparsers) -> None:
    from qhpo.predictors import MODEL_NAMES, ORACLE, ORACLE_FINAL
    from qhpo.replay import BENCH_POLICIES

    parser = subparsers.add_parser(
        "bench",
        help="replay recorded learning curves through the stopping policies and compare cost and regret",
        description=(
            "For each seed, draw TRIALS rows of the curve table in a random order shared by every "
            "policy, replay them epoch by epoch through each policy (median, sha and hyperband are "
            "Optuna's own pruners in a real Optuna study) and report the epochs trained and the regret. "
            "With --suite, do so for every table of a folder and summarise across tables."
        ),
    )
    parser.add_argument(
        "--curves",
        default=None,
        metavar="TABLE",
        help="curve table: a CSV file with a JSON sidecar, or the name of a built-in table (see --list)",
    )
    parser.add_argument(
        "--suite",
        default=None,
        metavar="FOLDER",
        help="replay every table (*.csv) of FOLDER, or every built-in table with 'builtin'",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the built-in curve tables with their sources and exit"
    )
    parser.add_argument(
        "--policies",
        default=None,
        help=f"comma-separated rules (default: {','.join(BENCH_POLICIES)}; with --budget, all but swift-hyperband)",
    )
    parser.add_argument(
        "--predictor",
        default="qsvr",
        choices=(*MODEL_NAMES, ORACLE, ORACLE_FINAL),
        help="predictor of the predictive policies (default: qsvr); oracle: the recorded value at the epoch the "
        "rule asks about, a perfect predictor that shows what better prediction could win; oracle-final: the "
        "recorded final value whatever the epoch asked about",
    )
    parser.add_argument(
        "--sampler", default=None, help="annealer of the qsvr predictors (default: qhpo.samplers.DEFAULT_SAMPLER)"
    )
    parser.add_argument(
        "--policy-option",
        action="append",
        default=[],
        metavar="[RULE:]NAME=VALUE",
        help="an option of a rule, repeatable: RULE:NAME=VALUE for that rule (e.g. sha:reduction_factor=2), "
        "NAME=VALUE for qhpo and qhpo-stop (e.g. reduction_factor=3)",
    )
    parser.add_argument(
        "--prior-tables",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="rank at qhpo's first rungs with a curve prior built from the tables (*.csv) of FOLDER, each "
        "replayed table (and any table sharing its curves, whatever its name) left out of it; the same as "
        "--policy-option prior=FOLDER",
    )
    parser.add_argument(
        "--epochs-fraction",
        "--budget-fraction",
        dest="budget_fraction",
        type=float,
        default=None,
        metavar="F",
        help="replay each table as a workload trained for only the first F of its epochs (0 < F <= 1; "
        "at least 2 epochs): the value after that epoch is the final one (--budget-fraction is the former name)",
    )
    parser.add_argument(
        "--budget",
        default=None,
        metavar="K",
        help="budget mode: each rule may train K full trainings' worth of epochs per seed (K x the table's "
        "epochs, resumptions included), taking configurations in the seed's order until they are spent; "
        "reports normalised regret over time at 5, 10 and 20 full trainings (those up to K, and K)",
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="trials drawn per seed (default: 100; not with --budget)"
    )
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds (default: 20)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--workers", type=int, default=1, help="simulated parallel workers (default: 1)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png", help="write the figure")
    parser.add_argument(
        "--sweep-seeds",
        type=int,
        default=None,
        help="seeds on which each rule's aggressiveness is swept for the plot (default: 5 with --plot, else 0)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="processes replaying seeds in parallel (default: the usable cores, at most 2)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "optuna", "ray", "ray-clock"),
        default="local",
        help="replay in-process (local); every rule but swift-hyperband in a live Optuna study with real storage "
        "and worker processes (optuna); qhpo's policies as live Ray Tune trials on a local Ray cluster (ray); "
        "or as Ray Tune trials whose epochs follow the local replay's simulated clock (ray-clock)",
    )
    live = parser.add_argument_group("live replay (--backend optuna or ray)")
    live.add_argument(
        "--storage",
        default=None,
        metavar="sqlite|journal",
        help="storage of each live Optuna study: a SQLite file (sqlite, the default) or an Optuna journal file "
        "(journal); --backend optuna only",
    )
    live.add_argument(
        "--storage-dir",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="keep each live study's storage file (optuna) or Ray Tune experiment (ray) in FOLDER (default: a "
        "temporary folder, removed at the end)",
    )
    live.add_argument(
        "--epoch-seconds",
        type=float,
        default=None,
        metavar="S",
        help="real seconds each replayed epoch takes (default 0.005; 0: no wait)",
    )
    live.add_argument(
        "--settle",
        action="store_true",
        help="each decision waits for the predictor's fit (one worker then decides as the local replay)",
    )
    parser.set_defaults(handler=cmd_bench)


def _suite_tables(spec: str) -> tuple[str, list]:
    """The suite's name and its tables, read (one sentence for a missing or empty folder)."""
    from qhpo.curves import builtin_table_paths, read_curve_table
    from qhpo.replay import suite_tables

    folder = Path(spec)
    if spec == "builtin" and not folder.is_dir():
        paths = builtin_table_paths()
    elif folder.is_dir():
        paths = suite_tables(folder)
        if not paths:
            raise QhpoError(
                f"--suite: the folder {folder} holds no curve table (*.csv); pass a folder of tables or 'builtin'."
            )
    else:
        raise QhpoError(f"--suite: {spec} is not a folder; pass a folder of curve tables or 'builtin'.")
    return spec, [read_curve_table(path) for path in paths]


def _json_ready(value):
    """``value`` with every non-finite float as None, so the file is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def cmd_bench(args) -> int:
    from qhpo.curves import read_curve_table, resolve_curve_table
    from qhpo.replay import default_jobs, plot_benchmark, plot_suite, run_benchmark, run_suite

    if args.list:
        print(_format_builtin_tables())
        return 0
    policies = _check(args)
    if args.suite is not None:
        suite_name, tables = _suite_tables(args.suite)
    else:
        tables = [read_curve_table(resolve_curve_table(args.curves))]
    if args.budget_fraction is not None:
        tables = [shorten(table, args.budget_fraction) for table in tables]
    options = _rule_options(args.policy_option, policies, tables)
    if args.prior_tables is not None:
        _add_prior_tables(options, args.prior_tables, policies)
    sampler = _sampler(args)
    if args.budget is not None:
        return _bench_budget(args, policies, tables, options, sampler, suite_name if args.suite is not None else None)
    sweep_seeds = args.sweep_seeds if args.sweep_seeds is not None else (5 if args.plot else 0)
    live_backend = args.backend in ("optuna", "ray")
    if live_backend:
        sweep_seeds = 0  # the sweep stays a local replay's business
    if args.backend == "ray":
        import qhpo.ray  # noqa: F401  (without Ray Tune: one sentence naming the extra, before any replay)
    runner = _ray_runner() if args.backend == "ray-clock" else None
    common = dict(
        policies=policies,
        predictor=args.predictor,
        sampler=sampler,
        trials=args.trials,
        seeds=args.seeds,
        first_seed=args.first_seed,
        workers=args.workers,
        sweep_seeds=min(sweep_seeds, args.seeds),
        jobs=args.jobs if args.jobs is not None else (1 if runner else default_jobs()),
        options=options,
        policy_runner=runner,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if live_backend:
        result = _replay_live(args, tables, suite_name if args.suite is not None else None, common)
    elif args.suite is not None:
        result = run_suite(tables, name=suite_name, **common)
    else:
        result = run_benchmark(tables[0], **common)
    if args.budget_fraction is not None:
        result["budget_fraction"] = args.budget_fraction
    print(_format_suite(result) if args.suite is not None else _format(result))
    plot = None
    if args.plot is not None:
        plot = (
            (lambda path: plot_suite(result, path))
            if args.suite is not None
            else (lambda path: plot_benchmark(result, tables[0], path))
        )
    _write(args, result, plot)
    return 0


def _sampler(args):
    """The annealer of the annealer predictors: ``--sampler``, else the default one."""
    sampler = args.sampler
    if sampler is None and args.predictor not in ("svr", "oracle", "oracle-final"):
        from qhpo.samplers import DEFAULT_SAMPLER

        sampler = DEFAULT_SAMPLER
    return sampler


def _replay_live(args, tables, suite_name: str | None, common: dict) -> dict:
    """The live replay (``--backend optuna`` or ``ray``) of one table, or of the suite when named."""
    from qhpo.replay import LiveSettings, run_live_benchmark, run_live_suite

    live = LiveSettings(
        storage=args.storage or "sqlite",
        folder=args.storage_dir,
        epoch_seconds=0.005 if args.epoch_seconds is None else args.epoch_seconds,
        settle=args.settle,
        backend=args.backend,
    )
    if suite_name is not None:
        return run_live_suite(tables, name=suite_name, live=live, **common)
    return run_live_benchmark(tables[0], live=live, **common)


def _write(args, result: dict, plot) -> None:
    """``--json`` and ``--plot`` (``plot(path)`` draws the figure), one sentence when a path fails."""
    try:
        if args.json is not None:
            text = json.dumps(_json_ready(result), indent=2, allow_nan=False)
            args.json.write_text(text + "\n", encoding="utf-8")
            print(f"results written to {args.json}")
        if plot is not None:
            plot(args.plot)
            print(f"figure written to {args.plot}")
    except OSError as error:
        raise QhpoError(
            f"cannot write the output ({error.strerror}: {error.filename}); choose a writable path."
        ) from None


def _bench_budget(args, policies, tables, options, sampler, suite_name) -> int:
    """Budget mode: every rule under ``--budget`` full trainings per seed, regret over time."""
    from qhpo.replay import BudgetSettings, default_jobs, plot_budget, run_budget

    settings = BudgetSettings(
        args.budget,
        policies=tuple(policies),
        predictor=args.predictor,
        sampler=sampler,
        seeds=args.seeds,
        first_seed=args.first_seed,
        workers=args.workers,
        options=options,
    )
    result = run_budget(
        tables,
        settings,
        name=suite_name,
        jobs=args.jobs if args.jobs is not None else default_jobs(),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if args.budget_fraction is not None:
        result["budget_fraction"] = args.budget_fraction
    print(_format_budget(result))
    _write(args, result, None if args.plot is None else (lambda path: plot_budget(result, path)))
    return 0


def shorten(table, fraction: float):
    """``table`` cut to its first ``max(2, round(fraction * E))`` epochs (all of them when
    the table has fewer than 2): the same trials as a workload with a shorter budget.

    Example:
        >>> import numpy as np
        >>> from qhpo.curves import CurveTable
        >>> table = CurveTable("t", "accuracy", "max", np.arange(3), {}, np.ones((3, 50)))
        >>> shorten(table, 0.25).epochs, shorten(table, 0.01).epochs
        (12, 2)
    """
    epochs = min(table.epochs, max(2, round(fraction * table.epochs)))
    return table.truncate(epochs)


def _rule_options(items: list[str], policies: list[str], tables) -> dict[str, dict]:
    """``--policy-option`` values per rule, each checked against every table's budget."""
    from qhpo._policy_options import check_policy_options, parse_policy_option

    options: dict[str, dict] = {}
    for item in items:
        rule, name, value = parse_policy_option(item)
        targets = [rule] if rule is not None else [p for p in ("qhpo", "qhpo-stop") if p in policies]
        if not targets:
            raise QhpoError(
                f"--policy-option {item!r} applies to qhpo and qhpo-stop, and --policies names neither; "
                "give RULE:NAME=VALUE for another rule."
            )
        for target in targets:
            if target not in policies:
                raise QhpoError(f"--policy-option {item!r} names rule {target!r}, which --policies does not run.")
            if name in options.setdefault(target, {}):
                raise QhpoError(f"--policy-option sets {name!r} of {target!r} twice; give it once.")
            options[target][name] = value
    for rule, values in options.items():
        for epochs in sorted({table.epochs for table in tables}):
            check_policy_options(rule, values, epochs=epochs)
    return options


def _add_prior_tables(options: dict[str, dict], folder: Path, policies: list[str]) -> None:
    """``--prior-tables FOLDER`` as the option ``prior=FOLDER`` of qhpo and qhpo-stop (the
    replay leaves each replayed table out of it)."""
    from qhpo.priors import load_prior

    targets = [p for p in ("qhpo", "qhpo-stop") if p in policies]
    if not targets:
        raise QhpoError("--prior-tables acts on qhpo and qhpo-stop, and --policies names neither; add qhpo.")
    if not folder.is_dir():
        raise QhpoError(f"--prior-tables {folder} is not a folder; pass a folder of curve tables (*.csv).")
    load_prior(folder)  # one sentence now for a folder without tables or with a malformed one
    for target in targets:
        if "prior" in options.get(target, {}):
            raise QhpoError("--prior-tables and --policy-option prior=... both set the prior; give one.")
        options.setdefault(target, {})["prior"] = str(folder)


def _ray_runner():
    """The replay of qhpo's policies on Ray Tune trials ordered by the simulated clock (``qhpo.ray.replay_on_ray``).

    Without Ray Tune, importing :mod:`qhpo.ray` raises qhpo's one-sentence error naming the extra.
    """
    from qhpo.ray import replay_on_ray

    return replay_on_ray
