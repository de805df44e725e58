"""The CNN family that the search space spans."""

from __future__ import annotations

import torch
from torch import nn

_IMAGE_SIDE = 32
_KERNEL = 5
_HIDDEN = (120, 84)
_CLASSES = 10


def feature_side(num_layers: int) -> int:
    """Side of the last feature map: ``s = (32 - 4) / 2 - 4 (num_layers - 1) = 14 - 4 (L - 1)``.

    Every 5x5 convolution is unpadded (it trims 4 pixels) and one 2x2 max-pool follows the
    first, so ``L <= 4`` keeps at least a 2x2 map.
    """
    return (_IMAGE_SIDE - (_KERNEL - 1)) // 2 - (_KERNEL - 1) * (num_layers - 1)


class CifarCNN(nn.Module):
    """The reference CNN for CIFAR-10, with ``L = num_layers`` and ``F = num_filters``.

    ``conv5x5(3 -> F) -> ReLU -> maxpool2``, then ``L - 2`` times ``conv5x5(F -> F) -> ReLU``,
    then ``conv5x5(F -> 2F) -> ReLU`` (the last convolution doubles the filters), flatten to
    ``2F * s * s`` features with ``s = feature_side(L)``, and three fully connected layers
    ``-> 120 -> ReLU -> 84 -> ReLU -> 10`` logits.

    Example:
        >>> CifarCNN(3, 32)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])

    Args:
        num_layers: Number of convolutions, 2, 3 or 4.
        num_filters: Filters of every convolution but the last, which has twice as many.
    """

    def __init__(self, num_layers: int, num_filters: int) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 2 <= num_layers <= 4:
            raise ValueError(
                f"num_layers must be 2, 3 or 4 (unpadded 5x5 convolutions leave 14-4(L-1) pixels), got {num_layers!r}"
            )
        if isinstance(num_filters, bool) or not isinstance(num_filters, int) or num_filters < 1:
            raise ValueError(f"num_filters must be a positive integer, got {num_filters!r}")
        self.num_layers = num_layers
        self.num_filters = num_filters
        layers: list[nn.Module] = [nn.Conv2d(3, num_filters, _KERNEL), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        for _ in range(num_layers - 2):
            layers += [nn.Conv2d(num_filters, num_filters, _KERNEL), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(num_filters, 2 * num_filters, _KERNEL), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = feature_side(num_layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * num_filters * side * side, _HIDDEN[0]),
            nn.ReLU(inplace=True),
            nn.Linear(_HIDDEN[0], _HIDDEN[1]),
            nn.ReLU(inplace=True),
            nn.Linear(_HIDDEN[1], _CLASSES),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
