"""``qhpo run``: a hyperparameter search of the CIFAR-10 CNN with predictive early stopping."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qhpo._errors import QhpoError


def register(subparsers) -> None:
    from qhpo.runner import PRESETS

    presets = "; ".join(
        f"{name}: {p.description} ({p.trials} trials, {p.epochs} epochs, "
        f"{'all' if p.subset is None else p.subset} training images)"
        for name, p in PRESETS.items()
    )
    parser = subparsers.add_parser(
        "run",
        help="search the CNN's hyperparameters on CIFAR-10, stopping bad trials early",
        description=(
            "Search the CNN's hyperparameters on CIFAR-10 with an Optuna study whose pruner predicts each trial's "
            "final validation accuracy from its partial learning curve (a QUBO-trained SVR on simulated annealing "
            "by default). Re-running the same command resumes the study. Presets: " + presets + "."
        ),
    )
    _add_arguments(parser)
    parser.set_defaults(handler=cmd_run)
    _one_line_errors(parser)


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """A malformed flag is a user error like any other: one sentence and status 2."""

    def error(message: str):
        print(f"qhpo {parser.prog.split()[-1]}: error: {message}; see {parser.prog} --help.", file=sys.stderr)
        sys.exit(2)

    parser.error = error


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _subset(text: str) -> int | None:
    if text.lower() in ("all", "none", "0"):
        return None
    return _positive_int(text)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from qhpo.runner import GRACE_PERIOD, HEARTBEAT_INTERVAL

    what = parser.add_argument_group("what to search")
    what.add_argument(
        "--preset",
        default="default",
        metavar="NAME",
        help="defaults for trials, epochs, subset and device: 'default' (about 15 minutes on a 2-core "
        "CPU) or 'poster' (the reference experiment on a GPU); flags override them",
    )
    what.add_argument(
        "--trials",
        type=_positive_int,
        metavar="N",
        help="finished (complete or pruned) configurations the study must hold, counted across resumes "
        "(a paused and resumed configuration counts once)",
    )
    what.add_argument(
        "--budget",
        metavar="EPOCHS|DURATION",
        help="bound the search by epochs trained (400) or by time (24h, 90m, 3600s), every trial's included "
        "and counted across resumes; new configurations start while what is left holds a first rung, and a "
        "trial still training when it runs out is cut; with --trials too, whichever ends first (without "
        "--trials the budget alone bounds the search)",
    )
    what.add_argument("--epochs", type=_positive_int, metavar="E", help="epochs of a trial that is never stopped")
    what.add_argument("--space", type=Path, metavar="FILE.toml", help="search space file (default: the poster's space)")
    what.add_argument("--hpo-sampler", default="tpe", metavar="NAME", help="Optuna sampler: random or tpe (default)")
    what.add_argument(
        "--seed", type=int, default=0, help="seed of the sampler and of each trial's training (default 0)"
    )

    stop = parser.add_argument_group("early stopping")
    stop.add_argument(
        "--policy",
        metavar="NAME",
        help="qhpo (default preset), poster (poster preset), none, or Optuna's median, sha, hyperband",
    )
    stop.add_argument(
        "--predictor",
        default="qsvr",
        metavar="NAME",
        help="final-value predictor of the qhpo and poster policies: svr, qsvr (default), qsvr-ensemble",
    )
    stop.add_argument(
        "--annealer",
        metavar="NAME",
        help="sampler that trains the QSVR (qhpo.samplers names: sa, qhpo-sa, dwave, hybrid, ...; "
        "default: the package default simulated annealer)",
    )

    stop.add_argument(
        "--min-completed",
        type=_positive_int,
        metavar="N",
        help="trials of the qhpo and poster policies that run to the end before any is stopped "
        "(the predictor's first training data; policy default 10)",
    )
    stop.add_argument(
        "--policy-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an option of the stopping policy, repeatable, for example reduction_factor=3 or "
        "min_resource=2 for qhpo (docs/policies.md lists each policy's options); stored in the study",
    )

    data = parser.add_argument_group("data and device")
    data.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder that contains cifar-10-batches-py/ (default: $QHPO_DATA_DIR or ~/.cache/qhpo/data)",
    )
    data.add_argument("--download", action="store_true", help="fetch CIFAR-10 into the data folder first")
    data.add_argument(
        "--subset",
        type=_subset,
        default=argparse.SUPPRESS,
        metavar="N",
        help="train on N training images ('all' for the 45,000)",
    )
    data.add_argument(
        "--val-size",
        type=_positive_int,
        metavar="N",
        help="validation images held out of the training set (preset default)",
    )
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation split (default 0)")
    data.add_argument(
        "--device",
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:N (preset default; on Ray, cuda:N is cuda: Ray picks the GPUs)",
    )
    data.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="training arithmetic: auto = bf16 autocast on GPUs of compute capability 8.0 or "
        "higher and on CPUs with native bf16, float32 elsewhere",
    )

    where = parser.add_argument_group("storage and workers")
    where.add_argument(
        "--storage",
        metavar="URL",
        help="SQLite file or URL, a database URL (postgresql://USER:PASSWORD@HOST/DB uses psycopg 3; several "
        "nodes on one database: docs/multinode.md), or journal:PATH for an Optuna journal file "
        "(default qhpo-runs/qhpo.db)",
    )
    where.add_argument("--study", metavar="NAME", help="study name (default cifar10-<preset>)")
    where.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="folder for checkpoints and plots (default: the storage file's folder)",
    )
    where.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="worker processes on the storage, spread over the visible GPUs "
        "(default: --trials-per-gpu per GPU, or 1 on the CPU)",
    )
    where.add_argument(
        "--trials-per-gpu",
        type=_positive_int,
        default=1,
        metavar="K",
        help="trials that share one GPU: K workers per GPU, or 1/K GPU per Ray trial (default 1; "
        "see benchmarks/gpu_check.sh to measure the best K)",
    )
    where.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep every trial's checkpoint when the search ends, those of paused trials included "
        "(default: only the best trial's; with --backend ray, Ray Tune keeps each trial's last "
        "checkpoint in its experiment folder either way)",
    )
    where.add_argument(
        "--checkpoint-dir",
        type=Path,
        metavar="DIR",
        help="folder for the checkpoints, in DIR/<study>/: one that every node of the search shares, so a "
        "trial retried or resumed on another node continues there (default: <run-dir>/<study>/checkpoints)",
    )
    where.add_argument(
        "--heartbeat-interval",
        type=_positive_seconds,
        metavar="S",
        help=f"seconds between a running trial's heartbeats in the storage (default {HEARTBEAT_INTERVAL:g})",
    )
    where.add_argument(
        "--grace-period",
        type=_positive_seconds,
        metavar="S",
        help="seconds without a heartbeat after which a process on another host takes a trial's process "
        f"as dead and retries the trial (default {GRACE_PERIOD:g}; at least twice --heartbeat-interval)",
    )
    where.add_argument("--quiet", action="store_true", help="print no progress and no report")

    ray = parser.add_argument_group("backend")
    ray.add_argument("--backend", default="optuna", metavar="NAME", help="optuna (default) or ray")
    ray.add_argument("--address", metavar="ADDR", help="Ray cluster address (ray backend)")
    ray.add_argument(
        "--gpus-per-trial",
        type=float,
        metavar="G",
        help="share of one GPU per trial, 0 to 1 (ray backend; default 1/--trials-per-gpu on a GPU)",
    )
    ray.add_argument("--cpus-per-trial", type=float, metavar="C", help="CPUs per trial (ray backend)")
    ray.add_argument("--resume", action="store_true", help="resume the Ray experiment of the same study (ray backend)")


def config_from_args(args: argparse.Namespace):
    """Merge the preset with the flags given."""
    from qhpo.runner import GRACE_PERIOD, HEARTBEAT_INTERVAL, RunConfig, default_workers, preset

    base = preset(args.preset)
    device = args.device or base.device
    workers = args.workers
    if workers is None:
        workers = default_workers(device, args.trials_per_gpu) if args.backend == "optuna" else 1
    return RunConfig(
        study=args.study or f"cifar10-{args.preset}",
        storage=args.storage,
        run_dir=args.run_dir,
        preset=args.preset,
        trials=args.trials or (None if args.budget is not None else base.trials),
        budget=args.budget,
        epochs=args.epochs or base.epochs,
        subset=args.subset if hasattr(args, "subset") else base.subset,
        val_size=args.val_size or base.val_size,
        split_seed=args.split_seed,
        device=device,
        precision=args.precision,
        data_dir=args.data_dir,
        download=args.download,
        space=args.space,
        hpo_sampler=args.hpo_sampler,
        policy=args.policy or base.policy,
        predictor=args.predictor,
        annealer=args.annealer,
        min_completed=args.min_completed or base.min_completed,
        policy_options=_policy_options(
            args.policy_option, args.policy or base.policy, budget=args.budget, epochs=args.epochs or base.epochs
        ),
        workers=workers,
        seed=args.seed,
        progress=not args.quiet,
        backend=args.backend,
        address=args.address,
        gpus_per_trial=args.gpus_per_trial,
        trials_per_gpu=args.trials_per_gpu,
        cpus_per_trial=args.cpus_per_trial,
        resume=args.resume,
        keep_checkpoints=args.keep_checkpoints,
        checkpoint_dir=args.checkpoint_dir,
        heartbeat_interval=args.heartbeat_interval or HEARTBEAT_INTERVAL,
        grace_period=args.grace_period or GRACE_PERIOD,
    )


def _policy_options(items: list[str], policy: str, *, budget: str | None = None, epochs: int = 1) -> dict:
    """``--policy-option`` values; under ``--budget``, over the rule's budget defaults
    (``qhpo._policy_options.budget_defaults``: qhpo's first rung at E/40, stored only where it
    changes the rule, not for the presets' 8 epochs; and qhpo's quorum of the budget,
    ``quorum=2`` at the rungs up to ``quorum_span=0.3`` of training; its ``agreement=off`` is
    applied by :meth:`RunConfig.stopping_options` and not stored)."""
    from qhpo._policy_options import budget_defaults, parse_policy_option

    options: dict = {}
    for item in items:
        rule, name, value = parse_policy_option(item)
        if rule is not None and rule != policy:
            raise QhpoError(
                f"--policy-option {item!r} names rule {rule!r}, but the search runs {policy!r}; "
                "give NAME=VALUE for the policy of --policy."
            )
        if name in options:
            raise QhpoError(f"--policy-option sets {name!r} twice; give it once.")
        options[name] = value
    defaults = budget_defaults(policy, epochs) if budget is not None else {}
    if "min_resource" in defaults:
        from qhpo.optuna import first_rung

        if first_rung(policy, epochs, defaults) == first_rung(policy, epochs):
            del defaults["min_resource"]
    # the budget's agreement=off is the rule a budget's study was made with before the option
    # existed: RunConfig.stopping_options applies it, and the study does not store it
    defaults.pop("agreement", None)
    merged = {**defaults, **options}
    if "quorum_span" in defaults and "quorum_span" not in options and merged.get("quorum", 0) <= 1:
        # no rung waits, so the span changes nothing: a study stored without it (a budget's search
        # before the span existed, quorum=0) resumes with --policy-option quorum=0
        del merged["quorum_span"]
    return merged


def cmd_run(args: argparse.Namespace) -> int:
    from qhpo.runner import BACKENDS, run_search

    config = config_from_args(args)
    if config.backend not in BACKENDS:
        raise QhpoError(f"unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}.")
    _refuse_other_backends_flags(args, config)
    backend = _backend(config)
    return backend.exit_status(run_search(config, backend), config)


def _refuse_other_backends_flags(args: argparse.Namespace, config) -> None:
    """Flags that apply to the other backend only: one sentence naming them."""
    if config.backend == "ray":
        optuna_only = [
            flag
            for flag, given in (
                ("--checkpoint-dir", args.checkpoint_dir),
                ("--heartbeat-interval", args.heartbeat_interval),
                ("--grace-period", args.grace_period),
            )
            if given is not None
        ]
        if optuna_only:
            raise QhpoError(
                f"{', '.join(optuna_only)} apply to --backend optuna only; Ray Tune keeps its own checkpoints "
                "and tells dead trials by its cluster."
            )
        return
    ray_only = [
        flag
        for flag, value in (
            ("--address", config.address),
            ("--gpus-per-trial", config.gpus_per_trial),
            ("--cpus-per-trial", config.cpus_per_trial),
            ("--resume", config.resume or None),
        )
        if value is not None
    ]
    if ray_only:
        raise QhpoError(
            f"{', '.join(ray_only)} apply to --backend ray only; the Optuna backend resumes by running "
            "the same command again."
        )


def _backend(config):
    """The :class:`qhpo.runner.SearchBackend` that ``--backend`` names.

    Without Ray Tune, importing :mod:`qhpo.ray` raises qhpo's one-sentence error naming the extra.
    """
    if config.backend == "ray":
        from qhpo.ray import RayBackend

        return RayBackend()
    from qhpo.runner import OptunaBackend

    return OptunaBackend()
