"""The curve prior: it never sees the table it helps replay (recognised by content, not by
name), the shipped prior rebuilds byte for byte from its documented command, a corrupt prior
is refused in one sentence, and the decisions it makes are those of the seed."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qhpo import QhpoError
from qhpo.cli import main
from qhpo.curves import builtin_table_paths, builtin_tables_folder, read_curve_table
from qhpo.policies import PriorStanding, make_policy
from qhpo.priors import (
    REBUILD,
    build_prior,
    builtin_prior_path,
    load_prior,
    prior_for_table,
    read_prior,
    table_fingerprint,
)
from qhpo.replay import draw_order, replay_rule
from qhpo.replay._benchmark import leave_out_of_prior

REPO = Path(__file__).resolve().parents[2]


def _write_table(folder: Path, name: str, seed: int, n: int = 60, epochs: int = 40) -> Path:
    """A table of saturating accuracy curves ``top - drop * exp(-e / speed)`` with noise."""
    rng = np.random.default_rng(seed)
    lr, speed = rng.uniform(1e-4, 1e-1, n), rng.uniform(2, 30, n)
    top = 0.9 - 0.4 * np.abs(np.log10(lr) + 2.5) / 2 + rng.normal(0, 0.02, n)
    e = np.arange(1, epochs + 1)
    curves = top[:, None] - 0.5 * np.exp(-e[None, :] / speed[:, None]) + rng.normal(0, 0.01, (n, epochs))
    path = folder / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "lr", *[f"epoch_{k}" for k in e]])
        for i in range(n):
            writer.writerow([i, repr(float(lr[i])), *[repr(float(x)) for x in curves[i]]])
    meta = dict(
        metric="accuracy", mode="max", epochs=epochs, trials=n, description="synthetic", source="-", license="-"
    )
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``full``: tables a, b, c and a renamed copy of a; ``others``: b and c alone."""
    full, others = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("others")
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        path = _write_table(full, name, seed)
        if name != "a":
            for suffix in (".csv", ".json"):
                shutil.copy(path.with_suffix(suffix), others / path.with_suffix(suffix).name)
    for suffix in (".csv", ".json"):
        shutil.copy(full / f"a{suffix}", full / f"zz_renamed_copy{suffix}")
    return full, others


def test_a_replayed_table_and_its_renamed_copy_are_left_out(folders):
    full, others = folders
    table = read_curve_table(full / "a.csv")
    fitted = prior_for_table(str(full), table.curves)
    assert fitted.tables == ("b", "c")
    assert table_fingerprint(table.curves) not in fitted.fingerprints
    expected = load_prior(others).fit()
    for share, w in expected.weights.items():
        assert np.array_equal(fitted.weights[share], w)
    # the check can fail: a prior that keeps a (and its copy) is another model
    kept = load_prior(full).fit()
    assert kept.tables == ("a", "b", "c", "zz_renamed_copy")
    assert not np.array_equal(kept.weights[0.1], expected.weights[0.1])


@pytest.mark.parametrize("how", ["drawn", "shuffled", "cut"])
def test_a_draw_a_shuffle_or_a_cut_of_the_table_is_recognised_too(folders, how):
    full, _ = folders
    table = read_curve_table(full / "a.csv")
    part = {
        "drawn": table.take(draw_order(table.n_trials, 25, seed=100)),
        "shuffled": table.take(np.random.default_rng(0).permutation(table.n_trials)),
        "cut": table.truncate(10),
    }[how]
    assert leave_out_of_prior({"prior": str(full)}, part)["prior"].tables == ("b", "c")


def test_a_replay_with_the_table_in_the_folder_decides_as_one_without_it(folders):
    """The replay of a with prior=full (a and its copy in it) makes the decisions of prior=others."""
    full, others = folders
    drawn = read_curve_table(full / "a.csv").take(draw_order(60, 60, seed=101))
    with_copy = replay_rule("qhpo", drawn, seed=101, predictor="svr", options={"prior": str(full)})
    without = replay_rule("qhpo", drawn, seed=101, predictor="svr", options={"prior": str(others)})
    assert np.array_equal(with_copy.epochs_trained, without.epochs_trained)
    assert with_copy.pauses == without.pauses and with_copy.resumptions == without.resumptions


def test_the_shipped_prior_rebuilds_byte_for_byte_from_its_command(tmp_path):
    out = tmp_path / "curves.json"
    command = REBUILD.split()
    assert command[:4] == ["python", "-m", "qhpo.priors", "build"]
    tables = command[command.index("--tables") + 1]
    assert Path(tables) == Path("src/qhpo/data/curves")
    run = [sys.executable, *command[1:]]
    run[run.index("--tables") + 1] = str(builtin_tables_folder())
    run[run.index("--out") + 1] = str(out)
    subprocess.run(run, check=True, capture_output=True, cwd=REPO)
    assert out.read_bytes() == builtin_prior_path().read_bytes()
    shipped = read_prior(builtin_prior_path())
    names = [t.name for t in shipped.tables]
    assert names == sorted(p.stem for p in builtin_table_paths())
    assert json.loads(out.read_text())["rebuild"] == REBUILD


