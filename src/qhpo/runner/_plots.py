"""The figures of a study: learning curves with their stop points, and epochs per trial."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from qhpo.optuna import MAX_EPOCHS_ATTR, RESUME_OF_ATTR, STOP_ATTR, continuations, is_paused, resumed_after, trial_curve
from qhpo.runner._summary import summarize

_COLORS = {
    TrialState.COMPLETE: "tab:blue",
    TrialState.PRUNED: "tab:gray",
    TrialState.FAIL: "tab:red",
    TrialState.RUNNING: "tab:green",
}


def plot_paths(out_dir: Path, study_name: str) -> tuple[Path, Path]:
    return Path(out_dir) / f"{study_name}-curves.png", Path(out_dir) / f"{study_name}-epochs.png"


def draw_plots(study: optuna.Study, out_dir: Path, *, max_epochs: int | None = None) -> tuple[Path, Path]:
    """Write ``<study>-curves.png`` and ``<study>-epochs.png`` into ``out_dir``; return the paths.

    Curves: validation accuracy per epoch of every trial (complete blue, pruned grey, failed
    red, running green, the best complete trial thick); an ``x`` marks each stop point, an
    ``o`` each pause that was never resumed, and a dotted line joins either to the final
    value the predictor expected there (``+/- std`` bar at the last epoch). A resumed
    configuration is one curve, drawn through the trial that resumed it, with a ``>`` at the
    epoch it was paused at and resumed from. Epochs: bars of epochs trained per
    configuration against the budget (the hatched part of a resumed one: its epochs before
    the pause).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves_path, epochs_path = plot_paths(out_dir, study.study_name)
    drawn = _Drawn.of(study, max_epochs)

    fig, ax = plt.subplots(figsize=(8, 5))
    _draw_curves(ax, drawn, study.study_name)
    fig.tight_layout()
    fig.savefig(curves_path, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    _draw_epochs(ax, drawn, summarize(study, max_epochs=drawn.max_epochs))
    fig.tight_layout()
    fig.savefig(epochs_path, dpi=120)
    plt.close(fig)
    return curves_path, epochs_path


@dataclass(frozen=True)
class _Drawn:
    """What the figures show: the configurations (each through its latest trial), the epochs
    each was paused at, the epoch budget and the best complete trial."""

    trials: list[optuna.trial.FrozenTrial]
    pauses: dict[int, list[int]]
    max_epochs: int
    best: int | None

    @classmethod
    def of(cls, study: optuna.Study, max_epochs: int | None) -> _Drawn:
        every = study.get_trials(deepcopy=False)
        resumed, _ = continuations(every)
        # A paused trial that a later trial resumed is drawn through that trial (its curve starts with the same epochs).
        trials = [t for t in every if t.state in _COLORS and t.number not in resumed]
        by_number = {t.number: t for t in every}
        max_epochs = (
            max_epochs
            or study.user_attrs.get(MAX_EPOCHS_ATTR)
            or max((len(t.intermediate_values) for t in trials), default=1)
        )
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        best = max(complete, key=lambda t: t.value).number if complete else None
        return cls(trials, {t.number: _pause_epochs(t, by_number) for t in trials}, max_epochs, best)


def _draw_curves(ax, drawn: _Drawn, study_name: str) -> None:
    from matplotlib.ticker import MaxNLocator

    for trial in drawn.trials:
        _draw_curve(ax, trial, drawn)
    left = any(is_paused(t) for t in drawn.trials)
    for state, label in (
        (TrialState.COMPLETE, "complete"),
        (TrialState.PRUNED, "pruned (x: stop point, o: pause never resumed)" if left else "pruned (x: stop point)"),
        (TrialState.FAIL, "failed"),
        (TrialState.RUNNING, "running"),
    ):
        if any(t.state == state for t in drawn.trials):
            ax.plot([], [], color=_COLORS[state], label=label)
    if any((t.user_attrs.get(STOP_ATTR) or {}).get("predicted_final") is not None for t in drawn.trials):
        ax.plot([], [], "o:", color="tab:purple", ms=3, label="predicted final at the stop")
    if any(drawn.pauses.values()):
        ax.plot([], [], ">", color="tab:purple", ms=6, ls="none", label="paused here, resumed later")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_xlim(0.5, drawn.max_epochs + 0.5)
    ax.set_title(f"study {study_name}: learning curves")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _draw_curve(ax, trial: optuna.trial.FrozenTrial, drawn: _Drawn) -> None:
    """One configuration's curve, its pauses, and its stop point with the final value predicted there."""
    curve = trial_curve(trial)
    if not curve:
        return
    is_best = trial.number == drawn.best
    ax.plot(
        range(1, len(curve) + 1),
        curve,
        color="tab:orange" if is_best else _COLORS[trial.state],
        lw=2.5 if is_best else 1.0,
        alpha=1.0 if is_best else 0.6,
        ls="--" if trial.state == TrialState.FAIL else "-",
        label=f"best (trial {trial.number})" if is_best else None,
        zorder=3 if is_best else 2,
    )
    for paused_at in drawn.pauses[trial.number]:
        if 1 <= paused_at <= len(curve):
            ax.plot([paused_at], [curve[paused_at - 1]], ">", color="tab:purple", ms=6, zorder=5)
    if trial.state != TrialState.PRUNED:
        return
    ax.plot([len(curve)], [curve[-1]], "o" if is_paused(trial) else "x", mfc="none", color="black", ms=5, zorder=4)
    stop = trial.user_attrs.get(STOP_ATTR) or {}
    predicted = stop.get("predicted_final")
    if predicted is not None:
        end = drawn.max_epochs
        ax.plot([len(curve), end], [curve[-1], predicted], ":", color="tab:purple", lw=0.8, alpha=0.6)
        ax.errorbar(
            [end], [predicted], yerr=[stop.get("std") or 0.0], fmt="o", ms=3, color="tab:purple", alpha=0.6, lw=0.8
        )


def _draw_epochs(ax, drawn: _Drawn, summary) -> None:
    from matplotlib.ticker import MaxNLocator

    trials, max_epochs = drawn.trials, drawn.max_epochs
    ax.bar(
        [t.number for t in trials],
        [len(t.intermediate_values) for t in trials],
        color=[_COLORS[t.state] for t in trials],
        width=0.8,
    )
    before = [(t.number, drawn.pauses[t.number][-1]) for t in trials if drawn.pauses[t.number]]
    if before:
        ax.bar(
            [n for n, _ in before],
            [e for _, e in before],
            width=0.8,
            fill=False,
            hatch="///",
            edgecolor="tab:purple",
            lw=0,
            label="epochs before a pause (resumed)",
        )
    ax.axhline(max_epochs, color="black", lw=0.8, ls="--", label=f"budget ({max_epochs} epochs)")
    if summary.finished:
        ax.set_title(
            f"epochs per trial: {summary.epochs_trained} trained of {summary.epochs_full} "
            f"({100 * summary.saved_fraction:.0f}% saved)"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max_epochs * 1.2)
    ax.set_xlabel("trial")
    ax.set_ylabel("epochs trained")
    ax.legend(loc="upper right", fontsize=8)


def _pause_epochs(trial: optuna.trial.FrozenTrial, by_number: dict) -> list[int]:
    """The epochs a resumed configuration was paused at and resumed from, earliest first, for
    the trial that carries it now (a resumption, a retry of one, a resumption of a resumption)."""
    epochs = []
    while trial is not None and trial.user_attrs.get(RESUME_OF_ATTR) is not None and len(epochs) < 1000:
        epoch = resumed_after(trial)
        if epoch is not None:
            epochs.append(epoch)
        trial = by_number.get(int(trial.user_attrs[RESUME_OF_ATTR]))
    return sorted(set(epochs))
