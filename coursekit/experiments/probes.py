"""The linear probe: a linear head trained on cached backbone features.

`linear_probe(features, labels, num_classes)` trains `Standardize -> nn.Linear` with `fit`;
`probe_method(...)` wraps it as a method for `experiments.data_efficiency` (splits whose x holds
the features, e.g. from `features.extract_features`). The backbone never runs while training, so
the probe is the cheap end of transfer learning, cheap enough to give it a fair chance: its own
learning rate, chosen on validation features (`choose_probe_lr`), and many epochs. A baseline
that is under-trained makes everything else look better than it is (lessons 02, 05, 06).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..datasets import Split
from ..heads import init_head
from ..training.evaluation import predict
from ..training.history import History
from ..training.loop import fit
from ..training.optim import make_optimizer
from .methods import Method, epochs_for, run_record

__all__ = ["Standardize", "choose_probe_lr", "linear_probe", "probe_method", "standardized_head"]


class Standardize(nn.Module):
    """Fixed `(x - mean) / std` with statistics from the training features (buffers, so they
    are saved with the head but never trained): centred, unit-scale inputs for the head."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp(min=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def standardized_head(features: torch.Tensor, num_classes: int, init: str = "default") -> nn.Module:
    """A fresh `Standardize -> nn.Linear(D, num_classes)`, centred on `features`' mean;
    `init`: the linear layer's initialisation (`heads.init_head`)."""
    features = features.float()
    # One scale for all features (their overall RMS spread), not one per feature: with 5
    # examples per class some features are constant by chance, and dividing by their ~0 spread
    # would blow up the same feature on test images.
    spread = features.std(0).pow(2).mean().sqrt() if len(features) > 1 else torch.tensor(1.0)
    return nn.Sequential(
        Standardize(features.mean(0), spread.expand(features.shape[1])),
        init_head(nn.Linear(features.shape[1], num_classes), init),
    )


def linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 30,
    min_steps: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    batch_size: int = 64,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    init: str = "default",
    device: torch.device | str | None = None,
) -> tuple[nn.Module, History]:
    """Train `Standardize -> nn.Linear(D, num_classes)` on cached features with `fit`.

    The features are centred with their training mean and divided by one overall spread.

    The backbone is not involved at all: each step costs one small matrix product, so the head
    can afford many epochs (at least `min_steps` updates, even for 5 examples per class).
    `val`: (features, labels) evaluated after every epoch: validation learning curves in the
    returned `History`. `init`: the linear layer's initialisation (`heads.init_head`).
    """
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(
            f"expected features N x D and N labels, got {tuple(features.shape)} and {len(labels)}"
        )
    features = features.float()
    head = standardized_head(features, num_classes, init)
    n_epochs = epochs_for(len(features), batch_size, epochs, min_steps)
    history = fit(
        head,
        TensorDataset(features, labels),
        None if val is None else TensorDataset(val[0].float(), val[1]),
        epochs=n_epochs,
        optimizer=make_optimizer(head, lr, weight_decay=weight_decay, device=device),
        batch_size=batch_size,
        device=device,
        progress=False,
    )
    return head, history


def probe_method(
    *,
    epochs: int = 30,
    min_steps: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    batch_size: int = 64,
    val: Split | None = None,
    init: str = "default",
    device: torch.device | str | None = None,
) -> Method:
    """A method for `data_efficiency` whose splits hold features (x: N x D): a linear probe.
    `val`: a split of features evaluated after every epoch (learning curves in the run's
    `history`); `init`: the head's initialisation (`heads.init_head`: "default", "zeros",
    "small")."""

    def run(train: Split, test: Split) -> dict[str, Any]:
        num_classes = int(max(train.y.max(), test.y.max())) + 1
        head, history = linear_probe(
            train.x,
            train.y,
            num_classes,
            epochs=epochs,
            min_steps=min_steps,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            val=None if val is None else (val.x, val.y),
            init=init,
            device=device,
        )
        logits, _ = predict(head, TensorDataset(test.x.float(), test.y), device)
        return run_record(logits, history, head, len(train), backbone_passes=0)

    return run


def choose_probe_lr(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2),
    **probe_kwargs: Any,
) -> tuple[float, dict[float, float]]:
    """The learning rate whose `linear_probe` scores highest on the validation features (the
    smaller rate among equals), and every rate's validation accuracy: `(best, {lr: accuracy})`.
    `train` / `val` are `(features, labels)`; `probe_kwargs` go to `linear_probe` (epochs...)."""
    scores = {}
    for lr in sorted(lrs):
        head, _ = linear_probe(*train, num_classes, lr=lr, **probe_kwargs)
        logits, labels = predict(head, TensorDataset(val[0].float(), val[1]))
        scores[lr] = (logits.argmax(1) == labels).float().mean().item()
    best = max(scores.values())
    return min(lr for lr, acc in scores.items() if acc == best), scores
