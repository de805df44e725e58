"""Whether ``qhpo`` should spend the end of a budget finishing its best paused trial, and how.

Under a budget (``qhpo bench --budget K``) a search is judged by the best trial it has
*finished*, and the trials still running when the budget ends are cut. A search that knows
its budget can stop drawing configurations near the end and finish the paused trial it
rates best instead. ``qhpo`` does so (``endgame_slack`` of
:class:`qhpo.policies.PredictiveHalving`, 0.25 by default: the marked end with the
``quantile`` pick below, chosen with this benchmark). This benchmark measures that end and
its variants on the same draws as ``qhpo bench --budget``: a wrapper around the replay's
:class:`qhpo.replay.PolicyAgent` runs ``qhpo`` with its own end switched off
(``endgame_slack="off"``) and does the end itself, so that other slacks, picks and keeps
can be measured.

The endgame: whenever a worker falls free and trials are paused, with ``L`` the epochs left
and ``c`` the candidate among the paused trials that can still finish (``E - trained <= L``),
``c`` resumes and runs to its last epoch unjudged once ``L <= (E - trained_c) + slack * E``;
until then the policy decides as usual.
The candidate (``--pick``):

    quantile:  the paused trial whose value at the epoch it paused ranks highest among all
               trials that reached that epoch (ties: the one trained longest), what a
               search can know;
    oracle:    the paused trial with the best final value of the table, which no search
               can know (the headroom of the idea).

``--keep marked`` (default) continues unjudged only the trials the end resumed; ``--keep
window`` is the rule a policy could apply without remembering them: near the end any trial
that can still finish, ``E - t <= L <= E - t + slack * E`` at its epoch ``t``, continues
unjudged.

Because the endgame depends on the budget, each budget is its own replay (not one replay
read at 5, 10 and 20 full trainings, as ``qhpo bench --budget`` reads budget-blind rules).
``--slack none`` replays ``qhpo`` without any end (``qhpo bench --budget --policy-option
qhpo:endgame_slack=off``); ``--slack 0.25`` with the defaults is what ``qhpo bench --budget``
measures for ``qhpo``, seed for seed.

Run (the design seeds; the reported seeds are 0-9):

    python benchmarks/budget_endgame.py --seeds 100 --first-seed 100 --readings 5,10,20 --slack none,0.5
    python benchmarks/budget_endgame.py --seeds 100 --first-seed 100 --readings 5 --slack 0.5,1 --pick oracle
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from paired import paired  # a neighbour: the paired per-seed difference and its standard error
from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.policies import Decision, TrialStatus, make_policy
from qhpo.replay import (
    BudgetSettings,
    PolicyAgent,
    budget_order,
    first_rung,
    found_over_time,
    normalised_regret,
    simulate,
)

PICKS = ("quantile", "oracle")
KEEPS = ("marked", "window")


class EndgameAgent:
    """A :class:`PolicyAgent` whose search finishes its best paused trial once the budget
    left is what that trial needs plus ``slack * E`` (``slack`` None: never)."""

    def __init__(
        self, inner: PolicyAgent, *, budget: int, sign: float, slack: float | None, pick: str, keep: str = "marked"
    ):
        self.inner, self.budget, self.sign, self.slack, self.pick = inner, int(budget), float(sign), slack, pick
        self.keep = keep
        self.E = inner.curves.shape[1]
        self.spent = 0
        self.finishing: set[int] = set()

    def start(self, index: int) -> None:
        self.inner.start(index)

    def report(self, index: int, epoch: int, value: float):
        self.spent += 1
        if index in self.finishing or (self.keep == "window" and self._in_window(epoch)):
            self.inner.epochs[index] = epoch
            return Decision.CONTINUE
        return self.inner.report(index, epoch, value)

    def _in_window(self, epoch: int) -> bool:
        """Whether a trial at ``epoch`` can still finish and the end is within its need plus the slack."""
        if self.slack is None:
            return False
        need, left = self.E - int(epoch), self.budget - self.spent  # at the epoch just reported
        return need <= left <= need + self.slack * self.E

    def finish(self, index: int, status: TrialStatus) -> None:
        if status == TrialStatus.FAILED:
            self.spent += 1  # the diverged epoch is trained but never reported
        self.inner.finish(index, status)

    def resume(self, index: int) -> None:
        self.inner.resume(index)

    def _need(self, index: int) -> int:
        """Epochs trial ``index`` still trains to its end."""
        return self.E - int(self.inner.epochs[index])

    def promote(self, limit: int, more_trials: bool = False) -> list[int]:
        left = self.budget - self.spent
        if self.slack is not None and limit > 0 and left <= self.E + self.slack * self.E:  # else no need is that large
            paused = [i for i, s in self.inner.status.items() if s == TrialStatus.PAUSED and self._need(i) <= left]
            if paused:
                c = self._candidate(paused)
                if left <= self._need(c) + self.slack * self.E:
                    self.finishing.add(c)
                    return [c]
        return self.inner.promote(limit, more_trials=more_trials)

    def _candidate(self, paused: list[int]) -> int:
        curves, trained = self.inner.curves, self.inner.epochs
        if self.pick == "oracle":
            finals = self.sign * curves[paused, -1]
            return paused[int(np.argmax(np.where(np.isfinite(finals), finals, -np.inf)))]
        started = np.array(list(self.inner.status))

        def standing(i: int) -> tuple[float, int, int]:
            e = int(trained[i])
            peers = started[trained[started] >= e]
            values = self.sign * curves[peers, e - 1]
            values = values[np.isfinite(values)]
            mine = self.sign * curves[i, e - 1]
            return (float(np.mean(values <= mine)) if values.size else 0.0, e, -i)

        return max(paused, key=standing)


def replay_seed(table, seed: int, trainings: float, slack, pick: str, predictor: str, keep: str = "marked") -> float:
    """qhpo's normalised regret at the end of a budget of ``trainings`` full trainings."""
    settings = BudgetSettings(trainings)  # the budget in epochs and qhpo's options, as qhpo bench --budget
    budget = settings.epochs(table)
    drawn = table.take(budget_order(table.n_trials, budget, seed))
    options = {**settings.rule_options("qhpo", table), "endgame_slack": "off"}  # the wrapper's end only
    policy = make_policy(
        "qhpo", max_epochs=table.epochs, mode=table.mode, predictor=predictor, random_state=seed, **options
    )
    agent = EndgameAgent(
        PolicyAgent(policy, drawn.curves, drawn.param_rows()),
        budget=budget,
        sign=table.sign,
        slack=slack,
        pick=pick,
        keep=keep,
    )
    out = simulate(drawn.curves, agent, budget=budget, first_rung=first_rung("", table.epochs, policy=policy))
    service = getattr(policy, "service", None)
    if service is not None:
        service.close()
    found = found_over_time(drawn.sign * drawn.final_values, out.completed_at, [budget])
    return float(normalised_regret(table, found)[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100, help="first seed (default 100: the design seeds)")
    parser.add_argument("--readings", default="5,10,20", help="budgets in full trainings, each its own replay")
    parser.add_argument("--slack", default="none,0.5", help="comma-separated slacks in full trainings ('none': off)")
    parser.add_argument("--pick", choices=PICKS, default="quantile")
    parser.add_argument("--keep", choices=KEEPS, default="marked", help="which trials the end continues unjudged")
    parser.add_argument("--predictor", default="qsvr", help="predictor of qhpo (default qsvr, as qhpo bench)")
    parser.add_argument("--suite", type=Path, default=None, help="folder of tables (default: the built-in ones)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        readings = [float(x) for x in args.readings.split(",") if x.strip()]
        slacks = [None if s.strip() == "none" else float(s) for s in args.slack.split(",") if s.strip()]
    except ValueError:
        parser.error("--readings takes numbers and --slack numbers or 'none', comma-separated")
    if not readings or any(not math.isfinite(k) or k <= 0 for k in readings):
        parser.error("--readings must be positive numbers of full trainings")
    if any(s is not None and (not math.isfinite(s) or s < 0) for s in slacks):
        parser.error("--slack must be 'none' or a number of full trainings at least 0")
    folder = args.suite or builtin_tables_folder()
    tables = [read_curve_table(p) for p in sorted(Path(folder).glob("*.csv"))]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    started = time.perf_counter()
    out: dict = {}
    for slack in slacks:
        key = "none" if slack is None else f"{slack:g}"
        per_table, per_seed = {}, {}
        for table in tables:
            per_seed[table.name] = {
                f"{k:g}": [replay_seed(table, s, k, slack, args.pick, args.predictor, args.keep) for s in seeds]
                for k in readings
            }
            per_table[table.name] = {x: float(np.mean(v)) for x, v in per_seed[table.name].items()}
            print(f"slack {key} {table.name}: {per_table[table.name]}", file=sys.stderr, flush=True)
        mean = {f"{k:g}": float(np.mean([r[f"{k:g}"] for r in per_table.values()])) for k in readings}
        # each seed's mean over the tables, for the paired differences between slacks
        seed_means = {x: np.mean([per_seed[t][x] for t in per_seed], axis=0).tolist() for x in mean}
        out[key] = {"tables": per_table, "mean": mean, "per_seed": per_seed, "seed_means": seed_means}
    print(
        f"qhpo under a budget, each of {', '.join(f'{k:g}' for k in readings)} full trainings its own replay, "
        f"seeds {args.first_seed}-{args.first_seed + args.seeds - 1}, predictor {args.predictor}, pick {args.pick}, "
        f"keep {args.keep}: "
        "mean normalised regret"
    )
    width = max(len(t.name) for t in tables) + 2
    print(f"{'slack':<{width}}" + "".join(f"{k:>27}" for k in out))
    for table in tables:
        cells = [" / ".join(f"{v['tables'][table.name][x]:.4f}" for x in v["mean"]) for v in out.values()]
        print(f"{table.name:<{width}}" + "".join(f"{c:>27}" for c in cells))
    cells = [" / ".join(f"{x:.4f}" for x in v["mean"].values()) for v in out.values()]
    print(f"{'mean over tables':<{width}}" + "".join(f"{c:>27}" for c in cells))
    first, *others = list(out)
    for key in others:
        cells = []
        for x in out[key]["mean"]:
            means = {k: np.asarray(out[k]["seed_means"][x]) for k in (first, key)}
            d, se = paired(means, key)[first]
            cells.append(f"{d:+.4f} ± {se:.4f} at {x}")
        print(f"slack {key} minus slack {first}, paired per seed (mean over tables): " + ", ".join(cells))
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        document = {
            "first_seed": args.first_seed,
            "seeds": args.seeds,
            "pick": args.pick,
            "keep": args.keep,
            "predictor": args.predictor,
            "slack": out,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
