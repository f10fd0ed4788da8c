"""Freezing: choose which pre-trained weights may change while fine-tuning (lesson 04)."""

from .by_name import (
    BN_MODES,
    freeze,
    freeze_all_but_head,
    freeze_batchnorm,
    set_bn_eval,
    trainable_table,
    unfreeze,
)
from .layerwise import GradualUnfreezing, blocks_of, depth_groups, param_groups, unfreeze_last

__all__ = [
    "BN_MODES",
    "GradualUnfreezing",
    "blocks_of",
    "depth_groups",
    "freeze",
    "freeze_all_but_head",
    "freeze_batchnorm",
    "param_groups",
    "set_bn_eval",
    "trainable_table",
    "unfreeze",
    "unfreeze_last",
]
