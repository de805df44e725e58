"""``qhpo bench``: replay recorded learning curves through every stopping rule."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from qhpo._errors import QhpoError


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


def _check(args) -> list[str]:
    from qhpo.replay import BENCH_POLICIES

    if args.curves is None and args.suite is None:
        raise QhpoError(
            "--curves is missing; pass a curve table's path or a built-in name from qhpo bench --list, "
            "or --suite FOLDER for every table of a folder."
        )
    if args.curves is not None and args.suite is not None:
        raise QhpoError("--curves and --suite exclude each other; pass one table or one folder.")
    if args.budget is not None:
        _check_budget(args)
    if args.trials is None:
        args.trials = 100
    if args.policies is None:
        args.policies = ",".join(BENCH_POLICIES)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies:
        raise QhpoError("--policies is empty; name at least one of " + ", ".join(BENCH_POLICIES) + ".")
    unknown = [p for p in policies if p not in BENCH_POLICIES]
    if unknown:
        raise QhpoError(f"unknown policy {unknown[0]!r} in --policies; choose from {', '.join(BENCH_POLICIES)}.")
    if len(set(policies)) != len(policies):
        raise QhpoError("--policies names a policy twice; name each once.")
    for flag, value, least in (
        ("--trials", args.trials, 2),
        ("--seeds", args.seeds, 1),
        ("--workers", args.workers, 1),
        ("--first-seed", args.first_seed, 0),
    ):
        if value < least:
            raise QhpoError(f"{flag} must be at least {least}, got {value}.")
    if args.budget_fraction is not None and not 0.0 < args.budget_fraction <= 1.0:
        raise QhpoError(f"--epochs-fraction (--budget-fraction) must be in (0, 1], got {args.budget_fraction}.")
    if args.sweep_seeds is not None and args.sweep_seeds < 0:
        raise QhpoError(f"--sweep-seeds must be 0 or more, got {args.sweep_seeds}.")
    if args.jobs is not None and args.jobs < 1:
        raise QhpoError(f"--jobs must be at least 1, got {args.jobs}.")
    from qhpo._files import check_writable

    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path is not None:
            check_writable(path, flag)  # before the replay, not after it
    _check_live(args)
    return policies


def _check_budget(args) -> None:
    """Budget mode's options: a positive K, the local backend, rules that run under a budget
    (``args.budget`` becomes the number, ``args.policies`` defaults to those rules)."""
    from qhpo._rules import RuleKind, rule_names
    from qhpo.replay import BUDGET_POLICIES

    try:
        trainings = float(args.budget)
    except ValueError:
        trainings = math.nan
    if not (math.isfinite(trainings) and trainings > 0):
        raise QhpoError(f"--budget must be a positive number of full trainings (for example 20), got {args.budget!r}.")
    args.budget = int(trainings) if trainings == int(trainings) else trainings
    for flag, given in (
        ("--trials", args.trials is not None),
        ("--sweep-seeds", args.sweep_seeds is not None),
        ("--backend " + args.backend, args.backend != "local"),
    ):
        if given:
            raise QhpoError(f"{flag} does not apply in budget mode (--budget); leave it out.")
    if args.policies is None:
        args.policies = ",".join(BUDGET_POLICIES)
    brackets = [p for p in args.policies.split(",") if p.strip() in rule_names(RuleKind.BRACKETS)]
    if brackets:
        raise QhpoError(
            f"{brackets[0].strip()} chooses its own configurations in brackets and has no budget mode; "
            "leave it out of --policies."
        )


def _check_live(args) -> None:
    """The live replay's options: only with ``--backend optuna`` or ``ray``, each one sensible."""
    given = [
        flag
        for flag, value in (
            ("--storage", args.storage),
            ("--storage-dir", args.storage_dir),
            ("--epoch-seconds", args.epoch_seconds),
            ("--settle", args.settle or None),
        )
        if value is not None
    ]
    from qhpo.replay import LIVE_BACKENDS, LIVE_STORAGES

    if args.backend not in LIVE_BACKENDS:
        if given:
            raise QhpoError(
                f"{given[0]} applies to the live replay only; add --backend optuna or --backend ray, or leave it out."
            )
        return
    from qhpo.predictors import ORACLE, ORACLE_FINAL

    if args.predictor in (ORACLE, ORACLE_FINAL):
        raise QhpoError(
            f"--predictor {args.predictor} reads the recorded curves and exists in the local replay only; "
            f"choose svr, qsvr or qsvr-ensemble for --backend {args.backend}."
        )
    if args.storage is not None and args.backend != "optuna":
        raise QhpoError("--storage chooses the live Optuna study's storage; leave it out with --backend ray.")
    if args.storage is not None and args.storage not in LIVE_STORAGES:
        raise QhpoError(f"--storage must be sqlite or journal for the live replay, got {args.storage!r}.")
    if args.epoch_seconds is not None and not (math.isfinite(args.epoch_seconds) and args.epoch_seconds >= 0):
        raise QhpoError(f"--epoch-seconds must be a number of seconds, 0 or more, got {args.epoch_seconds}.")
    if args.jobs is not None and args.jobs > 1:
        raise QhpoError(
            "--jobs applies to the local backend; the live replay runs one seed at a time, its --workers as "
            "processes (optuna) or concurrent Ray trials (ray)."
        )
    if args.sweep_seeds:
        raise QhpoError("--sweep-seeds is not replayed live; leave it out (the figure then draws no sweep lines).")
    if args.storage_dir is not None:
        _check_folder(args.storage_dir)


