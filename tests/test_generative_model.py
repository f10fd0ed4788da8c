"""Lesson 08's real model (slow, needs the packaged SmolLM2 GGUF): the conversion and its cache,
the chat template round trip with the real tokenizer, the course's LoRA == peft on the real
decoder, and the exported merged model and adapter answering like the trained model."""

from __future__ import annotations

import json

import pytest
import torch

from coursekit import generative as gen
from coursekit.generative import loader
from coursekit.lora import add_lora, lora_layers

from conftest import require_asset

pytestmark = [pytest.mark.slow, pytest.mark.assets]
LORA = {"target_modules": ["q_proj", "v_proj"], "r": 8, "alpha": 16}


@pytest.fixture(scope="module")
def decoder():
    require_asset("smollm2")
    return gen.load_decoder()


def test_the_packaged_model_converts_once_caches_and_answers(tmp_path, monkeypatch, capsys):
    require_asset("smollm2")
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path))
    first = gen.load_decoder()
    said = capsys.readouterr()
    assert "First use: de-quantizing" in said.out
    assert "GGUF tensors" not in said.out + said.err, "no progress bar (frozen at 0% when saved)"
    stamp = json.loads((tmp_path / "models" / "smollm2-135m-instruct" / loader._STAMP).read_text())
    assert stamp["gguf_sha256"] == loader.sha256_of(loader.asset_path("smollm2"))
    second = gen.load_decoder()
    assert "First use" not in capsys.readouterr().out  # the cache, not the GGUF file
    assert sum(p.numel() for p in second.model.parameters()) == 134_515_008
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    q = [[{"role": "user", "content": "What is the capital of France?"}]]
    assert "Paris" in gen.generate(second.model, second.tokenizer, q, max_new_tokens=12)[0]
    (tmp_path / "models" / "smollm2-135m-instruct" / loader._STAMP).write_text("{}")
    assert not loader._cache_is_current(tmp_path / "models" / "smollm2-135m-instruct",
                                        stamp["gguf_sha256"])  # fmt: skip


def test_chat_template_round_trip_with_the_real_tokenizer(decoder):
    from transformers import AutoTokenizer

    tok = decoder.tokenizer
    gguf = loader.asset_path("smollm2")
    original = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    task = gen.headline_topics(train_per_class=4, val_per_class=1, test_per_class=1)
    for messages, answer in task.train:
        text = gen.chat_prompt(tok, messages)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids == original(text, add_special_tokens=False)["input_ids"]  # cache == GGUF
        assert tok.decode(ids) == text  # exact round trip
        example = gen.encode_example(tok, messages, answer)
        assert example.input_ids[: len(ids)] == ids  # the prompt's tokens start the example
        assert tok.decode(example.input_ids[len(ids) :]) == answer + "<|im_end|>"
    assert tok.chat_template == original.chat_template


def test_course_lora_equals_peft_on_the_real_decoder(decoder):
    model, tok = decoder
    task = gen.headline_topics(train_per_class=1, val_per_class=1, test_per_class=1)
    batch = gen.collate(gen.encode_pairs(tok, task.train[:4]), tok.pad_token_id)
    gap = gen.lora_peft_gap(model, batch, LORA)
    assert gap["effect"] > 1e-2  # the update really changes the logits
    assert gap["logits"] < 1e-4 and gap["grads"] < 1e-5, gap


def test_exported_merged_model_and_adapter_answer_like_the_trained_model(decoder, tmp_path):
    model, tok = decoder
    trained = decoder.fresh()
    add_lora(trained, **LORA)
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in lora_layers(trained).values():
            layer.lora_B.normal_(std=0.05)  # a trained-like, non-zero update
    gen.export_merged(trained, tok, tmp_path / "merged")
    gen.export_peft_adapter(trained, tmp_path / "adapter", base=gen.HUB_IDS["135M"])
    task = gen.headline_topics(train_per_class=1, val_per_class=1, test_per_class=2)
    prompts = [m for m, _ in task.test]
    want = gen.generate(trained, tok, prompts, max_new_tokens=8)
    got = gen.reload_and_generate(tmp_path / "merged", tmp_path / "adapter", gen.cache_dir(),
                                  prompts, max_new_tokens=8)  # fmt: skip
    assert got == {"merged": want, "adapter": want}
    assert want != gen.generate(model, tok, prompts, max_new_tokens=8)  # the update matters
