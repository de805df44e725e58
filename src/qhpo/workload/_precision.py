"""The arithmetic a trial trains in: bfloat16 autocast where the hardware has it, float32 elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import torch

#: Accepted values of ``TrialTrainer(precision=...)``.
PRECISIONS = ("auto", "bf16", "fp32")
#: Lowest CUDA compute capability with bf16 convolutions in cuDNN (Ampere, A100 = 8.0).
BF16_MIN_CAPABILITY = (8, 0)


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16, read from Linux's /proc/cpuinfo).

    There bf16 autocast trains about 1.6x faster per epoch than float32; without these
    instructions it is emulated and slower, so ``precision="auto"`` keeps float32.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(
    precision: str,
    device: torch.device,
    *,
    cuda_capability: Callable[[torch.device], tuple[int, int]] | None = None,
    cpu_bf16: Callable[[], bool] | None = None,
) -> str:
    """The arithmetic a trainer uses: ``"bf16"`` (autocast, float32 weights) or ``"fp32"``.

    ``"auto"`` picks bf16 on a GPU of compute capability >= 8.0 (A100, H100, RTX 30xx and
    later: cuDNN has bf16 tensor-core convolutions) and on a CPU with native bf16
    instructions; float32 elsewhere. On older GPUs (V100 7.0, T4 7.5) cuDNN has no bf16
    convolutions and falls back to slow kernels, and float16 would need loss scaling, whose
    skipped steps and overflows in high-learning-rate trials would make a trial's curve
    depend on the GPU it ran on (docs/workload.md, "Precision"). ``"bf16"`` and ``"fp32"``
    are taken as given.

    Example:
        >>> resolve_precision("auto", torch.device("cuda"), cuda_capability=lambda d: (7, 0))
        'fp32'
        >>> resolve_precision("auto", torch.device("cuda"), cuda_capability=lambda d: (9, 0))
        'bf16'

    Args:
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``.
        device: The training device.
        cuda_capability: ``device -> (major, minor)``; default
            :func:`torch.cuda.get_device_capability`.
        cpu_bf16: ``() -> bool``; default :func:`cpu_has_native_bf16`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        capability = (cuda_capability or torch.cuda.get_device_capability)(device)
        return "bf16" if tuple(capability) >= BF16_MIN_CAPABILITY else "fp32"
    return "bf16" if (cpu_bf16 or cpu_has_native_bf16)() else "fp32"
