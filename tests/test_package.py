"""The package's shape: every public name is defined where a reader looks for it.

Walks every module of coursekit (pkgutil) and reads its source (ast), so it also sees imports
inside functions and under TYPE_CHECKING: no module `__getattr__` shims, no private `_name`
imported from another module, no import cycles, and every name in a module's `__all__` importable
from the module that defines it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import get_origin

import pytest

import coursekit


def _modules() -> dict[str, Path]:
    found = {"coursekit": Path(coursekit.__file__)}
    for info in pkgutil.walk_packages(coursekit.__path__, "coursekit."):
        spec = importlib.util.find_spec(info.name)
        found[info.name] = Path(spec.origin)
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import statement in `module`."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            out += [(source, alias.name) for alias in node.names]
    return out


def _edges(module: str) -> set[str]:
    edges = set()
    for source, name in _imports(module):
        if name is not None and f"{source}.{name}" in MODULES:  # `from . import submodule`
            edges.add(f"{source}.{name}")
        elif source in MODULES:
            edges.add(source)
    edges.discard(module)
    return edges


def test_the_walk_sees_the_subpackages():
    assert {
        "coursekit.training.loop",
        "coursekit.freezing.layerwise",
        "coursekit.lora.peft",
        "coursekit.features.cache",
        "coursekit.teach.grade",
    } <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_getattr_shim(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    shims = [
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
    ]
    assert not shims, f"{module} resolves names through a module __getattr__"


def test_no_private_name_crosses_a_module_boundary():
    crossings = [
        f"{module} imports {name} from {source}"
        for module in MODULES
        for source, name in _imports(module)
        if source.startswith("coursekit")
        and name
        and name.startswith("_")
        and not name.startswith("__")
        and source != module
    ]
    assert not crossings, crossings


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every import cycle a depth-first walk of `graph` meets, as "a -> b -> a"."""
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == ["a -> b -> c -> a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert not _cycles({m: _edges(m) for m in MODULES})


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_public_name_is_importable_from_its_defining_module(module):
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", [])
    for name in names:
        obj = getattr(mod, name)  # listed names exist
        home = (
            getattr(obj, "__module__", None)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and get_origin(obj) is None
            else None  # a type alias such as Callable[...] is not a definition (Python 3.10)
        )
        if inspect.ismodule(obj) or home is None or home == module:
            continue
        defining = importlib.import_module(home)
        assert getattr(defining, name) is obj, f"{module}.{name} is not {home}.{name}"
        assert name in getattr(defining, "__all__", []), f"{home} does not list {name} in __all__"
        assert _is_package(module), (
            f"{module} lists {name} in __all__ but {home} defines it: import it from there"
        )


# --- no test switch in library code --------------------------------------------------------------

# Training, evaluation and feature extraction behave the same wherever they run: they read no
# environment variable (a dry run is installed from the outside: training.limits). The one
# exception is the launcher's own protocol, which says how many processes it started.
NO_ENVIRONMENT = ("coursekit.training", "coursekit.features", "coursekit.measure.lr_finder")
LAUNCHER_PROTOCOL = {"coursekit.training.distributed"}  # WORLD_SIZE, set by torchrun


def _environment_reads(module: str) -> list[str]:
    """Each `os.environ` / `os.getenv` / `environ` use in `module`'s source, as "line N"."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "getenvb"):
            lines.add(node.lineno)
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv", "getenvb"):
            lines.add(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "getenv", "getenvb") for a in node.names):
                lines.add(node.lineno)
    return [f"line {n}" for n in sorted(lines)]


def test_the_environment_check_finds_a_read(tmp_path, monkeypatch):
    path = tmp_path / "probe.py"
    path.write_text("import os\nfrom os import getenv\nN = os.environ.get('X')\nM = getenv('Y')\n")
    monkeypatch.setitem(MODULES, "probe", path)
    assert _environment_reads("probe") == ["line 2", "line 3", "line 4"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(NO_ENVIRONMENT)))
def test_training_evaluation_and_features_read_no_environment_variable(module):
    if module in LAUNCHER_PROTOCOL:
        return
    assert not _environment_reads(module), f"{module} reads the environment"


def test_no_module_reads_the_old_step_cap_switch():
    """`$COURSEKIT_MAX_STEPS` is gone: the course runner installs a dry run in the kernel."""
    users = [m for m, path in MODULES.items() if "COURSEKIT_MAX_STEPS" in path.read_text()]
    assert not users, users


# --- one of each ---------------------------------------------------------------------------------

OPTIMIZER_FACTORY = "coursekit.training.optim"  # make_optimizer: the one AdamW every run uses
OPTIMIZER_PROBE = "coursekit.runtime.device"  # adamw_kwargs tries one fused step on a scalar


def _optimizers_built(module: str) -> list[str]:
    """Each call of a `torch.optim` optimizer class in `module`'s source, as "line N: Class"."""
    return _optimizers_in(MODULES[module].read_text(encoding="utf-8"))


def _optimizers_in(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = ast.unparse(node.func.value)
            if target in ("torch.optim", "optim") and node.func.attr[:1].isupper():
                found.append(f"line {node.lineno}: {node.func.attr}")
    return found


def test_the_optimizer_check_finds_a_hand_built_optimizer(tmp_path, monkeypatch):
    path = tmp_path / "probe.py"
    path.write_text(
        "import torch\nopt = torch.optim.AdamW([], lr=1)\nsched = torch.optim.lr_x(opt)\n"
    )
    monkeypatch.setitem(MODULES, "probe", path)
    assert _optimizers_built("probe") == ["line 2: AdamW"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_optimizer_comes_from_the_one_factory(module):
    if module in (OPTIMIZER_FACTORY, OPTIMIZER_PROBE):
        return
    assert not _optimizers_built(module), (
        f"{module} builds its own optimizer: use training.optim.make_optimizer "
        "(param groups for discriminative learning rates)"
    )


# --- the README's package map matches the package ------------------------------------------------

ROOT = Path(coursekit.__file__).resolve().parents[1]


def _readme_map() -> dict[str, str]:
    """{entry ("params.py", "training/"): its description} from the README's package map."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## The package", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            current, _, rest = line.strip().partition(" ")
            entries[current] = rest
        elif current is not None and line.strip():
            entries[current] += " " + line.strip()
    return entries


def _top_level() -> set[str]:
    """The package's own modules ("x.py") and subpackages ("x/"), as `ls coursekit` shows them."""
    here = Path(coursekit.__file__).parent
    modules = {p.name for p in here.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    return modules | {p.name + "/" for p in here.iterdir() if (p / "__init__.py").is_file()}


def test_the_readme_map_lists_every_module_and_nothing_else():
    listed = set(_readme_map())
    actual = _top_level()
    assert not actual - listed, f"modules missing from the README's package map: {actual - listed}"
    assert not listed - actual, (
        f"the README's package map lists what is not there: {listed - actual}"
    )


@pytest.mark.parametrize("entry", sorted(e for e in _readme_map() if e.endswith("/")))
def test_a_subpackage_entry_that_names_its_modules_names_them_all(entry):
    import re

    named = set(re.findall(r"\b(\w+\.py)\b", _readme_map()[entry]))
    if not named:
        return
    folder = Path(coursekit.__file__).parent / entry
    actual = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
    assert named <= actual, f"README's {entry} names modules it does not have: {named - actual}"
    assert actual <= named, f"README's {entry} leaves out {actual - named}"


# --- notebooks use the public surface only --------------------------------------------------------

NOTEBOOKS = sorted((ROOT / "notebooks" / "source").glob("*.ipynb"))


def _notebook_imports(path: Path) -> list[tuple[str, list[str] | None]]:
    """(module, imported names or None for `import module`) for every coursekit import of a
    notebook's code cells (IPython magics and shell lines left out)."""
    import json

    found = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").split(".")[0] == "coursekit"
            ):
                found.append((node.module, [alias.name for alias in node.names]))
            elif isinstance(node, ast.Import):
                found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "coursekit"]
    return found


def _private_imports(module: str, names: list[str] | None) -> list[str]:
    """What is not public in one import: public is `coursekit` and its `__all__`, a module or
    subpackage of the README's map (`coursekit.viz`), and the names such a module lists in its
    `__all__` (one documented import per subpackage; never a module below it)."""
    top = {entry.removesuffix("/").removesuffix(".py") for entry in _top_level()}
    parts = module.split(".")
    if len(parts) > 2:
        return [f"{module}: a module inside a subpackage (import from coursekit.{parts[1]})"]
    if len(parts) == 2 and parts[1] not in top:
        return [f"{module}: not a module of the package map"]
    if names is None:
        return []
    if module == "coursekit":
        return [f"coursekit.{n}: not public" for n in names if n not in {*coursekit.__all__, *top}]
    listed = set(getattr(importlib.import_module(module), "__all__", ()))
    return [f"{module}.{n}: not in {module}.__all__" for n in names if n not in listed]


def test_the_public_import_check_finds_internals():
    assert _private_imports("coursekit.finetune.build", ["image_tensors"])
    assert _private_imports("coursekit.training", ["_Run"])
    assert _private_imports("coursekit", ["_version"])
    assert not _private_imports("coursekit.finetune", ["image_tensors", "examples"])
    assert not _private_imports("coursekit", ["viz", "fit"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_import_only_public_names(notebook):
    private = [
        p for module, names in _notebook_imports(notebook) for p in _private_imports(module, names)
    ]
    assert not private, f"{notebook.name} imports internals: {private}"


# --- one name for the same idea ------------------------------------------------------------------

# A folder a run checkpoints into (and resumes from) is `checkpoint_dir`; a folder a run writes
# its results into is `out_dir` (`--out` on the command line). Deprecated names, one release:
DEPRECATED_PARAMETERS = {
    ("coursekit.strategies.sweep.run_strategies", "checkpoints"),
    ("coursekit.strategies.sweep.run_strategy", "checkpoints"),
}
OTHER_FOLDER_NAMES = {"checkpoints", "ckpt_dir", "checkpoint_folder", "output_dir", "outdir",
                      "output_folder", "save_dir", "results_dir"}  # fmt: skip


def _public_callables() -> dict[str, object]:
    found = {}
    for module in MODULES:
        try:
            mod = importlib.import_module(module)
        except Exception:  # a script loaded by path elsewhere (teach.agent): the test above says
            continue
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module:
                found[f"{module}.{name}"] = obj
    return found


def test_a_folder_has_one_name_across_fit_the_sweep_and_finetune():
    def params(obj) -> set[str]:
        try:
            return set(inspect.signature(obj).parameters)
        except (TypeError, ValueError):  # exceptions and other builtin-backed classes
            return set()

    from coursekit.finetune import finetune
    from coursekit.strategies import run_strategies, run_strategy
    from coursekit.training import fit

    assert {"checkpoint_dir"} <= params(fit) & params(run_strategies) & params(run_strategy)
    assert "out_dir" in params(finetune)
    odd = [
        f"{where}({name}=)"
        for where, obj in _public_callables().items()
        for name in params(obj) if name in OTHER_FOLDER_NAMES
        and (where, name) not in DEPRECATED_PARAMETERS
    ]  # fmt: skip
    assert not odd, f"use checkpoint_dir / out_dir: {odd}"


# --- the old flat names: working for one release, with a warning ----------------------------------


def test_the_top_level_is_short_enough_to_read_from_ls():
    modules = [m for m in _top_level() if m.endswith(".py")]
    assert len(modules) <= 10, f"{len(modules)} flat modules: group them ({sorted(modules)})"


@pytest.mark.parametrize("old", sorted(coursekit.moved.MOVED))
def test_an_old_module_name_still_works_and_warns(old):
    import sys

    new = importlib.import_module(f"coursekit.{coursekit.moved.MOVED[old]}")
    name = new.__all__[0]
    with pytest.warns(DeprecationWarning, match=f"coursekit.{old} moved to {new.__name__}"):
        via_attribute = getattr(getattr(coursekit, old), name)
    with pytest.warns(DeprecationWarning):
        via_import = getattr(importlib.import_module(f"coursekit.{old}"), name)
    assert via_attribute is via_import is getattr(new, name)
    assert sys.modules[f"coursekit.{old}"] is getattr(coursekit, old)


def test_from_an_old_module_import_a_name_warns_at_the_callers_line():
    with pytest.warns(DeprecationWarning) as caught:
        from coursekit.device import pick_device  # noqa: PLC0415
    assert pick_device is coursekit.runtime.pick_device
    assert caught[0].filename == __file__


def test_an_old_name_that_never_existed_fails_as_usual():
    with pytest.warns(DeprecationWarning), pytest.raises(AttributeError):
        coursekit.cost.no_such_function  # noqa: B018


def test_every_moved_module_exists_and_no_old_file_is_left():
    here = Path(coursekit.__file__).parent
    for old, new in coursekit.moved.MOVED.items():
        assert not (here / f"{old}.py").exists(), f"coursekit/{old}.py is back: drop it from MOVED"
        assert f"coursekit.{new}" in MODULES


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_build_their_optimizers_with_the_one_factory(notebook):
    import json

    built = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            code = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
            built += _optimizers_in(code)
    assert not built, f"{notebook.name} builds optimizers {built}: use ck.optim.make_optimizer"
