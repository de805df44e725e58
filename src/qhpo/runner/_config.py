"""What one ``qhpo run`` does: the resolved settings and the presets they start from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qhpo._errors import QhpoError
from qhpo._rules import predictive_rule_names
from qhpo.optuna import OPTUNA_PRUNERS
from qhpo.runner._recovery import GRACE_PERIOD, HEARTBEAT_INTERVAL

OPTUNA_BASELINES = OPTUNA_PRUNERS  # ``--policy`` values that are Optuna's pruners
HPO_SAMPLERS = ("random", "tpe")
BACKENDS = ("optuna", "ray")


@dataclass(frozen=True)
class Preset:
    """Defaults of a kind of search; any flag given on the command line overrides them.

    Attributes:
        trials: Finished (complete or pruned) trials the study must hold.
        epochs: Epochs of a trial that is never stopped.
        subset: Training images (None: all 45,000).
        val_size: Validation images held out of the 50,000 training images.
        device: ``auto``, ``cpu`` or ``cuda``.
        min_completed: Trials that run to the end before the predictive policies stop any
            (None: the policy's default).
        policy: The stopping policy (``--policy`` overrides it).
        description: One line for ``qhpo run --help``.
    """

    trials: int
    epochs: int
    subset: int | None
    val_size: int
    device: str
    description: str
    min_completed: int | None = None
    policy: str = "qhpo"


PRESETS: dict[str, Preset] = {
    # Sized from measured epoch times: on an idle 2-core CPU an epoch of 5,000 + 1,000 images
    # took 2.5 s on average within a search (docs/running.md), so one of 10,000 + 2,000 takes
    # about 5 s; 32 trials x 8 epochs is 256 epochs untouched and about 150 with early
    # stopping, about 13 minutes.
    "default": Preset(
        trials=32,
        epochs=8,
        subset=10000,
        val_size=2000,
        device="auto",
        description="a real search on a subset of CIFAR-10, about 15 minutes on a 2-core CPU",
        min_completed=6,
    ),
    # The poster's experiment: 100 trials of the full CNN search on all of CIFAR-10, on a GPU,
    # with as many epochs as the recorded reference curves (curves/cifar10_cnn.csv).
    "poster": Preset(
        trials=100,
        epochs=200,
        subset=None,
        val_size=5000,
        device="cuda",
        description="the reference experiment: 100 trials, all of CIFAR-10, 200 epochs, GPU, the poster's "
        "mid-training decision",
        policy="poster",
    ),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything a search needs, after presets and flags are merged.

    The settings that define the study's results (``epochs``, ``subset``, ``val_size``,
    ``split_seed``, ``space``, ``policy``, ``predictor``, ``policy_options``) are stored in the study and must
    match when a run resumes; ``trials`` (None: no limit, with a ``budget``), ``budget`` (epochs
    or a duration such as ``24h``, see :mod:`qhpo.runner._budget`), ``workers``, ``device``, ``precision`` and
    ``keep_checkpoints`` (keep every checkpoint when the search ends) may change, and so may
    ``checkpoint_dir`` (a folder every host shares; None: the run folder), ``heartbeat_interval``
    and ``grace_period`` (seconds between a running trial's heartbeats, and without one before
    a process on another host takes the trial's process as dead).
    ``trials_per_gpu`` trials share each GPU: worker processes per GPU on the Optuna backend,
    ``1 / trials_per_gpu`` of a GPU per trial on Ray.
    """

    study: str
    storage: str | None = None
    run_dir: Path | None = None
    preset: str = "default"
    trials: int | None = 32
    budget: str | None = None
    epochs: int = 8
    subset: int | None = 10000
    val_size: int = 2000
    split_seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    data_dir: Path | None = None
    download: bool = False
    space: Path | None = None
    hpo_sampler: str = "tpe"
    policy: str = "qhpo"
    predictor: str = "qsvr"
    annealer: str | None = None
    min_completed: int | None = None
    policy_options: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    seed: int = 0
    progress: bool = True
    backend: str = "optuna"
    address: str | None = None
    gpus_per_trial: float | None = None
    trials_per_gpu: int = 1
    cpus_per_trial: float | None = None
    resume: bool = False
    keep_checkpoints: bool = False
    checkpoint_dir: Path | None = None
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    grace_period: float = GRACE_PERIOD

    def with_(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)

    def study_settings(self, space_table: dict[str, Any]) -> dict[str, Any]:
        """The settings stored in the study and checked again on resume."""
        return {
            "epochs": self.epochs,
            "subset": self.subset,
            "val_size": self.val_size,
            "split_seed": self.split_seed,
            "space": space_table,
            "policy": self.policy,
            "predictor": self.predictor if self.policy in PREDICTIVE_POLICIES else None,
            "policy_options": dict(sorted(self.policy_options.items())),
        }

    def stopping_options(self) -> dict[str, Any]:
        """Keyword arguments of the stopping rule: ``--min-completed`` and every ``--policy-option``;
        under a budget, ``qhpo``'s quorum of the budget (two trials at the rungs up to 30 % of
        training) and its rung agreement off unless an option says otherwise (``qhpo._policy_options.BUDGET_QUORUM``, as
        ``qhpo run --budget`` stores it)."""
        from qhpo._policy_options import BUDGET_QUORUM

        options = {} if self.min_completed is None else {"min_completed": self.min_completed}
        if self.budget is not None:
            options.update(BUDGET_QUORUM.get(self.policy, {}))
        return {**options, **self.policy_options}

    def first_rung(self) -> int:
        """The first epoch at which the search's stopping rule may stop a trial."""
        from qhpo.optuna import OPTUNA_PRUNERS, first_rung

        if self.policy == "none":
            return self.epochs
        options = self.policy_options if self.policy in OPTUNA_PRUNERS else self.stopping_options()
        return first_rung(self.policy, self.epochs, options)

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


#: Policies whose decisions read predictions (they use --predictor and --annealer).
PREDICTIVE_POLICIES = predictive_rule_names()  # the policies --predictor and --annealer apply to


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise QhpoError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Inverse of :meth:`RunConfig.as_dict` (how worker processes receive their settings)."""
    values = dict(values)
    for name in ("run_dir", "data_dir", "space", "checkpoint_dir"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    return RunConfig(**values)
