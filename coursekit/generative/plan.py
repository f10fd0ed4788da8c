"""Which model, precision and sizes lesson 08 uses, decided from the mode, the GPU and the network.

    quick mode                      the packaged SmolLM2-135M-Instruct in float32, small sizes
                                    (minutes on a laptop CPU)
    full mode, CUDA GPU, online     SmolLM2-1.7B-Instruct from the hub, its linear layers 4-bit
                                    (NF4, bitsandbytes): QLoRA
    full mode, CUDA GPU, offline    the packaged 135M, 4-bit on the GPU (QLoRA on the small model)
    full mode, no GPU               the packaged 135M in float32 at full sizes (slow: said so)

Without bitsandbytes the GPU runs keep 16/32-bit weights and say why. Every choice carries its
reason, printed by the lesson. The architecture figures below are SmolLM2's published configs
(huggingface.co/HuggingFaceTB), used for estimates before anything is downloaded. Lesson 08.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from ..runtime.config import get_mode

__all__ = ["ARCHITECTURES", "HUB_IDS", "SFTPlan", "decoder", "parameter_count", "sft_plan"]

HUB_IDS = {
    "135M": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "360M": "HuggingFaceTB/SmolLM2-360M-Instruct",
    "1.7B": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
}
# hidden size, layers, attention heads, key/value heads, MLP size (vocabulary 49,152 for all)
ARCHITECTURES = {
    "135M": (576, 30, 9, 3, 1536),
    "360M": (960, 32, 15, 5, 2560),
    "1.7B": (2048, 24, 32, 32, 8192),
}
FULL_MODEL = "1.7B"  # full mode's model on a GPU with network access
VOCAB = 49_152


def decoder(size: str, layers: int | None = None) -> Any:
    """An untrained `LlamaForCausalLM` of a SmolLM2 size, with its own number of layers unless
    `layers` is given (`coursekit.measure.predicted` costs a model from 1 and 2 of its layers)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    h, n_layers, heads, kv_heads, mlp = ARCHITECTURES[size]
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=h, num_hidden_layers=layers or n_layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=mlp,
        tie_word_embeddings=True,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def parameter_count(size: str) -> int:
    """Parameters of a SmolLM2 size from its architecture (tied input/output embeddings):
    embeddings + per layer (q, k, v, o projections, the 3 MLP matrices, 2 norms) + final norm."""
    h, layers, heads, kv_heads, mlp = ARCHITECTURES[size]
    kv = h // heads * kv_heads  # grouped-query attention: narrower keys and values
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * mlp + 2 * h
    return VOCAB * h + layers * per_layer + h


@dataclass(frozen=True)
class SFTPlan:
    """One run's choices. `hub_id` None means the packaged 135M model (offline)."""

    mode: str
    size: str  # a key of ARCHITECTURES
    hub_id: str | None
    four_bit: bool
    pool_per_class: int  # training headlines to draw each run's sample from
    train_examples: int  # examples one run trains on
    test_per_class: int
    val_per_class: int
    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...]
    why: str

    @property
    def full_ft_fits(self) -> bool:
        """Whether full fine-tuning's 16 bytes a parameter (fp32 weights, gradients, AdamW's two
        moments) fit next to the model: yes for 135M (2.2 GB); 1.7B would need 27 GB."""
        return self.size == "135M" and not self.four_bit

    @property
    def model_name(self) -> str:
        return f"SmolLM2-{self.size}-Instruct"

    def describe(self) -> str:
        bits = "4-bit NF4 base (QLoRA)" if self.four_bit else "float32 base"
        return (f"{self.mode} mode: {self.model_name}, {bits}; {self.train_examples} training "
                f"examples x {self.epochs} epochs (batch {self.batch_size}: {self.steps} steps a "
                f"run), {len(self.seeds)} seeds, {5 * self.test_per_class} test headlines.\n"
                f"  why: {self.why}")  # fmt: skip

    @property
    def steps(self) -> int:
        """Optimizer steps of one run."""
        return self.epochs * -(-self.train_examples // self.batch_size)


def _bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def sft_plan(
    mode: str | None = None,
    cuda: bool | None = None,
    online: bool | None = None,
    bitsandbytes: bool | None = None,
) -> SFTPlan:
    """The plan for this machine (arguments override what is detected, for tests)."""
    mode = mode or get_mode()
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if mode == "quick":
        why = "quick mode: the packaged model, short runs that fit a laptop CPU"
        return SFTPlan(mode, "135M", None, False, 40, 48, 12, 4, 2, 8, 2e-3, (0, 1, 2), why)
    sizes = dict(pool_per_class=240, train_examples=1000, test_per_class=50, val_per_class=10,
                 epochs=2)  # fmt: skip
    if not cuda:
        why = "full mode without a CUDA GPU: the packaged model at full sizes (slow on a CPU)"
        return SFTPlan(mode, "135M", None, False, **sizes, batch_size=16, lr=1e-3,
                       seeds=(0, 1, 2), why=why)  # fmt: skip
    if bitsandbytes is None:
        bitsandbytes = _bitsandbytes()
    if online is None:
        from ..doctor import network_available

        online = network_available()
    four_bit = bitsandbytes
    no_bnb = "" if bitsandbytes else "; bitsandbytes is not installed, so 16-bit weights, no QLoRA"
    if online:
        why = f"full mode on a GPU, online: a 13x larger model from the hub{no_bnb}"
        return SFTPlan(mode, FULL_MODEL, HUB_IDS[FULL_MODEL], four_bit, **sizes, batch_size=16,
                       lr=5e-4, seeds=(0, 1, 2), why=why)  # fmt: skip
    why = f"full mode on a GPU but offline: the packaged 135M model, not the hub's{no_bnb}"
    return SFTPlan(mode, "135M", None, four_bit, **sizes, batch_size=16, lr=1e-3,
                   seeds=(0, 1, 2), why=why)  # fmt: skip
