"""The local Ray cluster the Ray tests share (started once per test module)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster of 2 CPUs; its address. num_gpus=0: the same cluster on every
    machine, whatever GPUs it has."""
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
