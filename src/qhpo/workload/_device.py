"""Which torch device a trial trains on."""

from __future__ import annotations

import torch

from qhpo._errors import QhpoError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` picks the first GPU when torch sees one and the CPU otherwise. Asking for a GPU
    that torch cannot see is an error of the user's environment (:class:`qhpo.QhpoError`).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        try:
            resolved = torch.device(name)
        except RuntimeError:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
        if not torch.cuda.is_available():
            raise QhpoError(
                f"device {name!r} was requested but this torch build sees no CUDA GPU; pass --device cpu or --device auto."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise QhpoError(
                f"device {name!r} was requested but only {torch.cuda.device_count()} CUDA GPU(s) are visible; "
                "pick an index below that or pass --device cuda."
            )
        return resolved
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
