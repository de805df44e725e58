"""What a search found and what it cost: best trials, epochs saved, test accuracy, pauses.

For the ``n`` finished (complete or pruned) configurations of a study with a budget of ``E``
epochs per configuration, trained epochs ``T = sum_i e_i`` (``e_i`` the epochs configuration
``i`` trained) are compared with training every configuration to the end:

    saved = n * E - T,        saved fraction = saved / (n * E)

A paused and resumed configuration is one configuration: the trial that resumed it reports
the epochs before the pause again (from the checkpoint) and trains on, so its curve is the
configuration's, and the paused trial it continues is not counted again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from qhpo._optuna_schema import FAILURE_ATTR, PREDICTOR_ATTR_PREFIX, RETRY_OF_ATTR, TEST_ATTR
from qhpo.optuna import RESUME_ATTR, RESUME_OF_ATTR, STOP_ATTR, continuations, is_paused, resumed_after


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    epochs: int
    value: float | None  # last reported validation accuracy
    params: dict[str, Any]
    note: str = ""  # why it stopped or failed
    resume_of: int | None = None  # the paused trial this trial continues
    paused: bool = False  # ended on a pause and never resumed


@dataclass(frozen=True)
class ResumptionRow:
    """A paused trial that a later trial resumed."""

    trial: int  # the trial that resumed it
    paused: int  # the paused trial
    epoch: int  # epochs trained before the pause
    state: str  # where the resumption stands
    epochs: int  # epochs of the configuration now
    value: float | None
    reason: str = ""


@dataclass(frozen=True)
class SearchSummary:
    study: str
    max_epochs: int | None
    target_trials: int | None
    complete: int
    pruned: int  # pruned configurations, the paused ones that were never resumed among them
    failed: int
    running: int
    epochs_trained: int
    epochs_full: int
    best: list[TrialRow] = field(default_factory=list)
    failures: list[TrialRow] = field(default_factory=list)
    paused: int = 0  # trials that ended on a pause (resumed later or not)
    paused_left: int = 0  # paused trials never resumed: counted as pruned
    resumptions: list[ResumptionRow] = field(default_factory=list)
    test: dict[str, Any] | None = None
    predictor: dict[str, Any] | None = (
        None  # {"fits", "failed_fits", "last_error"} over all processes; None: no predictor
    )

    @property
    def predictor_never_fitted(self) -> bool:
        return self.predictor is not None and self.predictor["fits"] == 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    @property
    def epochs_saved(self) -> int:
        return self.epochs_full - self.epochs_trained

    @property
    def saved_fraction(self) -> float:
        return self.epochs_saved / self.epochs_full if self.epochs_full else 0.0


def trial_row(trial: optuna.trial.FrozenTrial, resumed: set[int] | frozenset[int] = frozenset()) -> TrialRow:
    """One trial for the tables; ``resumed``: numbers of the paused trials that were resumed."""
    values = trial.intermediate_values
    last = values[max(values)] if values else None
    note = ""
    resume_of = trial.user_attrs.get(RESUME_OF_ATTR)
    paused = is_paused(trial)
    if trial.state == TrialState.PRUNED:
        stop = trial.user_attrs.get(STOP_ATTR)
        note = stop["reason"] if stop else f"pruned at epoch {len(values)}"
        if paused and trial.number in resumed:
            note += "; resumed later"
    elif trial.state == TrialState.FAIL:
        note = str(trial.user_attrs.get(FAILURE_ATTR, "failed"))
    elif resume_of is not None:
        note = f"resumes paused trial {resume_of} after epoch {resumed_after(trial)}"
    elif trial.user_attrs.get(RETRY_OF_ATTR) is not None:
        note = f"continues interrupted trial {trial.user_attrs[RETRY_OF_ATTR]}"
    value = trial.value if trial.state == TrialState.COMPLETE else last
    return TrialRow(
        trial.number,
        trial.state.name.lower(),
        len(values),
        None if value is None or not math.isfinite(value) else float(value),
        dict(trial.params),
        note,
        None if resume_of is None else int(resume_of),
        paused and trial.number not in resumed,
    )


def resumption_rows(trials) -> list[ResumptionRow]:
    """Each resumption of a paused trial (a retry of an interrupted resumption is not a new one),
    with where the configuration it continued stands now (the latest trial that carries it on)."""
    latest: dict[int, optuna.trial.FrozenTrial] = {}
    for trial in trials:
        of = trial.user_attrs.get(RESUME_OF_ATTR)
        if of is not None and (trial.state != TrialState.FAIL or int(of) not in latest):
            latest[int(of)] = trial
    rows = []
    for trial in trials:
        of = trial.user_attrs.get(RESUME_OF_ATTR)
        if of is None or trial.user_attrs.get(RETRY_OF_ATTR) is not None:
            continue
        head = latest[int(of)]
        row = trial_row(head)
        record = trial.user_attrs.get(RESUME_ATTR) or {}
        rows.append(
            ResumptionRow(
                trial=head.number,
                paused=int(of),
                epoch=int(record.get("epoch") or 0),
                state=row.state,
                epochs=row.epochs,
                value=row.value,
                reason=str(record.get("reason", "")),
            )
        )
    return rows


def summarize(
    study: optuna.Study, *, max_epochs: int | None = None, target_trials: int | None = None, top: int = 5
) -> SearchSummary:
    """Summary of ``study`` (finished or still running)."""
    from qhpo.optuna import MAX_EPOCHS_ATTR

    trials = study.get_trials(deepcopy=False)
    max_epochs = max_epochs or study.user_attrs.get(MAX_EPOCHS_ATTR)
    resumed, _ = continuations(trials)
    # Finished configurations: a paused trial that a later trial continues is counted through that one.
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.number not in resumed]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    paused = [t for t in trials if is_paused(t)]
    trained = sum(len(t.intermediate_values) for t in finished)
    full = len(finished) * int(max_epochs) if max_epochs else trained
    best = sorted(complete, key=lambda t: t.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    return SearchSummary(
        study=study.study_name,
        max_epochs=int(max_epochs) if max_epochs else None,
        target_trials=target_trials,
        complete=len(complete),
        pruned=len(finished) - len(complete),
        failed=len(failed),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        epochs_trained=trained,
        epochs_full=full,
        best=[trial_row(t) for t in best[:top]],
        failures=[trial_row(t) for t in failed],
        test=study.user_attrs.get(TEST_ATTR),
        predictor=_predictor_state(study),
        paused=len(paused),
        paused_left=sum(t.number not in resumed for t in paused),
        resumptions=resumption_rows(trials),
    )


def _predictor_state(study: optuna.Study) -> dict[str, Any] | None:
    """The predictor fit counts that the search's processes stored, added up (None: none stored)."""
    states = [v for k, v in study.user_attrs.items() if k.startswith(PREDICTOR_ATTR_PREFIX) and isinstance(v, dict)]
    if not states:
        return None
    errors = [s.get("last_error") for s in states if s.get("last_error")]
    return {
        "fits": sum(int(s.get("fits", 0)) for s in states),
        "failed_fits": sum(int(s.get("failed_fits", 0)) for s in states),
        "last_error": errors[-1] if errors else None,
    }


