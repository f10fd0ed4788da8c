"""Build the learners' and the solutions copies of the lessons from their one source notebook.

The sources live in `notebooks/source/` (instructors edit them); `make notebooks` writes the
learners' copies to `notebooks/` (what the README and the Colab badges open) and the worked
solutions to `coursekit/exercises/solutions.json` (package data behind `ck.exercises.solution`).

- student: every solution region becomes a stub that binds each answer name to `...` (a
  function answer keeps its `def` line, with the body `...`), with a comment saying what to
  write; stubs never raise, so *Run All* reaches the end and every check says "not answered
  yet". Hidden tests are removed; each exercise's text says how to ask for the solution.
- solutions: solutions kept, hidden tests removed.

Both copies have no outputs, keep their nbgrader metadata (so nbgrader can still be used) and
their Colab badge points at the copy itself. With `repo` and `ref` (an instructor's published
copy), every badge, every link to the course's own files on GitHub and the "Colab setup" cell
point at that repository and tag instead (the cells come from `coursekit.runtime.colab`, the one
place that says where coursekit installs from).
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..runtime.colab import (
    REF,
    REPOSITORY,
    check_source,
    is_setup_cell,
    point_badges,
    point_links,
    setup_cell,
)
from .notebooks import (
    HIDDEN_BEGIN,
    HIDDEN_END,
    SOLUTION_BEGIN,
    SOLUTION_END,
    find_questions,
    lesson_of,
    read_notebook,
    regions,
    show_solutions,
)

__all__ = [
    "KINDS",
    "build",
    "build_notebook",
    "lesson_paths",
    "remove_region",
    "solution_data",
    "stub_for",
    "tag",
    "write_solution_data",
]

KINDS = ("student", "solutions")
COLAB = re.compile(
    r"(https://colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/[^/\s]+/)"
    r"[^)\s]*?([^/)\s]+\.ipynb)"
)


def _assigned_names(code: str) -> list[str]:
    """Names that `code` binds in its top-level statements (not loop variables), in order."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return []
    names: list[str] = []
    statements = list(tree.body)
    while statements:
        stmt = statements.pop(0)
        if isinstance(stmt, ast.With | ast.If | ast.Try):  # their bodies run once, at top level
            statements[:0] = [
                s for part in ("body", "orelse", "finalbody") for s in getattr(stmt, part, [])
            ]
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
            names.append(stmt.name)
        targets = {
            ast.Assign: lambda s: s.targets,
            ast.AnnAssign: lambda s: [s.target],
            ast.AugAssign: lambda s: [s.target],
            ast.With: lambda s: [i.optional_vars for i in s.items if i.optional_vars],
        }.get(type(stmt), lambda s: [])(stmt)
        for target in targets:
            names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def _names_read(code: str) -> set[str]:
    """Identifiers that `code` reads (strings, comments and keyword-argument names excluded)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_]\w*", code))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def stub_for(
    qid: str, solution: str, later_code: str, indent: str = "", defined: Iterable[str] = ()
) -> list[str]:
    """The lines that replace a solution: what to do, and each answer name bound to `...`.

    The answer names are the names the solution binds that later code (the rest of the cell,
    the check cell) reads; names in `defined`, set by earlier cells, are left alone. Inside a
    block (a function's body) the stub is the statement `...`. Nothing raises: the check then
    says "not answered yet" with its hint.
    """
    used_later = _names_read(later_code)
    needed = [n for n in _assigned_names(solution) if n in used_later]
    lines = [f"# Exercise {qid}: your code here (the instructions are in the text above)."]
    answers = [n for n in needed if n not in set(defined)] if not indent else []
    if answers:
        lines.append("# Replace each ... with your answer:")
        lines += [f"{n} = ...  # your answer" for n in answers]
    else:
        lines.append("...  # replace with your code")
    return [indent + line for line in lines]


def remove_region(source: str, begin: str, end: str, where: str = "") -> str:
    """`source` without the lines from `begin` to `end` (markers included)."""
    lines = source.splitlines()
    for start, stop in reversed(regions(source, begin, end, where)):
        del lines[start : stop + 1]
    return "\n".join(lines).rstrip("\n")


def _in_function(lines: list[str], start: int, indent: str) -> bool:
    """True when the indented line `start` sits in a `def` body (the nearest less-indented line
    above it opens a function)."""
    for line in reversed(lines[:start]):
        stripped = line.lstrip()
        if stripped and len(line) - len(stripped) < len(indent):
            return stripped.startswith(("def ", "async def "))
    return False


def _stub_solutions(source: str, qid: str, later_code: str, where: str, defined: set[str]) -> str:
    lines = source.splitlines()
    for start, stop in reversed(regions(source, SOLUTION_BEGIN, SOLUTION_END, where)):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        solution = textwrap.dedent("\n".join(lines[start + 1 : stop]))
        later = "\n".join(lines[stop + 1 :]) + "\n" + later_code
        stub = stub_for(qid, solution, later, "", defined)
        if indent and _in_function(lines, start, indent):
            stub = [stub[0], "...  # replace with your code"]
        lines[start : stop + 1] = [indent + line for line in stub]
    return "\n".join(lines)


def _point_badge(source: str, url_prefix: str | None, name: str) -> str:
    if url_prefix is None:
        return source
    return COLAB.sub(lambda m: f"{m.group(1)}{url_prefix.strip('/')}/{name}", source)


HOW_TO_ASK = (
    "*Your turn: write your answer in the next cell (replace each `...`), then run the check "
    'below it. Stuck? `ck.exercises.solution("{qid}")` prints a worked solution.*'
)


def build_notebook(
    nb: Any,
    kind: str,
    lesson: str,
    name: str,
    colab_dir: str | None,
    source: tuple[str, str] | None = None,
) -> Any:
    """A student or solutions copy of the (tagged) source notebook `nb`; `nb` is unchanged.

    source: (repository, ref) the badges, the links to the course's own files on GitHub and the
    Colab setup cell point at; None keeps them.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown build {kind!r}; choose one of {KINDS}")
    out = show_solutions(copy.deepcopy(nb))  # copies are read as they are: nothing collapsed
    questions = find_questions(out, lesson)
    answers = {q.answer_cell: q.qid for q in questions}
    code_after = {q.answer_cell: out.cells[q.check_cell].source for q in questions}
    defined: set[str] = set()  # names bound by the cells so far
    for i, cell in enumerate(out.cells):
        where = f"{name}, cell {i}"
        if cell.cell_type == "code":
            cell.source = remove_region(cell.source, HIDDEN_BEGIN, HIDDEN_END, where)
            bound = _assigned_names(cell.source)
            if kind == "student" and i in answers:
                cell.source = _stub_solutions(
                    cell.source, answers[i], code_after[i], where, defined
                )
            elif kind == "student" and regions(cell.source, SOLUTION_BEGIN, SOLUTION_END, where):
                raise ValueError(f"{where}: solution markers outside a tagged answer cell")
            defined.update(bound)
            cell.outputs, cell.execution_count = [], None
            if source is not None and is_setup_cell(cell.source):
                cell.source = setup_cell(*source)
        elif cell.cell_type == "markdown":
            cell.source = _point_badge(cell.source, colab_dir, name)
            if source is not None:
                cell.source = point_links(point_badges(cell.source, *source), *source)
            if kind == "student" and i + 1 in answers:
                cell.source = cell.source.rstrip() + "\n\n" + HOW_TO_ASK.format(qid=answers[i + 1])
    out.metadata["coursekit"] = {"build": kind, "lesson": lesson, "source": name}
    return out


def build(
    kind: str,
    sources: str | Path = "notebooks/source",
    out_dir: str | Path | None = None,
    colab_dir: str | None = None,
    repo: str | None = None,
    ref: str | None = None,
) -> list[Path]:
    """Write the `kind` copy of every lesson in `sources` (a notebook or a folder) to `out_dir`.

    colab_dir: the folder the badges point at, relative to the repository root (default: the
    output folder, e.g. "build/student"); pass "" to leave the badges unchanged.
    repo, ref: the published copy (GitHub OWNER/NAME, and a tag or commit) that the badges, the
    links to the course's files and the Colab setup cells point at; a moving branch (main,
    master...) is refused (ValueError).
    """
    import nbformat

    source = None
    if repo is not None or ref is not None:
        source = (repo or REPOSITORY, ref or REF)
        check_source(*source)
    paths = lesson_paths(sources)
    out = Path(out_dir) if out_dir is not None else Path("build") / kind
    out.mkdir(parents=True, exist_ok=True)
    if colab_dir is None:  # badges point at the copy, when it is inside this repository
        try:
            colab_dir = out.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            colab_dir = ""
    badge_dir = colab_dir
    written = []
    for path in paths:
        nb = read_notebook(path)
        copy_nb = build_notebook(nb, kind, lesson_of(path), path.name, badge_dir or None, source)
        nbformat.validate(copy_nb)
        nbformat.write(copy_nb, out / path.name)
        written.append(out / path.name)
    return written


def solution_data(sources: str | Path = "notebooks/source") -> dict[str, Any]:
    """The worked solution of every exercise in `sources`: its answer cell as the solutions copy
    has it (markers and hidden tests removed), by question id; the data behind
    `ck.exercises.solution`."""
    found: dict[str, dict[str, str]] = {}
    for path in lesson_paths(sources):
        nb = build_notebook(read_notebook(path), "solutions", lesson_of(path), path.name, None)
        for q in find_questions(nb, lesson_of(path)):
            code = nb.cells[q.answer_cell].source
            code = "\n".join(
                line
                for line in code.splitlines()
                if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END)
            )
            found[q.qid] = {"notebook": path.name, "code": textwrap.dedent(code).strip() + "\n"}
    return {
        "generated_by": "make notebooks (from notebooks/source); do not edit by hand",
        "questions": found,
    }


def write_solution_data(sources: str | Path, path: str | Path) -> Path:
    """Write `solution_data(sources)` as JSON to `path` (normally the package's solutions.json)."""
    import json

    path = Path(path)
    text = json.dumps(solution_data(sources), indent=1, ensure_ascii=False, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def lesson_paths(sources: str | Path) -> list[Path]:
    """The lesson notebooks (NN_title.ipynb) in a folder, or the one notebook named."""
    sources = Path(sources)
    paths = sorted(sources.glob("[0-9][0-9]_*.ipynb")) if sources.is_dir() else [sources]
    if not paths or not all(p.exists() for p in paths):
        raise FileNotFoundError(f"no lesson notebooks (NN_title.ipynb) at {sources}")
    return paths


def tag(sources: str | Path = "notebooks/source") -> dict[str, list[str]]:
    """Tag the exercises of source notebooks in place (nbgrader metadata) and clear outputs.

    Run it after editing a lesson: authors type only the markers. Returns the question ids found.
    """
    import nbformat

    from .notebooks import tag_exercises

    found = {}
    for path in lesson_paths(sources):
        nb = tag_exercises(read_notebook(path))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, path)
        found[path.name] = [q.qid for q in find_questions(nb, lesson_of(path))]
    return found
