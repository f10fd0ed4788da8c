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

# Modules that still re-export names defined elsewhere in their __all__ (the notebooks call them
# through `experiments`); every other plain module only lists what it defines.
REEXPORTS_ALLOWED = {"coursekit.experiments"}


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
        assert _is_package(module) or module in REEXPORTS_ALLOWED, (
            f"{module} lists {name} in __all__ but {home} defines it: import it from there"
        )


# --- no test switch in library code --------------------------------------------------------------

# Training, evaluation and feature extraction behave the same wherever they run: they read no
# environment variable (a dry run is installed from the outside: training.limits). The one
# exception is the launcher's own protocol, which says how many processes it started.
NO_ENVIRONMENT = ("coursekit.training", "coursekit.features", "coursekit.lr_finder")
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
