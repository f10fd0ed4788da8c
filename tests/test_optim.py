"""The one optimizer factory and what a checkpoint records about an optimizer."""

import pytest
import torch

from coursekit.freezing import param_groups
from coursekit.training import Callback, fit
from coursekit.training.optim import make_optimizer, optimizer_settings, settings_differences

from helpers import blobs, mlp, tiny_bert_config


def test_adamw_over_the_trainable_parameters_only():
    model = mlp()
    model[0].requires_grad_(False)
    opt = make_optimizer(model, 3e-3)
    assert isinstance(opt, torch.optim.AdamW)
    assert [p.shape for p in opt.param_groups[0]["params"]] == [(3, 32), (3,)]
    assert opt.defaults["lr"] == 3e-3 and opt.defaults["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="frozen"):
        make_optimizer(mlp().requires_grad_(False))


def test_param_groups_keep_their_learning_rates():
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification(tiny_bert_config(num_labels=2))
    opt = make_optimizer(param_groups(model, 1e-3, decay=0.5), 1e-3)
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] == 1e-3 and lrs[1] == 5e-4 and lrs == sorted(lrs, reverse=True)


def test_fit_trains_with_the_factorys_optimizer():
    seen = []

    class Record(Callback):
        def on_fit_start(self, state):
            seen.append(optimizer_settings(state.optimizer))

    model = mlp()
    fit(model, blobs(), epochs=1, lr=2e-3, callbacks=[Record()], progress=False)
    assert seen == [optimizer_settings(make_optimizer(mlp(), 2e-3))]


def test_settings_name_what_differs_and_follow_initial_lr_under_a_scheduler():
    model = mlp()
    a = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(a, step_size=1, gamma=0.1)
    before = optimizer_settings(a)
    a.step()
    sched.step()  # the group's lr is now 1e-4; its starting lr is still 1e-3
    assert optimizer_settings(a) == before
    b = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.999))
    assert settings_differences(before, optimizer_settings(b)) == [
        "betas: checkpoint [0.9, 0.999], now [0.8, 0.999]"
    ]
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    assert settings_differences(before, optimizer_settings(sgd)) == [
        "optimizer class: checkpoint AdamW, now SGD"
    ]
