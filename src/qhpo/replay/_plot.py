"""The benchmark figure: cost against regret for every rule, and one seed's stop points."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from qhpo.curves import CurveTable


def _draw_front(ax, result: dict, colours: dict, *, normalised: bool = False, annotate: bool = True) -> None:
    """Every rule of one table's result at (cost, mean regret), with its sweep as a line."""
    lines = result.get("sweeps", {}).get("lines", {})
    scale = result["spread"] if normalised and result.get("spread") else 1.0
    for name, point in result["policies"].items():
        colour = colours[name]
        if name in lines:
            sweep = lines[name]
            ax.plot(
                [p["cost_fraction_mean"] for p in sweep],
                [p["regret_mean"] / scale for p in sweep],
                "-",
                color=colour,
                alpha=0.5,
                lw=1.5,
            )
            if annotate:
                for p in sweep:
                    ax.annotate(
                        f"{p['value']}",
                        (p["cost_fraction_mean"], p["regret_mean"] / scale),
                        fontsize=7,
                        color=colour,
                        alpha=0.8,
                        xytext=(3, -8),
                        textcoords="offset points",
                    )
        ax.plot(point["cost_fraction_mean"], point["regret_mean"] / scale, "o", ms=7, color=colour, label=name)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    if path.suffix.lower() == ".png":  # a 256-colour palette keeps the file a third of the size
        from PIL import Image

        with Image.open(path) as image:
            small = image.convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=256)
        small.save(path, optimize=True)
    return path


