"""The two MLP heads over backbone features, domain probe (K logits) and diversity predictor (1),
and how one is fitted on cached features (``HeadConfig``, ``fit_head``, ``fit_temperature``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..errors import TrainingError
from ..options import Number, Settings, Widths, int_list, option


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


@dataclass
class HeadConfig(Settings):
    """How both heads are fitted: AdamW on the cached features, early stopping on held-out rows."""

    hidden: list[int] | None = option(
        None, parse=int_list, check=Widths(nullable=True), help="head widths, comma-separated (default: 2d,d,d/2,256, the paper's)"
    )
    lr: float = option(1e-3, check=Number(low=0, high=10, open_low=True), help="AdamW learning rate")
    weight_decay: float = option(0.01, check=Number(low=0), help="AdamW weight decay")
    head_batch_size: int = option(128, check=Number(integer=True, low=1), help="rows per head training step")
    max_epochs: int = option(200, check=Number(integer=True, low=1), help="epochs per head at most")
    patience: int = option(10, check=Number(integer=True, low=1), help="early-stopping patience: epochs without validation improvement")


def new_head(dim: int, out: int, hidden: list[int], seed: int) -> Head:
    """A freshly initialised head; the seed fixes its initial weights."""
    torch.manual_seed(seed)
    return Head(dim, out, hidden)


@dataclass(frozen=True)
class Fit:
    """How a head's training went."""

    val_loss: float  # best validation loss
    best_epoch: int  # 1-based epoch of that loss (the weights kept)
    epochs: int  # epochs run


def fit_head(
    head: Head, x: torch.Tensor, y: torch.Tensor, val: np.ndarray, config: HeadConfig, seed: int, task: Literal["classify", "regress"]
) -> Fit:
    """Fit ``head`` on the rows of ``x`` outside ``val`` (positions in ``x``) with AdamW; early
    stopping on the ``val`` rows' loss. ``classify``: ``y`` holds class indices (cross-entropy);
    ``regress``: ``y`` holds the targets of a 1-output head (MSE)."""
    classify = task == "classify"
    loss_fn = torch.nn.functional.cross_entropy if classify else torch.nn.functional.mse_loss
    train = np.setdiff1d(np.arange(len(x)), val)
    head.set_standardisation(x[train])
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    xt, yt, xv, yv = x[train], y[train], x[val], y[val]

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        out = head(inputs)
        return out if classify else out.squeeze(-1)

    best, best_state, best_epoch, epoch = math.inf, None, 0, 0
    for epoch in range(config.max_epochs):
        head.train()
        for batch in torch.randperm(len(xt), generator=gen).split(config.head_batch_size):
            opt.zero_grad()
            loss_fn(predict(xt[batch]), yt[batch]).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(predict(xv), yv))
        if val_loss < best - 1e-6:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is None:
        raise TrainingError(f"the validation loss was never finite in {epoch + 1} epochs: check the features (lr={config.lr})")
    head.load_state_dict(best_state)
    head.eval()
    return Fit(best, best_epoch + 1, epoch + 1)


@torch.no_grad()
def fit_temperature(head: Head, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Set the probe's temperature to the one that minimises the NLL of ``labels`` on rows ``x``.

    A 1-D search over a log grid (0.05 to 50): deterministic and needs no optimiser settings.
    """
    head.temperature.fill_(1.0)
    logits = head(x)  # (n, K)
    grid = torch.exp(torch.linspace(math.log(0.05), math.log(50.0), 400))
    nll = torch.stack([torch.nn.functional.cross_entropy(logits / t, labels) for t in grid])
    best = float(grid[int(nll.argmin())])
    head.temperature.fill_(best)
    return best
