"""Freezing: choose which pre-trained weights may change while fine-tuning (lessons 04, 06).

select.py     patterns that select parameters by name
by_name.py    freeze, unfreeze, freeze_all_but_head, trainable_table
batchnorm.py  frozen BatchNorm statistics stay frozen; recalibrate_batchnorm
layerwise.py  by depth: blocks_of, unfreeze_last, param_groups, GradualUnfreezing
"""

from .batchnorm import freeze_batchnorm, recalibrate_batchnorm, set_bn_eval
from .by_name import BN_MODES, freeze, freeze_all_but_head, trainable_table, unfreeze
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
    "recalibrate_batchnorm",
    "set_bn_eval",
    "trainable_table",
    "unfreeze",
    "unfreeze_last",
]