def test_the_shipped_prior_lists_the_fingerprints_of_its_tables():
    shipped = {t.name: t.fingerprint for t in read_prior(builtin_prior_path()).tables}
    table = read_curve_table(builtin_tables_folder() / "baker_lstm_ptb.csv")
    assert shipped["baker_lstm_ptb"] == table_fingerprint(table.curves)
    # a replay of a built-in table with the shipped prior leaves that table out
    drawn = table.take(draw_order(table.n_trials, 100, seed=100))
    assert "baker_lstm_ptb" not in prior_for_table("builtin", drawn.curves).tables


def _corrupt(path: Path, how: str) -> Path:
    text = builtin_prior_path().read_text(encoding="utf-8")
    if how == "truncated":
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    elif how == "binary":
        path.write_bytes(b"\x80\x04\x95 a pickle, not a prior")
    elif how == "format":
        path.write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    elif how == "nan":
        document = json.loads(text)
        document["tables"][0]["stats"]["0.1"]["b"][2] = float("nan")
        path.write_text(json.dumps(document), encoding="utf-8")
    else:  # a statistic of the wrong shape
        document = json.loads(text)
        document["tables"][1]["stats"]["0.05"]["A"].pop()
        path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize("how", ["truncated", "binary", "format", "nan", "shape"])
def test_a_corrupt_prior_is_refused_in_one_sentence(tmp_path, how):
    path = _corrupt(tmp_path / "prior.json", how)
    with pytest.raises(QhpoError, match="is not a qhpo curve prior") as caught:
        read_prior(path)
    assert "\n" not in str(caught.value)


def test_the_cli_exits_2_on_a_corrupt_prior_or_an_empty_prior_folder(tmp_path, capsys):
    path = _corrupt(tmp_path / "prior.json", "truncated")
    common = ["bench", "--curves", "baker_lstm_ptb", "--policies", "qhpo", "--predictor", "svr", "--seeds", "1"]
    assert main([*common, "--policy-option", f"prior={path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qhpo: error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    assert "is not a qhpo curve prior" in err
    (tmp_path / "empty").mkdir()
    assert main([*common, "--prior-tables", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds no curve table" in err and len(err.splitlines()) == 1
    assert main(["bench", "--curves", "baker_lstm_ptb", "--policies", "median", "--prior-tables", str(tmp_path)]) == 2
    assert "names neither" in capsys.readouterr().err


def test_decisions_with_the_prior_are_those_of_the_seed_and_differ_from_none():
    table = read_curve_table(builtin_tables_folder() / "baker_lstm_ptb.csv")
    drawn = table.take(draw_order(table.n_trials, 100, seed=100))
    runs = [replay_rule("qhpo", drawn, seed=100, predictor="svr", options={"prior": "builtin"}) for _ in range(2)]
    assert np.array_equal(runs[0].epochs_trained, runs[1].epochs_trained)
    assert runs[0].pauses == runs[1].pauses and runs[0].resumptions == runs[1].resumptions
    off = replay_rule("qhpo", drawn, seed=100, predictor="svr")
    assert runs[0].pauses != off.pauses  # the prior changes who is paused at the first rungs


def test_the_standing_ranks_by_the_combined_score_and_names_both_values():
    from qhpo.policies._base import TrialStatus, TrialView
    from qhpo.policies._rungs import RungGroup

    prior = build_prior([read_curve_table(builtin_tables_folder() / "baker_lstm_ptb.csv")]).fit()
    rng = np.random.default_rng(0)
    curves = np.cumsum(rng.uniform(0, 0.1, (12, 4)), axis=1)
    peers = tuple(TrialView(i, tuple(c), {}, TrialStatus.RUNNING) for i, c in enumerate(curves))
    group = RungGroup(4, peers, 2.0)
    common = dict(sign=1.0, floor_quantile=0.1, anchor_window=1, max_epochs=40)
    alone = PriorStanding(group, prior=prior, weight=1.0, **common)
    assert np.array_equal(np.argsort(-alone.anchors, kind="stable"), np.argsort(-alone.prior_quantile, kind="stable"))
    plain = PriorStanding(group, prior=prior, weight=0.0, **common)
    assert np.array_equal(plain.anchors, plain.observed)  # weight 0: the observed ranking
    reason = alone.judge(0, predicted_rule=False).reason
    assert reason.startswith(f"observed value {curves[0, -1]:.4g} (ranked as ")
    assert "by its score with the curve prior's predicted final's quantile" in reason


def test_qhpo_run_and_the_adapters_take_the_option():
    from qhpo._policy_options import check_policy_options, option_names

    assert {"prior", "prior_weight"} <= set(option_names("qhpo"))
    check_policy_options("qhpo", {"prior": "builtin", "prior_weight": 0.3}, epochs=50)
    policy = make_policy("qhpo", max_epochs=50, prior="builtin")
    from qhpo.policies._base import TrialStatus, TrialView
    from qhpo.policies._rungs import RungGroup

    curves = np.cumsum(np.random.default_rng(0).uniform(0, 0.1, (12, 5)), axis=1)
    peers = tuple(TrialView(i, tuple(c), {}, TrialStatus.RUNNING) for i, c in enumerate(curves))
    standing = policy._ranking.standing(RungGroup(5, peers, 2.0), list(peers), predict=[])
    assert isinstance(standing, PriorStanding)
    with pytest.raises(QhpoError, match="prior_weight"):
        check_policy_options("qhpo", {"prior": "builtin", "prior_weight": 2}, epochs=50)
