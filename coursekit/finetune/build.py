"""The pieces a fine-tuning run is made of, chosen for your data (lesson 07).

Each function is one decision the earlier lessons taught, made explicit:

- inputs in the model's format: images cropped to a square, resized and normalised the way the
  pre-trained weights expect (lesson 03); texts tokenized to a length that covers most of them;
- augmentation (torchvision transforms v2): random crops and flips make each epoch see slightly
  different images, so a small training set goes further;
- a strategy (lessons 04-06): "head" (a linear probe: only the new head trains), "unfreeze"
  (the head plus the last blocks), "lora" (low-rank updates, the course's convention of lessons
  05 and 06: `lora.add_text_lora`) or "full";
- a learning rate that warms up then decays along a cosine (large steps early would wreck the
  pre-trained weights before the new head has learned anything);
- class weights in the loss, so a rare class counts as much as a frequent one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from coursekit.datasets import TensorDictDataset, tokenize
from coursekit.freezing import freeze_all_but_head, unfreeze_last
from coursekit.lora import add_text_lora
from coursekit.models import normalization_for

from .images import image_pixels

__all__ = [
    "STRATEGIES",
    "ImageTensorDataset",
    "apply_strategy",
    "channels_first",
    "choose_strategy",
    "class_weights",
    "default_augmentation",
    "image_tensors",
    "text_length",
    "text_tensors",
    "warmup_cosine",
]

STRATEGIES = ("head", "unfreeze", "lora", "full")
DEFAULT_LR = {"head": 3e-3, "unfreeze": 1e-3, "lora": 3e-3, "full": 1e-4}
ENOUGH_PER_CLASS = 50  # below this, train only the head: more freedom would overfit


def choose_strategy(kind: str, train_per_class: int) -> tuple[str, str]:
    """(strategy, why): a linear probe on little data; otherwise LoRA (text) or the last blocks
    unfrozen (images), the cheapest strategies that came close to full fine-tuning in lesson 06."""
    if train_per_class < ENOUGH_PER_CLASS:
        return "head", (
            f"the smallest class has {train_per_class} training examples (< {ENOUGH_PER_CLASS}): "
            "a linear probe, since more trainable weights would overfit"
        )
    if kind == "text":
        return "lora", f"at least {ENOUGH_PER_CLASS} examples per class: LoRA on query/value"
    return "unfreeze", f"at least {ENOUGH_PER_CLASS} examples per class: head + last 2 blocks"


def apply_strategy(model: nn.Module, strategy: str, kind: str) -> list[str]:
    """Choose what trains, in place; returns the trainable parameter names."""
    if strategy == "head":
        if kind == "text" and not isinstance(getattr(model, "head", None), nn.Module):
            return unfreeze_last(model, 0)  # a BERT classifier reads [CLS] through its pooler
        return freeze_all_but_head(model)
    if strategy == "unfreeze":
        return unfreeze_last(model, 2)
    if strategy == "lora":
        if kind != "text":
            raise ValueError("strategy='lora' is for text models; use 'unfreeze' for images.")
        add_text_lora(model, r=8)  # query/value, alpha 16, the head: as in lessons 05 and 06
        return [n for n, p in model.named_parameters() if p.requires_grad]
    if strategy == "full":
        model.requires_grad_(True)
        return [n for n, _ in model.named_parameters()]
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first `warmup_frac` of the steps, then cosine decay to zero."""
    warmup = max(1, round(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """`n / (k * count_c)` per class: each class then contributes equally to the loss."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return torch.tensor(len(labels) / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)


# --- inputs ------------------------------------------------------------------------------------


def image_tensors(paths: Sequence[str], size: int) -> torch.Tensor:
    """uint8 [N, 3, size, size]: each file's centre square, resized (see `read_image`),
    decoded in parallel."""
    return channels_first(image_pixels(paths, size))


def channels_first(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] (how images are read) -> [N, 3, H, W] (how torchvision takes them)."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def default_augmentation(size: int) -> Any:
    """Random crops of 70-100% of the image and horizontal flips (torchvision transforms v2).
    Turn off (`augment=False`) when left and right differ in meaning (digits, text in images)."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.7, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    )


class ImageTensorDataset(Dataset):
    """Items `(normalised float image, label)` from uint8 images, augmented if `transform`."""

    def __init__(
        self, images: torch.Tensor, labels: np.ndarray, model_name: str, transform: Any = None
    ):
        mean, std = normalization_for(model_name)
        self.images, self.labels = images, torch.as_tensor(labels, dtype=torch.int64)
        self.mean, self.std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        return (x.float() / 255 - self.mean) / self.std, self.labels[i]


def text_length(tokenizer: Any, texts: Sequence[str], cap: int) -> int:
    """Tokens that cover 95% of `texts` (a multiple of 8, at most `cap`): shorter batches train
    faster, and the report says how many texts get cut."""
    lengths = [len(ids) for ids in tokenizer(list(texts))["input_ids"]]
    return int(min(cap, max(16, math.ceil(np.percentile(lengths, 95) / 8) * 8)))


def text_tensors(
    texts: Sequence[str], labels: np.ndarray, tokenizer: Any, max_length: int
) -> TensorDictDataset:
    """Tokenized texts with their labels, the dict batches Hugging Face models take."""
    return TensorDictDataset(tokenize(list(texts), tokenizer, max_length), labels)
