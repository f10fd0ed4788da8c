"""Fine-tune MiniLM on BBC News topics, on one process or several: the scaling-out script.

    python -m coursekit.multi_gpu_example --out runs/bbc                     # one process
    accelerate launch --num_processes 2 -m coursekit.multi_gpu_example --out runs/bbc
    accelerate launch --cpu --num_processes 2 -m coursekit.multi_gpu_example --out runs/bbc
    torchrun --nproc_per_node 2 -m coursekit.multi_gpu_example --out runs/bbc

The code is the same in every case: `fit` notices the launcher and trains through Accelerate
(see `coursekit.training.distributed`). `--batch-size` is per process, so one optimizer step sees
batch-size x processes x grad-accum examples (the effective batch size). The run writes `fit`'s
checkpoints (OUT/last.safetensors, OUT/best.safetensors: plain weights, loadable in one process)
and OUT/results.json (settings, per-epoch history, final val metrics, weight norm and checksum).
Run it again with the same --out and a larger --epochs to resume from OUT/last.safetensors.
The scaling-out companion of lessons 03 and 06 (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from coursekit.datasets import load_bbc_news, per_class, text_dataset
from coursekit.heads import TextClassifier
from coursekit.models import load_pretrained, load_tokenizer
from coursekit.runtime.device import dataloader_kwargs, seed_everything
from coursekit.training import distributed
from coursekit.training.loop import fit

__all__ = ["build_data", "build_model", "main", "parse_args", "set_dropout", "weights_summary"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see `python -m coursekit.multi_gpu_example --help`)."""
    p = argparse.ArgumentParser(
        prog="python -m coursekit.multi_gpu_example",
        description="Fine-tune MiniLM + a linear head on BBC News topics with coursekit's fit, "
        "on one process or under `accelerate launch` / `torchrun` on several.",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoints + results.json")
    p.add_argument("--per-class", type=_positive_int, default=40, help="train articles per topic")
    p.add_argument(
        "--val-per-class",
        type=_positive_int,
        default=None,
        help="val articles per topic (default: the whole val split)",
    )
    p.add_argument("--epochs", type=_positive_int, default=2)
    p.add_argument("--batch-size", type=_positive_int, default=16, help="per process")
    p.add_argument("--grad-accum", type=_positive_int, default=1, help="micro-batches per step")
    p.add_argument("--max-length", type=_positive_int, default=128, help="tokens per article")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="set every dropout to this rate (default: the model's own, 0.1)",
    )
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--seed", type=int, default=0, help="data subset, head init, shuffling")
    p.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    args = p.parse_args(argv)
    if args.lr <= 0:
        p.error(f"--lr must be positive, got {args.lr}")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        p.error(f"--dropout must lie in [0, 1), got {args.dropout}")
    return args


def build_data(args: argparse.Namespace) -> tuple[Dataset, Dataset, list[str]]:
    """(train, val, class names): the same per-class BBC News subsets in every process."""
    splits = load_bbc_news(seed=args.seed)
    tokenizer = load_tokenizer("minilm")
    train = per_class(splits.train, args.per_class, seed=args.seed)
    val = splits.val
    if args.val_per_class is not None:
        val = per_class(val, args.val_per_class, seed=args.seed)
    return (
        text_dataset(train, tokenizer, args.max_length),
        text_dataset(val, tokenizer, args.max_length),
        list(splits.classes),
    )


def build_model(num_classes: int, dropout: float | None = None, seed: int = 0) -> nn.Module:
    """Pre-trained MiniLM with a fresh head (seeded, so every process starts from the same one)."""
    seed_everything(seed)
    model = TextClassifier(load_pretrained("minilm"), num_classes)
    if dropout is not None:
        set_dropout(model, dropout)
    return model


def set_dropout(model: nn.Module, p: float) -> list[str]:
    """Set every dropout rate in `model` to `p`, in place: `nn.Dropout` layers, and the rates
    attention reads on its own (transformers 4.x BERT's SDPA attention uses `self.dropout_prob`,
    not its `nn.Dropout`) and the model configs they come from. With p=0 nothing is random in
    train mode, so several processes compute exactly what one would. Returns the names of the
    modules it changed (`""` is the model itself)."""
    changed = []
    for module_name, module in model.named_modules():
        rates = [name for name in ("dropout_prob", "attention_dropout", "dropout_rate")
                 if isinstance(getattr(module, name, None), float)]  # fmt: skip
        config = getattr(module, "config", None)
        config_rates = [name for name, value in getattr(config, "__dict__", {}).items()
                        if "dropout" in name and isinstance(value, float)]  # fmt: skip
        if isinstance(module, nn.Dropout):
            module.p = p
        for name in rates:
            setattr(module, name, p)
        for name in config_rates:
            setattr(config, name, p)
        if isinstance(module, nn.Dropout) or rates or config_rates:
            changed.append(module_name)
    return changed


def weights_summary(state: dict[str, torch.Tensor]) -> dict[str, float | str]:
    """L2 norm and SHA-256 of a model's weights: the norm to compare runs, the hash to recognise
    the very same weights in a checkpoint."""
    digest = hashlib.sha256()
    total = torch.zeros((), dtype=torch.float64)
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
        if tensor.is_floating_point():
            total += tensor.double().pow(2).sum()
    return {"norm": total.sqrt().item(), "sha256": digest.hexdigest()}


def main(argv: list[str] | None = None) -> dict:
    """Train, write OUT/results.json (main process), return the results (in every process)."""
    args = parse_args(argv)
    t0 = time.perf_counter()
    train_ds, val_ds, classes = build_data(args)
    model = build_model(len(classes), args.dropout, args.seed)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # An explicit, seeded shuffling generator: one process with batch 2B sees exactly the examples
    # that two processes with batch B see together, step for step (Accelerate shares it).
    shuffle = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(
        train_ds, args.batch_size, shuffle=True, generator=shuffle, **dataloader_kwargs()
    )
    history = fit(
        model,
        train_loader,
        val_ds,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        grad_accum_steps=args.grad_accum,
        precision=args.precision,
        checkpoint_dir=args.out,
        progress=not args.quiet,
    )
    state = model.state_dict()
    update = sum(
        (state[k].double() - start[k].double()).pow(2).sum()
        for k in state
        if state[k].is_floating_point()
    )
    processes = distributed.num_processes()
    results = {
        "processes": processes,
        "per_process_batch": args.batch_size,
        "grad_accum": args.grad_accum,
        "effective_batch": args.batch_size * processes * args.grad_accum,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_examples": len(train_ds),
        "val_examples": len(val_ds),
        "classes": classes,
        "epochs": history.epochs,
        "val_loss": history.last["val_loss"],
        "val_accuracy": history.last["val_accuracy"],
        "weights": weights_summary(state),
        "update_norm": float(update) ** 0.5,
        "seconds": time.perf_counter() - t0,
    }
    if distributed.is_main_process():
        path = args.out / "results.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
        if not args.quiet:
            print(
                f"{processes} process(es), effective batch {results['effective_batch']}: "
                f"val_loss={results['val_loss']:.4f} val_accuracy={results['val_accuracy']:.3f}; "
                f"wrote {path}"
            )
    return results


if __name__ == "__main__":
    main()
