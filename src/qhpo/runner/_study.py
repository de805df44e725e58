"""The Optuna study of a search: its sampler, its pruner, its search space, created once.

``--policy`` names either a qhpo policy, driven through :class:`qhpo.optuna.PredictivePruner`,
or one of Optuna's own pruners (:data:`qhpo.optuna.OPTUNA_PRUNERS`) with the defaults of
:func:`qhpo.optuna.optuna_pruner`, the same ``qhpo bench`` compares against.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna

from qhpo._errors import QhpoError
from qhpo._optuna_schema import METRIC_ATTR, SETTINGS_ATTR
from qhpo.optuna import MAX_EPOCHS_ATTR, OPTUNA_PRUNERS, PredictivePruner, can_freeze_thaw, optuna_pruner
from qhpo.runner._config import HPO_SAMPLERS, RunConfig
from qhpo.runner._storage import StorageLocation

#: Study user attribute with the settings a resumed run must share.


def search_space(path: Path | None):
    """The space of ``--space FILE.toml``, or the default CNN space."""
    from qhpo.workload import SearchSpace, default_search_space

    return default_search_space() if path is None else SearchSpace.from_toml(path)


def space_table(space) -> dict[str, Any]:
    """The space as plain JSON data (stored in the study, compared on resume)."""
    return {
        p.name: {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(p).items()
            if k != "name" and v not in (None, (), False)
        }
        for p in space.parameters
    }


def hpo_sampler(name: str, *, seed: int | None) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    raise QhpoError(f"unknown HPO sampler {name!r}; choose one of {', '.join(HPO_SAMPLERS)}.")


def make_pruner(config: RunConfig) -> optuna.pruners.BasePruner:
    if config.policy == "none":
        return optuna.pruners.NopPruner()
    if config.policy in OPTUNA_PRUNERS:
        return optuna_pruner(config.policy, config.epochs, **config.policy_options)
    options = config.stopping_options()
    # qhpo run resumes paused trials itself (its workers ask promote before each new trial), so a
    # policy that can pause runs with freeze-thaw on unless --policy-option resume=false says otherwise
    freeze_thaw = bool(options.pop("resume", True)) and can_freeze_thaw(config.policy)
    return PredictivePruner(
        config.policy,
        config.predictor,
        sampler=config.annealer,
        max_epochs=config.epochs,
        random_state=config.seed,
        policy_options=options,
        freeze_thaw=freeze_thaw,
    )


def policy_names() -> tuple[str, ...]:
    from qhpo.policies import POLICY_NAMES

    return tuple(dict.fromkeys((*POLICY_NAMES, *OPTUNA_PRUNERS)))


def create_study(config: RunConfig, location: StorageLocation, space) -> optuna.Study:
    """Create the study, or load it and check that it was created with the same settings.

    Runs once in the launching process, before any worker starts: several processes that
    create one SQLite study at the same moment race. On PostgreSQL the database serialises
    it (:meth:`StorageLocation.creation_lock`), so any number of ``qhpo run`` processes on
    any hosts may start on one fresh database at once.
    """
    storage = location.open()
    with location.creation_lock():
        return _create_or_check(config, location, space, storage)


def _create_or_check(config: RunConfig, location: StorageLocation, space, storage) -> optuna.Study:
    settings = config.study_settings(space_table(space))
    study = optuna.create_study(study_name=config.study, storage=storage, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get(SETTINGS_ATTR)
    if stored is None:
        if study.trials:
            raise QhpoError(
                f"the study {config.study!r} in {location.describe()} was not made by qhpo run; choose another --study."
            )
        study.set_user_attr(SETTINGS_ATTR, settings)
        study.set_user_attr(MAX_EPOCHS_ATTR, config.epochs)
        study.set_user_attr(METRIC_ATTR, "validation accuracy")
        return study
    stored_json = _normalise(stored)
    stored_json.setdefault("policy_options", {})  # a study made before the flag existed was made without options
    for name, value in _normalise(settings).items():
        if stored_json.get(name) != value:
            flag = {
                "space": "--space",
                "split_seed": "--split-seed",
                "val_size": "--val-size",
                "policy_options": "--policy-option values",
            }.get(name, f"--{name}")
            show = _show_options if name == "policy_options" else _show
            setting = "the policy options" if name == "policy_options" else f"{name} ="
            raise QhpoError(
                f"the study {config.study!r} was created with {setting} {show(stored_json.get(name))}, not "
                f"{show(value)}; run with the same {flag} to resume it, or choose a new --study."
            )
    return study


def _normalise(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, sort_keys=True))


def _show_options(options: Any) -> str:
    if not options:
        return "(none)"
    return " ".join(f"{k}={v}" for k, v in sorted(dict(options).items()))


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a different search space" if value else "{}"
    return repr(value)
