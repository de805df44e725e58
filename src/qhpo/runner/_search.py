"""``qhpo run`` from start to end: check the inputs, create the study, run the workers,
report, test the best configuration once, draw the plots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from qhpo._environment import module_command
from qhpo._errors import QhpoError
from qhpo.optuna import checkpoint_key, configuration_counts
from qhpo.runner._budget import Budget, BudgetTracker, budget_summary
from qhpo.runner._config import RunConfig
from qhpo.runner._plots import draw_plots
from qhpo.runner._progress import SearchProgress
from qhpo.runner._settings_checks import CIFAR10_TRAIN_IMAGES as CIFAR10_TRAIN_IMAGES  # public: the training images
from qhpo.runner._settings_checks import MAX_SEED as MAX_SEED  # public: the largest seed
from qhpo.runner._settings_checks import check_config
from qhpo.runner._storage import (
    CHECKPOINT_ATTR,
    StorageLocation,
    checkpoint_folder,
    connection_errors,
    recover_interrupted_trials,
    resolve_storage,
)
from qhpo.runner._study import create_study, search_space
from qhpo.runner._summary import TEST_ATTR, SearchSummary, print_summary, summarize
from qhpo.runner._trial import checkpoint_path, remove_scratch_checkpoints, trial_config
from qhpo.runner._worker import count_states, run_worker


def prepare_data(config: RunConfig) -> Path:
    """The data folder, fetched first with ``--download``; one sentence when it is missing."""
    from qhpo.workload import BATCHES_FOLDER, download_cifar10, remove_partial_downloads, resolve_data_dir

    root = resolve_data_dir(config.data_dir)
    remove_partial_downloads(root)
    if config.download:
        download_cifar10(root, progress=config.progress)
    if not (root / BATCHES_FOLDER).is_dir():
        raise QhpoError(
            f"CIFAR-10 was not found: {root} has no {BATCHES_FOLDER} folder; pass --data-dir with the folder that "
            f"contains {BATCHES_FOLDER}, or --download to fetch it there."
        )
    return root


def run_optuna_search(config: RunConfig) -> SearchSummary:
    """Run (or resume) the search that ``config`` describes and report it.

    Returns:
        The summary of the study at the end.
    """
    check_config(config)
    space = search_space(config.space)
    config = config.with_(data_dir=prepare_data(config))
    location = resolve_storage(config.storage, config.run_dir)
    # Read the data before the study exists: a broken or hostile batch leaves no study behind.
    from qhpo.workload import load_cifar10, resolve_device

    device = resolve_device(config.device) if config.workers == 1 else "cpu"
    data = load_cifar10(
        config.data_dir, subset=config.subset, val_size=config.val_size, split_seed=config.split_seed, device=device
    )
    with connection_errors(location):
        return _search(config, location, space, data)


def _search(config: RunConfig, location: StorageLocation, space, data) -> SearchSummary:
    study = create_study(config, location, space)
    remove_orphan_files(
        location.run_dir / config.study,
        checkpoint_folder(location, config.study, config.checkpoint_dir),
        shared=config.checkpoint_dir is not None,
        grace_period=config.grace_period,
    )
    recovered = recover_interrupted_trials(study, location)
    finished, _ = count_states(study)
    console = _console(config)
    if recovered:
        console.print(
            f"resuming study {config.study!r}: trial(s) {', '.join(map(str, recovered))} of an interrupted run "
            "will be retried from their checkpoints",
            highlight=False,
        )
    elif finished:
        of = "" if config.trials is None else f" of {config.trials}"
        console.print(f"resuming study {config.study!r}: {finished}{of} trials already finished", highlight=False)
    if config.budget is not None and finished:
        console.print(budget_summary(study, Budget.parse(config.budget)), highlight=False)

    with SearchProgress(
        target_trials=config.trials, max_epochs=config.epochs, enabled=config.progress, console=console
    ) as progress:
        progress.skip_existing(study)
        if config.trials is None or finished < config.trials:  # a budget's end is the workers' to find
            if config.workers == 1:
                run_worker(config, location, on_change=progress.update, data=data)
            else:
                del data  # each worker process reads its own copy
                _run_worker_processes(config, location, study, progress)
        progress.update(study, force=True)

    try:
        evaluate_best_on_test(study, config, location)
    except QhpoError as error:  # the search's results stand without the test figure
        console.print(f"qhpo: the best configuration was not tested: {error}", highlight=False)
    summary = summarize(study, max_epochs=config.epochs, target_trials=config.trials)
    if config.progress:
        from rich.console import Console

        print_summary(summary, Console(width=None if sys.stdout.isatty() else 120, highlight=False))
        if config.budget is not None:
            print(budget_summary(study, Budget.parse(config.budget)))
    paths = draw_plots(study, location.run_dir / config.study, max_epochs=config.epochs)
    if config.progress:
        print(f"plots: {paths[0]} and {paths[1]}; study {config.study!r} in {location.describe()}")
    _drop_checkpoints(study, location, config)
    return summary


def remove_orphan_files(
    study_dir: Path, checkpoint_dir: Path | None = None, *, shared: bool = False, grace_period: float = 0.0
) -> list[Path]:
    """Remove the checkpoints being written and worker settings files of processes that are gone.

    Args:
        checkpoint_dir: The study's checkpoint folder (default ``study_dir/checkpoints``).
        shared: Other hosts write there too (see :func:`remove_scratch_checkpoints`).
    """
    from qhpo._files import remove_orphans

    return [
        *remove_scratch_checkpoints(
            study_dir / "checkpoints" if checkpoint_dir is None else checkpoint_dir,
            shared=shared,
            grace_period=grace_period,
        ),
        *remove_orphans(study_dir, r"\.workers-(\d+)-.*\.json"),
    ]


def _console(config: RunConfig):
    from rich.console import Console

    return Console(stderr=True, quiet=not config.progress, soft_wrap=True)


def evaluate_best_on_test(study: optuna.Study, config: RunConfig, location: StorageLocation) -> dict | None:
    """Test accuracy of the best complete trial, measured once and stored in the study.

    The test split is read here only: never by a decision. A resumed run that finds the same
    best trial reuses the stored figure.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial
    stored = study.user_attrs.get(TEST_ATTR)
    if stored and stored.get("trial") == best.number:
        return stored
    from qhpo.workload import TrialTrainer, load_cifar10, resolve_device

    path = checkpoint_path(checkpoint_folder(location, config.study, config.checkpoint_dir), checkpoint_key(best))
    if not path.exists():
        return stored
    device = resolve_device(config.device)
    data = load_cifar10(
        config.data_dir, subset=config.subset, val_size=config.val_size, split_seed=config.split_seed, device=device
    )
    trainer = TrialTrainer.from_checkpoint(
        path, trial_config(best, search_space(config.space)), data, device=device, precision=config.precision
    )
    result = {
        "trial": best.number,
        "accuracy": float(trainer.test_accuracy()),
        "images": len(data.test),
        "validation_accuracy": float(best.value),
    }
    study.set_user_attr(TEST_ATTR, result)
    return result


