"""The checks of a run's settings: every setting a user can get wrong, one sentence each, before
anything is trained."""

from __future__ import annotations

from qhpo._errors import QhpoError
from qhpo._policy_options import check_policy_options
from qhpo.predictors import MODEL_NAMES, ORACLE, ORACLE_FINAL, ORACLE_REFUSAL
from qhpo.runner._budget import Budget
from qhpo.runner._config import HPO_SAMPLERS, OPTUNA_BASELINES, PREDICTIVE_POLICIES, RunConfig
from qhpo.runner._study import policy_names

#: Largest --seed and --split-seed: numpy's seeds are 32-bit.
MAX_SEED = 2**32 - 1
CIFAR10_TRAIN_IMAGES = 50_000


def check_config(config: RunConfig) -> None:
    """Every setting a user can get wrong, checked before anything is trained."""
    _check_choices(config)
    _check_numbers(config)
    _check_policy_settings(config)
    _check_devices(config)


def _check_choices(config: RunConfig) -> None:
    """The policy, predictor, HPO sampler and budget: names and values qhpo knows."""
    names = policy_names()
    if config.policy not in names:
        raise QhpoError(f"unknown policy {config.policy!r}; choose one of {', '.join(names)}.")
    if config.predictor in (ORACLE, ORACLE_FINAL):
        raise QhpoError(ORACLE_REFUSAL)
    if config.predictor not in MODEL_NAMES:
        raise QhpoError(f"unknown predictor {config.predictor!r}; choose one of {', '.join(MODEL_NAMES)}.")
    if config.hpo_sampler not in HPO_SAMPLERS:
        raise QhpoError(f"unknown HPO sampler {config.hpo_sampler!r}; choose one of {', '.join(HPO_SAMPLERS)}.")
    if config.budget is not None:
        Budget.parse(config.budget)  # one sentence for a malformed value
    if config.backend == "ray" and config.policy in OPTUNA_BASELINES:
        raise QhpoError(
            f"--policy {config.policy} is an Optuna pruner and runs with --backend optuna; "
            "on Ray choose qhpo, poster or none."
        )


def _check_numbers(config: RunConfig) -> None:
    """Counts, seeds, the validation split and the recovery timings: in range."""
    for name in ("trials", "epochs", "workers", "val_size"):
        value = getattr(config, name)
        if name == "trials" and value is None and config.budget is not None:
            continue  # the budget alone bounds the search
        if not isinstance(value, int) or value < 1:
            raise QhpoError(f"--{name.replace('_', '-')} must be a positive whole number, not {value!r}.")
    for name in ("seed", "split_seed"):
        value = getattr(config, name)
        if not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise QhpoError(f"--{name.replace('_', '-')} must be a whole number from 0 to {MAX_SEED}, not {value!r}.")
    if config.val_size >= CIFAR10_TRAIN_IMAGES:
        raise QhpoError(
            f"--val-size must leave training images: at most {CIFAR10_TRAIN_IMAGES - 1} of the "
            f"{CIFAR10_TRAIN_IMAGES} CIFAR-10 training images, not {config.val_size}."
        )
    for name in ("heartbeat_interval", "grace_period"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise QhpoError(f"--{name.replace('_', '-')} must be a positive number of seconds, not {value!r}.")
    if config.grace_period < 2 * config.heartbeat_interval:
        raise QhpoError(
            f"--grace-period ({config.grace_period:g} s) must be at least twice --heartbeat-interval "
            f"({config.heartbeat_interval:g} s), or a trial whose heartbeat comes late is taken as dead."
        )


def _check_policy_settings(config: RunConfig) -> None:
    """The policy's own settings, the epochs it needs, the training subset."""
    if config.min_completed is not None and config.min_completed < 2:
        raise QhpoError(f"--min-completed must be at least 2 trials, not {config.min_completed}.")
    if config.policy_options:
        if config.min_completed is not None and "min_completed" in config.policy_options:
            raise QhpoError("--min-completed and --policy-option min_completed=... both set it; give it once.")
        check_policy_options(config.policy, config.policy_options, epochs=config.epochs)
    if config.epochs < 2 and config.policy != "none":
        raise QhpoError("--epochs must be at least 2 for a trial to be stopped early; pass --epochs 2 or more.")
    if config.subset is not None and not 1 <= config.subset <= CIFAR10_TRAIN_IMAGES - config.val_size:
        raise QhpoError(
            f"--subset must be between 1 and {CIFAR10_TRAIN_IMAGES - config.val_size} training images "
            f"(the {CIFAR10_TRAIN_IMAGES} less --val-size), not {config.subset}."
        )


def _check_devices(config: RunConfig) -> None:
    """The training device and the annealer: usable on this machine."""
    from qhpo.workload import resolve_device

    try:
        resolve_device(config.device)  # --device cuda without a visible GPU: one sentence, before any study exists
    except ValueError:
        raise QhpoError(f"unknown device {config.device!r}; choose auto, cpu, cuda or cuda:N.") from None
    except QhpoError:
        if config.backend != "ray" or not config.address:
            raise  # a local Ray cluster trains on this machine: a GPU torch cannot see here, no trial can use
        # On a Ray cluster the GPUs may sit on other nodes: qhpo.ray checks the cluster's.
    if config.annealer is not None:
        from qhpo.samplers import SAMPLER_NAMES, make_sampler

        if config.annealer not in SAMPLER_NAMES:
            raise QhpoError(f"unknown annealer {config.annealer!r}; choose one of {', '.join(SAMPLER_NAMES)}.")
        if config.policy in PREDICTIVE_POLICIES and config.predictor != "svr":
            make_sampler(config.annealer)  # a D-Wave sampler without a token fails here, in one sentence
