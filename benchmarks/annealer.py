"""qhpo-sa against dwave-samplers' simulated annealer on SVR QUBOs from real learning curves.

For each training-set size N the QUBO of the QSVR (K=3, base=0.5, exponent_offset=0.005,
epsilon=0.02, xi=0.01, gamma=0.1) is built from N seeded random trials of the curve table:
features are the first 25% of the epochs scaled to [0, 1] by CurveFeaturizer, targets the
final values min-max scaled to [0, 1]. Both samplers then run side by side:

- the reference: ``dwave.samplers.SimulatedAnnealingSampler`` with its defaults, 1000 reads;
- qhpo-sa: ``DenseSimulatedAnnealingSampler`` with its defaults, 1000 reads;
- long runs of both (dwave SA: 100 reads x 3000 sweeps, qhpo-sa: 1000 reads x 1000 sweeps),
  whose lowest energy, with that of the runs above, is the best known energy ``E*``.

Printed per sampler: wall time ``t_run``, best energy, ``p`` = fraction of reads within
``tol`` of ``E*``, and the time to reach ``E*`` with 99% probability,

    TTS99 = t_read * ln(0.01) / ln(1 - p),        t_read = t_run / num_reads,

which is ``t_read`` when ``p >= 0.99`` (one read suffices) and, when ``p = 0``, only the
lower bound obtained with ``p < 3 / num_reads`` (the 95% upper bound on ``p`` after zero
hits). The same is printed for the weaker target ``E_ref`` = the reference's best energy
in its default run (``p_ref`` = fraction of reads at or below ``E_ref``).

Run: python benchmarks/annealer.py   (about 2-3 minutes on one core)
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from dwave.samplers import SimulatedAnnealingSampler

from qhpo.curves import CurveFeaturizer, read_curve_table
from qhpo.qsvr import build_svr_qubo
from qhpo.samplers._dense_sa import DenseSimulatedAnnealingSampler

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "curves" / "cifar10_cnn.csv"
QSVR_DEFAULTS = dict(K=3, base=0.5, exponent_offset=0.005, epsilon=0.02, xi=0.01, gamma=0.1)


def svr_qubo(table, N: int, seed: int):
    rows = np.random.default_rng(seed).choice(table.n_trials, size=N, replace=False)
    X = CurveFeaturizer(max(1, table.epochs // 4)).fit_transform(table.curves[rows])
    y = table.final_values[rows]
    y = (y - y.min()) / (y.max() - y.min())
    return build_svr_qubo(X, y, **QSVR_DEFAULTS)


def tts99(t_read: float, p: float, num_reads: int) -> tuple[float, bool]:
    """``(TTS99, is_lower_bound)`` for success probability ``p`` per read."""
    if p >= 0.99:
        return t_read, False
    if p <= 0.0:
        p, bound = min(3.0 / num_reads, 0.99), True
        return (t_read if p >= 0.99 else t_read * math.log(0.01) / math.log(1.0 - p)), bound
    return t_read * math.log(0.01) / math.log(1.0 - p), False


def timed(sampler, bqm, **params):
    start = time.perf_counter()
    sampleset = sampler.sample(bqm, **params)
    return time.perf_counter() - start, sampleset.record.energy


def fmt_time(seconds: float, bound: bool) -> str:
    text = f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
    return (">" if bound else "") + text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 40], help="training points N")
    parser.add_argument("--reads", type=int, default=1000, help="reads of both default runs")
    parser.add_argument("--sweeps", type=int, default=None, help="qhpo-sa sweeps (default: its default)")
    parser.add_argument("--replicas", type=int, default=None, help="qhpo-sa parallel-tempering replicas")
    parser.add_argument(
        "--beta-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("HOT", "COLD"),
        help="qhpo-sa inverse temperatures (default: from the coefficients)",
    )
    parser.add_argument(
        "--long-reads", type=int, nargs=2, default=[100, 1000], metavar=("DWAVE", "QHPO"), help="reads of the long runs"
    )
    parser.add_argument(
        "--long-sweeps",
        type=int,
        nargs=2,
        default=[3000, 1000],
        metavar=("DWAVE", "QHPO"),
        help="sweeps of the long runs",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table = read_curve_table(TABLE)
    ref, ours = SimulatedAnnealingSampler(), DenseSimulatedAnnealingSampler()
    our_params = {
        key: value
        for key, value in (
            ("num_sweeps", args.sweeps),
            ("num_replicas", args.replicas),
            ("beta_range", args.beta_range),
        )
        if value is not None
    }
    ours.sample(svr_qubo(table, 2, 0), num_reads=1, seed=0, **our_params)  # compile outside the timings
    for N in args.sizes:
        bqm = svr_qubo(table, N, args.seed)
        runs = {
            "dwave SA": timed(ref, bqm, num_reads=args.reads, seed=args.seed),
            "qhpo-sa": timed(ours, bqm, num_reads=args.reads, seed=args.seed, **our_params),
        }
        long_ref = timed(ref, bqm, num_reads=args.long_reads[0], num_sweeps=args.long_sweeps[0], seed=args.seed + 1)
        long_ours = timed(ours, bqm, num_reads=args.long_reads[1], num_sweeps=args.long_sweeps[1], seed=args.seed + 1)
        best_known = min(long_ref[1].min(), long_ours[1].min(), *(e.min() for _, e in runs.values()))
        tol = 1e-9 * max(1.0, abs(best_known))
        e_ref = runs["dwave SA"][1].min()
        info = ours.sample(bqm, num_reads=1, seed=0, **our_params).info
        hot, cold = info["beta_range"]
        print(f"\nN={N}: qhpo-sa {our_params or 'defaults'}, beta_range {hot:.4g}..{cold:.4g}")
        print(
            f"  {bqm.num_variables} variables, {bqm.num_interactions} couplers; "
            f"best known E*={best_known:.9f}, reference best E_ref={e_ref:.9f}"
        )
        print(
            f"  long runs: dwave SA {args.long_reads[0]} reads x {args.long_sweeps[0]} sweeps, {long_ref[0]:.1f} s,"
            f" best {long_ref[1].min():.9f} | qhpo-sa {args.long_reads[1]} reads x {args.long_sweeps[1]} sweeps,"
            f" {long_ours[0]:.1f} s, best {long_ours[1].min():.9f}"
        )
        print(
            f"  {'sampler':9s} {'t_run':>9s} {'best E':>10s} {'median E':>10s} {'p(E*)':>7s} {'TTS99(E*)':>11s}"
            f" {'p(E_ref)':>8s} {'TTS99(E_ref)':>12s}"
        )
        results = {}
        for name, (seconds, energies) in runs.items():
            t_read = seconds / len(energies)
            p_best = float(np.mean(energies <= best_known + tol))
            p_ref = float(np.mean(energies <= e_ref + tol))
            results[name] = (tts99(t_read, p_best, len(energies)), tts99(t_read, p_ref, len(energies)))
            print(
                f"  {name:9s} {fmt_time(seconds, False):>9s} {energies.min():10.6f} {np.median(energies):10.6f}"
                f" {p_best:7.3f} {fmt_time(*results[name][0]):>11s} {p_ref:8.3f} {fmt_time(*results[name][1]):>12s}"
            )
        for k, label in ((0, "E*"), (1, "E_ref")):
            (a, a_bound), (b, b_bound) = results["dwave SA"][k], results["qhpo-sa"][k]
            if b_bound:
                ratio = "undefined (qhpo-sa never reached it)"
            else:
                ratio = (">" if a_bound else "") + f"{a / b:.3g}x"
            print(f"  TTS99({label}) ratio dwave SA / qhpo-sa: {ratio}")


if __name__ == "__main__":
    main()
