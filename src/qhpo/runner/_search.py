"""The Optuna backend of ``qhpo run``: worker threads or processes that claim trials on the
Optuna storage, clean up after dead processes and resume interrupted runs; the steps every
backend shares are :func:`qhpo.runner.run_search`'s."""

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
from qhpo.runner._lifecycle import SearchRun, run_search, status_console
from qhpo.runner._progress import SearchProgress
from qhpo.runner._settings_checks import CIFAR10_TRAIN_IMAGES as CIFAR10_TRAIN_IMAGES  # public: the training images
from qhpo.runner._settings_checks import MAX_SEED as MAX_SEED  # public: the largest seed
from qhpo.runner._storage import CHECKPOINT_ATTR, StorageLocation, checkpoint_folder, recover_interrupted_trials
from qhpo.runner._summary import SearchSummary
from qhpo.runner._trial import checkpoint_path, remove_scratch_checkpoints
from qhpo.runner._worker import count_states, run_worker


class OptunaBackend:
    """Runs the trials on the Optuna storage: in this process, or in ``config.workers`` worker
    processes spread over the visible GPUs; a run that was interrupted resumes when the same
    command runs again (its trials retried from their checkpoints)."""

    def __init__(self) -> None:
        self._data = None

    def prepare(self, config: RunConfig, location: StorageLocation) -> None:
        """Read the data before the study exists: a broken or hostile batch leaves no study behind."""
        from qhpo.workload import load_cifar10, resolve_device

        device = resolve_device(config.device) if config.workers == 1 else "cpu"
        self._data = load_cifar10(
            config.data_dir, subset=config.subset, val_size=config.val_size, split_seed=config.split_seed, device=device
        )

    def run(self, config: RunConfig, location: StorageLocation, study: optuna.Study) -> SearchRun:
        """Clean up after dead processes, announce a resumption, train until the search ends,
        then drop the checkpoints nothing will continue from."""
        data, self._data = self._data, None
        console = status_console(config)
        finished = _resume(config, location, study, console)
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
        _drop_checkpoints(study, location, config)  # the best trial's stays, to be tested
        return SearchRun(study, test_device=config.device)

    def exit_status(self, summary: SearchSummary, config: RunConfig) -> int:
        """0 when the study holds ``--trials`` finished configurations, or nothing runs when
        the ``--budget`` ended it; failed trials were retried and do not count."""
        if config.budget is not None:
            return 0 if summary.running == 0 else 1
        return 0 if summary.finished >= config.trials else 1


def run_optuna_search(config: RunConfig) -> SearchSummary:
    """Run (or resume) the search that ``config`` describes on the Optuna backend and report it.

    Returns:
        The summary of the study at the end.
    """
    return run_search(config.with_(backend="optuna"), OptunaBackend())


def _resume(config: RunConfig, location: StorageLocation, study: optuna.Study, console) -> int:
    """Remove what dead processes left, retry their trials, say what the study holds; the
    finished configurations."""
    remove_orphan_files(
        location.run_dir / config.study,
        checkpoint_folder(location, config.study, config.checkpoint_dir),
        shared=config.checkpoint_dir is not None,
        grace_period=config.grace_period,
    )
    recovered = recover_interrupted_trials(study, location)
    finished, _ = count_states(study)
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
    return finished


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
