"""One trial of a search: train epoch by epoch, report, checkpoint, and let the pruner decide.

Per epoch ``e`` the trial trains, saves its checkpoint (model, optimiser and the curve so
far, written atomically), reports the validation accuracy as the
intermediate value of step ``e`` and asks the pruner. A trial that continues an
interrupted one (``qhpo.retry_of``) or a paused one
(``qhpo.resume_of``) starts from the shared checkpoint and reports the epochs it recorded
before training on, so its curve is whole. A trial the pruner stops loses its checkpoint;
one it pauses keeps it, to be resumed.
"""

from __future__ import annotations

import errno
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from qhpo._errors import QhpoError
from qhpo._optuna_schema import (
    BUDGET_CUT_ATTR,
    CHECKPOINT_ATTR,
    EPOCH_SECONDS_ATTR,
    FAILURE_ATTR,
    HEARTBEAT_ATTR,
    RESTART_OF_ATTR,
    RESUME_OF_ATTR,
    RESUMED_AT_ATTR,
    RETRY_OF_ATTR,
    enqueued_params,
    stored_trial,
    trial_by_number,
)
from qhpo._seeds import derived_seed
from qhpo.optuna import PredictivePruner, resumed_after
from qhpo.runner._signals import signals_deferred


class DiskFull(QhpoError):
    """A checkpoint could not be written for lack of space: the run stops, the trial is retried."""


#: Name pattern of a checkpoint being written (``.trial-KEY.pt.PID.tmp``); group 1 is the writer's pid.
CHECKPOINT_SCRATCH = r"\.trial-.+\.pt\.(\d+)\.tmp"


def checkpoint_path(checkpoint_dir: Path, key: Any) -> Path:
    return Path(checkpoint_dir) / f"trial-{key}.pt"


def remove_scratch_checkpoints(checkpoint_dir: Path, *, shared: bool = False, grace_period: float = 0.0) -> list[Path]:
    """Remove the checkpoints that dead writers were writing (:data:`CHECKPOINT_SCRATCH`).

    A scratch file names its writer's pid, which says nothing about a writer on another
    host: in a folder that other hosts share (``shared``), a scratch file is removed only
    once it is also untouched for ``grace_period`` seconds.
    """
    import re

    from qhpo._files import process_alive, remove_orphans

    if not shared:
        return remove_orphans(checkpoint_dir, CHECKPOINT_SCRATCH)
    pattern = re.compile(CHECKPOINT_SCRATCH)
    folder = Path(checkpoint_dir)
    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = pattern.fullmatch(path.name)
        if match is None or process_alive(int(match.group(1))):
            continue
        try:
            if time.time() - path.stat().st_mtime > grace_period:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def trial_seed(seed: int, key: Any) -> int:
    """Seed in ``[0, 2**31)`` of a trial's weights and augmentation: the stream ``key`` of the run seed."""
    return derived_seed(seed, int(key)) >> 1


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    *,
    space,
    data,
    device,
    max_epochs: int,
    checkpoint_dir: Path,
    seed: int,
    precision: str = "auto",
    on_epoch: Callable[[], None] | None = None,
    over_budget: Callable[[], bool] | None = None,
) -> TrialState:
    """Train ``trial`` to ``max_epochs`` or until pruned; tell the study how it ended.

    A diverging trial (:class:`qhpo.workload.TrialDiverged`) is told FAIL with its reason in
    the user attribute ``qhpo.failure``, and so is a trial that continues recorded epochs
    whose checkpoint is missing or unreadable (never trained again from epoch 0 under the
    old trial's name; see :func:`_checkpoint_lost`). Other exceptions propagate with the
    trial still RUNNING, so that the caller decides whether it is retried; a full disk raises
    :class:`DiskFull`. The caller has named this process the trial's owner already.
    ``over_budget()`` is asked after each epoch short of the last: when it says the search's
    budget is spent, the trial is cut there (told PRUNED, :data:`BUDGET_CUT_ATTR`).
    """
    from qhpo.workload import TrialTrainer, train_epochs

    config = space.suggest(trial)
    key = trial.user_attrs.get(CHECKPOINT_ATTR, trial.number)
    trial.set_user_attr(CHECKPOINT_ATTR, key)  # shared with every trial that continues this one
    path = checkpoint_path(checkpoint_dir, key)
    trainer = _continued(study, trial, path, config, data, device, precision)
    if isinstance(trainer, TrialState):
        return trainer  # its checkpoint is lost
    if trainer is None:
        trainer = TrialTrainer(config, data, device=device, seed=trial_seed(seed, key), precision=precision)
    elif trainer.epoch and _report_recorded(trial, trainer, max_epochs):
        return _pruned(study, trial, path, [])

    seconds: list[float] = []
    after_epoch = _epoch_reporter(trial, trainer, path, max_epochs, seconds, on_epoch, over_budget)
    end = train_epochs(trainer, max_epochs, after_epoch)
    if end.diverged is not None:
        return _diverged(study, trial, path, seconds, end.diverged)
    if end.stopped:
        return _pruned(study, trial, path, seconds)
    _set_epoch_seconds(trial, seconds)
    _tell(study, trial, end.value)
    return TrialState.COMPLETE


