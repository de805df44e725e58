#!/usr/bin/env bash
# What a first run on a GPU must prove, in under 8 minutes on one GPU, ending with a short table:
#   1. the GPU tests (pytest -m gpu): a checkpoint written on the GPU restores on the CPU and
#      back, a GPU trainer draws the CPU trainer's batches, --precision auto follows the compute
#      capability, two workers share one GPU, Ray trials on a share of a GPU
#      (--trials-per-gpu, --gpus-per-trial 0.5, --device cuda:0);              at most 140 s
#   2. seconds per epoch on all 45,000 training images for three configurations at 1, 2 and
#      4 trials per GPU (benchmarks/gpu_epochs.py);                            at most 170 s
#   3. a slice of the poster preset (qhpo run --preset poster) at the best of those K,
#      stopped after SLICE_S seconds, and from its epochs per second an estimate of the
#      whole preset's duration on this GPU.                                    SLICE_S + 15 s
#
#     bash benchmarks/gpu_check.sh                 # needs a CUDA build of torch in .venv
#
# Environment: QHPO_PYTHON (default .venv/bin/python, else python3), QHPO_DATA_DIR or
# QHPO_TEST_DATA (a folder with cifar-10-batches-py/; default ../shared/data, then
# ~/.cache/qhpo/data), SLICE_S (default 110), POSTER_COST (fraction of the poster preset's
# 20,000 epochs the poster rule trains, default 0.746: the replay of the recorded CIFAR-10
# CNN curves in docs/replay.md). Writes its logs and figures to GPU_CHECK_DIR (default a
# fresh temporary folder). DRY_RUN=1 runs the same stages on the CPU with 512 images and
# short caps, to check the script itself on a machine without a GPU (its figures mean nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${QHPO_PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" RAY_USAGE_STATS_ENABLED=0
DRY_RUN="${DRY_RUN:-0}"
SLICE_S="${SLICE_S:-110}"
device=cuda; small=(); slice_flags=(); ks=(1 2 4); test_cap=140; epochs_cap=170
if [ "$DRY_RUN" = 1 ]; then
    device=cpu; small=(--subset 512); slice_flags=(--device cpu --subset 512 --val-size 500 --epochs 4)
    ks=(1 2); SLICE_S=40
fi
POSTER_COST="${POSTER_COST:-0.746}"
OUT="${GPU_CHECK_DIR:-$(mktemp -d -t qhpo-gpu-check-XXXX)}"
mkdir -p "$OUT"

if [ "$DRY_RUN" != 1 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check.sh: $PY has no torch that sees a CUDA GPU; install one with QHPO_TORCH=cu126 bash scripts/install.sh (or set QHPO_PYTHON)." >&2
    exit 2
fi
DATA=""
for candidate in "${QHPO_DATA_DIR:-}" "${QHPO_TEST_DATA:-}" ../shared/data "$HOME/.cache/qhpo/data"; do
    if [ -n "$candidate" ] && [ -d "$candidate/cifar-10-batches-py" ]; then DATA="$candidate"; break; fi
done
if [ -z "$DATA" ]; then
    echo "gpu_check.sh: no cifar-10-batches-py/ found; set QHPO_DATA_DIR to the folder that holds it (qhpo run --download fetches it)." >&2
    exit 2
fi
export QHPO_TEST_DATA="$DATA"
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'GPU: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}')" 2>/dev/null \
    || echo "no GPU: dry run on the CPU"
echo "data: $DATA; logs and figures: $OUT"

echo "== 1/3 GPU tests"
start=$SECONDS
timeout -k 10 "$test_cap" "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/workload/test_gpu.py >"$OUT/tests.log" 2>&1
tests_rc=$?
tests_line=$(grep -E "passed|failed|error|skipped|no tests ran" "$OUT/tests.log" | tail -1 | tr -d '=' | xargs)
[ $tests_rc -eq 124 ] && tests_line="stopped after $test_cap s: ${tests_line:-no summary}"
echo "$tests_line ($((SECONDS - start)) s)"

echo "== 2/3 seconds per epoch, ${small[*]:-45,000 images}, ${ks[*]} trial(s) per GPU"
start=$SECONDS
timeout -k 10 "$epochs_cap" "$PY" benchmarks/gpu_epochs.py --data-dir "$DATA" --device "$device" "${small[@]}" \
    --trials-per-gpu "${ks[@]}" --epochs 2 --json "$OUT/epochs.json" | tee "$OUT/epochs.log"
echo "($((SECONDS - start)) s)"
best=$("$PY" -c "import json; print(json.load(open('$OUT/epochs.json'))['best_trials_per_gpu'])" 2>/dev/null || echo 1)

echo "== 3/3 poster preset, ${SLICE_S} s slice at --trials-per-gpu $best"
start=$SECONDS
timeout -k 15 -s INT "$SLICE_S" "$PY" -m qhpo run --preset poster --trials-per-gpu "$best" --quiet \
    --storage "$OUT/poster.db" --study poster-slice --data-dir "$DATA" "${slice_flags[@]}" >"$OUT/poster.log" 2>&1
slice_end=$(date +%s.%N)
echo "($((SECONDS - start)) s)"

"$PY" - "$OUT" "$best" "$slice_end" "$POSTER_COST" "$tests_line" <<'PY'
import json, sys
from pathlib import Path

import optuna

out, best, slice_end, cost, tests = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
epochs_total = 100 * 200  # the poster preset: 100 trials x 200 epochs when none is stopped
print("\n== summary")
print(f"| check | result |\n|---|---|\n| GPU tests | {tests} |")
try:
    figures = json.loads((out / "epochs.json").read_text())
    for k, rows in figures["table"].items():
        cells = ", ".join(f"{name} {row['seconds_per_epoch']:.2f} s" for name, row in rows.items())
        print(f"| s/epoch, {k} trial(s) per GPU | {cells} |")
    print(f"| best trials per GPU | {figures['best_trials_per_gpu']} |")
    rows = figures["table"][str(best)]
    rate = sum(r["epochs_per_second"] for r in rows.values()) / len(rows)
    print(f"| poster estimate from the three configurations at K={best} | {epochs_total * cost / rate / 3600:.1f} h "
          f"({epochs_total / rate / 3600:.1f} h if no trial were stopped; {rate:.2f} epochs/s, their mean) |")
except (OSError, KeyError, ValueError, ZeroDivisionError) as error:
    print(f"| seconds per epoch | not measured ({type(error).__name__}) |")
optuna.logging.set_verbosity(optuna.logging.WARNING)
try:
    study = optuna.load_study(study_name="poster-slice", storage=f"sqlite:///{out / 'poster.db'}")
    trials = study.get_trials(deepcopy=False)
    epochs = sum(len(t.intermediate_values) for t in trials)
    first = min(t.datetime_start.timestamp() for t in trials if t.datetime_start)
    rate = epochs / (slice_end - first)
    print(f"| poster slice | {len(trials)} trial(s), {epochs} epochs in {slice_end - first:.0f} s of training: "
          f"{rate:.2f} epochs/s |")
    print(f"| poster estimate from the slice | {epochs_total * cost / rate / 3600:.1f} h at the poster rule's "
          f"{cost:.1%} of the epochs ({epochs_total / rate / 3600:.1f} h if no trial were stopped) |")
except Exception as error:  # no study, no trial, no epoch: the slice log says why
    print(f"| poster slice | no epochs measured ({type(error).__name__}: {error}); see {out / 'poster.log'} |")
PY
