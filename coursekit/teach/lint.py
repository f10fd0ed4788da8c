"""What makes an exercise work when a learner tries it first, checked from the source notebook.

In the learners' copy every solution region is a stub that binds the answer names to `...`, so:

- a name bound *only* inside a solution region may be read by that exercise's check cell and
  nowhere else: not by the rest of the answer cell, not by any later cell (else the learner's
  copy breaks, or silently depends on the answer). Setup an exercise needs (a fresh model, a
  subset) goes outside the markers;
- a check cell shows no expected value: no `assert`, no `print`/`display`, no
  `assert_close` outside the hidden tests. Expected values live in `coursekit/exercises/`.

`coursekit tag` prints these problems; tests/test_notebook_hygiene.py fails on them.
"""

from __future__ import annotations

import ast
import textwrap
from typing import Any

from .notebooks import (
    HIDDEN_BEGIN,
    HIDDEN_END,
    SOLUTION_BEGIN,
    SOLUTION_END,
    find_questions,
    regions,
)

__all__ = ["bound_names", "exercise_problems", "read_names", "without_solutions"]

SHOWS_A_VALUE = {"print", "display", "assert_close", "assert_allclose", "assert_equal"}


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return None


def bound_names(code: str) -> set[str]:
    """Names `code` binds at module level: assignments, imports, loop targets, defs, classes
    (not the locals of its functions or comprehensions)."""
    tree = _parse(code)
    found: set[str] = set()
    if tree is None:
        return found
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
            continue
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp):
            continue
        if isinstance(node, ast.GeneratorExp):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return found


def read_names(code: str) -> set[str]:
    """Names `code` reads anywhere (function bodies included)."""
    tree = _parse(code)
    if tree is None:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def without_solutions(code: str) -> str:
    """`code` with each solution region replaced by `...` at its indentation (a valid body)."""
    lines = code.splitlines()
    for start, stop in reversed(regions(code, SOLUTION_BEGIN, SOLUTION_END)):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        lines[start : stop + 1] = [indent + "..."]
    return "\n".join(lines)


def _without_hidden(code: str) -> str:
    lines = code.splitlines()
    for start, stop in reversed(regions(code, HIDDEN_BEGIN, HIDDEN_END)):
        del lines[start : stop + 1]
    return "\n".join(lines)


def _shows_a_value(code: str) -> list[str]:
    tree = _parse(code)
    if tree is None:
        return []
    shown = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            shown.append("an assert")
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
            if name in SHOWS_A_VALUE:
                shown.append(f"{name}(...)")
    return shown


def exercise_problems(nb: Any, lesson: str) -> list[str]:
    """Every way the exercises of a (tagged) source notebook break the rules in the module text."""
    questions = find_questions(nb, lesson)
    answer_of = {q.answer_cell: q for q in questions}
    check_of = {q.check_cell: q for q in questions}
    in_region: dict[str, str] = {}  # name -> qid whose solution binds it
    outside: set[str] = set()
    visible: dict[int, str] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code = _without_hidden(cell.source)
        if i in answer_of:
            stubbed = without_solutions(code)
            plain = "\n".join(
                line
                for line in code.splitlines()
                if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END)
            )
            for name in bound_names(plain) - bound_names(stubbed):
                in_region.setdefault(name, answer_of[i].qid)
            outside |= bound_names(stubbed)
            code = stubbed
        else:
            outside |= bound_names(code)
        visible[i] = code
    only_in_region = {n: q for n, q in in_region.items() if n not in outside}
    problems = []
    for i, code in visible.items():
        own = check_of[i].qid if i in check_of else None
        for name in sorted(read_names(code) & set(only_in_region)):
            if only_in_region[name] != own:
                where = "the rest of its answer cell" if i in answer_of else f"cell {i}"
                problems.append(
                    f"{where} reads `{name}`, bound only in the solution of "
                    f"{only_in_region[name]}: move setup outside the markers, and let no later "
                    "cell depend on an answer (the learner's copy binds it to `...`)"
                )
        if i in check_of or i in answer_of:
            qid = (check_of.get(i) or answer_of[i]).qid
            kind = "check" if i in check_of else "answer"
            for shown in _shows_a_value(code):
                problems.append(
                    f"cell {i}, the {kind} cell of {qid}, has {shown} outside the hidden tests: "
                    "it would show the expected value; compute it in coursekit/exercises/"
                )
    return problems
