"""The text track's full-mode results, measured: lesson 05's recipe at full length (256 tokens).

    python -m benchmarks.run --only text      # results in benchmarks/results/<device>.json

Lesson 05 in full mode trains MiniLM on BBC News three ways -- the head alone, LoRA r=8 and full
fine-tuning -- on up to 1,000 articles per topic (capped at the smallest topic's 243), 256 tokens,
3 epochs, batch 16, and tests each on 50 articles per topic. This section runs exactly that
recipe with the course's strategy sweep (`strategies.run_strategies`, the rows lessons 05 and 06
get) and reports each strategy's test accuracy with its standard error, the optimizer steps, the
training time, and the verdicts between them (`claims.compare`), so the
README's text results are measured, not expected. It also trains a linear head on frozen
mean-pooled features of *every* training article and tests it on the whole test split.

On a 2-core CPU the section takes about 30 minutes (a full fine-tuning step of 16 x 256 tokens
takes about 3 s there), so `benchmarks.run` leaves it out on a CPU unless asked (`--only text`);
on a GPU it takes a minute or two.
"""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone

import torch

LR = {"head only": 3e-3, "LoRA r=8": 2e-3, "full fine-tune": 1e-4}  # lesson 05's rates
UNSAVED = ("seed", "correct", "history")  # sweep columns kept out of the JSON (one seed here)


def _build(strategy: str, num_classes: int) -> torch.nn.Module:
    import coursekit as ck
    from coursekit import lora

    model = ck.load_pretrained("minilm", num_classes=num_classes)
    if strategy == "head only":
        model.requires_grad_(False)
        model.classifier.requires_grad_(True)
    elif strategy == "LoRA r=8":
        lora.add_lora(model, ["query", "value"], r=8, alpha=16, modules_to_save=["classifier"])
    return model


def _strategies(num_classes: int) -> list:
    """Lesson 05's three strategies as the course's `Strategy` (a fresh MiniLM each)."""
    from coursekit.strategies import Strategy

    return [Strategy(name, lambda name=name: _build(name, num_classes), lr=lr)
            for name, lr in LR.items()]  # fmt: skip


def _frozen_head(bbc, tokenizer, max_length: int, device: torch.device) -> dict:
    """A linear head on frozen features of every training article, tested on the whole test
    split (features are cached in the data folder, so a rerun is quick)."""
    import coursekit as ck
    from coursekit.experiments.data_efficiency import linear_probe

    encoder = ck.load_pretrained("minilm")
    cache_dir = ck.datasets.data_dir() / "features"
    t0 = time.perf_counter()
    feats = {
        name: ck.features.extract_text_features(
            encoder, tokenizer, split.x, max_length, device=device, cache_dir=cache_dir
        )
        for name, split in (("train", bbc.train), ("test", bbc.test))
    }
    ck.seed_everything(0)
    head, _ = linear_probe(feats["train"], bbc.train.y, bbc.num_classes, device=device)
    with torch.no_grad():
        acc = ck.accuracy(head.eval()(feats["test"].to(device)), bbc.test.y)
    return {
        "train_articles": len(bbc.train),
        "test_articles": len(bbc.test),
        "accuracy": round(acc, 4),
        "accuracy_se": round(ck.claims.accuracy_se(acc, len(bbc.test)), 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def run(device: torch.device | str = "cpu", smoke: bool = False) -> dict:
    """Lesson 05's full-mode strategies at full length; `smoke`: 2 articles per topic, 32 tokens,
    1 epoch (checks the harness in a minute)."""
    import transformers

    import coursekit as ck
    from coursekit.runtime.config import settings

    device = torch.device(device)
    full = settings("full")
    max_length, epochs = (32, 1) if smoke else (full.max_length, full.epochs)
    bbc = ck.datasets.load_bbc_news(seed=0)
    tokenizer = ck.load_tokenizer("minilm")
    per_class = 2 if smoke else min(full.train_per_class, *bbc.train.class_counts())
    train = ck.datasets.per_class(bbc.train, per_class, seed=0)
    val = ck.datasets.per_class(bbc.val, 2 if smoke else 50, seed=0)
    test = ck.datasets.per_class(bbc.test, 4 if smoke else 50, seed=0)
    train_ds, val_ds, test_ds = (
        ck.datasets.text_dataset(s, tokenizer, max_length) for s in (train, val, test)
    )
    swept, _ = ck.strategies.run_strategies(
        _strategies(bbc.num_classes), train_ds, test_ds, epochs=epochs, batch_size=16,
        device=device, seed=0, val=val_ds, progress=False,
    )  # fmt: skip
    rows = []
    for row in swept:  # the sweep's row (strategies.ROW_COLUMNS), rounded, + rate and curve
        kept = {k: round(v, 4) if isinstance(v, float) else v
                for k, v in row.items() if k not in UNSAVED}  # fmt: skip
        kept["lr"] = LR[row["strategy"]]
        kept["val_accuracy_by_epoch"] = [round(e["val_accuracy"], 4) for e in row["history"].epochs]
        rows.append(kept)
        print(rows[-1], flush=True)
    by = {r["strategy"]: r for r in rows}
    verdicts = [
        ck.claims.compare(a, by[a]["accuracy"], b, by[b]["accuracy"],
                          se_a=by[a]["accuracy_se"], se_b=by[b]["accuracy_se"]).text
        for a, b in (("LoRA r=8", "full fine-tune"), ("head only", "full fine-tune"))
    ]  # fmt: skip
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(device),
        "smoke": smoke,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "threads": torch.get_num_threads(),
        "recipe": {
            "max_length": max_length,
            "epochs": epochs,
            "batch_size": 16,
            "articles": {"train": len(train), "val": len(val), "test": len(test)},
        },
        "strategies": rows,
        "verdicts": verdicts,
        "frozen_head_all_articles": None
        if smoke
        else _frozen_head(bbc, tokenizer, max_length, device),
    }
