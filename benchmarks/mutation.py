"""Mutation testing of qhpo's core modules with mutmut, and the score per module.

mutmut (the ``mutation`` extra) copies ``src/`` and ``tests/`` into ``mutants/``, makes
single-point changes (mutants) to every function of the modules listed under
``[tool.mutmut] only_mutate`` in pyproject.toml, and runs, for each mutant, the quick tests
(``-m "not slow and not ray"``) of the files in ``pytest_add_cli_args_test_selection`` that
call the mutated function. A mutant is killed when a test fails, survives when every test
passes. Not part of CI. Run from the repository root:

    pip install -e ".[mutation]"
    python benchmarks/mutation.py                       # every group, 2 children, then the score
    python benchmarks/mutation.py policy replay --children 1
    python benchmarks/mutation.py --score               # the score of what has run so far
    python benchmarks/mutation.py --survivors policy    # the surviving mutants, one per line
    python benchmarks/mutation.py --rerun-survivors     # only the survivors again, after adding tests

Groups: policy (policies/_rungs.py, _predictive_halving.py, _rung_prediction.py), replay
(replay/_simulator.py, _scores.py), qsvr (qsvr/_estimator.py, _ensemble.py, _qubo.py),
annealer (samplers/_dense_sa.py), adapter (replay/_agents.py). mutmut keeps its results in
``mutants/`` and runs again only what changed; ``mutmut show NAME`` prints a mutant's diff.

The score is ``(killed + timeout) / (killed + timeout + survived + no tests)``: a mutant that
makes the tests run past mutmut's time limit (an endless loop) counts as killed, one that
no selected test calls counts as survived.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

GROUPS = {
    "policy": ("qhpo.policies._rungs", "qhpo.policies._predictive_halving", "qhpo.policies._rung_prediction"),
    "replay": ("qhpo.replay._simulator", "qhpo.replay._scores"),
    "qsvr": ("qhpo.qsvr._estimator", "qhpo.qsvr._ensemble", "qhpo.qsvr._qubo"),
    "annealer": ("qhpo.samplers._dense_sa",),
    "adapter": ("qhpo.replay._agents",),
}

# mutmut's exit codes (mutmut/stats.py): 1 and 3 a test failed, 0 every test passed, 33 and 5
# no test calls the function, SIGXCPU (24) and 36 past the time limit, None not run yet
KILLED, SURVIVED, NO_TESTS, TIMEOUT = {1, 3, -9, -11}, {0}, {5, 33}, {-24, 24, 152, 255, 36}


def status(exit_code: int | None) -> str:
    if exit_code is None:
        return "not run"
    for name, codes in (("killed", KILLED), ("survived", SURVIVED), ("no tests", NO_TESTS), ("timeout", TIMEOUT)):
        if exit_code in codes:
            return name
    return "suspicious"


def results(module: str) -> dict[str, str]:
    """Each mutant of ``module`` (``qhpo.x._y``) and its status, from mutmut's record."""
    meta = REPO / "mutants" / "src" / (module.replace(".", "/") + ".py.meta")
    if not meta.exists():
        return {}
    try:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
    except json.JSONDecodeError:  # mutmut is writing it now
        return {}
    return {name: status(code) for name, code in sorted(codes.items())}


def run(names: list[str], children: int) -> int:
    """``mutmut run`` on the mutants named (patterns allowed), nice 10, ``children`` at a time."""
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if mutmut is None:
        print("mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the tests import the mutated copy
    command = ["nice", "-n", "10", mutmut, "run", "--max-children", str(children), *names]
    return subprocess.call(command, cwd=REPO, env=env)


def score_table(modules: list[str]) -> str:
    """One line per module: its mutants by status and its score, then the total."""
    names = ("killed", "timeout", "survived", "no tests", "suspicious", "not run")
    lines = [f"{'module':36} " + " ".join(f"{n:>10}" for n in names) + f" {'score':>7}"]
    total: Counter = Counter()
    for module in modules:
        counts = Counter(results(module).values())
        total += counts
        lines.append(_line(module, counts, names))
    lines.append(_line("all", total, names))
    return "\n".join(lines)


def _line(label: str, counts: Counter, names: tuple[str, ...]) -> str:
    caught = counts["killed"] + counts["timeout"]
    judged = caught + counts["survived"] + counts["no tests"]
    score = f"{100 * caught / judged:6.1f}%" if judged else "      -"
    return f"{label:36} " + " ".join(f"{counts[n]:>10}" for n in names) + f" {score}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run: {', '.join(GROUPS)} (default: all)")
    parser.add_argument("--children", type=int, default=2, help="mutants tested at the same time (default 2)")
    parser.add_argument("--score", action="store_true", help="print the score of what has run; run nothing")
    parser.add_argument("--survivors", action="store_true", help="print the surviving mutants; run nothing")
    parser.add_argument(
        "--rerun-survivors", action="store_true", help="run only the surviving mutants again (after adding tests)"
    )
    args = parser.parse_args()
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        print(f"unknown group {unknown[0]!r}; choose from {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    if args.children < 1:
        print(f"--children must be at least 1, got {args.children}", file=sys.stderr)
        return 2
    modules = [m for g in (args.groups or GROUPS) for m in GROUPS[g]]
    if args.survivors:
        for module in modules:
            for name, state in results(module).items():
                if state in ("survived", "no tests"):
                    print(f"{state:9} {name}")
        return 0
    if args.rerun_survivors:
        names = [n for m in modules for n, state in results(m).items() if state in ("survived", "no tests")]
        if names and (code := run(names, args.children)) != 0:
            print(f"mutmut stopped with exit code {code}", file=sys.stderr)
            return code
    elif not args.score:
        for group in args.groups or GROUPS:  # group by group, so that a stopped run leaves whole groups scored
            code = run([m + ".*" for m in GROUPS[group]], args.children)
            if code != 0:
                print(f"mutmut stopped with exit code {code} on group {group}", file=sys.stderr)
                return code
    print(score_table(modules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