def _epoch_reporter(
    trial: optuna.Trial, trainer, path: Path, max_epochs: int, seconds: list[float], on_epoch, over_budget
):
    """What the trial does after each epoch (``after_epoch`` of :func:`qhpo.workload.train_epochs`):
    save the checkpoint, report the value as step ``epoch``, beat, and say whether the trial
    ends there. ``seconds`` collects each epoch's training and checkpoint time."""

    def after_epoch(value: float, epoch: int, trained: float) -> bool:
        start = time.perf_counter()
        _save(trainer, path)
        seconds.append(trained + time.perf_counter() - start)
        trial.report(value, epoch)
        trial.set_user_attr(HEARTBEAT_ATTR, time.time())
        if on_epoch is not None:
            on_epoch()
        return _ends_after_epoch(trial, epoch, max_epochs, over_budget)

    return after_epoch


def _ends_after_epoch(trial: optuna.Trial, epoch: int, max_epochs: int, over_budget) -> bool:
    """Whether the trial is cut after ``epoch`` (short of the last): the search's budget is
    spent (recorded in :data:`BUDGET_CUT_ATTR`), or the pruner stops it."""
    if epoch >= max_epochs:
        return False
    if over_budget is not None and over_budget():
        trial.set_user_attr(BUDGET_CUT_ATTR, epoch)
        return True
    return trial.should_prune()


def _diverged(study: optuna.Study, trial: optuna.Trial, path: Path, seconds: list[float], reason: str) -> TrialState:
    """Tell a trial whose training diverged FAIL, with its reason, and drop its checkpoint."""
    trial.set_user_attr(FAILURE_ATTR, f"diverged: {reason}")
    _set_epoch_seconds(trial, seconds)
    _tell(study, trial, state=TrialState.FAIL)
    path.unlink(missing_ok=True)
    return TrialState.FAIL


def _continued(study: optuna.Study, trial: optuna.Trial, path: Path, config, data, device, precision: str):
    """The trainer of a trial that continues recorded epochs (a retry, a resumption), loaded
    from its checkpoint; None for a trial that starts afresh; the state it was told when
    epochs were recorded but the checkpoint is lost."""
    from qhpo.workload import TrialTrainer

    if trial.user_attrs.get(RETRY_OF_ATTR) is None and trial.user_attrs.get(RESUME_OF_ATTR) is None:
        return None
    if path.exists():
        try:
            return TrialTrainer.from_checkpoint(path, config, data, device=device, precision=precision)
        except QhpoError as error:
            unreadable = str(error)
            path.unlink(missing_ok=True)  # unreadable or foreign: nothing can continue it
    else:
        unreadable = None
    recorded = _recorded_epochs(study, trial)
    if recorded:  # epochs were trained and recorded under this key: never start again under its name
        return _checkpoint_lost(study, trial, path, recorded, unreadable)
    return None


