"""Fault injection on a real study: worker and whole-run SIGKILLs and a Ctrl-C, then resume.

The short version of ``benchmarks/chaos.py`` (same code, fewer kills)."""

from __future__ import annotations

import pytest

from repo_scripts import load_script


def _chaos_module():
    return load_script("benchmarks/chaos.py", "qhpo_chaos_benchmark")


@pytest.mark.slow
def test_killed_workers_runs_and_ctrl_c_lose_and_duplicate_nothing(tmp_path, cifar_dir):
    chaos = _chaos_module()
    result = chaos.run_chaos(
        tmp_path,
        data_dir=cifar_dir,
        kills=5,
        sigints=1,
        trials=6,
        workers=2,
        epochs=3,  # two checkpoint writes per new trial: a checkpoint kill finds its moment in a short run
        subset=256,
        val_size=250,
        seed=1,
    )
    assert result["kills_survived"] >= 4, result
    # a kill at the tell struck after the last epoch was reported and before the tell was stored
    assert result["interrupted_holding_every_epoch"] >= result["kills_by_kind"].get("tell", 0), result
    assert result["final_status"] == 0, result
    assert result["finished"] == result["trials_asked"], result  # exactly N, across every restart
    assert result["trials_lost"] == 0 and result["trials_duplicated"] == 0, result
    assert result["running_left"] == 0 and result["temporary_files_left"] == [], result
    assert result["broken_curves"] == [], result
