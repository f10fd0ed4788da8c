"""How long will a notebook take on this GPU? An estimate from counted work, before running it.

A training step costs arithmetic (FLOPs, counted by torch's `FlopCounterMode` through
`cost.training_flops`) and memory traffic (every activation is written, then read again, and
read again in the backward pass). A GPU does at most `peak` FLOP/s and moves at most `bandwidth`
bytes/s; real kernels reach a fraction of each. The estimate of one piece of work is

    seconds = max(FLOPs / (FLOP_EFFICIENCY x peak), bytes / (BANDWIDTH_EFFICIENCY x bandwidth))

(a roofline: whichever resource runs out first). EfficientNet's depthwise convolutions make it
bandwidth-bound; MiniLM's matrix multiplies make it FLOP-bound. Every batch also costs a fixed
`BATCH_OVERHEAD_S` (Python, kernel launches, copying a uint8 batch to the GPU: a small model
launches hundreds of kernels a step), added on top; images are resized on the GPU, which costs
little next to the network. The efficiencies and the overhead are stated, not measured: replace
them with measured ones once a T4 has run the course (docs/performance.md). Lessons 00-06 and 08
print their estimate before their first long cell (`announce`).

GPU memory is estimated the same way, as an upper bound: fp32 weights (plus gradients, AdamW's
two moments and autocast's 16-bit copy when every weight trains: 18 bytes a parameter) plus a
batch's activations -- all of them when a backward pass needs them, else the largest few at a
time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..runtime.config import settings

__all__ = [
    "BANDWIDTH_EFFICIENCY",
    "BATCH_OVERHEAD_S",
    "FLOP_EFFICIENCY",
    "GPUS",
    "ExampleCost",
    "Work",
    "announce",
    "estimate_seconds",
    "markdown_table",
    "model_cost",
    "notebook_gpu_gb",
    "notebook_seconds",
    "notebook_work",
    "peak_gpu_bytes",
    "per_example_cost",
    "roofline_seconds",
]

FLOP_EFFICIENCY = 0.30  # fraction of peak fp16 FLOP/s a real training step reaches (assumed)
BANDWIDTH_EFFICIENCY = 0.50  # fraction of peak memory bandwidth (assumed)
ACTIVATION_PASSES = {"train": 4, "head": 2, "lora": 3, "qlora": 3, "infer": 2}  # writes + reads
BATCH_OVERHEAD_S = 0.01  # seconds of fixed cost per batch, forward or training step (assumed)
FLOP_FACTOR = {"train": 3, "head": 1, "lora": 2, "qlora": 2, "infer": 1}  # x the forward's FLOPs
# fp32 (+ grad + 2 moments); "qlora": 4-bit linear layers with their scales and 16-bit embeddings
# and norms, rounded up to 1 byte a parameter (an upper bound; the adapters are negligible)
# Full training keeps fp32 weights, gradients and two AdamW moments (16 bytes) and, under a 16-bit
# autocast, the 16-bit copy of every weight its forward pass made (2 more: the 135M decoder's full
# fine-tuning peaked at 3.15 GB on a GPU, above a 16-byte estimate's 3.09; benchmarks/gpu_check.py).
BYTES_PER_PARAM = {"train": 18, "lora": 4, "qlora": 1, "head": 4, "infer": 4}
LIVE_OUTPUTS = 3  # without backward, ~3 of the largest activations are alive at once (assumed)
CUDA_CONTEXT_BYTES = 0.5e9  # CUDA context and cuDNN/cuBLAS workspaces (typical)
T4_BUDGET_GB = 13.0  # of a T4's 15 GB
BBC_SMALLEST_TOPIC = 243  # training articles of BBC News's smallest topic (seed 0; a test checks)
# (peak fp16 tensor-core FLOP/s, memory bandwidth bytes/s)
GPUS = {"T4": (65e12, 300e9), "L4": (121e12, 300e9), "A100": (312e12, 1.55e12)}


@dataclass(frozen=True)
class Work:
    """`examples` passes of `model` over inputs of `size` (pixels or tokens).

    `kind`: "train" (full backward), "lora" (backward through activations, few weight grads),
    "qlora" (LoRA on a 4-bit base; the de-quantizing is not counted), "head" (frozen backbone:
    forward only, then a tiny head), "infer" (forward only).
    """

    what: str
    model: str  # "efficientnet_lite0" or "minilm"
    kind: str
    examples: int
    size: int
    batch: int = 0  # examples per forward pass; 0: fit's 32 when training, predict's 256 else

    @property
    def batch_size(self) -> int:
        return self.batch or (256 if self.kind == "infer" else 32)


class ExampleCost(NamedTuple):
    """What one example costs a model: forward FLOPs, the fp16 bytes of all its leaf modules'
    outputs (what backward keeps) and of the largest one, and the model's parameter count."""

    flops: float
    act_bytes: float
    largest_bytes: float
    params: int


