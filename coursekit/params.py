"""A model's parts by name: how big it is, how much of it will learn, and swapping a part.

Every lesson counts parameters (`count_parameters`, `parameter_table`); lessons 03, 05 and 06
replace a layer by its dotted name (`set_submodule`: a new head, a LoRA wrapper, the plain
layer back).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["ParamCount", "count_parameters", "parameter_table", "set_submodule"]


@dataclass(frozen=True)
class ParamCount:
    """Parameters of one module, split by whether they require gradients."""

    name: str
    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.total:,} parameters, {self.trainable:,} trainable "
            f"({100 * self.trainable_fraction:.2f}%), {self.frozen:,} frozen"
        )


def count_parameters(model: nn.Module) -> ParamCount:
    """Trainable and frozen parameter counts of the whole model (shared weights counted once)."""
    seen: set[int] = set()
    trainable = frozen = 0
    for p in model.parameters():  # .parameters() already skips shared tensors
        if id(p) in seen:
            continue
        seen.add(id(p))
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return ParamCount(type(model).__name__, trainable, frozen)


def parameter_table(model: nn.Module, depth: int = 1) -> list[ParamCount]:
    """Counts per submodule `depth` levels down (e.g. depth=1: stem, blocks, head...).

    Modules with no parameters are left out; parameters held directly by a parent at a shallower
    level appear under the parent's own name.
    """
    rows: list[ParamCount] = []

    def visit(module: nn.Module, prefix: str, level: int) -> None:
        children = list(module.named_children())
        if level == depth or not children:
            c = count_parameters(module)
            if c.total:
                rows.append(ParamCount(prefix or type(module).__name__, c.trainable, c.frozen))
            return
        own = [p for p in module.parameters(recurse=False)]
        if own:
            t = sum(p.numel() for p in own if p.requires_grad)
            rows.append(ParamCount(prefix or "(own)", t, sum(p.numel() for p in own) - t))
        for name, child in children:
            visit(child, f"{prefix}.{name}" if prefix else name, level + 1)

    visit(model, "", 0)
    return rows


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> list[str]:
    """Put `module` where the submodule with dotted `name` (e.g. "encoder.layer.0.query") is, in
    place; return `[name]`, like every in-place model edit.

    (torch >= 2.3 has `nn.Module.set_submodule`; coursekit supports older torch too.)
    """
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
    return [name]
