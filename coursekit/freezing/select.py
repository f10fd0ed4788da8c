"""Selecting parameters by name: the patterns every freezing function takes (lesson 04).

A pattern selects a module (all of its parameters) or one parameter by its full dotted name:
a glob such as "_blocks.1*", "*bn*" or "bert.encoder.*", or "re:" + a regular expression matched
against the whole name. A pattern that matches nothing is an error that names the model's modules,
because a typo must never silently leave everything trainable.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Sequence

from torch import nn

__all__ = ["Patterns", "is_under", "no_match_error", "select_parameters", "set_requires_grad"]

Patterns = str | Sequence[str] | None


def is_under(name: str, prefixes: Sequence[str]) -> bool:
    """Whether `name` is one of `prefixes` or lies inside one of them (dot boundaries)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def _owners(param_name: str) -> list[str]:
    """'a.b.weight' -> ['a', 'a.b', 'a.b.weight']: the modules that own it, and itself."""
    parts = param_name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def no_match_error(model: nn.Module, pattern: str) -> ValueError:
    names = [n for n, _ in model.named_modules() if n and n.count(".") <= 1]
    close = difflib.get_close_matches(pattern.removeprefix("re:"), names, n=3, cutoff=0.5)
    hint = f" Did you mean {' / '.join(close)}?" if close else ""
    return ValueError(
        f"pattern {pattern!r} matches no module or parameter of the {type(model).__name__}.{hint} "
        f"Its module names look like: {', '.join(names[:12])}{', and more' * (len(names) > 12)}. "
        "Patterns are globs over full dotted names ('_blocks.1*', '*bn*', 'bert.encoder.*') or "
        "'re:' + a regular expression (re.fullmatch), e.g. 're:_blocks\\.(14|15)'."
    )


def select_parameters(model: nn.Module, patterns: Patterns) -> list[str]:
    """Names of the parameters that `patterns` select: a pattern selects a module (all of its
    parameters) or a single parameter by its full dotted name. None selects every parameter."""
    names = [n for n, _ in model.named_parameters()]
    if patterns is None:
        return names
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    chosen: set[str] = set()
    for pattern in patterns:
        hits = {n for n in names if any(_matches(o, pattern) for o in _owners(n))}
        if not hits:
            raise no_match_error(model, pattern)
        chosen |= hits
    return [n for n in names if n in chosen]


def set_requires_grad(model: nn.Module, names: list[str], flag: bool) -> list[str]:
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(flag)
    return names
