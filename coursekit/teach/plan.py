"""What each check needs, read from the instructor's source notebook before any submission runs.

A check cell of a source lesson mixes three things: code the learner sees (the self-check call,
maybe a line that prepares its context), hidden tests, and the names both read from the notebook
(the answer, a model, a table of results ...). For each question this module works out:

- `kernel_code`: what the student's kernel runs in place of the check cell (the visible part,
  so the lesson's later cells see the state a learner's run has); hidden tests never go there;
- `visible` and `hidden`: what the checking process runs, in two phases (every visible part
  first, then every hidden part), so nothing a kernel saw of a hidden test can reach feedback;
- `names`: what the kernel hands over just before the check cell, by value;
- `answer_names`: the names the solution binds (the rest of `names` is context).

Names the instructor's cells bind by `import` (`ck`, `torch`, `np` ...) are never taken from the
kernel: the checking process runs those imports itself (`imports`), so a submission cannot swap
the module a check calls. Instructor cells that register self-checks (`@question(...)` in a
setup cell) contribute their imports and definitions (`defines`) to the checking process.
"""

from __future__ import annotations

import ast
import builtins
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .build import build_notebook
from .notebooks import HIDDEN_BEGIN, HIDDEN_END, Question, find_questions, regions, show_solutions

__all__ = ["CheckPlan", "LessonPlan", "bound_names", "plan_lesson", "python_of", "read_names"]

BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "display", "get_ipython"}


@dataclass
class CheckPlan:
    """One question, as the grader runs and checks it."""

    question: Question
    kernel_code: str
    visible: str
    hidden: str
    names: list[str]
    answer_names: list[str]
    cell_names: list[str]  # every name the source's answer cell binds (solution and setup)
    stub: str  # the student copy's answer cell: a submission still holding it is unanswered


@dataclass
class LessonPlan:
    """A source lesson's questions, its trusted imports and its check-registering code."""

    checks: list[CheckPlan] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)


def python_of(source: str) -> str:
    """A cell's source as plain Python (IPython's `%magic` and `!shell` lines translated)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(textwrap.dedent(python_of(source)))
    except SyntaxError:
        return None


def read_names(code: str) -> set[str]:
    """Every name `code` reads anywhere (nested functions and comprehensions included)."""
    tree = _parse(code)
    if tree is None:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def bound_names(code: str) -> list[str]:
    """The names `code` binds at its top level (assignments, defs, imports, with, for ...)."""
    tree = _parse(code)
    if tree is None:
        return []
    names: list[str] = []
    for stmt in _top_level(tree):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(stmt.name)
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            names += [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
        else:
            for target in _targets(stmt):
                names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """Top-level statements, with the bodies of if/with/try/for blocks (they run at top level)."""
    out, todo = [], list(tree.body)
    while todo:
        stmt = todo.pop(0)
        out.append(stmt)
        if isinstance(stmt, ast.If | ast.With | ast.Try | ast.For | ast.While):
            todo[:0] = [
                s for part in ("body", "orelse", "finalbody") for s in getattr(stmt, part, [])
            ]
            todo[:0] = [s for h in getattr(stmt, "handlers", []) for s in h.body]
    return out


def _targets(stmt: ast.stmt) -> list[ast.AST]:
    if isinstance(stmt, ast.Assign):
        return list(stmt.targets)
    if isinstance(stmt, ast.AnnAssign | ast.AugAssign | ast.For):
        return [stmt.target]
    if isinstance(stmt, ast.With):
        return [i.optional_vars for i in stmt.items if i.optional_vars is not None]
    return [n.target for n in ast.walk(stmt) if isinstance(n, ast.NamedExpr)]


def _registers_checks(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        for deco in getattr(node, "decorator_list", []):
            func = deco.func if isinstance(deco, ast.Call) else deco
            if getattr(func, "id", getattr(func, "attr", "")) == "question":
                return True
    return False


def _split_hidden(source: str, where: str) -> tuple[str, str]:
    """(the cell without its hidden tests, the hidden tests to run after it)."""
    lines = source.splitlines()
    found = regions(source, HIDDEN_BEGIN, HIDDEN_END, where)
    hidden = [ln for a, b in found for ln in lines[a + 1 : b]]
    for a, b in reversed(found):
        del lines[a : b + 1]
    visible = "\n".join(lines)
    if hidden and any(ln[:1].isspace() for ln in hidden if ln.strip()):
        return visible, source  # hidden tests inside a block: run the whole cell after all
    return visible, "\n".join(hidden)


def plan_lesson(nb: Any, lesson: str, name: str) -> LessonPlan:
    """The plan of a tagged source notebook (solutions hidden or not)."""
    import copy

    nb = show_solutions(copy.deepcopy(nb))
    questions = find_questions(nb, lesson)
    student = build_notebook(nb, "student", lesson, name, None)
    answer_cells = {q.answer_cell for q in questions}
    check_cells = {q.check_cell for q in questions}
    plan = LessonPlan()
    imports: list[str] = []
    defined: set[str] = set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i in answer_cells:
            continue
        tree = _parse(remove_hidden(cell.source, f"{name}, cell {i}"))
        if tree is None:
            continue
        for stmt in tree.body:
            if isinstance(stmt, ast.Import | ast.ImportFrom) and i not in check_cells:
                imports.append(ast.unparse(stmt))
        if i not in check_cells and _registers_checks(tree):
            keep = [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.ClassDef)]
            plan.defines.append("\n\n".join(ast.unparse(s) for s in keep))
            defined.update(s.name for s in keep)
    define_reads = set().union(*(read_names(d) for d in plan.defines)) if plan.defines else set()
    reads = define_reads.union(*(read_names(nb.cells[q.check_cell].source) for q in questions))
    plan.imports = [s for s in dict.fromkeys(imports) if set(bound_names(s)) & reads]
    imported = {n for s in plan.imports for n in bound_names(s)}
    for q in questions:
        where = f"{name}, cell {q.check_cell}"
        visible, hidden = _split_hidden(nb.cells[q.check_cell].source, where)
        wanted = (read_names(visible) | read_names(hidden) | define_reads) - BUILTINS
        plan.checks.append(
            CheckPlan(
                question=q,
                kernel_code=visible,
                visible=visible,
                hidden=hidden,
                names=sorted(wanted - imported - defined),
                answer_names=_solution_names(nb.cells[q.answer_cell].source),
                cell_names=bound_names(nb.cells[q.answer_cell].source),
                stub=student.cells[q.answer_cell].source,
            )
        )
    return plan


def remove_hidden(source: str, where: str) -> str:
    return _split_hidden(source, where)[0]


def _solution_names(source: str) -> list[str]:
    """The names the solution binds; for a solution inside a `def`, that function's name."""
    from .notebooks import SOLUTION_BEGIN, SOLUTION_END

    lines = source.splitlines()
    found = regions(source, SOLUTION_BEGIN, SOLUTION_END, "answer cell")
    names: list[str] = []
    for a, b in found:
        names += bound_names("\n".join(lines[a + 1 : b]))
    tree = _parse(source)
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            node.lineno <= a + 1 <= (node.end_lineno or 0) for a, _ in found
        ):
            names.append(node.name)
    return list(dict.fromkeys(names))