def _format_params(params: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return " ".join(f"{k}={one(v)}" for k, v in params.items())


def print_summary(summary: SearchSummary, console=None) -> None:
    """The end-of-run report: best trials, epochs saved, test accuracy, failures."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    table = Table(title=f"best trials of study {summary.study!r}", title_justify="left")
    for column in ("trial", "val. accuracy", "epochs", "hyperparameters"):
        table.add_column(column, justify="right" if column != "hyperparameters" else "left")
    for row in summary.best:
        table.add_row(
            str(row.number) if row.resume_of is None else f"{row.number} (resumes {row.resume_of})",
            f"{row.value:.4f}" if row.value is not None else "-",
            str(row.epochs),
            _format_params(row.params),
        )
    console.print(table)
    console.print(
        f"trials: {summary.complete} complete, {summary.pruned} pruned"
        + (f" ({summary.paused_left} of them paused and never resumed)" if summary.paused_left else "")
        + f", {summary.failed} failed"
        + (f", {summary.running} running" if summary.running else "")
    )
    if summary.paused:
        console.print(
            f"pauses: {summary.paused} trial(s) paused with their checkpoints kept, "
            f"{len(summary.resumptions)} resumed (each counted once, with its epochs before the pause)"
        )
    for row in summary.resumptions:
        value = f", val {row.value:.4f}" if row.value is not None else ""
        console.print(
            f"  trial {row.paused} paused after epoch {row.epoch}, resumed as trial {row.trial}: "
            f"{row.state} after {row.epochs} epochs{value} ({row.reason})"
        )
    if summary.epochs_full:
        console.print(
            f"epochs: {summary.epochs_trained} trained against {summary.epochs_full} for training every finished trial "
            f"to epoch {summary.max_epochs}: {summary.epochs_saved} saved ({100 * summary.saved_fraction:.1f}%)"
        )
    if summary.test:
        console.print(
            f"test accuracy of the best configuration (trial {summary.test['trial']}): "
            f"{summary.test['accuracy']:.4f} on {summary.test['images']} test images"
        )
    for row in summary.failures:
        console.print(f"trial {row.number} failed after {row.epochs} epoch(s): {row.note}")
    if summary.predictor_never_fitted:
        console.print(predictor_note(summary.predictor))


def predictor_note(state: dict[str, Any]) -> str:
    """One sentence on a predictor that never fitted, so that no trial was stopped by a prediction."""
    if state["failed_fits"]:
        return (
            f"the predictor never fitted: all {state['failed_fits']} of its fits failed (the last with "
            f"{state['last_error']}), so no trial was stopped by a prediction; fix that (see the worker "
            "logs or --predictor svr) and run again."
        )
    return (
        "the predictor never fitted: too few trials ran to the end to train it, so no trial was stopped by a "
        "prediction; run more trials or lower --min-completed."
    )
