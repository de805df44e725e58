"""QSVR benchmark: QUBO build time, annealer fit time and energy, prediction quality.

Everything is measured side by side in one run on one machine, so compare the rows with
each other rather than with numbers from another machine:

1. build time of the K=3, N=20 QUBO (120 variables, 7140 couplers);
2. per sampler, the time to sample that QUBO (``num_reads`` reads) and the lowest and
   median energy found, plus the chain-break fraction of the Pegasus embedding path and a
   sweep of its chain strength;
3. Spearman rank correlation, R^2 and MAE of the QSVR (per sampler), the QSVR ensemble and
   the classical SVR on the curve table, over the same random splits;
4. how well the predicted standard deviation matches the real errors on held-out trials.

Run from the repository root:

    .venv/bin/python benchmarks/qsvr.py --splits 10 --json qsvr-benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from qhpo.curves import CurveFeaturizer, read_curve_table
from qhpo.predictors import decision_epoch, evaluate_predictor
from qhpo.qsvr import QSVR, build_svr_qubo, sample_qubo
from qhpo.samplers import make_sampler

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = Path(os.environ.get("QHPO_TEST_DATA", REPO.parent / "shared" / "data")) / "curves" / "cifar10_cnn.csv"


def _available(names):
    usable = []
    for name in names:
        try:
            make_sampler(name)
        except Exception as error:  # an optional sampler that is not installed or not configured
            print(f"  (skipping {name}: {error})")
        else:
            usable.append(name)
    return usable


def qubo_problem(table, at: float, seed: int):
    """The QSVR's QUBO for 20 random trials of the table (features and scaling as in a fit)."""
    t = decision_epoch(at, table.epochs)
    idx = np.random.default_rng(seed).choice(table.n_trials, 20, replace=False)
    X = CurveFeaturizer(t).fit_transform(table.curves[idx])
    y = table.final_values[idx]
    y = (y - y.min()) / np.ptp(y)
    q = QSVR()
    params = dict(K=q.K, base=q.base, exponent_offset=q.exponent_offset, epsilon=q.epsilon, xi=q.xi, gamma=q.gamma)
    return X, y - y.mean(), params


def bench_build(X, y, params, repeats: int = 50) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bqm = build_svr_qubo(X, y, **params)
        times.append(time.perf_counter() - start)
    return {
        "median_ms": 1e3 * statistics.median(times),
        "variables": bqm.num_variables,
        "couplers": bqm.num_interactions,
    }


def bench_samplers(bqm, names, num_reads: int, seed: int) -> list[dict]:
    rows = []
    for name in names:
        sampler = make_sampler(name)
        sample_qubo(bqm, sampler, num_reads=2, seed=seed)  # warm-up: imports, embeddings, JIT
        start = time.perf_counter()
        _, energies, info = sample_qubo(bqm, sampler, num_reads=num_reads, seed=seed)
        rows.append(
            {
                "sampler": name,
                "seconds": time.perf_counter() - start,
                "min_energy": float(energies.min()),
                "median_energy": float(np.median(energies)),
                "chain_break_fraction": info.get("chain_break_fraction"),
            }
        )
    return rows


def bench_chain_strength(bqm, num_reads: int, seed: int) -> list[dict]:
    from dwave.embedding.chain_strength import uniform_torque_compensation

    from qhpo.samplers._pegasus import CHAIN_STRENGTH_PREFACTOR

    max_q = max(max(abs(v) for v in bqm.linear.values()), max(abs(v) for v in bqm.quadratic.values()))
    choices = [
        ("uniform torque x1.414 (QPU default)", lambda b, e: uniform_torque_compensation(b, e, prefactor=1.414)),
        (f"uniform torque x{CHAIN_STRENGTH_PREFACTOR} (qhpo default)", None),
        ("10 * ceil(max|Q|) (reference workflow)", 10.0 * np.ceil(max_q)),
    ]
    rows = []
    for label, strength in choices:
        sampler = make_sampler("pegasus-sa", chain_strength=strength)
        result = sampler.sample(bqm, num_reads=num_reads, seed=seed)
        energies = bqm.energies(result)
        rows.append(
            {
                "chain_strength": label,
                "value": result.info["chain_strength"],
                "physical_qubits": result.info["physical_qubits"],
                "max_chain_length": result.info["max_chain_length"],
                "chain_break_fraction": result.info["mean_chain_break_fraction"],
                "min_energy": float(energies.min()),
                "median_energy": float(np.median(energies)),
            }
        )
    return rows


def bench_quality(table, at, splits, seed, samplers, num_reads) -> list[dict]:
    runs = [
        ("svr", 20, None),
        *[("qsvr", 20, name) for name in samplers],
        ("svr", 100, None),
        ("qsvr-ensemble", 100, samplers[0]),
    ]
    rows = []
    for model, train, sampler in runs:
        start = time.perf_counter()
        result = evaluate_predictor(
            table,
            at=at,
            model=model,
            train=train,
            splits=splits,
            seed=seed,
            sampler=sampler,
            num_reads=None if model == "svr" else num_reads,
        )
        result["wall_seconds"] = time.perf_counter() - start
        rows.append(result)
    return rows


