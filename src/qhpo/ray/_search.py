"""``qhpo run --backend ray``: the CIFAR-10 search of ``qhpo run`` on a Ray cluster.

The same study settings, search space, HPO sampler (Optuna's, through Ray Tune's
``OptunaSearch``) and stopping policy as the Optuna backend; Ray Tune places the trials on
the cluster (``--gpus-per-trial 0.5`` puts two trials on each GPU) and the
:class:`PredictiveScheduler` stops them. Every trial that ends is written into the Optuna
study of the run as it ends, so ``qhpo report``, the summary and the plots read a Ray
search exactly as an Optuna one; a run whose driver was killed continues with ``--resume``
(``Tuner.restore``), its scheduler state restored from Ray Tune's experiment checkpoint.
The steps every backend shares (data, study, test of the best configuration, summary,
plots) are :func:`qhpo.runner.run_search`'s; :class:`RayBackend` runs the trials.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
from optuna.trial import TrialState
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from qhpo._errors import QhpoError
from qhpo.policies import DecisionEpochs
from qhpo.ray._budget import SearchBudget
from qhpo.ray._cluster import connect_ray
from qhpo.ray._recorder import RAY_TRIAL_ATTR, StudyRecorder, _SuggestFromSpace
from qhpo.ray._recorder import SCHEDULER_STATE_FILE as SCHEDULER_STATE_FILE  # public: the state file
from qhpo.ray._scheduler import PredictiveScheduler, RunningTrialLimiter, SchedulerStateCallback
from qhpo.ray._trainable import (
    CHECKPOINT_FILE,
    EPOCH_KEY,
    METRIC,
    TrialSettings,
    train_cifar_trial,
)
from qhpo.runner import (
    CHECKPOINT_ATTR,
    RAY_BUDGET_ATTR,
    Budget,
    RunConfig,
    SearchRun,
    SearchSummary,
    StorageLocation,
    checkpoint_path,
    hpo_sampler,
    search_space,
)
from qhpo.runner import run_search as run_lifecycle

#: Folder (inside ``<run dir>/<study>``) of Ray Tune's experiment.
EXPERIMENT_NAME = "ray"


def trial_resources(config, cluster_gpus: float) -> tuple[dict[str, float], str]:
    """Ray resources of one trial and the device its training uses.

    The trainer trains on one device, so a trial reserves one GPU or a fraction of one:
    ``--gpus-per-trial G`` with ``0 < G <= 1``, or ``--trials-per-gpu K`` for ``G = 1/K``;
    by default ``G = 1/K`` (``K`` defaults to 1) when ``--device`` is ``cuda``, ``cuda:N`` or
    ``auto`` on a cluster with GPUs, and ``G = 0`` otherwise. On Ray the GPU index of
    ``cuda:N`` is not used: Ray chooses each trial's GPU and shows it to the trial as
    ``cuda:0`` (``CUDA_VISIBLE_DEVICES``).

    Example:
        >>> from qhpo.runner import RunConfig
        >>> trial_resources(RunConfig(study="s", device="cuda:1", trials_per_gpu=2), cluster_gpus=4)
        ({'cpu': 1.0, 'gpu': 0.5}, 'cuda')

    Args:
        config: The run's :class:`qhpo.runner.RunConfig`.
        cluster_gpus: GPUs of the Ray cluster (``ray.cluster_resources()["GPU"]``).

    Raises:
        QhpoError: The settings contradict each other or ask for more than the cluster has.
    """
    cpus = 1.0 if config.cpus_per_trial is None else float(config.cpus_per_trial)
    if not cpus > 0:
        raise QhpoError(f"--cpus-per-trial must be positive, not {config.cpus_per_trial}.")
    per_gpu = int(config.trials_per_gpu)
    if per_gpu < 1:
        raise QhpoError(f"--trials-per-gpu must be a positive whole number, not {config.trials_per_gpu}.")
    device = str(config.device).strip().lower()
    wants_gpu = device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)
    if config.gpus_per_trial is None:
        gpus = 1.0 / per_gpu if wants_gpu else 0.0
    else:
        gpus = float(config.gpus_per_trial)
        if per_gpu != 1:
            raise QhpoError("--gpus-per-trial and --trials-per-gpu say the same thing; pass only one of them.")
        if not 0 <= gpus <= 1:
            raise QhpoError(
                f"--gpus-per-trial must be between 0 and 1 (a trial trains on one GPU), "
                f"not {config.gpus_per_trial}; use --trials-per-gpu to share a GPU."
            )
        if gpus > 0 and device == "cpu":
            raise QhpoError(
                "--gpus-per-trial asks for GPUs but --device is cpu; pass --device cuda or --gpus-per-trial 0."
            )
        if gpus == 0 and device.startswith("cuda"):
            raise QhpoError(
                f"--gpus-per-trial 0 would train on the CPU but --device is {config.device}; "
                "pass a GPU share above 0 or --device cpu."
            )
    if gpus > cluster_gpus:
        raise QhpoError(
            f"each trial asks for {gpus:g} GPU(s) (--device {config.device}) but the Ray cluster has "
            f"{cluster_gpus:g}; lower --gpus-per-trial, pass --device cpu, or add GPU nodes to the cluster."
        )
    return {"cpu": cpus, "gpu": gpus}, ("cuda" if gpus > 0 else "cpu")


def _experiment_to_run(config, study: optuna.Study, experiment: Path):
    """``config`` with ``resume`` settled: refuse what cannot be started or resumed."""
    exists = (experiment / "tuner.pkl").exists()
    if exists and not any(experiment.glob("experiment_state-*.json")):
        # Stopped before Ray Tune's first experiment checkpoint: nothing to resume from.
        shutil.rmtree(experiment)
        exists = False
        if config.resume and not study.trials:
            config = config.with_(resume=False)
    if config.resume and not exists:
        raise QhpoError(f"there is no Ray experiment to resume in {experiment}; run without --resume to start it.")
    if not config.resume and exists:
        raise QhpoError(
            f"study {config.study!r} already has a Ray experiment in {experiment}; pass --resume to "
            "continue it, or choose a new --study."
        )
    if not config.resume and study.trials:
        raise QhpoError(
            f"study {config.study!r} already holds {len(study.trials)} trials of another run; "
            "choose a new --study for the Ray backend."
        )
    started_with = study.user_attrs.get(RAY_BUDGET_ATTR, "none")
    if config.resume and exists and started_with != (config.budget or "none"):
        # the scheduler that keeps the budget's account is restored from the experiment as it started
        raise QhpoError(
            f"the Ray experiment of study {config.study!r} started with --budget {started_with}; "
            f"resume it with the same --budget, not {config.budget or 'none'}."
        )
    if not config.resume:
        study.set_user_attr(RAY_BUDGET_ATTR, config.budget or "none")
    return config


def _scheduler(config) -> PredictiveScheduler:
    budget = None if config.budget is None else SearchBudget(Budget.parse(config.budget), config.first_rung())
    return PredictiveScheduler(
        config.policy,
        max_epochs=config.epochs,
        epoch_attr=EPOCH_KEY,
        predictor=config.predictor,
        sampler=config.annealer,
        random_state=config.seed,
        background=True,
        explain=True,
        budget=budget,
        **config.stopping_options(),
    )


def _decision_epochs(config, scheduler: PredictiveScheduler | None) -> DecisionEpochs:
    """The policy's decision epochs; on a resume (no new scheduler) from a policy built for that alone."""
    if scheduler is not None:
        return scheduler.driver.epochs
    from qhpo.policies import make_policy

    # The decision epochs depend on the rule, not on the predictor: no annealer, no thread.
    return DecisionEpochs.of(
        make_policy(config.policy, max_epochs=config.epochs, predictor="svr", **config.stopping_options())
    )


