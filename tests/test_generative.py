"""Tests for coursekit.generative on a tiny Llama and a byte-level chat tokenizer (fast):
loss masking, the chat template, padding, LoRA == peft on a decoder, export and reload,
instruction data errors (one each), the plan, the 4-bit numbers, the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from coursekit import generative as gen
from coursekit.finetune.userdata import DataError
from coursekit.generative import command, instructions, plan
from coursekit.generative.experiment import grade, tune
from coursekit.lora import add_lora, lora_layers

from helpers import tiny_chat_tokenizer, tiny_llama

peft = pytest.importorskip("peft")

MESSAGES = [{"role": "system", "content": "Reply in one word."}, {"role": "user", "content": "Hi?"}]
LORA = {"target_modules": ["q_proj", "v_proj"], "r": 4, "alpha": 8}


@pytest.fixture(scope="module")
def tok():
    return tiny_chat_tokenizer()


def batch_of(tok, pairs, mask_prompt=True):
    examples = [gen.encode_example(tok, m, a, mask_prompt=mask_prompt) for m, a in pairs]
    return gen.collate(examples, tok.pad_token_id)


# 1. the loss: next-token cross-entropy, only on the answer ---------------------------------------


def test_causal_lm_loss_is_hugging_faces_own(tok):
    model = tiny_llama()
    batch = batch_of(tok, [(MESSAGES, "yes"), (MESSAGES, "certainly not")])
    out = model(**batch)  # HF computes its loss from `labels` itself
    ours = gen.causal_lm_loss(out.logits, batch["labels"])
    assert torch.allclose(ours, out.loss, atol=1e-6)


def test_masked_prompt_tokens_get_zero_gradient_and_answer_tokens_do_not(tok):
    model = tiny_llama()
    for mask_prompt in (True, False):
        batch = batch_of(tok, [(MESSAGES, "yes")], mask_prompt=mask_prompt)
        logits = model(input_ids=batch["input_ids"]).logits
        logits.retain_grad()
        gen.causal_lm_loss(logits, batch["labels"]).backward()
        per_position = logits.grad[0].abs().sum(-1)  # position t predicts token t + 1
        graded = batch["labels"][0, 1:] != gen.IGNORE_INDEX
        start = gen.SFTExample(batch["input_ids"][0].tolist(), batch["labels"][0].tolist())
        answer = slice(start.prompt_length - 1, None) if mask_prompt else slice(None)
        assert (per_position[:-1][graded] > 0).all()  # every graded prediction gets gradient
        if mask_prompt:
            assert (per_position[:-1][~graded] == 0).all()  # the prompt's: exactly none
            assert graded.sum() == len("yes") + 1  # bytes of the answer + end of turn
            assert (per_position[answer][:-1] > 0).all()
        else:
            assert graded.all()


def test_example_ends_with_the_end_of_turn_token_and_masks_exactly_the_prompt(tok):
    ex = gen.encode_example(tok, MESSAGES, "yes")
    prompt = tok(gen.chat_prompt(tok, MESSAGES), add_special_tokens=False)["input_ids"]
    assert ex.input_ids[: len(prompt)] == prompt  # the prompt's tokens, as generation sees them
    assert ex.prompt_length == len(prompt)
    assert ex.labels[len(prompt) :] == ex.input_ids[len(prompt) :]
    assert ex.input_ids[-1] == tok.eos_token_id  # taught to stop; the template's "\n" is cut
    assert tok.decode(ex.input_ids[len(prompt) :]) == "yes<|im_end|>"
    unmasked = gen.encode_example(tok, MESSAGES, "yes", mask_prompt=False)
    assert unmasked.labels == unmasked.input_ids == ex.input_ids


def test_an_example_longer_than_the_context_is_an_error_naming_it(tok):
    with pytest.raises(ValueError, match=r"line 7: \d+ tokens .* context of 20 tokens"):
        gen.encode_example(tok, MESSAGES, "yes", max_length=20, where="line 7")


# 2. the chat template round trip and padding -----------------------------------------------------


def test_chat_template_round_trip(tok):
    ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) else ids
    text = gen.chat_prompt(tok, MESSAGES)
    assert tok.decode(ids) == text
    assert text.startswith("<|im_start|>system\nReply in one word.<|im_end|>\n<|im_start|>user")
    assert text.endswith("<|im_start|>assistant\n")
    no_system = gen.chat_prompt(tok, MESSAGES[1:])  # the template adds its default system turn
    assert "You are a helpful AI assistant named SmolLM" in no_system


def test_collate_pads_right_for_training_and_left_for_generation(tok):
    short, long = (gen.encode_example(tok, MESSAGES, a) for a in ("a", "a much longer answer"))
    right = gen.collate([short, long], tok.pad_token_id)
    n = len(short.input_ids)
    assert right["input_ids"][0, :n].tolist() == short.input_ids
    assert (right["attention_mask"][0, n:] == 0).all() and (right["labels"][0, n:] == -100).all()
    left = gen.collate([short, long], tok.pad_token_id, padding_side="left")
    assert left["input_ids"][0, -n:].tolist() == short.input_ids
    assert (left["attention_mask"][0, :-n] == 0).all()


def test_left_padded_batched_generation_equals_one_prompt_at_a_time(tok):
    model = tiny_llama()
    prompts = [MESSAGES, [{"role": "user", "content": "a longer question, padded less"}]]
    batched = gen.generate(model, tok, prompts, max_new_tokens=5)
    alone = [gen.generate(model, tok, [p], max_new_tokens=5)[0] for p in prompts]
    assert batched == alone


def test_generation_stops_at_end_of_turn_unless_told_not_to(tok):
    model = tiny_llama()
    model.lm_head = torch.nn.Linear(32, 259)  # a head that always answers end-of-turn
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()[tok.eos_token_id] = 1.0
    stopped = gen.generate(model, tok, [MESSAGES], max_new_tokens=6, special_tokens=True)
    assert stopped == ["<|im_end|>"]
    going = gen.generate(model, tok, [MESSAGES], max_new_tokens=6, special_tokens=True,
                         stop_at_end_of_turn=False)  # fmt: skip
    assert going[0].count("<|im_end|>") == 6


# 3. training through fit ------------------------------------------------------------------------


def test_fit_trains_a_decoder_on_answers_and_records_their_held_out_loss(tok):
    pairs = [([{"role": "user", "content": f"n{i}"}], "yes") for i in range(16)]
    model, history = tune(tiny_llama(), tok, pairs, pairs[:4], lora=None, epochs=10,
                          batch_size=8, lr=2e-2)  # fmt: skip
    losses = history.metric("val_loss")
    assert len(losses) == 10 and losses[-1] < 0.2 * losses[0]
    assert grade(model, tok, pairs[:4], ["yes", "no"], max_new_tokens=4).exact.value == 1.0


def test_same_seed_same_run_other_seed_other_run(tok):
    pairs = [([{"role": "user", "content": f"n{i}"}], "yes") for i in range(16)]
    runs = [tune(tiny_llama(), tok, pairs, lora=LORA, seed=s, lr=1e-2)[1].steps for s in (0, 0, 1)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


# 4. the course's LoRA is peft's, on a decoder ----------------------------------------------------


def lora_pair(model):
    """The course's LoRA and peft's on copies of `model`, with the same (non-zero) weights."""
    theirs = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))  # fmt: skip
    ours = copy.deepcopy(model)
    add_lora(ours, **LORA)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, layer in lora_layers(ours).items():
            layer.lora_B.normal_(std=0.5)
            target = theirs.get_submodule(f"base_model.model.{name}")
            target.lora_A["default"].weight.copy_(layer.lora_A)
            target.lora_B["default"].weight.copy_(layer.lora_B)
    return ours, theirs


def max_gap_logits_and_grads(ours, theirs, batch):
    """Largest |difference| of the logits and of every A/B gradient after one backward."""
    logits = []
    for m in (ours, theirs):
        out = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        gen.causal_lm_loss(out.logits, batch["labels"]).backward()
        logits.append(out.logits.detach())
    grads = 0.0
    for name, layer in lora_layers(ours).items():
        target = theirs.get_submodule(f"base_model.model.{name}")
        for mine, peft_grad in ((layer.lora_A, target.lora_A["default"].weight),
                                (layer.lora_B, target.lora_B["default"].weight)):  # fmt: skip
            grads = max(grads, (mine.grad - peft_grad.grad).abs().max().item())
    return (logits[0] - logits[1]).abs().max().item(), grads


def test_course_lora_equals_peft_on_a_tiny_decoder_logits_and_gradients(tok):
    ours, theirs = lora_pair(tiny_llama())
    batch = batch_of(tok, [(MESSAGES, "yes"), (MESSAGES, "no, never")])
    logit_gap, grad_gap = max_gap_logits_and_grads(ours, theirs, batch)
    base = tiny_llama()(input_ids=batch["input_ids"]).logits
    assert (ours(input_ids=batch["input_ids"]).logits - base).abs().max() > 1e-3  # LoRA acts
    assert logit_gap < 1e-5 and grad_gap < 1e-6


# 5. export: merged model (transformers) and adapter (peft) answer like the trained model ------


def test_merged_export_and_peft_adapter_reload_and_answer_identically(tok, tmp_path):
    base = tiny_llama()
    base.save_pretrained(tmp_path / "base")
    ours, _ = lora_pair(base)
    gen.export_merged(ours, tok, tmp_path / "merged")
    gen.export_peft_adapter(ours, tmp_path / "adapter", base=str(tmp_path / "base"))
    prompts = [MESSAGES, [{"role": "user", "content": "another"}]]
    want = gen.generate(ours, tok, prompts, max_new_tokens=6)
    got = gen.reload_and_generate(tmp_path / "merged", tmp_path / "adapter", tmp_path / "base",
                                  prompts, max_new_tokens=6)  # fmt: skip
    assert got == {"merged": want, "adapter": want}
    ids = tok(gen.chat_prompt(tok, MESSAGES), return_tensors="pt")["input_ids"]
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert (merged(ids).logits - ours(ids).logits).abs().max() < 1e-5
    assert (merged(ids).logits - base(ids).logits).abs().max() > 1e-2  # the adapter matters
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["task_type"] == "CAUSAL_LM" and config["target_modules"] == ["q_proj", "v_proj"]


# 6. instruction data: one clear error per problem, naming the line ------------------------------

GOOD = '{"prompt": "Capital of France?", "response": "Paris"}'
BAD_LINES = {
    "missing field": ('{"prompt": "Capital of France?"}', r"line 2: no 'response' field"),
    "not JSON": ('{"prompt": "Capital of France?", "response": Paris}', r"line 2: not valid JSON"),
    "not UTF-8": (b'{"prompt": "caf\xe9", "response": "x"}', r"line 2: not UTF-8 .*0xe9"),
    "not an object": ('["Capital of France?", "Paris"]', r"line 2: a JSON list, not an object"),
    "not text": ('{"prompt": "Capital?", "response": 42}', r"line 2: \"response\" must be text"),
    "empty answer": ('{"prompt": "Capital?", "response": "  "}', r"line 2: the answer is empty"),
    "last turn not the answer": (
        '{"messages": [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "?"}]}',
        r"line 2: the last turn .* user's; it must be the assistant's",
    ),
    "unknown role": (
        '{"messages": [{"role": "human", "content": "?"}, {"role": "assistant", "content": "!"}]}',
        r"line 2: turn 1 has role 'human'",
    ),
}


def write_lines(path, *lines):
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


@pytest.mark.parametrize("problem", sorted(BAD_LINES))
def test_instruction_data_error_names_the_line(problem, tmp_path):
    line, message = BAD_LINES[problem]
    path = write_lines(tmp_path / "data.jsonl", GOOD, line, GOOD)
    with pytest.raises(DataError, match=message):
        instructions.read_instructions(path)


def test_instruction_data_longer_than_the_context_names_the_line(tok, tmp_path, monkeypatch):
    long = json.dumps({"prompt": "word " * 200, "response": "x"})
    path = write_lines(tmp_path / "data.jsonl", GOOD, GOOD, long)
    fake = gen.Decoder(tiny_llama(), tok, "tiny", "test")
    monkeypatch.setattr(command, "load_decoder", lambda model=None: fake)
    with pytest.raises(DataError, match=r"data.jsonl, line 3: \d+ tokens .* context of 512"):
        command.finetune_instructions(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_instruction_data_reads_both_shapes_and_keeps_every_line(tmp_path):
    chat = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "2+2?"},
                         {"role": "assistant", "content": "4"}]}  # fmt: skip
    path = write_lines(tmp_path / "d.jsonl", GOOD, "", json.dumps(chat),
                       '{"system": "Terse.", "prompt": "Hi", "response": "Hello"}')  # fmt: skip
    data = instructions.read_instructions(path)
    assert data.lines == [1, 3, 4] and data.responses == ["Paris", "4", "Hello"]
    assert data.prompts[1] == chat["messages"][:2]
    assert data.prompts[2] == [{"role": "system", "content": "Terse."},
                               {"role": "user", "content": "Hi"}]  # fmt: skip
    with pytest.raises(DataError, match="empty"):
        instructions.read_instructions(write_lines(tmp_path / "e.jsonl", ""))


def test_instruction_files_are_told_apart_from_lesson_07_tables(tmp_path):
    assert instructions.is_instruction_file(write_lines(tmp_path / "a.jsonl", "{oops", GOOD))
    table = write_lines(tmp_path / "b.jsonl", '{"text": "a match", "label": "sport"}')
    assert not instructions.is_instruction_file(table)
    assert not instructions.is_instruction_file(write_lines(tmp_path / "c.csv", GOOD))


# 7. the command line: finetune writes an adapter and a merged model; predict answers ----------


def test_cli_finetune_and_predict_on_instruction_data(tok, tmp_path, monkeypatch, capsys):
    from coursekit.cli import main

    pairs = [json.dumps({"prompt": f"Say yes {i}", "response": "yes"}) for i in range(12)]
    data = write_lines(tmp_path / "train.jsonl", *pairs)
    fake = gen.Decoder(tiny_llama(), tok, "tiny", "test")
    monkeypatch.setattr(command, "load_decoder", lambda model=None: fake)
    out = tmp_path / "run"
    assert main(["finetune", str(data), "--out", str(out), "--epochs", "4", "--lr", "1e-2"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["examples"] == 12 and run["held_out"] == 1 and run["trained_on"] == 11
    loss = run["held_out_answer_loss"]
    assert loss["after"] < loss["before"]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "merged" / "config.json").is_file()
    capsys.readouterr()
    assert main(["predict", str(out), "Say yes 99", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [{"input": "Say yes 99", "answer": rows[0]["answer"]}]
    bad = write_lines(tmp_path / "bad.jsonl", GOOD, '{"prompt": "x"}')
    assert main(["finetune", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "bad.jsonl, line 2: no 'response' field" in capsys.readouterr().err


# 8. scores, perplexity, the plan, 4-bit numbers ---------------------------------------------------


def test_scores_and_their_intervals():
    answers, refs = ["sports", " tech\n", "It is about politics.", "business, tech"], [
        "sports", "tech", "politics", "tech"]  # fmt: skip
    labels = ["business", "politics", "sports", "tech"]
    assert gen.exact_match(answers, refs).hits == 2
    assert gen.format_rate(answers, labels).hits == 2
    assert gen.lenient_accuracy(answers, refs, labels).hits == 3  # "business" comes first in #4
    assert gen.parse_label("Sports, not business", labels) == "sports"
    score = gen.exact_match(answers, refs)
    lo, hi = score.interval
    assert lo < 0.5 < hi and "2/4" in str(score)
    with pytest.raises(ValueError, match="as many answers"):
        gen.exact_match(answers, refs[:2])


def test_perplexity_is_exp_of_the_mean_token_loss(tok):
    model = tiny_llama()
    text = "plain text, no template"
    enc = tok([text], return_tensors="pt")
    loss = gen.causal_lm_loss(model(**enc).logits, enc["input_ids"]).item()
    assert gen.perplexity(model, tok, [text]) == pytest.approx(np.exp(loss), rel=1e-5)
    uniform = gen.perplexity(model, tok, [text, "another, longer text to pad the first"])
    assert 100 < uniform < 1000  # random weights: about the vocabulary size (259)


@pytest.mark.parametrize(
    "mode, cuda, online, bnb, size, four_bit, hub",
    [
        ("quick", False, False, False, "135M", False, False),
        ("quick", True, True, True, "135M", False, False),
        ("full", False, True, True, "135M", False, False),
        ("full", True, True, True, "1.7B", True, True),
        ("full", True, True, False, "1.7B", False, True),
        ("full", True, False, True, "135M", True, False),
    ],
)
def test_plan_picks_model_and_precision(mode, cuda, online, bnb, size, four_bit, hub):
    p = plan.sft_plan(mode, cuda=cuda, online=online, bitsandbytes=bnb)
    assert (p.size, p.four_bit, p.hub_id is not None) == (size, four_bit, hub)
    assert len(p.seeds) >= 3
    if mode == "full" and cuda and not online:
        assert "offline" in p.why and "packaged" in p.why
    if cuda and mode == "full" and not bnb:
        assert "bitsandbytes is not installed" in p.why


def test_four_bit_blocks_levels_roundtrip_and_rounding_error():
    from gguf import GGMLQuantizationType, quants

    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    q4 = quants.dequantize(quants.quantize(w.numpy(), GGMLQuantizationType.Q4_1),
                           GGMLQuantizationType.Q4_1).reshape(w.shape)  # fmt: skip
    q4 = torch.from_numpy(q4)
    assert gen.block_levels(q4)["max"] <= 16 < gen.block_levels(w)["max"]
    assert gen.requantize_roundtrip(q4)["max_change"] == 0.0
    assert gen.requantize_roundtrip(q4)["quantized_bytes"] == 64 * 128 * 5 // 8  # 5 bits a weight
    estimated = gen.rounding_error(q4).relative
    measured = gen.compare_weights(q4, w)["relative_rms"]
    assert 0.5 * measured < estimated < 2 * measured  # the estimate is the right size
    table = gen.storage_table({"135M": 134_515_008})
    assert table[0]["135M"] == "538 MB" and table[-1]["bits/weight"] < 4.2
