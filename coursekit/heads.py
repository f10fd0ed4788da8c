"""Head replacement and input adaptation: make a pre-trained model fit a new task.

A pre-trained classifier ends in a linear layer, the **head**, sized for its old task (1,000
ImageNet classes). `replace_head` puts on a fresh one with one output per new class and leaves
every other weight bit-identical. On the input side, `adapt_input_channels` turns an RGB stem into
a one-channel one by summing its filters: for a gray image, exactly the output of the RGB model on
the image repeated three times. For text, `TextClassifier` is the same idea: a Hugging Face
encoder, a pooling ([CLS] token or mean over real tokens, `models.text.pool_tokens`) and a new
linear head; `text_classifier(num_classes)` builds the course's one text classifier (MiniLM, mean
pooling: the pooling lesson 03 measured higher), the model lessons 05, 06 and 07 all train.
(Counting multiply-adds lives in `measure`, extracting pooled features in `features`.)

Works on coursekit's EfficientNetLite0 (`_fc`, `_conv_stem`), torchvision CNNs (ResNet `fc` /
`conv1`, MobileNetV3 `classifier[-1]` / `features[0][0]`) and Hugging Face classifiers
(`classifier`, or `score` on decoder models).
Lessons 03, 05, 06 and 07.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .models.text import POOLINGS, pool_tokens
from .params import set_submodule

__all__ = [
    "HEAD_NAMES",
    "INITS",
    "TEXT_POOLING",
    "TextClassifier",
    "adapt_input_channels",
    "find_first_conv",
    "find_head",
    "head_table",
    "init_head",
    "replace_head",
    "text_classifier",
]

# Attribute names that hold the classification head, in the order they are tried:
# EfficientNetLite0 `_fc`, ResNet `fc`, MobileNet / BERT / ViT `classifier`, GPT-2 / Llama
# `score`, timm / TextClassifier `head`, torchvision ViT `heads`.
HEAD_NAMES = ("_fc", "fc", "classifier", "score", "head", "heads")
INITS = ("default", "zeros", "small")
ADAPT_METHODS = ("sum", "mean", "first")
# The text head of lessons 05-07: lesson 03 measured mean pooling above [CLS] pooling on frozen
# MiniLM features (BBC News), and MiniLM was trained to give mean-pooled sentence vectors.
TEXT_POOLING = "mean"


def _last_linear(module: nn.Module) -> tuple[str, nn.Linear] | None:
    """`module` itself if it is an nn.Linear, else the last nn.Linear inside it (or None)."""
    if isinstance(module, nn.Linear):
        return "", module
    found = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def find_head(model: nn.Module, name: str | None = None) -> tuple[str, nn.Linear]:
    """The classification head: (dotted module name, the nn.Linear), e.g. ("classifier.3", ...).

    Looks at the attributes in `HEAD_NAMES`; when one is a container (MobileNet's `classifier`
    Sequential, RoBERTa's classification head) the head is the last nn.Linear inside it. Pass
    `name` to point at the head yourself.
    """
    looked = [name] if name is not None else list(HEAD_NAMES)
    present = [n for n in looked if isinstance(getattr(model, n, None), nn.Module)]
    for cand in looked if name is not None else present:
        try:
            module = model.get_submodule(cand)
        except AttributeError as err:
            raise ValueError(
                f"{type(model).__name__} has no submodule {cand!r}; its top-level modules are "
                f"{[n for n, _ in model.named_children()]}"
            ) from err
        found = _last_linear(module)
        if found is not None:
            sub, linear = found
            return (f"{cand}.{sub}" if sub else cand), linear
    raise ValueError(
        f"no classification head found on a {type(model).__name__}: looked for an nn.Linear "
        f"(or a module ending in one) named {' / '.join(looked)}. "
        "Pass name='...' with the head's module name (see model.named_modules()), or build a "
        "model with a head, e.g. load_pretrained(name, num_classes=...)."
    )


@torch.no_grad()
def init_head(head: nn.Linear, init: str = "default") -> nn.Linear:
    """(Re)initialise a linear head in place and return it.

    "default": PyTorch's uniform(+-1/sqrt(in_features)) init; "zeros": all weights and the bias
    zero, so every class starts with logit 0 (uniform predictions, loss exactly ln C);
    "small": weights ~ N(0, 0.01^2), bias zero (nearly uniform, but not all equal).
    A single linear layer needs no random init to break symmetry: each class's gradient differs.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init == "default":
        head.reset_parameters()
        return head
    if init == "zeros":
        head.weight.zero_()
    else:
        head.weight.normal_(0.0, 0.01)
    if head.bias is not None:
        head.bias.zero_()
    return head


def _check_classes(num_classes: Any) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


def replace_head(
    model: nn.Module, num_classes: int, init: str = "default", *, name: str | None = None
) -> list[str]:
    """Put a fresh `nn.Linear(in_features, num_classes)` where the old head was, in place; return
    its name in a list (like every in-place edit: `model.get_submodule(name)` is the new head).

    The new head sits on the old head's device and dtype and has a bias if the old one had;
    everything else in `model` is untouched. Hugging Face models also get `config.num_labels`
    (and `model.num_labels`) updated. `init`: see `init_head`.
    """
    _check_classes(num_classes)
    head_name, old = find_head(model, name)
    w = old.weight
    new = nn.Linear(w.shape[1], num_classes, old.bias is not None, w.device, w.dtype)
    init_head(new, init)  # raises for an unknown init before the model is touched
    set_submodule(model, head_name, new)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "num_labels"):
        config.num_labels = num_classes  # also resets id2label / label2id to the new size
    if isinstance(getattr(model, "num_labels", None), int):
        model.num_labels = num_classes
    return [head_name]


