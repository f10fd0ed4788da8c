"""In-place model edits return one kind of thing: the names of what they changed.

Freezing, a new head, a new stem, LoRA on, merged or off, recalibrated BatchNorm: each changes the
model it is given and returns a `list[str]` of qualified module or parameter names, so a learner
can print what happened and `model.get_submodule(name)` reaches a new layer. Functions that build,
copy or load a model return the model (`LOADERS`). The static test finds any new public function
that takes a model first and returns a model, so a new edit cannot quietly return something else.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import OrderedDict

import pytest
import torch
from torch import nn

import coursekit
from coursekit.finetune.build import apply_strategy
from coursekit.freezing import (
    freeze,
    freeze_all_but_head,
    freeze_batchnorm,
    recalibrate_batchnorm,
    set_bn_eval,
    unfreeze,
    unfreeze_last,
)
from coursekit.heads import adapt_input_channels, replace_head
from coursekit.lora import add_lora, add_text_lora, merge_lora, unmerge_lora
from coursekit.multi_gpu_example import set_dropout
from coursekit.params import set_submodule

from helpers import tiny_bert_config

# Public functions that take a model first and return a model: they look a part up, copy, build
# or load weights into a model; none of them is an edit that reports what it changed.
LOADERS = {
    "coursekit.experiments.forgetting.encoder_of",  # a part of the model
    "coursekit.experiments.forgetting.without_lora",  # a copy without the adapter
    "coursekit.finetune.export.merged_copy",  # a merged copy
    "coursekit.generative.loader.restore_packaged",  # loads the pre-trained weights back
    "coursekit.lora.adapters.load_adapter",  # loads an adapter onto a fresh base
}


def _public_model_functions() -> dict[str, inspect.Signature]:
    found = {}
    for info in pkgutil.walk_packages(coursekit.__path__, "coursekit."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            fn = getattr(module, name, None)
            if not inspect.isfunction(fn) or fn.__module__ != module.__name__:
                continue
            signature = inspect.signature(fn)
            first = next(iter(signature.parameters.values()), None)
            if first is not None and first.name == "model":
                found[f"{module.__name__}.{name}"] = signature
    return found


def test_only_loaders_take_a_model_and_return_a_model():
    functions = _public_model_functions()
    assert len(functions) > 40, "the walk should see the package's model functions"
    returns_model = {
        name for name, sig in functions.items() if sig.return_annotation == "nn.Module"
    }
    assert returns_model == LOADERS, (
        "a public function that edits a model in place returns the names it changed "
        "(list[str]); only loaders and copies return a model"
    )


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    layers = {"conv": nn.Conv2d(3, 4, 3), "bn": nn.BatchNorm2d(4), "pool": nn.AdaptiveAvgPool2d(1),
              "flat": nn.Flatten(), "fc": nn.Linear(4, 5)}  # fmt: skip
    return nn.Sequential(OrderedDict(layers))


def _frozen_cnn() -> nn.Module:
    model = _cnn()
    freeze(model)
    return model


def _bert() -> nn.Module:
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config(num_labels=3))


def _lora_bert() -> nn.Module:
    model = _bert()
    add_text_lora(model, r=2)
    return model


def _merged_bert() -> nn.Module:
    model = _lora_bert()
    merge_lora(model)
    return model


EDITS = {  # name: (a fresh model, the edit, the names it must return, or None: any non-empty)
    "freeze": (
        _cnn,
        lambda m: freeze(m),
        ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"],
    ),
    "unfreeze": (_cnn, lambda m: unfreeze(m, "fc.*"), ["fc.weight", "fc.bias"]),
    "freeze_all_but_head": (_cnn, freeze_all_but_head, None),
    "unfreeze_last": (_bert, lambda m: unfreeze_last(m, 1), None),
    "freeze_batchnorm": (_cnn, freeze_batchnorm, ["bn"]),
    "set_bn_eval": (_frozen_cnn, set_bn_eval, ["bn"]),
    "recalibrate_batchnorm": (
        _cnn,
        lambda m: recalibrate_batchnorm(m, [(torch.randn(4, 3, 8, 8), None)], device="cpu"),
        ["bn"],
    ),
    "replace_head": (_cnn, lambda m: replace_head(m, 2), ["fc"]),
    "adapt_input_channels": (_cnn, adapt_input_channels, ["conv"]),
    "set_submodule": (_cnn, lambda m: set_submodule(m, "fc", nn.Linear(4, 2)), ["fc"]),
    "add_lora": (_bert, lambda m: add_lora(m, ["query"], r=2), None),
    "add_text_lora": (_bert, add_text_lora, None),
    "merge_lora": (_lora_bert, merge_lora, None),
    "unmerge_lora": (_merged_bert, unmerge_lora, None),
    "apply_strategy": (
        _cnn,
        lambda m: apply_strategy(m, "head", "image"),
        ["fc.weight", "fc.bias"],
    ),
    "set_dropout": (_bert, lambda m: set_dropout(m, 0.0), None),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_an_in_place_edit_returns_the_names_it_changed(name):
    make, edit, expected = EDITS[name]
    model = make()
    returned = edit(model)
    assert isinstance(returned, list) and all(isinstance(n, str) for n in returned), returned
    known = {n for n, _ in model.named_modules()} | {n for n, _ in model.named_parameters()}
    assert set(returned) <= known, f"{name} returned names the model does not have"
    if expected is None:
        assert returned, f"{name} changed something and should say what"
    else:
        assert returned == expected
