"""Tests for coursekit.lora: exactness at init, parameter counts, merge, files, peft parity."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors import safe_open
from torch import nn
from transformers import BertForSequenceClassification

from coursekit.datasets import TensorDictDataset
from coursekit.lora import (
    LoRALinear,
    add_lora,
    load_adapter,
    lora_layers,
    lora_state_dict,
    merge_lora,
    peft_config,
    save_adapter,
    save_peft_adapter,
    to_peft_state_dict,
    unmerge_lora,
)
from coursekit.models import load_pretrained
from coursekit.params import count_parameters
from coursekit.training import fit, save_weights

from conftest import require_asset
from helpers import tiny_bert_config

peft = pytest.importorskip("peft")


def tiny_bert(seed: int = 0, hidden: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    config = tiny_bert_config(
        vocab_size=60, hidden_size=hidden, max_position_embeddings=32, num_labels=3
    )
    return BertForSequenceClassification(config).eval()


def tokens(n: int = 4, length: int = 12, vocab: int = 60, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length // 2 :] = 0  # one padded sentence
    return {"input_ids": ids, "attention_mask": mask}


@torch.no_grad()
def logits(model: nn.Module, batch: dict) -> torch.Tensor:
    return model.eval()(**batch).logits


def minilm() -> nn.Module:
    require_asset("minilm")
    return load_pretrained("minilm", num_classes=5)


@torch.no_grad()
def randomize_b(model: nn.Module, seed: int = 1, scale: float = 0.05) -> None:
    """Give every B non-zero values, as training would: otherwise LoRA changes nothing."""
    g = torch.Generator().manual_seed(seed)
    for layer in lora_layers(model).values():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * scale)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# 1. exact at init ------------------------------------------------------------------------------


def test_lora_linear_starts_exactly_as_its_base_and_adds_r_times_in_plus_out_params():
    torch.manual_seed(0)
    base = nn.Linear(10, 6)
    lora = LoRALinear(copy.deepcopy(base), r=4, alpha=8)
    x = torch.randn(5, 10)
    assert torch.equal(lora(x), base(x))
    assert torch.equal(lora.lora_B, torch.zeros(6, 4)) and lora.lora_A.abs().sum() > 0
    assert lora.scaling == 2.0 and lora.delta_weight().shape == base.weight.shape
    trainable = [p for p in lora.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == 4 * (10 + 6)
    assert not lora.base.weight.requires_grad and not lora.base.bias.requires_grad


def test_wrapped_sequential_and_tiny_bert_start_exactly_equal_to_the_base():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(4, 8)
    before = net(x)
    assert add_lora(net, ["0", "2"], r=2) == ["0", "2"]
    assert torch.equal(net(x), before)

    bert, batch = tiny_bert(), tokens()
    before = logits(bert, batch)
    names = add_lora(bert, ["query", "value"], r=4, modules_to_save=["classifier"])
    assert len(names) == 4 and all(n.endswith(("query", "value")) for n in names)
    assert torch.equal(logits(bert, batch), before)


# 2. exact trainable counts, and peft's -------------------------------------------------------


def test_minilm_trainable_count_follows_the_formula_and_equals_peft():
    model = minilm()
    batch = tokens(vocab=1000)
    before = logits(model, batch)
    base_total = count_parameters(model).total
    peft_model = peft.get_peft_model(
        copy.deepcopy(model),
        peft.LoraConfig(r=8, target_modules=["query", "value"], modules_to_save=["classifier"]),
    )
    add_lora(model, ["query", "value"], r=8, alpha=16, modules_to_save=["classifier"])
    assert torch.equal(logits(model, batch), before)

    lora = 6 * 2 * 8 * (384 + 384)  # 6 layers x (query, value) x r(in + out) = 73,728
    head = 384 * 5 + 5
    ours = count_parameters(model)
    assert ours.trainable == lora + head == 75_653
    assert ours.total == base_total + lora
    peft_trainable, peft_total = peft_model.get_nb_trainable_parameters()
    assert peft_trainable == ours.trainable
    # peft keeps the original head AND a trainable copy (modules_to_save), so its total counts the
    # head twice; like for like, the totals agree.
    assert peft_total == ours.total + head


# 3. merge / unmerge ------------------------------------------------------------------------------


def test_merge_matches_unmerged_outputs_and_unmerge_restores_the_base_weights():
    model, batch = tiny_bert(), tokens()
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    add_lora(model, ["query", "key", "value", "dense"], r=4)
    randomize_b(model, scale=0.5)
    unmerged = logits(model, batch)
    assert max_diff(unmerged, logits(tiny_bert(), batch)) > 1e-3  # B != 0 changes the output

    assert merge_lora(model) == list(lora_layers(model))  # the names of the merged layers
    merge_lora(model)  # a second merge is a no-op, not a double update
    assert all(layer.merged for layer in lora_layers(model).values())
    assert max_diff(logits(model, batch), unmerged) < 1e-5

    unmerge_lora(model)
    restored = {k.replace(".base.", "."): v for k, v in model.state_dict().items()}
    for key, weight in base_weights.items():
        assert max_diff(restored[key], weight) < 1e-6, key
    assert max_diff(logits(model, batch), unmerged) < 1e-6


# 4. same numbers as peft -------------------------------------------------------------------------


def test_minilm_with_lora_matches_peft_given_the_same_adapter_weights():
    model = minilm()
    peft_model = peft.get_peft_model(
        copy.deepcopy(model), peft.LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"])
    )
    add_lora(model, ["query", "value"], r=8, alpha=16)
    randomize_b(model)
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            target = peft_model.get_submodule(f"base_model.model.{name}")
            target.lora_A["default"].weight.copy_(layer.lora_A)
            target.lora_B["default"].weight.copy_(layer.lora_B)
    batch = tokens(vocab=1000)
    ours, theirs = logits(model, batch), logits(peft_model, batch)
    assert max_diff(ours, logits(minilm(), batch)) > 1e-3
    assert max_diff(ours, theirs) < 1e-5


# 5. adapter files -------------------------------------------------------------------------------


def test_adapter_round_trip_on_a_fresh_minilm_and_the_file_holds_only_the_adapter(tmp_path):
    model = minilm()
    add_lora(model, ["query", "value"], r=8, modules_to_save=["classifier"])
    randomize_b(model)
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed away

    fresh = minilm()  # another random head: the adapter file must bring the trained one
    batch = tokens(vocab=1000)
    assert max_diff(logits(fresh, batch), logits(model, batch)) > 1e-3
    load_adapter(fresh, path)
    assert torch.equal(logits(fresh, batch), logits(model, batch))
    assert fresh.lora_config == model.lora_config

    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    assert keys == set(lora_state_dict(model)) and len(keys) == 6 * 2 * 2 + 2
    adapter_bytes = 4 * (6 * 2 * 8 * (384 + 384) + 384 * 5 + 5)
    assert adapter_bytes < path.stat().st_size < adapter_bytes + 16_000  # + the JSON header
    full = save_weights(tmp_path / "full.safetensors", minilm()).stat().st_size
    assert path.stat().st_size < 0.02 * full  # ~0.3 MB vs ~91 MB


# 6. peft's format ------------------------------------------------------------------------------


def test_export_to_peft_format_loads_with_peft_and_gives_the_same_outputs(tmp_path):
    model = minilm()
    add_lora(model, ["query", "value"], r=8, modules_to_save=["classifier"])
    randomize_b(model)
    save_peft_adapter(model, tmp_path, base_model_name_or_path="sentence-transformers/x")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["target_modules"] == ["query", "value"] and config["lora_alpha"] == 16
    assert config["base_model_name_or_path"] == "sentence-transformers/x"

    loaded = peft.PeftModel.from_pretrained(minilm(), tmp_path)  # a fresh base, other head
    batch = tokens(vocab=1000)
    assert max_diff(logits(loaded, batch), logits(model, batch)) < 1e-5

    reference = peft.get_peft_model(
        minilm(),
        peft.LoraConfig(r=8, target_modules=["query", "value"], modules_to_save=["classifier"]),
    )
    assert set(to_peft_state_dict(model)) == set(peft.get_peft_model_state_dict(reference))


def test_regex_targets_select_full_names_and_export_as_the_exact_module_list(tmp_path):
    model, batch = tiny_bert(), tokens()
    names = add_lora(model, r"re:.*\.attention\.self\.(query|value)", r=2, alpha=4)
    assert names == [
        f"bert.encoder.layer.{i}.attention.self.{m}" for i in range(2) for m in ("query", "value")
    ]
    randomize_b(model)
    assert peft_config(model)["target_modules"] == sorted(names)
    save_peft_adapter(model, tmp_path)
    loaded = peft.PeftModel.from_pretrained(tiny_bert(), tmp_path)
    assert max_diff(logits(loaded, batch), logits(model, batch)) < 1e-5


def test_load_with_peft_gives_the_same_outputs_without_library_warnings(tmp_path):
    import warnings

    from coursekit.lora import load_with_peft

    model, batch = tiny_bert(), tokens()
    add_lora(model, ["query", "value"], r=2, alpha=4)
    randomize_b(model)
    save_peft_adapter(model, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_with_peft(tiny_bert(), tmp_path)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], caught
    assert not loaded.training and max_diff(logits(loaded, batch), logits(model, batch)) < 1e-5


# 7. clear errors -------------------------------------------------------------------------------


def test_clear_errors_for_no_match_non_linear_match_and_wrapping_twice():
    with pytest.raises(ValueError, match=r"matches no module.*'query'"):
        add_lora(tiny_bert(), ["qurey"])
    with pytest.raises(ValueError, match=r"modules_to_save \['head'\] match no module"):
        add_lora(tiny_bert(), ["query"], modules_to_save=["head"])
    with pytest.raises(
        TypeError, match=r"'bert.embeddings.LayerNorm', a LayerNorm.*only nn.Linear"
    ):
        add_lora(tiny_bert(), ["LayerNorm"])
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"a Conv2d.*only nn.Linear"):
        add_lora(conv, ["0"])
    with pytest.raises(
        TypeError, match=r"BertSelfOutput.*'bert.encoder.layer.0.attention.output.dense'"
    ):
        add_lora(tiny_bert(), ["output"])  # a container: the hint names the Linear inside
    model = tiny_bert()
    add_lora(model, ["query"])
    with pytest.raises(ValueError, match="already has LoRA"):
        add_lora(model, ["value"])
    with pytest.raises(ValueError, match="no LoRA layers"):
        save_adapter(tiny_bert(), "unused.safetensors")


def test_loading_an_adapter_into_a_model_with_other_targets_or_shapes_fails_clearly(tmp_path):
    model = tiny_bert()
    add_lora(model, ["query", "value"], r=4, modules_to_save=["classifier"])
    path = save_adapter(model, tmp_path / "a.safetensors")

    other = tiny_bert()
    add_lora(other, ["query"], r=4, modules_to_save=["classifier"])
    with pytest.raises(ValueError, match=r"does not fit.*\['query', 'value'\].*missing"):
        load_adapter(other, path)

    wider = tiny_bert(hidden=32)
    with pytest.raises(ValueError, match=r"does not fit.*shape mismatches"):
        load_adapter(wider, path)
    assert not lora_layers(wider)  # checked before anything was changed

    no_query = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"does not fit this model: target_modules"):
        load_adapter(no_query, path)

    save_weights(tmp_path / "plain.safetensors", tiny_bert())
    with pytest.raises(ValueError, match="not a coursekit adapter"):
        load_adapter(tiny_bert(), tmp_path / "plain.safetensors")


# 8. training changes only the adapter -------------------------------------------------------------


def test_fit_changes_only_lora_and_the_head_and_leaves_base_weights_bit_identical():
    model = tiny_bert()
    add_lora(model, ["query", "value"], r=4, modules_to_save=["classifier"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 60, (64, 12), generator=g)
    labels = (ids[:, 0] % 3).long()  # learnable from the first token
    data = TensorDictDataset({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, labels)
    fit(
        model,
        data,
        epochs=2,
        lr=1e-2,
        batch_size=16,
        device="cpu",
        precision="fp32",
        progress=False,
    )

    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable  # every trainable tensor moved, nothing else did
    assert trainable == set(lora_state_dict(model))
    assert len(trainable) == 2 * 2 * 2 + 2  # 2 layers x (query, value) x (A, B) + head


# 9. the course's one text convention (lessons 05, 06, 07) ----------------------------------------


def test_text_lora_on_the_course_text_classifier_trains_74498_like_peft():
    """The same count in every text lesson: r=8 on query/value (alpha 16) + a 2-way mean-pooling
    head, no pooler; peft, configured the same way on the same model, trains exactly as many."""
    from coursekit.heads import TEXT_POOLING, text_classifier
    from coursekit.lora import TEXT_TARGETS, add_text_lora, config_of

    require_asset("minilm")
    model = text_classifier(2)
    assert TEXT_POOLING == "mean" and model.pooling == "mean"
    assert model.encoder.pooler is None  # dropped: it would only count, never learn
    reference = peft.get_peft_model(
        copy.deepcopy(model),
        peft.LoraConfig(r=8, lora_alpha=16, target_modules=list(TEXT_TARGETS),
                        modules_to_save=["head"]),
    )  # fmt: skip
    names = add_text_lora(model)
    assert len(names) == 12 and config_of(model).alpha == 16
    assert count_parameters(model).trainable == 12 * 8 * 768 + 384 * 2 + 2 == 74_498
    assert reference.get_nb_trainable_parameters()[0] == 74_498
    hf = minilm()  # a Hugging Face classifier: its head is "classifier"
    add_text_lora(hf, r=4)
    assert config_of(hf).modules_to_save == ["classifier"] and config_of(hf).alpha == 8
    assert count_parameters(hf).trainable == 12 * 4 * 768 + 384 * 5 + 5
