"""`coursekit finetune answers.jsonl --out DIR` and `coursekit predict DIR "a prompt"` for
instruction data: lesson 08's recipe on your own prompts and answers.

finetune: read and check the file (`instructions.read_instructions`; every problem names its
line), tokenize every example in the model's chat template (too long for the context: an error
naming the line), hold out a few examples to measure the answers' loss before and after, train
LoRA on q_proj / v_proj with `fit` (`experiment.tune`), then write
    DIR/adapter/   the peft adapter (a few MB; goes on the base model)
    DIR/merged/    the merged model + tokenizer (loads with plain transformers)
    DIR/run.json   what was done, which `coursekit predict DIR` reads.
predict: the merged model's greedy answer to each prompt (text, or a .jsonl / .txt file of them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..finetune.userdata import DataError
from .experiment import encode_pairs, tune
from .export import export_merged, export_peft_adapter
from .generate import generate
from .instructions import is_instruction_file, read_instructions, read_prompts
from .loader import load_decoder
from .plan import HUB_IDS
from .sft import encode_example, response_loss, sft_loader

__all__ = [
    "KIND",
    "finetune_instructions",
    "is_instruction_command",
    "is_instruction_run",
    "predict_instructions",
    "run",
]

KIND = "instruction-tuned decoder"
LORA = {"target_modules": ["q_proj", "v_proj"], "r": 8, "alpha": 16}


def _check_lengths(tokenizer: Any, data: Any, max_length: int) -> None:
    """Tokenize every example once, so one too long is reported with its line before training."""
    for prompt, response, line in zip(data.prompts, data.responses, data.lines, strict=True):
        try:
            encode_example(tokenizer, prompt, response, max_length=max_length,
                           where=f"{data.path.name}, line {line}")  # fmt: skip
        except ValueError as err:
            raise DataError(str(err)) from None


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out positions: 10 % held out (at most 50), none under 10 examples."""
    order = np.random.default_rng(seed).permutation(n)
    held = 0 if n < 10 else min(50, n // 10)
    return np.sort(order[held:]), np.sort(order[:held])


def finetune_instructions(
    data: str | Path,
    out_dir: str | Path,
    *,
    model: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    max_length: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Instruction-tune (LoRA) on a JSONL file and export; returns what run.json records."""
    out_dir = Path(out_dir)
    records = read_instructions(data)
    decoder = load_decoder(model)
    tokenizer = decoder.tokenizer
    max_length = max_length or 512
    _check_lengths(tokenizer, records, max_length)
    pairs = records.pairs()
    train_idx, held_idx = _split(len(pairs), seed)
    train, held = [pairs[i] for i in train_idx], [pairs[i] for i in held_idx]
    held_loader = sft_loader(encode_pairs(tokenizer, held), tokenizer, 8, False) if held else None
    before = response_loss(decoder.model, held_loader) if held_loader else None
    print(f"{len(pairs)} examples from {records.path.name}: {len(train)} to train on, "
          f"{len(held)} held out; {decoder}")  # fmt: skip
    tuned, history = tune(decoder.model, tokenizer, train, held or None, seed=seed, lora=LORA,
                          epochs=epochs or 3, batch_size=batch_size or 8, lr=lr or 1e-3,
                          progress=True)  # fmt: skip
    after = history.last.get("val_loss")
    base_id = model or HUB_IDS["135M"]
    export_peft_adapter(tuned, out_dir / "adapter", base_id)
    export_merged(tuned, tokenizer, out_dir / "merged")
    run = {"kind": KIND, "base": base_id, "base_source": decoder.source, "examples": len(pairs),
           "trained_on": len(train), "held_out": len(held), "lora": LORA,
           "held_out_answer_loss": {"before": before, "after": after},
           "history": history.to_dict()}  # fmt: skip
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n", "utf-8")
    return run


def is_instruction_run(model_dir: str | Path) -> bool:
    """True for the output folder of an instruction `coursekit finetune`."""
    path = Path(model_dir) / "run.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text("utf-8")).get("kind") == KIND
    except ValueError:
        return False


def predict_instructions(
    model_dir: str | Path, inputs: list[str], max_new_tokens: int = 128
) -> list[dict[str, str]]:
    """The merged model's greedy answer to each input: a prompt, or a .jsonl / .txt file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..finetune.export import quiet_transformers

    conversations, shown = [], []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in (".jsonl", ".txt") and path.is_file():
            found = read_prompts(path)
            conversations += found
            shown += [f"{path.name}:{i + 1}" for i in range(len(found))]
        else:
            conversations.append([{"role": "user", "content": item}])
            shown.append(item)
    merged = Path(model_dir) / "merged"
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(merged).eval()
        tokenizer = AutoTokenizer.from_pretrained(merged)
    answers = generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens)
    return [{"input": s, "answer": a} for s, a in zip(shown, answers, strict=True)]


def is_instruction_command(args: Any) -> bool:
    """Whether `coursekit finetune | predict` was given instruction data / an instruction run."""
    if args.command == "finetune":
        return is_instruction_file(args.data)
    return is_instruction_run(args.model_dir)


def run(args: Any) -> int:
    """The CLI's finetune / predict for instruction data (errors are the caller's to print)."""
    if args.command == "predict":
        for row in predict_instructions(args.model_dir, args.inputs):
            print(json.dumps(row) if args.json else f"{row['input']}\t{row['answer']}")
        return 0
    if args.strategy not in (None, "lora"):
        raise DataError(f"instruction data trains LoRA; --strategy {args.strategy} is not offered")
    run = finetune_instructions(
        args.data, args.out, model=args.model, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
    )  # fmt: skip
    loss = run["held_out_answer_loss"]
    if loss["before"] is not None:
        print(f"held-out answer loss {loss['before']:.3f} -> {loss['after']:.3f}")
    print(f"wrote {args.out}/adapter (peft), {args.out}/merged (transformers), {args.out}/run.json")
    return 0