# --- the input side --------------------------------------------------------------------------


def find_first_conv(model: nn.Module, name: str | None = None) -> tuple[str, nn.Conv2d]:
    """The first nn.Conv2d (the stem that reads the image): (dotted name, module).

    "First" is registration order, which is the order the image meets them in EfficientNetLite0
    (`_conv_stem`), ResNet (`conv1`) and MobileNetV3 (`features.0.0`). Pass `name` to choose.
    """
    if name is not None:
        module = model.get_submodule(name)
        if not isinstance(module, nn.Conv2d):
            raise ValueError(f"{name!r} is a {type(module).__name__}, not an nn.Conv2d")
        return name, module
    for n, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return n, m
    raise ValueError(
        f"no nn.Conv2d found in a {type(model).__name__}: adapt_input_channels works on "
        "convolutional image models (EfficientNet-Lite0, ResNet, MobileNetV3, ...)."
    )


def head_table(models: dict[str, nn.Module]) -> list[dict[str, str]]:
    """Where each model keeps its head and what its first layer is: one row per model (name,
    head module, in -> out features, first convolution or "(token embeddings)"), for a table."""
    rows = []
    for label, model in models.items():
        name, head = find_head(model)
        try:
            first = find_first_conv(model)[0]
        except ValueError:  # a text model starts with token embeddings, not a convolution
            first = "(token embeddings)"
        io = f"{head.in_features} -> {head.out_features}"
        rows.append({"model": label, "head": name, "in -> out": io, "first layer": first})
    return rows


