"""A Ray Tune search algorithm that limits the trials running at once, leaving paused trials out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ray.tune.search import SearchAlgorithm, Searcher

from qhpo._checks import check_int

if TYPE_CHECKING:
    from qhpo.ray._scheduler import PredictiveScheduler


class RunningTrialLimiter(SearchAlgorithm):
    """Limits the trials running at once, leaving paused trials out; works with any search.

    At most ``max_concurrent`` trials run or wait to run; a trial that ``scheduler`` holds
    paused takes no place, and takes one again once it is resumed. Pass it as the
    ``search_alg`` of a search whose :class:`PredictiveScheduler` pauses trials, with
    ``max_concurrent_trials`` unset (Ray Tune's own limit, and its ``ConcurrencyLimiter``,
    count paused trials as running, so paused trials would fill every place).

    ``searcher`` is a Ray Tune ``Searcher`` (for example ``OptunaSearch``), a
    ``SearchAlgorithm``, or None for Ray Tune's default search (a
    ``BasicVariantGenerator``, which samples ``param_space`` and expands its grid searches).

    Example:
        >>> from ray import tune
        >>> from qhpo.ray import PredictiveScheduler, RunningTrialLimiter
        >>> scheduler = PredictiveScheduler("qhpo", max_epochs=20)
        >>> config = tune.TuneConfig(metric="accuracy", mode="max", scheduler=scheduler, num_samples=30,
        ...                          search_alg=RunningTrialLimiter(None, 4, scheduler))

    Args:
        searcher: The search to limit; None for Ray Tune's default.
        max_concurrent: The most trials running at once (at least 1).
        scheduler: The scheduler that pauses and resumes the trials.
    """

    CKPT_FILE_TMPL = "running-trial-limiter-{}.json"

    def __init__(
        self, searcher: Searcher | SearchAlgorithm | None, max_concurrent: int, scheduler: PredictiveScheduler
    ):
        from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, SearchGenerator

        self.max_concurrent = check_int("max_concurrent", max_concurrent, least=1)
        if searcher is None:
            searcher = BasicVariantGenerator()
        if isinstance(searcher, Searcher):
            self.searcher: Searcher | SearchAlgorithm = searcher
            self._search = SearchGenerator(searcher)
        elif isinstance(searcher, SearchAlgorithm):
            self.searcher = self._search = searcher
        else:
            raise ValueError(f"searcher must be a Ray Tune Searcher, a SearchAlgorithm or None, got {searcher!r}")
        self.scheduler = scheduler
        self.live_trials: set[str] = set()
        self._budget_spent = False  # the scheduler's budget leaves room for no new configuration

    # -- the limit --------------------------------------------------------------------

    def next_trial(self):
        paused = self.scheduler.paused_trial_ids() if self.scheduler is not None else set()
        if len(self.live_trials - paused) >= self.max_concurrent:
            return None
        if self.scheduler is not None and not self.scheduler.room_for_new():
            # Under a budget: no new configuration, until the running trials pass their first
            # rung; once even an idle search could not start one, the search is over.
            if self.scheduler.budget is not None and not self.scheduler.budget.room_for_new([]):
                self._budget_spent = True
            return None
        trial = self._search.next_trial()
        if trial is not None:
            self.live_trials.add(trial.trial_id)
        return trial

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self.live_trials.discard(trial_id)
        self._search.on_trial_complete(trial_id, result=result, error=error)

    # -- everything else is the wrapped search's --------------------------------------

    @property
    def metric(self):
        return self._search.metric

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        from ray.tune.search.util import _set_search_properties_backwards_compatible

        return _set_search_properties_backwards_compatible(
            self._search.set_search_properties, metric, mode, config, **spec
        )

    @property
    def total_samples(self):
        return self._search.total_samples

    def add_configurations(self, experiments):
        self._search.add_configurations(experiments)

    def on_trial_result(self, trial_id: str, result: dict):
        self._search.on_trial_result(trial_id, result)

    def is_finished(self) -> bool:
        return getattr(self, "_budget_spent", False) or self._search.is_finished()

    def set_finished(self):
        self._search.set_finished()

    def has_checkpoint(self, dirpath: str) -> bool:
        return self._search.has_checkpoint(dirpath)

    def save_to_dir(self, dirpath: str, session_str: str = "default", **kwargs):
        self._search.save_to_dir(dirpath, session_str=session_str, **kwargs)
        path = Path(dirpath) / self.CKPT_FILE_TMPL.format(session_str)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps({"live_trials": sorted(self.live_trials)}), encoding="utf-8")
        temporary.replace(path)

    def restore_from_dir(self, dirpath: str):
        self._search.restore_from_dir(dirpath)
        saved = sorted(Path(dirpath).glob(self.CKPT_FILE_TMPL.format("*")), key=lambda p: p.stat().st_mtime)
        if saved:
            self.live_trials = set(json.loads(saved[-1].read_text(encoding="utf-8"))["live_trials"])
