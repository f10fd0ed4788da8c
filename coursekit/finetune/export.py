"""A model that runs without coursekit: the formats other tools read (lesson 07).

- Text models are saved the Hugging Face way (`save_pretrained`, with the tokenizer and the
  class names as `id2label` in config.json), so `AutoModelForSequenceClassification` or
  `pipeline("text-classification", model=folder)` loads them anywhere. The course's text model
  pools by averaging the token vectors, which transformers' BERT classifier cannot do, so its
  folder also holds the few lines of model code that do (`mean_pooling_model.py`): load it with
  `trust_remote_code=True`, code you can read in the folder. A LoRA run is merged into the
  weights first (no extra layers, no extra latency) and also saved as a peft adapter, which is a
  few hundred KB instead of the whole model.
- Image models are exported to ONNX, a file format that onnxruntime runs on any platform without
  PyTorch. The exported graph takes float pixels in [0, 1] (N x 3 x size x size, RGB) and does
  the model's normalisation itself; it returns logits and probabilities. The export is checked:
  onnxruntime's outputs on real test images must match PyTorch's. The pixels must be read as
  training read them (`PREPROCESSING`, written into run.json): EXIF orientation applied,
  16-bit images scaled by their range, transparency onto white, the centre square resized.
  `pixels.py`, which does exactly that with Pillow and numpy alone, is copied next to the model
  as `preprocess.py`.
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from coursekit.heads import TextClassifier
from coursekit.lora import lora_layers, merge_lora, save_peft_adapter
from coursekit.models import normalization_for

from . import pixels

__all__ = [
    "ONNX_TOLERANCE",
    "export_onnx",
    "export_text",
    "merged_copy",
    "quiet_transformers",
    "save_lora_adapter",
    "write_json",
    "write_preprocessing",
]

ONNX_TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| allowed on probabilities
PREPROCESSING = (
    "float32 RGB pixels / 255, N x 3 x image_size x image_size, each image read as "
    "preprocess.py's read_pixels(file, image_size) reads it: EXIF orientation applied; colour "
    "mode to 8-bit RGB (16-bit and float images scaled linearly from their own lowest to "
    "highest value, transparent parts onto white); the centre square resized to image_size "
    "(bilinear, PIL.ImageOps.fit; a large JPEG decoded at 1/2, 1/4 or 1/8 scale first, "
    "Pillow's draft). The graph normalises for the model itself."
)


def write_preprocessing(folder: Path) -> Path:
    """`folder/preprocess.py`: how images become the model's pixels, needing only Pillow and
    numpy (a copy of `coursekit/finetune/pixels.py`)."""
    return Path(shutil.copyfile(pixels.__file__, folder / "preprocess.py"))


def merged_copy(model: nn.Module) -> nn.Module:
    """The model with every LoRA layer merged and replaced by its plain nn.Linear again, so it
    has exactly the modules (and state-dict keys) of the original architecture."""
    plain = copy.deepcopy(model)
    if lora_layers(plain):
        merge_lora(plain)
        for name, layer in lora_layers(plain).items():
            parent, _, child = name.rpartition(".")
            setattr(plain.get_submodule(parent), child, layer.base)
        del plain.lora_config
    return plain.requires_grad_(True)


def export_text(model: nn.Module, tokenizer: Any, classes: Sequence[str], folder: Path) -> Path:
    """`save_pretrained` of the (merged) classifier and its tokenizer, class names in config.
    A `TextClassifier` (mean pooling) is saved as a `MeanPoolingClassifier`, with its code."""
    plain = merged_copy(model).eval()
    if isinstance(plain, TextClassifier):
        plain = _as_hugging_face(plain, len(classes))
    plain.config.id2label = dict(enumerate(classes))
    plain.config.label2id = {c: i for i, c in enumerate(classes)}
    with quiet_transformers():
        plain.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def _as_hugging_face(model: TextClassifier, num_classes: int) -> nn.Module:
    """The same weights in a `MeanPoolingClassifier`, registered so that `save_pretrained`
    writes its code next to them and AutoModelForSequenceClassification finds it."""
    from .mean_pooling_model import MeanPoolingClassifier

    encoder_config = getattr(model.encoder, "config", None)
    if getattr(encoder_config, "model_type", None) != "bert" or model.pooling != "mean":
        raise ValueError(
            "only a BERT-type encoder with mean pooling (MiniLM) exports as a Hugging Face "
            f"model folder; this one is a {type(model.encoder).__name__} with "
            f"{model.pooling!r} pooling"
        )
    config = copy.deepcopy(encoder_config)
    config.num_labels = num_classes
    config.hidden_dropout_prob = model.dropout.p
    MeanPoolingClassifier.register_for_auto_class("AutoModelForSequenceClassification")
    hf = MeanPoolingClassifier(config)
    hf.load_state_dict(model.state_dict())  # same names: encoder.*, head.*
    return hf.eval()


def save_lora_adapter(model: nn.Module, folder: Path, base: str) -> Path | None:
    """peft's adapter files for a LoRA run (None when the model has no LoRA layers)."""
    if not lora_layers(model):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return save_peft_adapter(model, folder, base_model_name_or_path=base)


class _WithPreprocessing(nn.Module):
    """pixels in [0, 1] -> normalise -> model -> (logits, probabilities)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model((pixels - self.mean) / self.std)
        return logits, logits.softmax(-1)


def export_onnx(
    model: nn.Module, model_name: str, size: int, path: Path, check_pixels: torch.Tensor
) -> float:
    """Write `path` (ONNX, opset 17, batch size free) and return the largest difference between
    onnxruntime's and PyTorch's probabilities on `check_pixels` (float [N, 3, size, size] in
    [0, 1]); raise if it exceeds ONNX_TOLERANCE."""
    import onnxruntime as ort

    mean, std = normalization_for(model_name)
    wrapped = _WithPreprocessing(merged_copy(model), mean, std).eval().cpu()
    example = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():  # the tracer's notes on shape arithmetic: sizes are fixed
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            (example,),
            str(path),
            dynamo=False,  # the TorchScript exporter needs no extra packages (onnxscript)
            input_names=["pixels"],
            output_names=["logits", "probabilities"],
            dynamic_axes={
                "pixels": {0: "batch"},
                "logits": {0: "batch"},
                "probabilities": {0: "batch"},
            },
            opset_version=17,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"pixels": check_pixels.numpy().astype(np.float32)})[0]
    with torch.no_grad():
        want = wrapped(check_pixels)[1].numpy()
    diff = float(np.abs(got - want).max())
    if diff > ONNX_TOLERANCE:
        raise RuntimeError(
            f"{path}: onnxruntime's probabilities differ from PyTorch's by {diff:.2e} "
            f"(> {ONNX_TOLERANCE}); the export is not faithful."
        )
    return diff


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars from transformers for local files (they load and save in a blink)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def write_json(path: Path, content: dict) -> Path:
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    return path