def _drop_checkpoints(study: optuna.Study, location: StorageLocation, config: RunConfig) -> None:
    """Once the search is done, keep only the best trial's checkpoint and those that waiting
    retries continue from; paused trials that were never resumed lose theirs too, unless
    ``--keep-checkpoints`` keeps every checkpoint (a later run with more ``--trials`` can then
    still resume them)."""
    _, running = count_states(study)
    if not search_ended(study, config) or running or config.keep_checkpoints:
        return
    folder = checkpoint_folder(location, config.study, config.checkpoint_dir)
    keep = {
        checkpoint_path(folder, t.user_attrs[CHECKPOINT_ATTR]).name
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if CHECKPOINT_ATTR in t.user_attrs
    }
    if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        best = study.best_trial
        keep.add(checkpoint_path(folder, checkpoint_key(best)).name)
    for path in folder.glob("trial-*.pt"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def search_ended(study: optuna.Study, config: RunConfig) -> bool:
    """Whether the study holds ``config.trials`` finished configurations, or its budget
    leaves no room for a new one (a run with a larger budget or more trials goes on)."""
    trials = study.get_trials(deepcopy=False)
    finished, _ = configuration_counts(trials)
    if config.trials is not None and finished >= config.trials:
        return True
    if config.budget is None:
        return False
    tracker = BudgetTracker(Budget.parse(config.budget), config.first_rung())
    return not tracker.room_for_new(tracker.left(study, trials), trials)


def _set_parent_death_signal() -> None:
    """Linux: the worker dies with the launching process, so a killed run leaves no orphans."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _run_worker_processes(
    config: RunConfig, location: StorageLocation, study: optuna.Study, progress: SearchProgress
) -> None:
    """Start ``config.workers`` worker processes on the storage and follow them to the end."""
    gpus = _visible_gpus(config)
    spec = {
        "config": config.with_(progress=False).as_dict(),
        "url": location.url,
        "run_dir": str(location.run_dir),
        "kind": location.kind,
    }
    log_dir = location.run_dir / config.study
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", prefix=f".workers-{os.getpid()}-", suffix=".json", dir=log_dir, delete=False
    ) as handle:
        json.dump(spec, handle)
    processes = []
    try:
        for index in range(config.workers):
            env = dict(os.environ)
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
            log = open(log_dir / f"worker-{index}.log", "a")
            processes.append(
                (
                    subprocess.Popen(
                        module_command("qhpo.runner", handle.name, str(index)),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
                    ),
                    log,
                )
            )
        while [p.poll() for p, _ in processes].count(None):  # poll every one: a dead worker is reaped at once
            progress.update(study)
            time.sleep(1.0)
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()
        Path(handle.name).unlink(missing_ok=True)
    failed = [(i, p.returncode) for i, (p, _) in enumerate(processes) if p.returncode != 0]
    if failed:
        last = _last_line(log_dir / f"worker-{failed[0][0]}.log")
        raise QhpoError(
            f"worker {failed[0][0]} ended with status {failed[0][1]} ({last}); see {log_dir}/worker-*.log, "
            "then run the same command again to resume."
        )


def default_workers(device: str, trials_per_gpu: int = 1) -> int:
    """Workers when ``--workers`` is not given: ``trials_per_gpu`` per GPU the run trains on, else one."""
    import torch

    on_gpu = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not on_gpu:
        return 1
    return max(1, len(_visible_gpus(device))) * max(1, int(trials_per_gpu))


def _visible_gpus(config: RunConfig | str) -> list[str]:
    """One GPU per worker when the run trains on CUDA and several GPUs are visible."""
    device = config if isinstance(config, str) else config.device
    if device not in ("auto", "cuda"):
        return []
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in visible.split(",")] if visible else [str(i) for i in range(torch.cuda.device_count())]
    return ids


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"