def _trainable(config, decision_epochs: DecisionEpochs, resources: dict[str, float], device: str):
    """The trial function with its shared settings and resources attached."""
    settings = TrialSettings(
        data_dir=str(config.data_dir),
        subset=config.subset,
        val_size=config.val_size,
        split_seed=config.split_seed,
        device=device,
        max_epochs=config.epochs,
        seed=config.seed,
        threads=max(1, int(resources["cpu"])),
        precision=config.precision,
        checkpoint_epochs=decision_epochs.epochs,
    )
    return tune.with_resources(tune.with_parameters(train_cifar_trial, settings=settings), resources)


def _new_tuner(config, trainable, scheduler: PredictiveScheduler, location, space, folder: Path) -> tune.Tuner:
    recorder = StudyRecorder(scheduler, location.url, config.study, str(location.run_dir), space.distributions())
    searcher = OptunaSearch(
        space=_SuggestFromSpace(space),
        metric=METRIC,
        mode="max",
        sampler=hpo_sampler(config.hpo_sampler, seed=config.seed),
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            # the limiter also starts no configuration that a budget cannot hold
            search_alg=(
                RunningTrialLimiter(searcher, config.workers, scheduler)
                if config.workers > 1 or scheduler.budget is not None
                else searcher
            ),
            scheduler=scheduler,
            num_samples=-1 if config.trials is None else config.trials,  # -1: until the budget ends it
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT_NAME,
            storage_path=str(folder),
            verbose=1 if config.progress else 0,
            callbacks=[SchedulerStateCallback(scheduler), recorder],
            # Every checkpoint is kept until the search ends (_drop_superseded_checkpoints):
            # Ray Tune's num_to_keep deletes a trial's previous checkpoint before it saves
            # the experiment state that stops naming it, so a driver killed in between
            # leaves a state that --resume cannot restore.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )


class RayBackend:
    """Runs the trials on a Ray cluster through Ray Tune (:class:`PredictiveScheduler` stops
    them, :class:`StudyRecorder` writes each into the study as it ends); a driver that was
    killed continues with ``config.resume`` (``Tuner.restore``)."""

    def prepare(self, config: RunConfig, location: StorageLocation) -> None:
        """Nothing to read before the study exists: each Ray worker reads the data itself."""

    def run(self, config: RunConfig, location: StorageLocation, study: optuna.Study) -> SearchRun:
        """Start or restore the Ray Tune experiment, run it to its end, keep the best trial's checkpoint."""
        folder = location.run_dir / config.study
        experiment = folder / EXPERIMENT_NAME
        config = _experiment_to_run(config, study, experiment)
        connect_ray(config.address, quiet=not config.progress)
        import ray

        resources, device = trial_resources(config, float(ray.cluster_resources().get("GPU", 0.0)))
        scheduler = None if config.resume else _scheduler(config)  # a resumed one comes from the experiment
        trainable = _trainable(config, _decision_epochs(config, scheduler), resources, device)
        if scheduler is None:
            # Errored trials were retried once and recorded as FAIL: they stay ended.
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=False)
        else:
            tuner = _new_tuner(config, trainable, scheduler, location, search_space(config.space), folder)
        results = tuner.fit()
        study = optuna.load_study(study_name=config.study, storage=location.open())  # as the recorder wrote it
        _keep_best_checkpoint(study, results, folder / "checkpoints")
        _drop_superseded_checkpoints(results)
        # The driver tests the best trial on its own GPU, or on its CPU when it has none:
        # checkpoints restore on any device.
        return SearchRun(study, test_device="auto", records=f"Ray experiment in {experiment}")

    def exit_status(self, summary: SearchSummary, config: RunConfig) -> int:
        """0 when every trial of the search ended (complete, stopped or failed: Ray Tune retried
        a failed one once) and the trials asked for were run or the budget ended the search,
        1 otherwise."""
        ended = summary.complete + summary.pruned + summary.failed
        if config.budget is not None:
            return 0 if summary.running == 0 else 1
        return 0 if ended >= config.trials else 1


