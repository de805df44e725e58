"""``qhpo bench``'s printed reports: one table, a suite, a budget replay, the built-in tables."""

from __future__ import annotations


def _format(result: dict) -> str:
    lines = [
        f"{result['table']}: {result['trials']} trials x {result['seeds']} seeds, {result['workers']} worker(s), "
        f"predictor {result['predictor']}, {result['seconds']:.0f} s{_budget_note(result)}{_backend_note(result)}",
        f"{'policy':<16}{'cost':>7}{'regret mean':>13}{'median':>9}{'max':>9}{'top1 kept':>11}"
        f"{'wallclock':>11}{'predictor s':>13}",
    ]
    thaw = any(p.get("resumed_mean") for p in result["policies"].values())
    if thaw:
        lines[-1] += f"{'resumed':>9}{'winner resumed':>16}"
    for name, p in result["policies"].items():
        lines.append(
            f"{name:<16}{p['cost_fraction_mean']:>7.1%}{p['regret_mean']:>13.5f}{p['regret_median']:>9.5f}"
            f"{p['regret_max']:>9.5f}{p['top1_kept_rate']:>11.0%}{p['wallclock_mean']:>11.0f}"
            f"{p['predictor_seconds_mean']:>13.2f}"
            + (f"{p['resumed_mean']:>9.1f}{p['winner_resumed_rate']:>16.0%}" if thaw else "")
        )
    lines.append(
        f"regret in {result['metric']} units ({result['mode']}); cost = epochs / (trials x {result['epochs']})"
    )
    if result.get("options"):
        lines.append(_options_line(result["options"]))
    return "\n".join(lines)


def _options_line(options: dict) -> str:
    shown = "; ".join(f"{rule} " + " ".join(f"{k}={v}" for k, v in opts.items()) for rule, opts in options.items())
    return f"options beyond the defaults: {shown}"


def _backend_note(result: dict) -> str:
    backend = result.get("backend")
    if not backend:
        return ""
    fits = "settled fits" if backend["settle"] else "background fits"
    if backend["name"] == "ray":
        note = (
            f"; live Ray Tune trials ({backend['workers']} at a time, {backend['epoch_seconds']:g} s per epoch, {fits})"
        )
    else:
        note = (
            f"; live Optuna study ({backend['storage']}, {backend['worker_processes']} worker process(es), "
            f"{backend['epoch_seconds']:g} s per epoch, {fits})"
        )
    if backend["in_process"]:
        note += f"; in-process: {', '.join(backend['in_process'])}"
    return note


def _budget_note(result: dict) -> str:
    fraction = result.get("budget_fraction")
    if fraction is None:
        return ""
    return f", {'each table' if 'tables' in result else 'the table'} cut to the first {fraction:g} of its epochs"


def _format_suite(result: dict) -> str:
    tables = result["tables"]
    names = list(next(iter(tables.values()))["policies"])
    width = max(len(stem) for stem in tables) + 2
    lines = [
        f"{result['suite']}: {len(tables)} tables, {result['trials']} trials x {result['seeds']} seeds, "
        f"predictor {result['predictor']}{_budget_note(result)}{_backend_note(result)}; each cell: cost / mean "
        "regret (metric units)",
        f"{'table':<{width}}" + "".join(f"{name:>19}" for name in names),
    ]
    for stem, r in tables.items():
        cells = "".join(
            f"{r['policies'][n]['cost_fraction_mean']:>8.1%} / {r['policies'][n]['regret_mean']:<8.3g}" for n in names
        )
        lines.append(f"{stem:<{width}}{cells}")
    rules = result["summary"]["rules"]
    lines.append(
        f"{'mean over tables':<{width}}"
        + "".join(
            f"{rules[n]['cost_fraction_mean']:>8.1%} / "
            + (
                f"{rules[n]['regret_normalised_mean']:<8.3f}"
                if rules[n]["regret_normalised_mean"] is not None
                else f"{'-':<8}"
            )
            for n in names
        )
        + "  (regret / spread)"
    )
    thaw = [n for n in names if rules[n].get("resumed_mean")]
    for n in thaw:
        lines.append(
            f"{n}: {rules[n]['resumed_mean']:.1f} resumptions per seed, winner paused and resumed on "
            f"{rules[n]['winner_resumed_rate']:.0%} of seeds (means over tables)"
        )
    options = next(iter(tables.values())).get("options")
    if options:
        lines.append(_options_line(options))
    lines.append(f"spread: {result['summary']['spread']}")
    lines.append(f"suite wall time: {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min)")
    return "\n".join(lines)


