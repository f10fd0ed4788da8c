"""Kernel-side guard: before each check cell, undo what an answer did to the kernel's machinery.

The grader installs this file's code in every submission's kernel before any student code runs
(as a private module, `_coursekit_guard`; it imports only the standard library and IPython) and
calls it through `user_expressions`, which IPython evaluates without its input or AST
transformers. `start()` records the kernel as it starts; `before_answer()` records the lesson's
state right before an answer cell; `before_check()` puts back what an answer changed: IPython's
input and AST transformers, event callbacks, custom exception handlers, methods patched on the
shell or the kernel, `sys.excepthook`/`displayhook`, trace and profile functions, builtins, and
the check functions (a fresh import of `coursekit.exercises`, rebound to the notebook's names).
It returns what it undid, and the grader flags that for the instructor.
"""

import builtins
import importlib
import json
import os
import sys
import threading
import types

from IPython import get_ipython

LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
SHELL_ATTRS = ("events", "custom_exceptions", "CustomTB", "compile", "user_ns", "user_global_ns")
_start: dict = {}
_snap: dict = {"names": {}}


def _ids(items):
    return [id(x) for x in items]


def _patchable(ip):
    """The shell, the kernel and their classes: objects whose methods decide a cell's outcome."""
    objects = [ip, getattr(ip, "kernel", None)]
    classes = [c for o in objects if o is not None for c in type(o).__mro__ if c is not object]
    return [o for o in objects if o is not None] + classes


def start():
    """Record the kernel as it starts, before any submitted code."""
    ip = get_ipython()
    _start["hooks"] = (sys.excepthook, sys.displayhook, sys.gettrace(), sys.getprofile())
    _start["builtins"] = dict(vars(builtins))
    _start["shell"] = {k: getattr(ip, k) for k in SHELL_ATTRS}
    _start["methods"] = [
        (o, {k: v for k, v in vars(o).items() if callable(v) or isinstance(v, classmethod)})
        for o in _patchable(ip)
    ]
    before_answer()
    return "ok"


def before_answer():
    """Record transformers, callbacks and the names bound to coursekit (a trusted moment)."""
    ip = get_ipython()
    for key in LISTS:
        _snap[key] = list(getattr(ip, key))
    _snap["events"] = {k: list(v) for k, v in ip.events.callbacks.items()}
    for name, value in list(ip.user_ns.items()):
        if name in _snap["names"] or name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType) and value.__name__.startswith("coursekit"):
            _snap["names"][name] = (value.__name__, None, value)
        elif getattr(value, "__module__", None) == "coursekit.exercises.core" and callable(value):
            _snap["names"][name] = ("coursekit.exercises", getattr(value, "__name__", name), value)
    _snap["checks"] = {
        m: (dict(vars(sys.modules[m])), dict(getattr(sys.modules[m], "CHECKS", {})))
        for m in ("coursekit.exercises", "coursekit.exercises.core")
        if m in sys.modules
    }
    return "ok"


def _trusted(callback):
    """A callback defined in IPython, ipykernel or matplotlib (judged by where its code is)."""
    code = getattr(getattr(callback, "__func__", callback), "__code__", None)
    names = ("IPython", "ipykernel", "matplotlib", "matplotlib_inline")
    folders = tuple(
        os.path.dirname(sys.modules[n].__file__) + os.sep for n in names if n in sys.modules
    )
    return code is not None and bool(folders) and code.co_filename.startswith(folders)


def _restore_shell(ip, undone):
    for key, value in _start["shell"].items():
        if getattr(ip, key) is not value:
            setattr(ip, key, value)
            undone.append(f"IPython shell.{key} replaced")
    for key in LISTS:
        if _ids(getattr(ip, key)) != _ids(_snap[key]):
            getattr(ip, key)[:] = _snap[key]
            undone.append(f"IPython {key} changed")
    for event, callbacks in ip.events.callbacks.items():
        before = _snap["events"].get(event, [])
        added = [c for c in callbacks if id(c) not in _ids(before)]
        kept = [c for c in added if _trusted(c)]  # e.g. %matplotlib inline's flush_figures
        removed = [c for c in before if id(c) not in _ids(callbacks)]
        if len(kept) < len(added) or removed:
            names = [getattr(c, "__qualname__", repr(c)) for c in added if c not in kept]
            names += [f"-{getattr(c, '__qualname__', repr(c))}" for c in removed]
            undone.append(f"IPython event callback on {event!r} changed ({', '.join(names)})")
        callbacks[:] = before + kept
    for obj, methods in _start["methods"]:
        current = vars(obj)
        for key in [k for k, v in current.items() if callable(v) and k not in methods]:
            delattr(obj, key)
            undone.append(f"{getattr(obj, '__name__', type(obj).__name__)}.{key} added")
        for key, value in methods.items():
            if current.get(key) is not value:
                setattr(obj, key, value)
                undone.append(f"{getattr(obj, '__name__', type(obj).__name__)}.{key} replaced")


def _restore_sys(undone):
    excepthook, displayhook, trace, profile = _start["hooks"]
    if sys.excepthook is not excepthook or sys.displayhook is not displayhook:
        sys.excepthook, sys.displayhook = excepthook, displayhook
        undone.append("sys.excepthook/displayhook replaced")
    if sys.gettrace() is not trace or threading.gettrace() is not None:
        sys.settrace(trace)
        threading.settrace(None)
        undone.append("a trace function was set")
    if sys.getprofile() is not profile or threading.getprofile() is not None:
        sys.setprofile(profile)
        threading.setprofile(None)
        undone.append("a profile function was set")
    now = vars(builtins)
    for key, value in _start["builtins"].items():
        if now.get(key) is not value and not key.startswith("_"):
            now[key] = value
            undone.append(f"builtins.{key} replaced")


def _fresh_checks(ip, undone):
    """Import coursekit.exercises afresh from disk and rebind the notebook's names to it."""
    if "coursekit" not in sys.modules:
        return
    for module, (attrs, checks) in _snap.get("checks", {}).items():
        now = sys.modules.get(module)
        changed = [k for k, v in attrs.items() if getattr(now, k, None) is not v]
        changed += [f"CHECKS[{k!r}]" for k, v in checks.items() if now.CHECKS.get(k) is not v]
        undone += [f"{module}.{k} replaced" for k in changed]
    for name in [m for m in sys.modules if m.startswith("coursekit.exercises")]:
        del sys.modules[name]
    fresh = importlib.import_module("coursekit.exercises")
    importlib.import_module("coursekit").exercises = fresh
    for name, (module, attr, original) in _snap["names"].items():
        value = sys.modules.get(module) or importlib.import_module(module)
        value = getattr(value, attr) if attr else value
        if ip.user_ns.get(name) is not original:
            undone.append(f"the name {name!r} was rebound")
        ip.user_ns[name] = value
    _snap["names"] = {n: (m, a, ip.user_ns[n]) for n, (m, a, _) in _snap["names"].items()}
    before_answer()


def before_check():
    """Undo what the answer changed; return what was undone, as JSON."""
    ip = get_ipython()
    undone: list = []
    _restore_shell(ip, undone)
    _restore_sys(undone)
    if ip.user_ns.get("__builtins__", builtins) not in (builtins, vars(builtins)):
        ip.user_ns["__builtins__"] = builtins
        undone.append("__builtins__ replaced")
    _fresh_checks(ip, undone)
    return json.dumps(sorted(set(undone)))
