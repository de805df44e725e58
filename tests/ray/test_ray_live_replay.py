"""``qhpo bench --backend ray``: the table's rows as live Ray Tune trials on a real local Ray
cluster, decided by the real PredictiveScheduler, against the in-process replay."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")


from qhpo.cli import main  # noqa: E402
from test_live_replay import SMALL, _bench, assert_same_decisions  # noqa: E402


@pytest.mark.ray
def test_one_settled_worker_decides_as_the_local_replay(local_ray, tmp_path, capsys):
    # seed 1 of the small table: qhpo pauses 21 times and resumes 3 paused trials
    args = [*SMALL, "--first-seed", "1", "--seeds", "1", "--policies", "median,qhpo"]
    local = _bench([*args, "--jobs", "1"], tmp_path, "local")
    folder = tmp_path / "experiments"
    live = _bench(
        [*args, "--backend", "ray", "--settle", "--epoch-seconds", "0", "--storage-dir", str(folder)], tmp_path, "live"
    )
    assert "live Ray Tune trials (1 at a time" in capsys.readouterr().out
    assert local["policies"]["qhpo"]["resumed_mean"] > 0  # the comparison covers freeze-thaw
    assert_same_decisions(local, live, ("median", "qhpo"))
    assert live["backend"] == {
        "name": "ray",
        "mode": "live",
        "epoch_seconds": 0.0,
        "settle": True,
        "workers": 1,
        "in_process": ["median"],
    }
    # a real Ray Tune experiment, kept: one trial per row, each epoch reported once; a resumed
    # trial restarted from its Ray checkpoint and went on after the epoch it paused at
    restarts = {}
    for trial in (folder / "cifar10_cnn-qhpo-seed1-1w").iterdir():
        if not trial.is_dir():
            continue  # Ray Tune's experiment state
        results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        row = results[0]["config"]["__qhpo_row"]
        assert [r["epoch"] for r in results] == list(range(1, len(results) + 1))
        assert len(results) == live["example"]["epochs_trained"]["qhpo"][row]
        restarts[row] = [r["epoch"] - 1 for r in results[1:] if r["iterations_since_restore"] == 1]
    assert sorted(restarts) == list(range(20))
    resumed = live["example"]["resumptions"]["qhpo"]
    assert sorted([row, epoch] for row, epochs in restarts.items() for epoch in epochs) == sorted(resumed)


@pytest.mark.ray
def test_a_stopping_rule_spends_fewer_epochs_than_none_on_two_workers(local_ray, tmp_path):
    live = _bench(
        [*SMALL[: SMALL.index("--policy-option")], "--seeds", "1", "--policies", "none,qhpo-stop"]
        + ["--backend", "ray", "--workers", "2"]
        + ["--epoch-seconds", "0.005"],
        tmp_path,
        "live",
    )
    assert live["backend"]["workers"] == 2 and live["backend"]["settle"] is False
    assert live["policies"]["none"]["per_seed"]["cost_fraction"] == [1.0]
    stop = live["policies"]["qhpo-stop"]
    assert 0 < stop["per_seed"]["cost_fraction"][0] < 1.0
    assert stop["per_seed"]["regret"][0] >= 0
    assert stop["predictor_seconds_mean"] > 0  # the scheduler's predictor fitted while the trials ran
    assert sum(live["example"]["epochs_trained"]["qhpo-stop"]) < sum(live["example"]["epochs_trained"]["none"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "ray", "--storage", "journal"], "leave it out with --backend ray"),
        (["--backend", "ray", "--predictor", "oracle"], "choose svr, qsvr or qsvr-ensemble for --backend ray"),
        (["--backend", "ray", "--jobs", "2"], "--jobs applies to the local backend"),
        (["--backend", "ray", "--epoch-seconds", "nan"], "--epoch-seconds must be"),
        (["--backend", "ray", "--sweep-seeds", "2"], "--sweep-seeds is not replayed live"),
        (["--backend", "ray-clock", "--settle"], "--settle applies to the live replay only"),
    ],
)
def test_bad_ray_live_options_are_one_sentence(extra, message, capsys):
    assert main([*SMALL, "--policies", "qhpo", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
