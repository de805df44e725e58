"""Connecting to a Ray cluster, or starting a local one, for a qhpo search or replay."""

from __future__ import annotations

import logging
import os
import socket

import ray

from qhpo._environment import MALLOC_TUNABLES
from qhpo._errors import QhpoError

_CONNECT_TIMEOUT_S = 10

# Worker processes inherit these: no usage reporting, and glibc settings that keep CPU
# training from returning and re-faulting large tensor allocations every batch.
WORKER_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "GLIBC_TUNABLES": MALLOC_TUNABLES,
}


def connect_ray(
    address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None, quiet: bool = False
) -> bool:
    """Make sure this process is a Ray driver; return True when this call started Ray.

    Args:
        address: ``host:port`` of a running cluster's head (``ray start --head``), or
            ``"auto"`` for the cluster this machine belongs to; ``None`` starts a local
            Ray on this machine (with ``num_cpus``/``num_gpus``, default: all).
        num_cpus, num_gpus: Resources of a local Ray (ignored with ``address``).
        quiet: Keep the workers' output and Ray Tune's warnings off the console.
    """
    if quiet:
        # Ray Tune's newer console output prints its header even at verbose=0; the older does not.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    level = logging.ERROR if quiet else logging.INFO
    runtime_env = {"env_vars": {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}}
    try:
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=not quiet, logging_level=level)
        else:
            ray.init(
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                include_dashboard=False,
                runtime_env=runtime_env,
                log_to_driver=not quiet,
                logging_level=level,
            )
    except ConnectionError as error:
        raise _unreachable(address, error) from None
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds on a wrong ``host:port`` (``ray.init`` retries it for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto" or a ray:// client address: Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise _unreachable(address, error) from None


def _unreachable(address: str, error: Exception) -> QhpoError:
    return QhpoError(
        f"cannot reach the Ray cluster at {address} ({error}); start it with `ray start --head` "
        "and pass the address it prints, or leave out --address for a local Ray."
    )
