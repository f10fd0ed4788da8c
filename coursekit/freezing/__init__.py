"""Freezing: choose which pre-trained weights may change while fine-tuning (lessons 04, 06).

select.py     patterns that select parameters by name
by_name.py    freeze, unfreeze, freeze_all_but_head, trainable_table
batchnorm.py  frozen BatchNorm statistics stay frozen; recalibrate_batchnorm
layerwise.py  by depth: blocks_of, unfreeze_last, param_groups, GradualUnfreezing
split.py      frozen layers run once: Below (cached activations), Above (what trains on them)
cached.py     CachedSplits: the activations below a split, computed once, as mini-batches
recipes.py    Recipe, run_recipes: freezing recipes trained on the same data, steps and seeds
compare.py    their results over seeds: accuracy, paired difference, best_by_validation, table
"""

from .batchnorm import freeze_batchnorm, recalibrate_batchnorm, set_bn_eval
from .by_name import BN_MODES, freeze, freeze_all_but_head, trainable_table, unfreeze
from .cached import CachedSplits
from .compare import (
    accuracy,
    ahead,
    best_by_validation,
    difference,
    histories,
    summary,
    table,
    val_accuracy,
)
from .layerwise import GradualUnfreezing, blocks_of, depth_groups, param_groups, unfreeze_last
from .recipes import Recipe, RecipeRun, run_recipe, run_recipes, setup
from .split import Above, Below, activations, lowest_trainable, stage_names

__all__ = [
    "BN_MODES",
    "Above",
    "Below",
    "CachedSplits",
    "GradualUnfreezing",
    "Recipe",
    "RecipeRun",
    "accuracy",
    "activations",
    "ahead",
    "best_by_validation",
    "blocks_of",
    "depth_groups",
    "difference",
    "freeze",
    "freeze_all_but_head",
    "freeze_batchnorm",
    "histories",
    "lowest_trainable",
    "param_groups",
    "recalibrate_batchnorm",
    "run_recipe",
    "run_recipes",
    "set_bn_eval",
    "setup",
    "stage_names",
    "summary",
    "table",
    "trainable_table",
    "unfreeze",
    "unfreeze_last",
    "val_accuracy",
]
