"""What one ``qhpo run`` does: the resolved settings and the presets they start from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qhpo._errors import QhpoError

#: ``--policy`` values that are Optuna's own pruners rather than qhpo policies.
OPTUNA_BASELINES = ("median", "sha", "hyperband")
HPO_SAMPLERS = ("random", "tpe")
PREDICTORS = ("svr", "qsvr", "qsvr-ensemble")
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
    # Sized from the epoch times in docs/workload.md (5.4 to 8.2 s for 5,000 + 1,000 images on
    # one core): 24 trials x 6 epochs is 144 epochs untouched, about 110 with early stopping,
    # so the search ends in about 15 minutes on 2 cores (measured in docs/running.md).
    "default": Preset(
        trials=24, epochs=6, subset=5000, val_size=1000, device="auto",
        description="a real search on a subset of CIFAR-10, about 15 minutes on a 2-core CPU",
        min_completed=6,
    ),
    # The poster's experiment: 100 trials of the full CNN search on all of CIFAR-10, on a GPU,
    # with as many epochs as the recorded reference curves (curves/cifar10_cnn.csv).
    "poster": Preset(
        trials=100, epochs=200, subset=None, val_size=5000, device="cuda",
        description="the reference experiment: 100 trials, all of CIFAR-10, 200 epochs, GPU, the poster's "
                    "mid-training decision",
        policy="poster",
    ),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything a search needs, after presets and flags are merged.

    The settings that define the study's results (``epochs``, ``subset``, ``val_size``,
    ``split_seed``, ``space``, ``policy``, ``predictor``) are stored in the study and must
    match when a run resumes; ``trials``, ``workers`` and ``device`` may change.
    """

    study: str
    storage: str | None = None
    run_dir: Path | None = None
    preset: str = "default"
    trials: int = 24
    epochs: int = 6
    subset: int | None = 5000
    val_size: int = 1000
    split_seed: int = 0
    device: str = "auto"
    data_dir: Path | None = None
    download: bool = False
    space: Path | None = None
    hpo_sampler: str = "tpe"
    policy: str = "qhpo"
    predictor: str = "qsvr"
    annealer: str | None = None
    min_completed: int | None = None
    workers: int = 1
    seed: int = 0
    progress: bool = True
    backend: str = "optuna"
    address: str | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> "RunConfig":
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
        }

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


#: Policies whose decisions read predictions (they use --predictor and --annealer).
PREDICTIVE_POLICIES = ("qhpo", "poster", "swift-hyperband")


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise QhpoError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Inverse of :meth:`RunConfig.as_dict` (how worker processes receive their settings)."""
    values = dict(values)
    for name in ("run_dir", "data_dir", "space"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    return RunConfig(**values)