def _report_recorded(trial: optuna.Trial, trainer, max_epochs: int) -> bool:
    """Report the epochs a continued trial's checkpoint holds; True when the pruner then ends it.

    The interrupted trial may have died between its checkpoint and the decision on it; a
    resumption starts where the policy decided last (it resumed the trial there).
    """
    trial.set_user_attr(RESUMED_AT_ATTR, trainer.epoch)
    for epoch, value in enumerate(trainer.curve[:max_epochs], start=1):
        trial.report(value, epoch)
    return trainer.epoch < max_epochs and trainer.epoch != resumed_after(trial) and trial.should_prune()


def _recorded_epochs(study: optuna.Study, trial: optuna.Trial) -> int:
    """Epochs recorded by the trial that ``trial`` continues (an interrupted or a paused one)."""
    number = trial.user_attrs.get(RETRY_OF_ATTR)
    if number is None:
        number = trial.user_attrs.get(RESUME_OF_ATTR)
    try:
        origin = trial_by_number(study, number)
    except (KeyError, ValueError, TypeError):
        return 0
    return len(origin.intermediate_values)


def _checkpoint_lost(
    study: optuna.Study, trial: optuna.Trial, path: Path, recorded: int, unreadable: str | None
) -> TrialState:
    """Fail a continuation whose checkpoint is missing or unreadable, saying so.

    The retry of an interrupted configuration starts it afresh as a new trial (same
    parameters, its own checkpoint and seed, ``qhpo.restart_of`` naming the lost key),
    enqueued once per lost key; a paused configuration stays stopped where it paused.
    """
    key = trial.user_attrs.get(CHECKPOINT_ATTR)
    what = f"could not be read ({unreadable})" if unreadable else "is missing"
    reason = (
        f"checkpoint lost: {path} {what}, so the {recorded} epoch(s) recorded under checkpoint {key} cannot be "
        "continued"
    )
    paused = trial.user_attrs.get(RESUME_OF_ATTR)
    with signals_deferred():
        if paused is not None:
            reason += f"; trial {paused} stays stopped where it paused"
        else:
            reason += "; the configuration starts afresh as a new trial"
            if not any(t.user_attrs.get(RESTART_OF_ATTR) == key for t in study.get_trials(deepcopy=False)):
                params = {**enqueued_params(stored_trial(study, trial)), **trial.params}
                study.enqueue_trial(params, user_attrs={RESTART_OF_ATTR: key}, skip_if_exists=False)
        trial.set_user_attr(FAILURE_ATTR, reason)
        _tell(study, trial, state=TrialState.FAIL)
    print(f"qhpo: trial {trial.number}: {reason}.", file=sys.stderr)
    return TrialState.FAIL


def _pruned(study: optuna.Study, trial: optuna.Trial, path: Path, seconds: list[float]) -> TrialState:
    """Tell a trial the pruner ended; a paused trial keeps its checkpoint, a stopped one loses it."""
    keep = isinstance(study.pruner, PredictivePruner) and study.pruner.paused(trial)
    _set_epoch_seconds(trial, seconds)
    _tell(study, trial, state=TrialState.PRUNED)
    if not keep:
        path.unlink(missing_ok=True)
    return TrialState.PRUNED


def _save(trainer, path: Path) -> None:
    """Save the checkpoint; a full disk stops the run (one sentence) instead of failing the trial."""
    try:
        trainer.save_checkpoint(path)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(
            f"the disk holding {path.parent} is full ({error.strerror}), so the checkpoint of epoch "
            f"{trainer.epoch} could not be saved; free some space and run the same command again: the "
            "trial continues from its last checkpoint."
        ) from None


def _tell(
    study: optuna.Study, trial: optuna.Trial, value: float | None = None, state: TrialState | None = None
) -> None:
    """Tell the trial's end once the pruner's decision records are stored (a finished trial takes none)."""
    flush = getattr(study.pruner, "flush", None)
    if flush is not None:
        flush()
    study.tell(trial, value, state=state)


def _set_epoch_seconds(trial: optuna.Trial, seconds: list[float]) -> None:
    if seconds:
        trial.set_user_attr(EPOCH_SECONDS_ATTR, sum(seconds) / len(seconds))


def trial_config(trial: optuna.trial.FrozenTrial, space) -> Mapping[str, Any]:
    """The full configuration of a finished trial: its searched params plus the fixed ones."""
    return {**space.fixed_values(), **trial.params}
