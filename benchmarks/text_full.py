"""The text track's full-mode result on a CPU: MiniLM on BBC News at full length (256 tokens).

    python -m benchmarks.text_full [--steps 3] [--out benchmarks/results/text_full.json]

What a CPU can measure in minutes: (1) the frozen-encoder route end to end -- mean-pooled
features of every article at 256 tokens, a linear head on the training split, test accuracy on
the whole test split; (2) seconds per training step (batch 16 x 256 tokens) of full fine-tuning,
LoRA r=8 and head-only training, each timed over a few real steps. Whole fine-tuning runs at this
length take hours on a CPU and are left to a GPU: the report says so instead of extrapolating a
result.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch


def run(steps: int = 3, batch_size: int = 16) -> dict:
    import transformers

    import coursekit as ck
    from coursekit import lora
    from coursekit.config import settings
    from coursekit.experiments import linear_probe

    full = settings("full")
    device = torch.device("cpu")
    cache_dir = ck.datasets.data_dir() / "features"  # a rerun reuses the features
    bbc = ck.datasets.load_bbc_news(seed=0)
    tokenizer = ck.load_tokenizer("minilm")
    encoder = ck.load_pretrained("minilm")
    t0 = time.perf_counter()
    feats = {
        name: ck.features.extract_text_features(
            encoder, tokenizer, split.x, full.max_length, device=device, cache_dir=cache_dir
        )
        for name, split in (("train", bbc.train), ("test", bbc.test))
    }
    feature_s = time.perf_counter() - t0
    ck.seed_everything(0)
    head, _ = linear_probe(feats["train"], bbc.train.y, bbc.num_classes, device=device)
    with torch.no_grad():
        logits = head.eval()(feats["test"])
    head_acc = ck.accuracy(logits, bbc.test.y)

    train_ds = ck.datasets.text_dataset(bbc.train, tokenizer, full.max_length)
    batch = next(iter(torch.utils.data.DataLoader(train_ds, batch_size=batch_size)))
    step_rows = []
    for strategy in ("head only", "LoRA r=8", "full fine-tune"):
        ck.seed_everything(0)
        model = ck.load_pretrained("minilm", num_classes=bbc.num_classes)
        if strategy == "head only":
            model.requires_grad_(False)
            model.classifier.requires_grad_(True)
        elif strategy.startswith("LoRA"):
            lora.add_lora(model, ["query", "value"], r=8, alpha=16, modules_to_save=["classifier"])
        cost = ck.cost.measure_step(model, batch, lr=1e-4, steps=steps, device=device)
        step_rows.append(
            {
                "strategy": strategy,
                "trainable": cost.trainable,
                "s_per_step": round(cost.seconds_per_step, 3),
                "steps_per_epoch": -(-len(train_ds) // batch_size),
            }
        )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "threads": torch.get_num_threads(),
        "max_length": full.max_length,
        "articles": {"train": len(bbc.train), "test": len(bbc.test)},
        "frozen_features_seconds": round(feature_s, 1),
        "frozen_head_test_accuracy": round(head_acc, 4),
        "steps": step_rows,
        "not_measured": "full fine-tuning and LoRA accuracy at 256 tokens (hours on a CPU)",
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/text_full.json"))
    args = p.parse_args(argv)
    res = run(args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
