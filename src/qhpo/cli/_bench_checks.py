"""Checks of ``qhpo bench``'s options: one sentence for each malformed combination."""

from __future__ import annotations

import math
from pathlib import Path

from qhpo._errors import QhpoError


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
