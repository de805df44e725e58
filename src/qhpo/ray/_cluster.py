"""Connecting to a Ray cluster, or starting a local one, for a qhpo search or replay."""

from __future__ import annotations

import os

import ray

from qhpo._errors import QhpoError

# Worker processes inherit these: no usage reporting, and glibc settings that keep CPU
# training from returning and re-faulting large tensor allocations every batch.
WORKER_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296",
}


def connect_ray(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Make sure this process is a Ray driver; return True when this call started Ray.

    Args:
        address: ``host:port`` of a running cluster's head (``ray start --head``), or
            ``"auto"`` for the cluster this machine belongs to; ``None`` starts a local
            Ray on this machine (with ``num_cpus``/``num_gpus``, default: all).
        num_cpus, num_gpus: Resources of a local Ray (ignored with ``address``).
    """
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runtime_env = {"env_vars": {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}}
    try:
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, runtime_env=runtime_env)
    except ConnectionError as error:
        raise QhpoError(
            f"cannot reach the Ray cluster at {address} ({error}); start it with `ray start --head` "
            "and pass the address it prints, or leave out --address for a local Ray."
        ) from None
    return True
