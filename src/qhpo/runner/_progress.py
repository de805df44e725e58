"""What a running search shows: trials finished, the running trials' epochs, the best so far.

The display is a function of the study's trials only, so the same code shows one worker
in this process and several worker processes writing to the storage. On a terminal it is
a live table; otherwise (a log file, CI) it prints one line per finished trial.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from qhpo.optuna import RESUME_OF_ATTR, is_paused
from qhpo.runner._summary import summarize

_REFRESH_SECONDS = 0.5


class SearchProgress:
    """Live view of a study; call :meth:`update` whenever something may have changed.

    Args:
        target_trials: Finished trials the search aims for (None: a budget alone bounds it).
        max_epochs: Epochs of a trial that is never stopped.
        enabled: False prints nothing (``--quiet``).
    """

    def __init__(self, *, target_trials: int | None, max_epochs: int, enabled: bool = True, console=None):
        from rich.console import Console

        self.target_trials = target_trials
        self.max_epochs = max_epochs
        self.enabled = enabled
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._live = None
        self._reported: set[int] = set()
        self._last = 0.0

    def __enter__(self) -> SearchProgress:
        if self.enabled and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def skip_existing(self, study: optuna.Study) -> None:
        """Do not announce the trials a resumed study already holds."""
        self._reported |= {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}

    def update(self, study: optuna.Study, *, force: bool = False) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            now = time.monotonic()
            if not force and now - self._last < _REFRESH_SECONDS:
                return
            self._last = now
        trials = study.get_trials(deepcopy=False)
        new = [t for t in trials if t.state.is_finished() and t.number not in self._reported]
        if self._live is None and not new:
            return
        summary = summarize(study, max_epochs=self.max_epochs, target_trials=self.target_trials, top=1)
        best = summary.best[0] if summary.best else None
        best_text = (
            f"best {best.value:.4f} (trial {best.number})"
            if best and best.value is not None
            else "no complete trial yet"
        )
        saved_text = f"{summary.epochs_saved} epochs saved"
        if self._live is not None:
            self._live.update(self._table(trials, summary, best_text, saved_text))
            return
        for trial in new:
            self._reported.add(trial.number)
            self.console.print(
                f"[{self._count(summary)}] {self._describe(trial)}; {best_text}; {saved_text}",
                highlight=False,
            )

    def _count(self, summary) -> str:
        """``finished/target``, or ``finished`` when a budget alone bounds the search."""
        return f"{summary.finished}" if self.target_trials is None else f"{summary.finished}/{self.target_trials}"

    def _describe(self, trial: optuna.trial.FrozenTrial) -> str:
        from qhpo.runner._summary import trial_row

        row = trial_row(trial)
        value = f"val {row.value:.4f}" if row.value is not None else "no value"
        name = f"trial {trial.number}"
        if row.resume_of is not None:
            name += f" (resumes paused trial {row.resume_of})"
        if trial.state == TrialState.COMPLETE:
            return f"{name} complete after {row.epochs} epochs: {value}"
        if trial.state == TrialState.PRUNED:
            verb = "paused" if row.paused else "pruned"
            return f"{name} {verb} at epoch {row.epochs}/{self.max_epochs}: {value} ({row.note})"
        return f"{name} failed after {row.epochs} epoch(s): {row.note}"

    def _table(self, trials, summary, best_text: str, saved_text: str):
        from rich.table import Table

        table = Table(
            title=f"{self._count(summary)} trials finished "
            f"({summary.complete} complete, {summary.pruned} pruned, {summary.failed} failed); "
            f"{best_text}; {saved_text}",
            title_justify="left",
        )
        for column in ("trial", "epoch", "val. accuracy", "state"):
            table.add_column(column, justify="right" if column != "state" else "left")
        running = [t for t in trials if t.state == TrialState.RUNNING]
        recent = [t for t in trials if t.state.is_finished()][-5:]
        for trial in recent + running:
            values = trial.intermediate_values
            last = values[max(values)] if values else None
            state = trial.state.name.lower()
            if is_paused(trial):
                state = "paused"
            if trial.user_attrs.get(RESUME_OF_ATTR) is not None:
                state += f" (resumes {trial.user_attrs[RESUME_OF_ATTR]})"
            table.add_row(
                str(trial.number),
                f"{len(values)}/{self.max_epochs}",
                f"{last:.4f}" if last is not None else "-",
                state,
            )
        return table