def _check_folder(folder: Path) -> None:
    """``--storage-dir`` exists (or can be made) and takes new files."""
    import os

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".qhpo-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise QhpoError(
            f"--storage-dir {folder} is not a writable folder ({error.strerror or error}); pass a folder qhpo can "
            "write in."
        ) from None


def _format(result: dict) -> str:
    lines = [
        f"{result['table']}: {result['trials']} trials x {result['seeds']} seeds, {result['workers']} worker(s), "
        f"predictor {result['predictor']}, {result['seconds']:.0f} s{_budget_note(result)}{_backend_note(result)}",
        f"{'policy':<16}{'cost':>7}{'regret mean':>13}{'median':>9}{'max':>9}{'top1 kept':>11}"
        f"{'wallclock':>11}{'predictor s':>13}",
    ]
    thaw = any(p.get("resumed_mean") for p in result["policies"].values())
    if thaw:
        lines[-1] += f"{'resumed':>9}{'winner resumed':>16}"
    for name, p in result["policies"].items():
        lines.append(
            f"{name:<16}{p['cost_fraction_mean']:>7.1%}{p['regret_mean']:>13.5f}{p['regret_median']:>9.5f}"
            f"{p['regret_max']:>9.5f}{p['top1_kept_rate']:>11.0%}{p['wallclock_mean']:>11.0f}"
            f"{p['predictor_seconds_mean']:>13.2f}"
            + (f"{p['resumed_mean']:>9.1f}{p['winner_resumed_rate']:>16.0%}" if thaw else "")
        )
    lines.append(
        f"regret in {result['metric']} units ({result['mode']}); cost = epochs / (trials x {result['epochs']})"
    )
    if result.get("options"):
        lines.append(_options_line(result["options"]))
    if result.get("verdict"):
        lines.append(_verdict_line(result["verdict"]))
    return "\n".join(lines)


def _options_line(options: dict) -> str:
    shown = "; ".join(f"{rule} " + " ".join(f"{k}={v}" for k, v in opts.items()) for rule, opts in options.items())
    return f"options beyond the defaults: {shown}"


def _verdict_line(verdict: dict) -> str:
    return (
        f"target ({verdict['rule']} against {verdict['best']}): {'pass' if verdict['pass'] else 'fail'}, "
        f"{verdict['why']}"
    )


def _backend_note(result: dict) -> str:
    backend = result.get("backend")
    if not backend:
        return ""
    fits = "settled fits" if backend["settle"] else "background fits"
    if backend["name"] == "ray":
        note = (
            f"; live Ray Tune trials ({backend['workers']} at a time, {backend['epoch_seconds']:g} s per epoch, {fits})"
        )
    else:
        note = (
            f"; live Optuna study ({backend['storage']}, {backend['worker_processes']} worker process(es), "
            f"{backend['epoch_seconds']:g} s per epoch, {fits})"
        )
    if backend["in_process"]:
        note += f"; in-process: {', '.join(backend['in_process'])}"
    return note


def _budget_note(result: dict) -> str:
    fraction = result.get("budget_fraction")
    if fraction is None:
        return ""
    return f", {'each table' if 'tables' in result else 'the table'} cut to the first {fraction:g} of its epochs"


