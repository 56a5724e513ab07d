"""The two MLP heads over backbone features: domain probe (K logits) and diversity predictor (1)."""

from __future__ import annotations

import torch
from torch import nn


def default_hidden(dim: int) -> list[int]:
    """The paper's widths for feature size d: 2d -> d -> d/2 -> 256."""
    return [2 * dim, dim, max(dim // 2, 1), 256]


class Head(nn.Module):
    """Standardise the feature, then an MLP with ReLU between layers, outputs divided by a temperature.

    The standardisation statistics and the temperature are buffers (fitted on training features and
    held-out rows; the temperature stays 1 for the predictor), so they are saved and loaded with the
    weights and scoring applies exactly what training saw.
    """

    def __init__(self, dim: int, out: int, hidden: list[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))  # (d,)
        self.register_buffer("scale", torch.ones(dim))  # (d,)
        self.register_buffer("temperature", torch.ones(()))  # ()
        widths = [dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], out))
        self.mlp = nn.Sequential(*layers)

    def set_standardisation(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(0))
        self.scale.copy_(features.std(0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, d) -> (n, out)
        return self.mlp((x - self.mean) / self.scale) / self.temperature