def _cost_model(name: str) -> nn.Module:
    """The architecture with untrained weights: shapes and FLOPs only (the weights don't matter).

    EfficientNet-Lite0 is built on the meta device (no memory, built in ms); MiniLM on the CPU,
    since transformers 4.x checks its inputs' values (`.item()`), which meta tensors don't have.
    The decoders are costed by `_decoder_cost`."""
    if name == "efficientnet_lite0":
        from ..models.efficientnet_lite import EfficientNetLite0

        with torch.device("meta"):
            return EfficientNetLite0(num_classes=10)
    if name == "minilm":
        from transformers import AutoConfig, AutoModel

        from ..models.text import minilm_dir

        return AutoModel.from_config(AutoConfig.from_pretrained(minilm_dir()))
    raise ValueError(
        f"no cost model for {name!r}; use 'efficientnet_lite0', 'minilm' or 'smollm2-<size>'"
    )


def _example_input(name: str, size: int) -> torch.Tensor | dict[str, torch.Tensor]:
    if name == "minilm":
        ones = torch.ones(1, size, dtype=torch.long)  # no padding
        return {"input_ids": ones, "attention_mask": ones}
    return torch.zeros(1, 3, size, size, device="meta")


def model_cost(model: nn.Module, inputs: object) -> ExampleCost:
    """The `ExampleCost` of `model` on `inputs` (one example).

    FLOPs come from `cost.training_flops` (3 x the counted forward) divided by 3; activation
    bytes are every leaf module's output elements x 2 bytes (fp16 under AMP).
    """
    from .measured import training_flops

    elements = []

    def count(_m: nn.Module, _i: object, out: object) -> None:
        outs = out if isinstance(out, tuple) else (out,)
        elements.append(sum(o.numel() for o in outs if isinstance(o, torch.Tensor)))

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    device = next(model.parameters()).device
    try:
        flops = training_flops(model, (inputs, None), device=device) / 3
    finally:
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return ExampleCost(float(flops), 2.0 * sum(elements), 2.0 * max(elements), params)


@functools.cache
def per_example_cost(name: str, size: int) -> ExampleCost:
    """`model_cost` of one example through the course model `name` at `size` px or tokens."""
    if name.startswith("smollm2-"):
        return _decoder_cost(name.split("-", 1)[1].replace("m", "M").replace("b", "B"), size)
    return model_cost(_cost_model(name).eval(), _example_input(name, size))


def _decoder_cost(size: str, tokens: int) -> ExampleCost:
    """Lesson 08's decoders, from their published shapes, costed with 1 and 2 layers on the CPU
    and extrapolated: every layer is identical, so N layers cost c1 + (N - 1) (c2 - c1) exactly.
    (Not on the meta device: transformers' rotary embedding opens `torch.autocast` on its input's
    device type, which torch refuses for "meta".)"""
    from ..generative.plan import ARCHITECTURES, decoder

    inputs = {"input_ids": torch.ones(1, tokens, dtype=torch.long)}
    one, two = (model_cost(decoder(size, layers=n), inputs) for n in (1, 2))
    extra = ARCHITECTURES[size][1] - 1
    return ExampleCost(
        one.flops + extra * (two.flops - one.flops),
        one.act_bytes + extra * (two.act_bytes - one.act_bytes),
        max(one.largest_bytes, two.largest_bytes),
        one.params + extra * (two.params - one.params),
    )