def run_search(config: RunConfig) -> int:
    """Run (or with ``config.resume`` continue) the search ``config`` describes on Ray Tune:
    :func:`qhpo.runner.run_search` with the :class:`RayBackend`.

    Args:
        config: A :class:`qhpo.runner.RunConfig` (``backend="ray"``; ``address``,
            ``gpus_per_trial``, ``trials_per_gpu``, ``cpus_per_trial`` and ``resume`` apply
            here).

    Returns:
        0 when every trial of the search ended (complete, stopped or failed), 1 otherwise.
    """
    config = config.with_(backend="ray")  # the settings are checked as a Ray search's
    backend = RayBackend()
    return backend.exit_status(run_lifecycle(config, backend), config)


def _drop_superseded_checkpoints(results) -> None:
    """Delete every Ray checkpoint of each trial but its last, once the search has ended.

    While the search runs Ray Tune keeps them all (``CheckpointConfig(num_to_keep=None)``):
    the experiment state Ray Tune saves last may name a trial's earlier checkpoint, and a
    resumed driver restores that one. When ``fit`` has returned, the saved state names each
    trial's last checkpoint (``Result.checkpoint``) and nothing older is needed.
    """
    for result in results:
        if result.checkpoint is None or result.path is None:
            continue
        last = Path(result.checkpoint.path).resolve()
        for folder in Path(result.path).glob("checkpoint_*"):
            if folder.is_dir() and folder.resolve() != last:
                shutil.rmtree(folder, ignore_errors=True)


def _keep_best_checkpoint(study: optuna.Study, results, checkpoint_dir: Path) -> None:
    """Copy the best complete trial's last Ray checkpoint to where the test evaluation reads it."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    best = study.best_trial
    ray_id = best.user_attrs.get(RAY_TRIAL_ATTR)
    for result in results:
        if result.metrics.get("trial_id") == ray_id and result.checkpoint is not None:
            target = checkpoint_path(checkpoint_dir, best.user_attrs[CHECKPOINT_ATTR])
            target.parent.mkdir(parents=True, exist_ok=True)
            with result.checkpoint.as_directory() as source:
                saved = Path(source) / CHECKPOINT_FILE
                if not saved.is_file():
                    # Ray lost it (a driver killed while it was being written): the search's
                    # results stand, only the test evaluation of the best trial is skipped
                    print(
                        f"qhpo: the checkpoint of the best trial {best.number} is gone; its test accuracy is not measured."
                    )
                    return
                shutil.copyfile(saved, target)
            return
