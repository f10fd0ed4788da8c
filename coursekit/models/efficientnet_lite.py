"""EfficientNet-Lite0, written with plain PyTorch layers so every part can be inspected.

EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant drops squeeze-and-excitation and uses
ReLU6 so it runs well on phones) is a stem convolution, 16 inverted-residual ("MBConv") blocks
grouped into 7 stages, a 1x1 head convolution to 1,280 channels, global average pooling, and one
linear layer `_fc` that maps the 1,280 features to the 1,000 ImageNet classes.

Only `nn.Conv2d`, `nn.BatchNorm2d`, `nn.ReLU6`, `nn.Dropout` and `nn.Linear` hold the work, so
freezing by parameter name, replacing `_fc`, and peft's LoRA on any convolution all just work.
Module names follow the packaged state dict (`_conv_stem`, `_blocks.N._depthwise_conv`, ...), so
the ImageNet weights load with `strict=True`.

Padding: the weights were trained in TensorFlow with "SAME" padding. For stride 1 that is the
symmetric `kernel // 2`, which `nn.Conv2d(padding=...)` does. For stride 2 on an even-sized input
TensorFlow pads one pixel *less* on the top/left than on the bottom/right, which no `nn.Conv2d`
padding can express, so those four convolutions get padding 0 and `tf_same_pad` pads the input
first. It follows TensorFlow for any input size.
Lessons 01-04 (the vision model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from coursekit.runtime.assets import ASSETS, asset_path, verify_sha256

__all__ = [
    "STAGES",
    "EfficientNetLite0",
    "MBConvBlock",
    "StageSpec",
    "load_efficientnet_lite0",
    "tf_same_pad",
]

BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99 in PyTorch's convention
BN_EPS = 1e-3  # as trained; PyTorch's default 1e-5 changes the outputs


@dataclass(frozen=True)
class StageSpec:
    """One stage: `repeats` MBConv blocks; only the first one changes stride and width."""

    repeats: int
    kernel: int
    stride: int
    expand: int  # expansion ratio of the inverted bottleneck
    in_channels: int
    out_channels: int


STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad `x` like TensorFlow's "SAME": output size ceil(size / stride), extra pixel last."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dimension first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: in training, skip a block's residual branch for a random subset."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
    return x * mask / keep


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (+ input when shapes match).

    The expansion (x6) gives the depthwise convolution many cheap channels to filter; the
    projection back to few channels is linear (no activation) so it loses no information.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        expand: int,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid = in_channels * expand
        self.kernel, self.stride, self.drop_path = kernel, stride, drop_path
        self.has_expand = expand != 1
        self.has_skip = stride == 1 and in_channels == out_channels
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        padding = kernel // 2 if stride == 1 else 0  # stride 2: tf_same_pad in forward
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=padding, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self._act = nn.ReLU6()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.has_expand:
            x = self._act(self._bn0(self._expand_conv(x)))
        if self.stride != 1:
            x = tf_same_pad(x, self.kernel, self.stride)
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.has_skip:
            x = _drop_path(x, self.drop_path, self.training) + inputs
        return x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: stem -> 16 MBConv blocks in 7 stages -> head conv -> pool -> `_fc`.

    Teaching handles: `stage_ranges` (block indices of each stage), `stage_of_block`,
    `forward_features` (the 1280-channel feature map), `features` (pooled 1280-d vectors),
    `stage_outputs` (the feature map after the stem and each stage), `stage_table()`, and
    `reset_classifier(n)` to put a fresh head on.

    `drop_connect_rate` is the stochastic-depth rate of the original training recipe; it only
    acts in `train()` mode, rising linearly from 0 at the first block.
    """

    num_features = 1280
    default_size = 224

    def __init__(
        self, num_classes: int = 1000, dropout: float = 0.2, drop_connect_rate: float = 0.2
    ) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=0, bias=False)
        self._bn0 = _bn(32)
        self._act = nn.ReLU6()

        n_blocks = sum(s.repeats for s in STAGES)
        blocks: list[MBConvBlock] = []
        self.stage_ranges: list[range] = []
        for spec in STAGES:
            start = len(blocks)
            for r in range(spec.repeats):
                blocks.append(
                    MBConvBlock(
                        spec.in_channels if r == 0 else spec.out_channels,
                        spec.out_channels,
                        spec.kernel,
                        spec.stride if r == 0 else 1,
                        spec.expand,
                        drop_path=drop_connect_rate * len(blocks) / n_blocks,
                    )
                )
            self.stage_ranges.append(range(start, len(blocks)))
        self._blocks = nn.ModuleList(blocks)
        self.stage_of_block: list[int] = [s for s, rng in enumerate(self.stage_ranges) for _ in rng]

        self._conv_head = nn.Conv2d(STAGES[-1].out_channels, self.num_features, 1, bias=False)
        self._bn1 = _bn(self.num_features)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(self.num_features, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The first 3x3 stride-2 convolution: RGB -> 32 channels at half resolution."""
        return self._act(self._bn0(self._conv_stem(tf_same_pad(x, 3, 2))))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 convolution that widens the last stage's 320 channels to 1,280."""
        return self._act(self._bn1(self._conv_head(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before pooling: [N, 1280, H/32, W/32]."""
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        return self.head(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, the input of `_fc`: [N, 1280]. What feature extraction caches."""
        return self._avg_pooling(self.forward_features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [N, num_classes] for normalised images [N, 3, H, W]."""
        return self._fc(self._dropout(self.features(x)))

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Feature maps after the stem, each stage and the head, to look at what each level sees."""
        out = {"stem": self.stem(x)}
        x = out["stem"]
        for s, rng in enumerate(self.stage_ranges, start=1):
            for i in rng:
                x = self._blocks[i](x)
            out[f"stage{s}"] = x
        out["head"] = self.head(x)
        return out

    def stage_table(self) -> list[dict[str, object]]:
        """One row per part (stem, 7 stages, head, classifier): blocks, kernel, stride, params."""

        def row(
            part: str,
            blocks: str,
            kernel: int | None,
            stride: int | None,
            channels: int,
            *modules: nn.Module,
        ) -> dict[str, object]:
            params = sum(p.numel() for m in modules for p in m.parameters())
            return {
                "part": part,
                "blocks": blocks,
                "kernel": kernel,
                "stride": stride,
                "out_channels": channels,
                "params": params,
            }

        rows = [row("stem", "", 3, 2, 32, self._conv_stem, self._bn0)]
        for s, (spec, rng) in enumerate(zip(STAGES, self.stage_ranges, strict=True), start=1):
            blocks = [self._blocks[i] for i in rng]
            span = f"{rng.start}-{rng.stop - 1}" if len(rng) > 1 else str(rng.start)
            rows.append(
                row(f"stage{s}", span, spec.kernel, spec.stride, spec.out_channels, *blocks)
            )
        rows.append(row("head", "", 1, 1, self.num_features, self._conv_head, self._bn1))
        rows.append(row("classifier (_fc)", "", None, None, self._fc.out_features, self._fc))
        return rows

    def reset_classifier(self, num_classes: int) -> nn.Linear:
        """Replace `_fc` by a freshly initialised `nn.Linear(1280, num_classes)` and return it."""
        self._fc = nn.Linear(self.num_features, num_classes)
        return self._fc


def load_efficientnet_lite0(
    num_classes: int | None = None, *, weights_path: str | Path | None = None
) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the packaged ImageNet weights (checksum verified), in eval mode.

    `weights_path` points at another copy of the same file; it must have the same sha256.
    With `num_classes`, `_fc` is replaced by a fresh head and everything else stays pre-trained.
    """
    if weights_path is None:
        path = asset_path("efficientnet_lite0")
    else:
        path = Path(weights_path)
        expected = ASSETS["efficientnet_lite0"].sha256
        assert expected is not None
        verify_sha256(path, expected, name="efficientnet_lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    return model.eval()