@torch.no_grad()
def adapt_input_channels(
    model: nn.Module, in_channels: int = 1, method: str = "sum", *, name: str | None = None
) -> list[str]:
    """Replace the first convolution by one reading `in_channels` channels, in place; return its
    name in a list (like every in-place edit: `model.get_submodule(name)` is the new one).

    The new filters come from the pre-trained ones (`method`):
      - "sum": the new filters add up to the sum of the old ones (each new channel gets
        sum / in_channels). A gray image on every new channel then gives exactly the output the
        original model gives for that image repeated as RGB. The right choice for grayscale.
      - "mean": every new channel gets the mean of the old filters: for one channel the response
        is 1/3 of the RGB one, so later layers see activations at the wrong scale.
      - "first": new channel i copies old channel i mod C (for one channel: the red filter).
    Other layers are untouched; `requires_grad` and device/dtype follow the old convolution.
    """
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    if method not in ADAPT_METHODS:
        raise ValueError(f"method must be one of {ADAPT_METHODS}, got {method!r}")
    conv_name, conv = find_first_conv(model, name)
    if conv.groups != 1:
        raise ValueError(f"{conv_name} is a grouped convolution (groups={conv.groups})")
    if conv.in_channels == in_channels:
        raise ValueError(f"{conv_name} already reads {in_channels} channel(s); nothing to adapt")
    w = conv.weight
    if method == "sum":
        new_w = w.sum(1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels
    elif method == "mean":
        new_w = w.mean(1, keepdim=True).repeat(1, in_channels, 1, 1)
    else:
        new_w = w[:, [i % conv.in_channels for i in range(in_channels)]]
    new = nn.Conv2d(
        in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation
    )
    new = new.to(w.device, w.dtype).requires_grad_(w.requires_grad)
    new.padding_mode = conv.padding_mode
    if conv.bias is None:
        new.bias = None
    new.weight.copy_(new_w)
    if conv.bias is not None:
        new.bias.copy_(conv.bias)
    set_submodule(model, conv_name, new)
    parent_name = conv_name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    for owner in (parent, getattr(model, "config", None)):  # e.g. Hugging Face ViT checks these
        if isinstance(getattr(owner, "num_channels", None), int):
            owner.num_channels = in_channels
    return [conv_name]


# --- text: an encoder, a pooling and a new head ----------------------------------------------


class TextClassifier(nn.Module):
    """A Hugging Face encoder, a pooling step and a linear head: token ids -> class logits.

    `encoder` is a bare encoder (e.g. `load_pretrained("minilm")`) or a model built on one (its
    `base_model` is used, dropping any old head). `forward(input_ids, attention_mask, ...)`
    returns logits [N, num_classes], so `fit` trains it on dict batches from `text_dataset`.
    "cls" pooling uses the raw [CLS] token vector, "pooler" that vector through BERT's extra
    pooler layer (what `AutoModelForSequenceClassification` reads), "mean" the average over
    real tokens (`TEXT_POOLING`, the course's choice, measured in lesson 03).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        pooling: str = "mean",
        dropout: float = 0.1,
        init: str = "default",
    ) -> None:
        super().__init__()
        _check_classes(num_classes)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.encoder = getattr(encoder, "base_model", encoder)
        hidden = getattr(getattr(self.encoder, "config", None), "hidden_size", None)
        if not isinstance(hidden, int):
            raise ValueError(
                f"a {type(encoder).__name__} has no config.hidden_size: TextClassifier needs a "
                "Hugging Face encoder such as load_pretrained('minilm')"
            )
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = init_head(nn.Linear(hidden, num_classes), init)
        self.head.to(next(self.encoder.parameters()).device)

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """The pooled text vectors [N, hidden] that the head reads (what feature caching stores)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return pool_tokens(
            hidden, attention_mask, self.pooling, getattr(self.encoder, "pooler", None)
        )

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Class logits [N, num_classes]."""
        return self.head(self.dropout(self.embed(input_ids, attention_mask, **kwargs)))


def text_classifier(
    num_classes: int, *, pooling: str = TEXT_POOLING, model: str = "minilm", dropout: float = 0.1
) -> TextClassifier:
    """The course's text classifier: pre-trained `model` (MiniLM), `pooling` over its token
    vectors (`TEXT_POOLING`, mean), dropout and a fresh linear head (`.head`).

    Lessons 05, 06 and 07 all train this model, so their trainable counts agree (LoRA r=8 on
    MiniLM's query/value plus a 2-way head: 74,498; see `lora.add_text_lora`). The encoder's
    *pooler* layer (a dense layer on [CLS] that only BERT's own classifier reads) is dropped: it
    would neither run nor learn, only count. Seed first (`seed_everything`) for a reproducible head.
    """
    from .models import load_pretrained

    encoder = load_pretrained(model)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return TextClassifier(encoder, num_classes, pooling=pooling, dropout=dropout)
