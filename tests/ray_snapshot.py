"""Read the scheduler state that Ray Tune's latest experiment checkpoint holds (Ray tests)."""

from __future__ import annotations

import glob
import pickle
from pathlib import Path


def scheduler_snapshot(experiment: Path) -> dict | None:
    """The :class:`qhpo.ray.PredictiveScheduler` state in the experiment's latest checkpoint,
    or None before the first one (or while Ray Tune is writing it)."""
    for path in glob.glob(str(Path(experiment) / "callback-states-*.pkl")):
        try:
            with open(path, "rb") as handle:
                states = pickle.load(handle)  # Ray Tune's own file of the test's experiment
        except (EOFError, pickle.UnpicklingError, OSError):
            return None
        return next((s for s in states.values() if s and "trials" in s), None)
    return None
