"""Models that come from the internet: torchvision's ImageNet weights and the Hugging Face hub.

These are the course's online extras. A model already in the local cache loads without the
network. Otherwise the host is probed first (a few seconds at most), so an offline classroom gets
one clear `ModelDownloadError` naming the packaged alternative at once, instead of a minute of
retries ending in a traceback from deep inside an HTTP library. Random weights are never
substituted for a failed download.
Lesson 01 (other pre-trained models) and `source="online"` everywhere.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from torch import nn

__all__ = [
    "TORCHVISION_MODELS",
    "ModelDownloadError",
    "load_hf_model",
    "load_hf_tokenizer",
    "load_torchvision",
]

TORCHVISION_MODELS = ("resnet18", "mobilenet_v3_small", "mobilenet_v3_large")
OFFLINE_ALTERNATIVES = {
    "image": "load_pretrained('efficientnet_lite0') for images",
    "text": "load_pretrained('minilm') for text",
}
PROBE_TIMEOUT_S = 3.0

T = TypeVar("T")


class ModelDownloadError(RuntimeError):
    """Downloading pre-trained weights failed (usually: the machine is offline)."""


def _offline_mode() -> bool:
    """True when the user asked Hugging Face libraries to stay offline (HF_HUB_OFFLINE=1)."""
    flags = (os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def _probe(url: str) -> None:
    """Raise OSError fast if `url`'s host cannot be reached (skipped behind a proxy)."""
    parsed = urlparse(url)
    if urllib.request.getproxies().get(parsed.scheme):
        return  # the library goes through the proxy; a direct probe would prove nothing
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with socket.create_connection((parsed.hostname, port), timeout=PROBE_TIMEOUT_S):
        pass


def _download_error(what: str, reason: str, kinds: tuple[str, ...]) -> ModelDownloadError:
    alternatives = ", or ".join(OFFLINE_ALTERNATIVES[k] for k in kinds)
    return ModelDownloadError(
        f"Downloading {what} failed: {reason}\n"
        "This machine seems to be offline (or the server is unreachable), and the weights are "
        "not in the local cache.\n"
        f"Offline, use the model that ships with the course: {alternatives}."
    )


def _cached_or_download(
    what: str,
    url: str,
    kinds: tuple[str, ...],
    load_cached: Callable[[], T | None],
    download: Callable[[], T],
    honour_hf_offline: bool,
) -> T:
    """`load_cached()` if it finds the weights locally, else probe the host and `download()`."""
    try:
        cached = load_cached()
    except OSError:  # not (completely) in the cache
        cached = None
    if cached is not None:
        return cached
    if honour_hf_offline and _offline_mode():
        raise _download_error(what, "HF_HUB_OFFLINE is set.", kinds)
    try:
        _probe(url)
    except OSError as exc:
        host = urlparse(url).hostname
        raise _download_error(what, f"cannot connect to {host} ({exc}).", kinds) from exc
    try:
        return download()
    except OSError as exc:  # URLError, HTTP and hub errors are all OSErrors
        raise _download_error(what, f"{type(exc).__name__}: {exc}", kinds) from exc


def load_torchvision(name: str, num_classes: int | None = None) -> nn.Module:
    """A torchvision ImageNet model (default weights); with `num_classes`, a fresh last layer."""
    import torch
    import torchvision

    if name not in TORCHVISION_MODELS:
        raise ValueError(f"unknown torchvision model {name!r}; known: {TORCHVISION_MODELS}")
    weights = torchvision.models.get_model_weights(name).DEFAULT
    cache_file = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name

    def build() -> nn.Module:
        return torchvision.models.get_model(name, weights=weights)

    model = _cached_or_download(
        f"torchvision's {name} weights ({weights.url})",
        weights.url,
        ("image",),
        load_cached=lambda: build() if cache_file.exists() else None,
        download=build,
        honour_hf_offline=False,
    )
    if num_classes is not None:
        if name == "resnet18":
            model.fc = nn.Linear(model.fc.in_features, num_classes)
        else:  # MobileNetV3: the last layer of its `classifier` Sequential
            model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model.eval()


def _hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _in_hf_cache(model_id: str) -> bool:
    """Whether the hub cache holds this model's config.json (then try loading it offline)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


def load_hf_model(model_id: str, num_classes: int | None = None) -> nn.Module:
    """A Hugging Face model by hub id: the bare encoder, or with a fresh `num_classes` head.

    With `num_classes`, image models get `AutoModelForImageClassification`, all others
    `AutoModelForSequenceClassification`; an existing head of another size is replaced.
    """
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
    )
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
    )

    def build(local: bool) -> nn.Module:
        # transformers looks for a peft adapter on the hub even with local_files_only=True
        # unless adapter_kwargs says so too (and then retries for ~20 s when offline).
        hub = {"local_files_only": local, "adapter_kwargs": {"local_files_only": local}}
        if num_classes is None:
            return AutoModel.from_pretrained(model_id, **hub)
        config = AutoConfig.from_pretrained(model_id, local_files_only=local)
        is_image = config.model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES
        auto = AutoModelForImageClassification if is_image else AutoModelForSequenceClassification
        return auto.from_pretrained(
            model_id, num_labels=num_classes, ignore_mismatched_sizes=True, **hub
        )

    model = _cached_or_download(
        f"the Hugging Face model {model_id!r}",
        _hf_endpoint(),
        ("text", "image"),
        load_cached=lambda: build(local=True) if _in_hf_cache(model_id) else None,
        download=lambda: build(local=False),
        honour_hf_offline=True,
    )
    return model.eval()


def load_hf_tokenizer(model_id: str) -> Any:
    """The tokenizer of a Hugging Face hub model (from the cache when it is there)."""
    from transformers import AutoTokenizer

    return _cached_or_download(
        f"the tokenizer of {model_id!r}",
        _hf_endpoint(),
        ("text",),
        load_cached=lambda: (
            AutoTokenizer.from_pretrained(model_id, local_files_only=True)
            if _in_hf_cache(model_id)
            else None
        ),
        download=lambda: AutoTokenizer.from_pretrained(model_id),
        honour_hf_offline=True,
    )
