"""Ray Tune backend: the predictive scheduler, the CIFAR-10 search and the replays on Ray."""

try:
    import ray as _ray  # noqa: F401
    from ray import tune as _tune  # noqa: F401
except ImportError:  # pragma: no cover - depends on the installation
    from qhpo._errors import QhpoError

    raise QhpoError("Ray Tune is not installed; install it with pip install 'qhpo[ray]'.") from None

from qhpo.ray._budget import SearchBudget
from qhpo.ray._cluster import connect_ray
from qhpo.ray._live import RAY_LIVE_RULES, replay_live_on_ray
from qhpo.ray._replay import RayReplayOutcome, replay_on_ray
from qhpo.ray._scheduler import (
    BOOKKEEPING_PREFIX,
    DIVERGED_KEY,
    PredictiveScheduler,
    RunningTrialLimiter,
    SchedulerStateCallback,
)
from qhpo.ray._search import RayBackend, StudyRecorder, run_search
from qhpo.ray._trainable import TrialSettings, train_cifar_trial

__all__ = [
    "BOOKKEEPING_PREFIX",
    "DIVERGED_KEY",
    "PredictiveScheduler",
    "RAY_LIVE_RULES",
    "RayBackend",
    "RayReplayOutcome",
    "RunningTrialLimiter",
    "SchedulerStateCallback",
    "SearchBudget",
    "StudyRecorder",
    "TrialSettings",
    "connect_ray",
    "replay_live_on_ray",
    "replay_on_ray",
    "run_search",
    "train_cifar_trial",
]