def _format_builtin_tables() -> str:
    from qhpo.curves import builtin_tables, builtin_tables_folder

    lines = []
    for table in builtin_tables():
        lines.append(
            f"{table.name:<22}{table.trials} trials x {table.epochs} epochs, "
            f"{table.metric} ({table.mode}), {table.license}: {table.workload}"
        )
        lines.append(f"{'':<22}source: {table.source}")
    lines.append(f"licences and attributions: {builtin_tables_folder() / 'NOTICE'}")
    return "\n".join(lines)


def _regret_cell(rule: dict, readings: list[str]) -> str:
    return f"{' / '.join(format(rule['regret'][x], '.4f') for x in readings):>27}"


def _format_budget(result: dict) -> str:
    readings = result["readings"]
    head = f"{'':<4}" + "".join(f"{'regret @' + x:>12}" for x in readings)
    if "tables" not in result:
        lines = [
            f"{result['table']}: budget {result['budget_trainings']:g} full trainings ({result['budget_epochs']} "
            f"epochs) x {result['seeds']} seeds, {result['workers']} worker(s), predictor {result['predictor']}, "
            f"{result['seconds']:.0f} s{_budget_note(result)}",
            f"{'policy':<12}{'first rung':>11}{'configs':>9}{'complete':>10}{'resumed':>9}" + head[4:],
        ]
        for name, p in result["policies"].items():
            lines.append(
                f"{name:<12}{p['first_rung']:>11}{p['configurations_mean']:>9.1f}{p['completed_mean']:>10.1f}"
                f"{p['resumed_mean']:>9.1f}" + "".join(f"{p['regret'][x]:>12.4f}" for x in readings)
            )
    else:
        tables = result["tables"]
        rules = list(result["summary"]["rules"])
        width = max(len(stem) for stem in tables) + 2
        lines = [
            f"{result['suite']}: {len(tables)} tables, budget {result['budget_trainings']:g} full trainings x "
            f"{result['seeds']} seeds, predictor {result['predictor']}{_budget_note(result)}; each cell: mean "
            "normalised regret at " + " / ".join(readings) + " full trainings",
            f"{'table':<{width}}" + "".join(f"{name:>27}" for name in rules),
        ]
        for stem, r in tables.items():
            lines.append(f"{stem:<{width}}" + "".join(_regret_cell(r["policies"][n], readings) for n in rules))
        summary = result["summary"]["rules"]
        lines.append(f"{'mean over tables':<{width}}" + "".join(_regret_cell(summary[n], readings) for n in rules))
    lowest = result["lowest"] if "tables" not in result else result["summary"]["lowest"]
    lines.append("lowest regret: " + "; ".join(f"at {x}: {', '.join(lowest[x])}" for x in readings))
    lines.append(f"regret = {result['regret_definition']}")
    reading = (
        result["summary"].get("read_budget", [])
        if "tables" in result
        else [n for n, p in result["policies"].items() if p.get("reads_budget")]
    )
    if reading and len(readings) > 1:
        verb = "reads its" if len(reading) == 1 else "read their"
        lines.append(
            f"{', '.join(reading)} {verb} budget (finishing the best paused trial at the end): each reading below "
            "the largest is a search of that budget of its own"
        )
    if "tables" in result:
        lines.append(f"suite wall time: {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min)")
    return "\n".join(lines)