def _format_suite(result: dict) -> str:
    tables = result["tables"]
    names = list(next(iter(tables.values()))["policies"])
    width = max(len(stem) for stem in tables) + 2
    lines = [
        f"{result['suite']}: {len(tables)} tables, {result['trials']} trials x {result['seeds']} seeds, "
        f"predictor {result['predictor']}{_budget_note(result)}{_backend_note(result)}; each cell: cost / mean "
        "regret (metric units)",
        f"{'table':<{width}}" + "".join(f"{name:>19}" for name in names) + "  target",
    ]
    for stem, r in tables.items():
        cells = "".join(
            f"{r['policies'][n]['cost_fraction_mean']:>8.1%} / {r['policies'][n]['regret_mean']:<8.3g}" for n in names
        )
        verdict = r.get("verdict")
        lines.append(
            f"{stem:<{width}}{cells}  "
            + ("-" if verdict is None else ("pass" if verdict["pass"] else "fail") + f": {verdict['why']}")
        )
    rules = result["summary"]["rules"]
    lines.append(
        f"{'mean over tables':<{width}}"
        + "".join(
            f"{rules[n]['cost_fraction_mean']:>8.1%} / "
            + (
                f"{rules[n]['regret_normalised_mean']:<8.3f}"
                if rules[n]["regret_normalised_mean"] is not None
                else f"{'-':<8}"
            )
            for n in names
        )
        + "  (regret / spread)"
    )
    thaw = [n for n in names if rules[n].get("resumed_mean")]
    for n in thaw:
        lines.append(
            f"{n}: {rules[n]['resumed_mean']:.1f} resumptions per seed, winner paused and resumed on "
            f"{rules[n]['winner_resumed_rate']:.0%} of seeds (means over tables)"
        )
    options = next(iter(tables.values())).get("options")
    if options:
        lines.append(_options_line(options))
    lines.append(f"spread: {result['summary']['spread']}")
    target = result["summary"]["target"]
    if target:
        lines.append(
            f"target met by {target['rule']} on {len(target['passed'])} of "
            f"{len(target['passed']) + len(target['failed'])} tables"
        )
    lines.append(f"suite wall time: {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min)")
    return "\n".join(lines)


def _format_builtin_tables() -> str:
    from qhpo.curves import builtin_tables, builtin_tables_folder

    lines = []
    for table in builtin_tables():
        lines.append(
            f"{table.name:<22}{table.trials} trials x {table.epochs} epochs, "
            f"{table.metric} ({table.mode}), {table.license}: {table.workload}"
        )
        lines.append(f"{'':<22}source: {table.source}")
    lines.append(f"licences and attributions: {builtin_tables_folder() / 'NOTICE'}")
    return "\n".join(lines)


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
    sampler = args.sampler
    if sampler is None and args.predictor not in ("svr", "oracle", "oracle-final"):
        from qhpo.samplers import DEFAULT_SAMPLER

        sampler = DEFAULT_SAMPLER
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
        from qhpo.replay import LiveSettings, run_live_benchmark, run_live_suite

        live = LiveSettings(
            storage=args.storage or "sqlite",
            folder=args.storage_dir,
            epoch_seconds=0.005 if args.epoch_seconds is None else args.epoch_seconds,
            settle=args.settle,
            backend=args.backend,
        )
        if args.suite is not None:
            result = run_live_suite(tables, name=suite_name, live=live, **common)
        else:
            result = run_live_benchmark(tables[0], live=live, **common)
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


def _regret_cell(rule: dict, readings: list[str]) -> str:
    return f"{' / '.join(format(rule['regret'][x], '.4f') for x in readings):>27}"


def _format_budget(result: dict) -> str:
    readings = result["readings"]
    head = f"{'':<4}" + "".join(f"{'regret @' + x:>12}" for x in readings)
    if "tables" not in result:
        lines = [
            f"{result['table']}: budget {result['budget_trainings']:g} full trainings ({result['budget_epochs']} "
            f"epochs) x {result['seeds']} seeds, {result['workers']} worker(s), predictor {result['predictor']}, "
            f"{result['seconds']:.0f} s{_budget_note(result)}",
            f"{'policy':<12}{'first rung':>11}{'configs':>9}{'complete':>10}{'resumed':>9}" + head[4:],
        ]
        for name, p in result["policies"].items():
            lines.append(
                f"{name:<12}{p['first_rung']:>11}{p['configurations_mean']:>9.1f}{p['completed_mean']:>10.1f}"
                f"{p['resumed_mean']:>9.1f}" + "".join(f"{p['regret'][x]:>12.4f}" for x in readings)
            )
    else:
        tables = result["tables"]
        rules = list(result["summary"]["rules"])
        width = max(len(stem) for stem in tables) + 2
        lines = [
            f"{result['suite']}: {len(tables)} tables, budget {result['budget_trainings']:g} full trainings x "
            f"{result['seeds']} seeds, predictor {result['predictor']}{_budget_note(result)}; each cell: mean "
            "normalised regret at " + " / ".join(readings) + " full trainings",
            f"{'table':<{width}}" + "".join(f"{name:>27}" for name in rules),
        ]
        for stem, r in tables.items():
            lines.append(f"{stem:<{width}}" + "".join(_regret_cell(r["policies"][n], readings) for n in rules))
        summary = result["summary"]["rules"]
        lines.append(f"{'mean over tables':<{width}}" + "".join(_regret_cell(summary[n], readings) for n in rules))
    lowest = result["lowest"] if "tables" not in result else result["summary"]["lowest"]
    lines.append("lowest regret: " + "; ".join(f"at {x}: {', '.join(lowest[x])}" for x in readings))
    lines.append(f"regret = {result['regret_definition']}")
    if "tables" in result:
        lines.append(f"suite wall time: {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min)")
    return "\n".join(lines)


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