def bench_calibration(table, at, splits, seed, sampler, num_reads) -> list[dict]:
    """How well ``predict(return_std=True)`` describes the real errors on held-out trials.

    Per row: the fraction of test trials with ``|y - mean| <= std`` (0.68 for a Gaussian)
    and ``sqrt(mean(((y - mean) / std)^2))`` (1 when the std is right on average).
    """
    from qhpo.predictors import FinalValuePredictor

    t = decision_epoch(at, table.epochs)
    rows = []
    for model, train in (("svr", 20), ("qsvr", 20), ("svr", 100), ("qsvr-ensemble", 100)):
        coverage, rms_z = [], []
        for split in range(splits):
            order = np.random.default_rng([seed, split]).permutation(table.n_trials)
            fit_idx, test_idx = order[:train], order[train:]
            predictor = FinalValuePredictor(
                model,
                t=t,
                sampler=None if model == "svr" else sampler,
                num_reads=None if model == "svr" else num_reads,
                random_state=seed * 1000 + split,
            )
            predictor.fit(table.curves[fit_idx], table.final_values[fit_idx])
            mean, std = predictor.predict(table.curves[test_idx], return_std=True)
            z = (table.final_values[test_idx] - mean) / std
            coverage.append(float(np.mean(np.abs(z) <= 1.0)))
            rms_z.append(float(np.sqrt(np.mean(z**2))))
        rows.append(
            {
                "model": model,
                "train": train,
                "sampler": None if model == "svr" else sampler,
                "coverage_1sd": statistics.mean(coverage),
                "rms_z": statistics.mean(rms_z),
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--at", type=float, default=0.25)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-reads", type=int, default=100)
    parser.add_argument(
        "--samplers",
        default="sa,qhpo-sa,tabu,steepest,pegasus-sa",
        help="comma-separated sampler names for the timing table",
    )
    parser.add_argument(
        "--quality-samplers",
        default="sa,qhpo-sa,pegasus-sa",
        help="comma-separated sampler names for the QSVR quality table (first one: ensemble)",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    table = read_curve_table(args.curves)
    X, y, params = qubo_problem(table, args.at, args.seed)
    report = {
        "table": str(args.curves),
        "at": args.at,
        "splits": args.splits,
        "seed": args.seed,
        "num_reads": args.num_reads,
    }

    build = bench_build(X, y, params)
    report["build"] = build
    print(
        f"QUBO build (K=3, N=20): {build['variables']} variables, {build['couplers']} couplers, "
        f"{build['median_ms']:.2f} ms (median of 50)"
    )

    bqm = build_svr_qubo(X, y, **params)
    print(f"\nSampling that QUBO, {args.num_reads} reads:")
    samplers = _available(args.samplers.split(","))
    report["samplers"] = bench_samplers(bqm, samplers, args.num_reads, args.seed)
    print(f"  {'sampler':<12}{'seconds':>10}{'min E':>10}{'median E':>10}{'chain breaks':>14}")
    for row in report["samplers"]:
        breaks = "" if row["chain_break_fraction"] is None else f"{row['chain_break_fraction']:.3f}"
        print(
            f"  {row['sampler']:<12}{row['seconds']:>10.3f}{row['min_energy']:>10.3f}"
            f"{row['median_energy']:>10.3f}{breaks:>14}"
        )

    report["chain_strength"] = bench_chain_strength(bqm, args.num_reads, args.seed)
    first = report["chain_strength"][0]
    print(
        f"\nPegasus P16 clique embedding: {first['physical_qubits']} qubits, chains of up to "
        f"{first['max_chain_length']}; chain strength ({args.num_reads} reads):"
    )
    for row in report["chain_strength"]:
        print(
            f"  {row['chain_strength']:<42} {row['value']:>7.2f}  breaks {row['chain_break_fraction']:.3f}"
            f"  min E {row['min_energy']:.3f}  median E {row['median_energy']:.3f}"
        )

    quality_samplers = _available(args.quality_samplers.split(","))
    print(
        f"\nPrediction of the final value from {args.at:.0%} of the epochs, {args.splits} splits "
        f"(medians; same splits for every row):"
    )
    report["quality"] = bench_quality(table, args.at, args.splits, args.seed, quality_samplers, args.num_reads)
    print(f"  {'model':<15}{'sampler':<12}{'train':>6}{'Spearman':>10}{'R^2':>8}{'MAE':>8}{'fit s':>9}")
    for row in report["quality"]:
        print(
            f"  {row['model']:<15}{row['sampler'] or '-':<12}{row['train']:>6}{row['spearman_median']:>10.3f}"
            f"{row['r2_median']:>8.3f}{row['mae_median']:>8.4f}{row['fit_seconds_median']:>9.3f}"
        )

    print(
        f"\nPredicted std against real errors on the test trials, {args.splits} splits "
        f"(coverage of +-1 std: 0.68 if Gaussian; rms z: 1 if the std is right):"
    )
    report["calibration"] = bench_calibration(
        table, args.at, args.splits, args.seed, quality_samplers[0], args.num_reads
    )
    for row in report["calibration"]:
        print(
            f"  {row['model']:<15}{row['sampler'] or '-':<12}{row['train']:>6}  coverage {row['coverage_1sd']:.3f}"
            f"  rms z {row['rms_z']:.3f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