def plot_suite(result: dict, path: str | Path) -> Path:
    """Write the figure of a :func:`qhpo.replay.run_suite` result to ``path`` (PNG).

    One panel per table: every rule at (mean cost fraction, mean regret / the table's
    spread), and where the result holds a sweep, a line through the rule's settings of
    aggressiveness.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = result["tables"]
    names = list(next(iter(tables.values()))["policies"])
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    columns = min(3, len(tables))
    rows = math.ceil(len(tables) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False, constrained_layout=True)
    for ax, (stem, table_result) in zip(axes.flat, tables.items(), strict=False):
        _draw_front(ax, table_result, colours, normalised=True, annotate=False)
        ax.set_title(f"{stem} ({table_result['metric']}, {table_result['mode']})", fontsize=9)
        ax.set_xlabel("cost: epochs / (trials x epochs)", fontsize=8)
        ax.set_ylabel("mean regret / spread", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tables) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 9), fontsize=8)
    sweep = next(iter(tables.values())).get("sweeps")
    sweep_note = f"; lines: aggressiveness sweep on {sweep['seeds']} seeds" if sweep else ""
    fig.suptitle(
        f"{result['suite']}: {result['trials']} trials x {result['seeds']} seeds, predictor "
        f"{result['predictor']}; regret divided by each table's spread (best - median final){sweep_note}",
        fontsize=10,
    )
    return _save(fig, path)


def plot_benchmark(result: dict, table: CurveTable, path: str | Path) -> Path:
    """Write the figure of a :func:`qhpo.replay.run_benchmark` result to ``path`` (PNG).

    Left: every rule as a point at (mean cost fraction, mean regret); where the result
    holds a sweep, a line through the rule's settings of aggressiveness, so the Pareto
    front is visible. Right: the learning curves of the first seed, one panel per rule,
    with the part each trial trained drawn in colour, a cross where it was stopped, an open
    circle where a freeze-thaw rule paused it for good and a green triangle where it paused
    a trial that it resumed later.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["policies"])
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    columns = 2
    rows = max(1, math.ceil(len(names) / columns))
    fig = plt.figure(figsize=(15, max(6.0, 2.2 * rows)), constrained_layout=True)
    grid = fig.add_gridspec(rows, 1 + columns, width_ratios=[2.2] + [1.0] * columns)

    ax = fig.add_subplot(grid[:, 0])
    _draw_front(ax, result, colours)
    lines = result.get("sweeps", {}).get("lines", {})
    ax.set_xlabel("cost: epochs trained / (trials x epochs)")
    ax.set_ylabel(f"mean regret ({result.get('metric', 'metric')}, best drawn - best completed)")
    sweep_note = f"; lines: aggressiveness sweep on {result['sweeps']['seeds']} seeds" if lines else ""
    ax.set_title(
        f"{result['table']}: {result['trials']} trials x {result['seeds']} seeds, "
        f"predictor {result.get('predictor', '?')}{sweep_note}",
        fontsize=10,
    )
    ax.legend(loc="upper right")

    example = result["example"]
    curves = table.curves[np.asarray(example["rows"], dtype=int)]
    for k, name in enumerate(names):
        axk = fig.add_subplot(grid[k // columns, 1 + k % columns])
        _draw_rule_curves(axk, name, colours[name], example, curves, table)
    marks = "x: stopped" + (
        "; o: paused, never resumed; green ^: paused, then resumed" if example.get("pauses") else ""
    )
    fig.suptitle(f"seed {example['seed']} curves (dashed: best drawn trial; {marks})", fontsize=9, x=0.75)
    return _save(fig, path)


def _draw_rule_curves(axk, name: str, colour, example: dict, curves: np.ndarray, table: CurveTable) -> None:
    """One rule's panel: every drawn curve, the part the rule trained in colour, its stops,
    pauses and resumptions, and the best drawn trial dashed."""
    epochs = np.arange(1, curves.shape[1] + 1)
    trained = np.asarray(example["epochs_trained"][name], dtype=int)
    complete = np.asarray(example["complete"][name], dtype=bool)
    resumed = {(int(j), int(e)) for j, e in example.get("resumptions", {}).get(name, [])}
    paused = [(int(j), int(e)) for j, e in example.get("pauses", {}).get(name, [])]
    for j, curve in enumerate(curves):
        axk.plot(epochs, curve, color="0.85", lw=0.5)
        if trained[j] > 0:
            axk.plot(epochs[: trained[j]], curve[: trained[j]], color=colour, lw=0.7, alpha=0.8)
        if 0 < trained[j] < curves.shape[1] and not complete[j] and (j, int(trained[j])) not in paused:
            axk.plot(trained[j], curve[trained[j] - 1], "x", color="k", ms=3)
    for j, e in paused:
        if (j, e) in resumed:  # paused here and resumed later: the curve goes on from this point
            axk.plot(e, curves[j, e - 1], "^", color="tab:green", ms=6, mec="k", mew=0.5, zorder=5)
        else:
            axk.plot(e, curves[j, e - 1], "o", mfc="none", color="k", ms=4, mew=0.6)
    finals = table.sign * curves[:, -1]
    if np.isfinite(finals).any():
        axk.plot(epochs, curves[int(np.nanargmax(finals))], color="k", lw=0.8, ls="--")
    low, high = np.nanquantile(curves, [0.01, 0.99])  # a diverging loss of 1e16 would flatten the rest
    if high > low:
        axk.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    thawed = len(example.get("resumptions", {}).get(name, []))
    axk.set_title(
        f"{name}: {int(complete.sum())} completed, cost {trained.sum() / curves.size:.0%}"
        + (f", {thawed} resumed" if thawed else ""),
        fontsize=8,
    )
    axk.tick_params(labelsize=7)


def plot_budget(result: dict, path: str | Path) -> Path:
    """Write the figure of a :func:`qhpo.replay.run_budget` result to ``path`` (PNG).

    Normalised regret over the epochs spent (in full trainings), the mean over seeds (and,
    for a suite, over tables), one line per rule, with the budgets it is reported at marked.
    A rule that reads its budget (``qhpo``) is replayed at each of those budgets of its own
    and its line is the replay at the largest: its readings are drawn as dots where they
    leave the line (the search that knew it would end there).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite = "tables" in result
    rules = result["summary"]["rules"] if suite else result["policies"]
    curves = {name: rule["curve"] for name, rule in rules.items()}
    grid = np.asarray(result["grid"], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    for i, (name, curve) in enumerate(curves.items()):
        style = "-" if name.startswith("qhpo") else "--"
        color = plt.get_cmap("tab10")(i % 10)
        ax.plot(grid, curve, style, color=color, lw=2 if name == "qhpo" else 1.2, label=name)
        own = [
            (float(x), float(rules[name]["regret"][x]))
            for x in result["readings"]
            if abs(float(rules[name]["regret"][x]) - float(np.interp(float(x), grid, curve))) > 1e-9
        ]
        if own:  # readings replayed of their own (a rule that reads its budget)
            xs, ys = zip(*own, strict=True)
            ax.plot(xs, ys, "o", color=color, ms=6, label=f"{name}, searched with that budget")
    for x in result["readings"]:
        ax.axvline(float(x), color="0.6", lw=0.6, ls=":")
    ax.set_yscale("symlog", linthresh=1e-3)  # log above 0.001, linear below: regret reaches 0 on some tables
    ax.set_ylim(0, 1.2)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("epochs spent, in full trainings")
    ax.set_ylabel("normalised regret (best - found) / (best - worst)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    what = (
        f"{result['suite']}: mean over {len(result['tables'])} tables and" if suite else f"{result['table']}: mean over"
    )
    ax.set_title(
        f"{what} {result['seeds']} seeds, budget {result['budget_trainings']:g} full trainings, "
        f"predictor {result['predictor']}",
        fontsize=9,
    )
    return _save(fig, path)