def roofline_seconds(
    flops: float,
    act_bytes: float,
    kind: str,
    examples: int,
    gpu: str = "T4",
    flop_efficiency: float = FLOP_EFFICIENCY,
    bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY,
) -> float:
    """Seconds for `examples` of `kind` work, each costing `flops` forward FLOPs and moving
    `act_bytes` of activations, on `gpu`: the slower of arithmetic and memory traffic."""
    if kind not in FLOP_FACTOR:
        raise ValueError(f"kind must be one of {sorted(FLOP_FACTOR)}, got {kind!r}")
    if gpu not in GPUS:
        raise ValueError(f"no figures for GPU {gpu!r}; known: {', '.join(GPUS)}")
    peak, bandwidth = GPUS[gpu]
    compute = FLOP_FACTOR[kind] * flops * examples / (flop_efficiency * peak)
    memory = ACTIVATION_PASSES[kind] * act_bytes * examples / (bandwidth_efficiency * bandwidth)
    return max(compute, memory)


def estimate_seconds(work: list[Work], gpu: str = "T4") -> float:
    """Estimated seconds for `work` on `gpu` (a key of GPUS): the roofline above, plus a fixed
    overhead per batch."""
    total = 0.0
    for w in work:
        c = per_example_cost(w.model, w.size)
        total += roofline_seconds(c.flops, c.act_bytes, w.kind, w.examples, gpu)
        total += -(-w.examples // w.batch_size) * BATCH_OVERHEAD_S
    return total


def peak_gpu_bytes(work: Work) -> float:
    """Upper estimate of the GPU memory `work` needs: weights (and their gradients and AdamW
    state when all train), one batch's activations, and the CUDA context."""
    c = per_example_cost(work.model, work.size)
    kept = (
        c.act_bytes if work.kind in ("train", "lora", "qlora") else LIVE_OUTPUTS * c.largest_bytes
    )
    return BYTES_PER_PARAM[work.kind] * c.params + work.batch_size * kept + CUDA_CONTEXT_BYTES


def notebook_gpu_gb(lesson: str, mode: str = "full") -> float:
    """Estimated peak GPU memory (GB) of lesson `lesson` in `mode`: its hungriest piece of work
    (each run's model is freed before the next is built)."""
    return max((peak_gpu_bytes(w) for w in notebook_work(lesson, mode)), default=0.0) / 1e9


def notebook_work(lesson: str, mode: str = "full") -> list[Work]:
    """The heavy work lesson `lesson` ("00".."06") does in `mode`, read off its cells.

    A model of the notebook, kept next to the sizes in `config`: when a lesson's loops change,
    change this too. Partly unfrozen runs count as full training (an upper bound).
    """
    s = settings(mode)
    px, tok, ep = s.image_size, s.max_length, s.epochs
    n_img, n_test = 10 * s.train_per_class, 10 * s.test_per_class
    bbc_train = 5 * min(s.train_per_class, BBC_SMALLEST_TOPIC)
    shots_img = 10 * sum(s.shots)
    shots_txt = 5 * sum(min(n, BBC_SMALLEST_TOPIC) for n in s.shots)
    works = {
        "00": [
            Work("MiniLM features, pre-trained and random", "minilm", "infer", 2 * 300, 16, 64),
            Work("image features", "efficientnet_lite0", "infer", 500, px),
        ],
        "01": [Work("MiniLM embeddings of BBC News", "minilm", "infer", bbc_train, tok, 64)],
        "02": [
            Work("image features", "efficientnet_lite0", "infer", shots_img + n_test, px),
            Work("from-scratch CNN", "efficientnet_lite0", "train", ep * shots_img, px, 32),
            Work("from-scratch CNN tests", "efficientnet_lite0", "infer", 4 * n_test, px),
            Work("text features", "minilm", "infer", shots_txt + 250, tok, 64),
            Work("from-scratch MiniLM", "minilm", "train", ep * shots_txt, tok, 16),
        ],
        "03": [
            Work("features, 2 normalisations", "efficientnet_lite0", "infer", 4 * n_img, px),
            Work("test set with the new head", "efficientnet_lite0", "infer", n_test, px),
            Work("text features, 4 lengths", "minilm", "infer", 4 * bbc_train, tok, 64),
        ],
        "04": [
            Work("head-only runs", "efficientnet_lite0", "head", (3 * ep + 2) * n_img, px),
            Work("deeper + discriminative", "efficientnet_lite0", "train", 7 * ep * n_img, px),
            Work("gradual unfreezing", "efficientnet_lite0", "train", (ep + 1) * n_img, px),
            Work("test evaluations", "efficientnet_lite0", "infer", 10 * n_test, px),
        ],
        "05": [
            Work("head only", "minilm", "head", ep * bbc_train, tok, 16),
            Work("LoRA r=4, 8, 16", "minilm", "lora", 3 * ep * bbc_train, tok, 16),
            Work("full fine-tune", "minilm", "train", ep * bbc_train, tok, 16),
        ],
        "06": [
            Work("encoder strategies", "minilm", "train", 5 * min(ep, 4) * 2 * 2000, 64),
            Work("LoRA", "minilm", "lora", min(ep, 4) * 2 * 2000, 64),
        ],
        "08": _lesson08_work(mode),
    }
    if lesson not in works:
        raise ValueError(f"no lesson {lesson!r}; lessons are {', '.join(works)}")
    return works[lesson]


def _lesson08_work(mode: str) -> list[Work]:
    """Lesson 08 as its plan runs it on a GPU with network access (full mode: SmolLM2-1.7B with
    QLoRA): 3 seeds + the unmasked run, the graded test prompts, the 135M cost comparison."""
    from ..generative.plan import sft_plan

    p = sft_plan(mode, cuda=mode == "full", online=True, bitsandbytes=True)
    name, tokens, runs = f"smollm2-{p.size.lower()}", 48, len(p.seeds) + 1
    kind = "qlora" if p.four_bit else "lora"
    graded = (runs + 1) * 5 * p.test_per_class + 2 * runs * 5 * p.val_per_class
    return [
        Work("SFT runs (3 seeds + no mask)", name, kind, runs * p.epochs * p.train_examples,
             tokens, p.batch_size),
        Work("answers to the test prompts", name, "infer", graded, tokens, 32),
        Work("LoRA vs full fine-tuning (135M)", "smollm2-135m", "train", 4 * p.batch_size,
             tokens, p.batch_size),
    ]  # fmt: skip


def notebook_seconds(lesson: str, gpu: str = "T4", mode: str = "full") -> float:
    """Estimated GPU seconds of lesson `lesson`'s heavy work in `mode`."""
    return estimate_seconds(notebook_work(lesson, mode), gpu)


LESSONS = ("00", "01", "02", "03", "04", "05", "06", "08")


def markdown_table(gpu: str = "T4") -> str:
    """The full-mode estimate of every lesson on `gpu` as a markdown table (README, docs)."""
    lines = [
        f"| lesson | heavy work (full mode) | estimated minutes on a {gpu} "
        "| estimated peak GPU GB |",
        "|---|---|---:|---:|",
    ]
    total = 0.0
    for lesson in LESSONS:
        work = notebook_work(lesson)
        seconds = estimate_seconds(work, gpu)
        total += seconds
        what = "; ".join(f"{w.what} ({w.examples:,} x {w.size})" for w in work) or "small"
        gb = notebook_gpu_gb(lesson)
        lines.append(f"| {lesson} | {what} | {seconds / 60:.1f} | {gb:.1f} |")
    lines.append(f"| **course** | | **{total / 60:.0f}** | |")
    return "\n".join(lines)


def _detected_gpu() -> str | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((g for g in GPUS if g in name), None)


def announce(lesson: str) -> float | None:
    """Print the estimated full-mode time of this lesson on the detected GPU (T4 if unknown)
    and how to switch to quick mode; return the seconds (None in quick mode: nothing to say)."""
    s = settings()
    if s.mode != "full":
        print(f"quick mode: lesson {lesson} runs in minutes on a CPU.")
        return None
    gpu = _detected_gpu() or "T4"
    seconds = notebook_seconds(lesson, gpu)
    took = "under a minute" if seconds < 60 else f"about {seconds / 60:.0f} min"
    print(
        f"full mode: lesson {lesson}'s training and inference are estimated at {took} on a {gpu} "
        f"(an estimate: {FLOP_EFFICIENCY:.0%} of peak FLOP/s, {BANDWIDTH_EFFICIENCY:.0%} of peak "
        f"bandwidth, {1000 * BATCH_OVERHEAD_S:.0f} ms of overhead a batch; loading and plotting "
        "come on top).\n  Too long? Restart with "
        "COURSEKIT_MODE=quick, or run coursekit.set_mode('quick') and re-run from the top."
    )
    return seconds
