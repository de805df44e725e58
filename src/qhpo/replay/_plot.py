"""The benchmark figure: cost against regret for every rule, and one seed's stop points."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from qhpo.curves import CurveTable


def plot_benchmark(result: dict, table: CurveTable, path: str | Path) -> Path:
    """Write the figure of a :func:`qhpo.replay.run_benchmark` result to ``path`` (PNG).

    Left: every rule as a point at (mean cost fraction, mean regret); where the result
    holds a sweep, a line through the rule's settings of aggressiveness, so the Pareto
    front is visible. Right: the learning curves of the first seed, one panel per rule,
    with the part each trial trained drawn in colour and a cross where it was stopped.
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
    lines = result.get("sweeps", {}).get("lines", {})
    for name in names:
        point = result["policies"][name]
        colour = colours[name]
        if name in lines:
            sweep = lines[name]
            ax.plot([p["cost_fraction_mean"] for p in sweep], [p["regret_mean"] for p in sweep], "-", color=colour,
                    alpha=0.5, lw=1.5)
            for p in sweep:
                ax.annotate(f"{p['value']}", (p["cost_fraction_mean"], p["regret_mean"]), fontsize=7,
                            color=colour, alpha=0.8, xytext=(3, -8), textcoords="offset points")
        ax.plot(point["cost_fraction_mean"], point["regret_mean"], "o", ms=9, color=colour, label=name)
    ax.set_xlabel("cost: epochs trained / (trials x epochs)")
    ax.set_ylabel(f"mean regret ({result.get('metric', 'metric')}, best drawn - best completed)")
    sweep_note = f"; lines: aggressiveness sweep on {result['sweeps']['seeds']} seeds" if lines else ""
    ax.set_title(f"{result['table']}: {result['trials']} trials x {result['seeds']} seeds, "
                 f"predictor {result.get('predictor', '?')}{sweep_note}", fontsize=10)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")

    example = result["example"]
    curves = table.curves[np.asarray(example["rows"], dtype=int)]
    epochs = np.arange(1, curves.shape[1] + 1)
    for k, name in enumerate(names):
        axk = fig.add_subplot(grid[k // columns, 1 + k % columns])
        trained = np.asarray(example["epochs_trained"][name], dtype=int)
        complete = np.asarray(example["complete"][name], dtype=bool)
        for j, curve in enumerate(curves):
            axk.plot(epochs, curve, color="0.85", lw=0.5)
            if trained[j] > 0:
                axk.plot(epochs[: trained[j]], curve[: trained[j]], color=colours[name], lw=0.7, alpha=0.8)
            if 0 < trained[j] < curves.shape[1] and not complete[j]:
                axk.plot(trained[j], curve[trained[j] - 1], "x", color="k", ms=3)
        best = int(np.argmax(table.sign * curves[:, -1]))
        axk.plot(epochs, curves[best], color="k", lw=0.8, ls="--")
        axk.set_title(f"{name}: {int(complete.sum())} completed, cost "
                      f"{trained.sum() / curves.size:.0%}", fontsize=8)
        axk.tick_params(labelsize=7)
    fig.suptitle(f"seed {example['seed']} curves (dashed: best drawn trial; x: stopped)", fontsize=9, x=0.75)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    if path.suffix.lower() == ".png":  # a 256-colour palette keeps the file a third of the size
        from PIL import Image

        with Image.open(path) as image:
            small = image.convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=256)
        small.save(path, optimize=True)
    return path
