"""The one training step: fit, the LR range test and the cost measurements take it."""

import copy

import torch

from coursekit.runtime.device import resolve_precision
from coursekit.training import fit, make_optimizer
from coursekit.training.step import StepSetup, first_nonfinite, train_step

from helpers import blobs, mlp


def test_fit_takes_exactly_the_shared_step():
    model = mlp(dropout=0.0)
    twin = copy.deepcopy(model)
    x, y = blobs(32).tensors
    fit(model, [(x, y)], epochs=1, lr=1e-2, device="cpu", progress=False)
    cpu = torch.device("cpu")
    setup = StepSetup.create(twin, make_optimizer(twin, 1e-2), cpu, resolve_precision("fp32", cpu))
    loss, logits = train_step(setup, x, y, check=True)
    assert logits.shape == (32, 3) and not loss.requires_grad
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_accumulating_leaves_the_weights_until_the_update():
    model = mlp(dropout=0.0)
    before = [p.clone() for p in model.parameters()]
    cpu = torch.device("cpu")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    setup = StepSetup.create(model, opt, cpu, resolve_precision("fp32", cpu), grad_accum_steps=2)
    x, y = blobs(16).tensors
    train_step(setup, x[:8], y[:8], update=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    train_step(setup, x[8:], y[8:])
    assert not torch.equal(before[0], model[0].weight)
    assert all(p.grad is None for p in model.parameters())  # zeroed after the update


def test_first_nonfinite_finds_the_first_bad_loss():
    losses = [torch.tensor(1.0), torch.tensor(float("inf")), torch.tensor(float("nan"))]
    assert first_nonfinite(losses) == 1
    assert first_nonfinite(losses[:1]) is None and first_nonfinite([]) is None
