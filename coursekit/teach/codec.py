"""Values by value: how answers and context cross from a student's kernel to the checking process.

The grader never lets the process that runs a submission say whether it passed. The kernel
only hands over *values*; a separate checking process (`teach.checker`) runs the hidden tests
and self-checks on them. This module is the format those values travel in, and it carries data
only: never pickle, never code.

- a **JSON tree**: numbers, strings, None, and tagged nodes `{"$": kind, ...}` for lists,
  tuples, dicts (any keys), sets, bytes, `...`, ranges, paths, numpy scalars, torch sizes,
  dtypes and devices; shared or cyclic containers are sent once and referenced (`"$": "ref"`);
- **blobs**: each tensor or numpy array as a safetensors file (dtype, shape and bytes, no code);
- objects of classes from a short list of packages (`ALLOWED`: torch.nn, torch.utils.data,
  torchvision and transformers models, peft tuners, coursekit) as their class name plus their
  attributes, and `nn.Module`s as their parameters, buffers and submodules (not their hooks; a
  model with a layer of a notebook's own class stays in the kernel). Decoding creates the
  instance without calling its constructor (`__new__`, then the attributes), imports only those
  packages, and checks that the class name really names that class;
- everything else (functions, generators, objects of a notebook's own classes ...) as a
  **handle**: a number the checking process can only ask the kernel to use on its behalf (call
  it, read an attribute), each request answered by value again (`teach.checker.Remote`).

A subclass of int, float or str arrives as the plain value (an `int` that claims to equal
everything arrives as the number it holds); an object's methods run in the checking process
only if its class is on the list, i.e. they are the library's own code. Used by `teach.agent`
(inside the kernel) and `teach.checker`; the grader in between only counts and forwards bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import importlib
import math
import pathlib
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["ALLOWED", "DecodeError", "Decoder", "EncodeError", "Encoder", "allowed_class"]

TAG = "$"
# Packages whose classes travel by value (module-name prefixes); their methods are trusted code.
ALLOWED = (
    "torch.nn.",
    "torch.utils.data.",
    "torchvision.models.",
    "torchvision.ops.",
    "transformers.models.",
    "transformers.activations",
    "transformers.configuration_utils",
    "transformers.modeling_utils",
    "transformers.tokenization_utils_base",
    "peft.tuners.",
    "coursekit.",
    "pathlib",
    "collections",
)
DENIED = ("coursekit.teach", "torch.nn.parallel", "torch.utils.data.dataloader")
MAX_DEPTH = 200


class EncodeError(ValueError):
    """A value that cannot be sent (too large, or a kind this side may not hand out)."""


class DecodeError(ValueError):
    """A tree that is not a well-formed value, or names a class that is not allowed."""


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def allowed_class(cls: type) -> bool:
    """Whether objects of `cls` may travel by value (and its methods run in the checker)."""
    module = getattr(cls, "__module__", "") or ""
    qualname = getattr(cls, "__qualname__", "") or ""
    if "<locals>" in qualname or module.startswith(DENIED):
        return False
    return module.startswith(ALLOWED) or module in {a.rstrip(".") for a in ALLOWED}


def _torch() -> Any:
    return sys.modules.get("torch")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _module_internals() -> frozenset[str]:
    torch = _torch()
    return frozenset(vars(torch.nn.Module())) if torch is not None else frozenset()


class Encoder:
    """Turns values into a JSON tree plus blobs; `handle(value)` stands in for the rest."""

    def __init__(self, handle: Callable[[Any], dict] | None = None, max_bytes: int = 2**30) -> None:
        self.handle, self.max_bytes = handle, max_bytes
        self.blobs: dict[str, bytes] = {}
        self.size = 0
        self._memo: dict[int, int] = {}
        self._keep: list[Any] = []  # keeps encoded objects alive so their ids stay unique

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise EncodeError("the value is nested too deeply")
        kind = type(value)
        if value is None or kind in (bool, str):
            return value
        if kind is int:
            return value if abs(value) < 2**53 else {TAG: "int", "v": str(value)}
        if kind is float:
            return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
        if id(value) in self._memo:
            return {TAG: "ref", "r": self._memo[id(value)]}
        return self._composite(value, depth + 1)

    def _remember(self, value: Any) -> int:
        self._memo[id(value)] = ref = len(self._memo)
        self._keep.append(value)
        return ref

    def _items(self, values: Any, depth: int) -> list:
        return [self.encode(v, depth) for v in values]

    def _composite(self, value: Any, depth: int) -> Any:  # noqa: C901, PLR0911, PLR0912
        torch, np = _torch(), _numpy()
        simple = _simple(value)
        if simple is not None:
            return simple
        if isinstance(value, bool | int | float | str) and not _is_np_scalar(value):
            return self.encode(_plain(value), depth)  # subclasses travel as the plain value
        if isinstance(value, bytes | bytearray):
            self._grow(len(value))
            return {TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
        if torch is not None and isinstance(value, torch.Tensor):
            return self._tensor(value)
        if np is not None and isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
            return self._array(value)
        if _is_np_scalar(value):
            return {TAG: "npscalar", "dtype": str(value.dtype), "v": self.encode(value.item())}
        if isinstance(value, tuple) and not (hasattr(value, "_fields") and _allowed(value)):
            return {TAG: "tuple", "v": self._items(value, depth)}
        if isinstance(value, list):
            node = {TAG: "list", "r": self._remember(value)}
            node["v"] = self._items(value, depth)
            return node
        if isinstance(value, dict) and (type(value) in (dict, OrderedDict) or not _allowed(value)):
            node = {TAG: "dict", "r": self._remember(value), "ordered": type(value) is OrderedDict}
            node["v"] = [[self.encode(k, depth), self.encode(v, depth)] for k, v in value.items()]
            return node
        if isinstance(value, set | frozenset):
            return {TAG: type(value).__name__ if type(value) in (set, frozenset) else "set",
                    "v": self._items(value, depth)}  # fmt: skip
        if torch is not None and isinstance(value, torch.nn.Module):
            return self._module(value, depth)
        if isinstance(value, enum.Enum) and _allowed(value):
            return {TAG: "enum", "cls": _path(type(value)), "name": value.name}
        if hasattr(value, "_fields") and isinstance(value, tuple) and _allowed(value):
            return {TAG: "ntuple", "cls": _path(type(value)), "v": self._items(value, depth)}
        if _allowed(value) and hasattr(value, "__dict__") and not isinstance(value, type):
            return self._object(value, depth)
        return self._handle(value)

    def _handle(self, value: Any) -> dict:
        if self.handle is None:
            raise EncodeError(f"a {type(value).__name__} cannot be sent by value")
        return self.handle(value)

    def _grow(self, n: int) -> None:
        self.size += n
        if self.size > self.max_bytes:
            raise EncodeError(f"the value is larger than {self.max_bytes / 2**20:.0f} MB")

    def _blob(self, data: bytes) -> str:
        self._grow(len(data))
        name = f"b{len(self.blobs)}"
        self.blobs[name] = data
        return name

    def _tensor(self, t: Any) -> dict:
        from safetensors.torch import save

        torch = _torch()
        if type(t) not in (torch.Tensor, torch.nn.Parameter) or t.is_sparse or t.is_quantized:
            return self._handle(t)
        self._grow(t.numel() * t.element_size())
        node = {TAG: "tensor", "r": self._remember(t), "grad": bool(t.requires_grad),
                "param": isinstance(t, torch.nn.Parameter)}  # fmt: skip
        node["b"] = self._blob(save({"t": t.detach().cpu().contiguous()}))
        return node

    def _array(self, a: Any) -> dict:
        from safetensors.numpy import save

        self._grow(a.nbytes)
        return {TAG: "ndarray", "r": self._remember(a), "b": self._blob(save({"t": a.copy()}))}

    def _object(self, value: Any, depth: int) -> dict:
        node = {TAG: "obj", "r": self._remember(value), "cls": _path(type(value))}
        node["attrs"] = {str(k): self.encode(v, depth) for k, v in vars(value).items()}
        return node

    def _module(self, m: Any, depth: int) -> dict:
        bad = [type(s) for s in m.modules() if not _allowed(s)]
        if bad:
            return self._handle(m)  # a notebook's own layer inside: the model stays in the kernel
        node: dict[str, Any] = {TAG: "nn", "r": self._remember(m), "cls": _path(type(m))}
        internals = _module_internals()
        node["training"] = bool(m.training)
        node["attrs"] = {k: self.encode(v, depth) for k, v in vars(m).items() if k not in internals}
        node["params"] = {k: self.encode(v, depth) for k, v in m._parameters.items()}
        node["buffers"] = {k: self.encode(v, depth) for k, v in m._buffers.items()}
        node["transient"] = sorted(m._non_persistent_buffers_set)
        node["children"] = {k: self.encode(v, depth) for k, v in m._modules.items()}
        return node


def _simple(value: Any) -> dict | None:
    if value is Ellipsis:
        return {TAG: "ellipsis"}
    if type(value) is complex:
        return {TAG: "complex", "re": repr(value.real), "im": repr(value.imag)}
    if type(value) is range:
        return {TAG: "range", "v": [value.start, value.stop, value.step]}
    if isinstance(value, pathlib.PurePath):
        return {TAG: "path", "v": str(value)}
    torch = _torch()
    if torch is not None:
        if type(value) is torch.Size:
            return {TAG: "size", "v": [int(d) for d in value]}
        if type(value) is torch.dtype:
            return {TAG: "dtype", "v": str(value).removeprefix("torch.")}
        if type(value) is torch.device:
            return {TAG: "device", "v": str(value)}
    return None


def _plain(value: Any) -> Any:
    """The builtin value inside a subclass of bool, int, float or str (no method of it runs)."""
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return {bool: bool, int: int.__int__, float: float.__float__, str: str.__str__}[base](
                value
            )
    raise TypeError(type(value))


def _is_np_scalar(value: Any) -> bool:
    np = _numpy()
    return np is not None and isinstance(value, np.generic) and value.dtype.kind in "biufc"


def _allowed(value: Any) -> bool:
    return allowed_class(type(value))


class Decoder:
    """Turns a tree plus blobs back into values; `remote(node)` builds what stands for a handle."""

    def __init__(self, blobs: dict[str, bytes], remote: Callable[[dict], Any]) -> None:
        self.blobs, self.remote = blobs, remote
        self._memo: dict[int, Any] = {}

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise DecodeError("the value is nested too deeply")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if isinstance(node, list):  # not produced by the encoder; accepted as a plain list
            return [self.decode(v, depth + 1) for v in node]
        if not isinstance(node, dict) or not isinstance(node.get(TAG), str):
            raise DecodeError("malformed value")
        method = getattr(self, "_" + node[TAG], None)
        if method is None or node[TAG] not in KINDS:
            raise DecodeError(f"unknown kind of value {node[TAG][:40]!r}")
        try:
            return method(node, depth + 1)
        except (DecodeError, RecursionError):
            raise
        except Exception as err:  # noqa: BLE001 - any malformed node is a DecodeError
            raise DecodeError(f"malformed {node[TAG]} ({type(err).__name__})") from None

    def _items(self, node: dict, depth: int) -> list:
        values = node["v"]
        if not isinstance(values, list):
            raise DecodeError("malformed value")
        return [self.decode(v, depth) for v in values]

    def _keep(self, node: dict, value: Any) -> Any:
        ref = node["r"]
        if type(ref) is not int or ref in self._memo:
            raise DecodeError("malformed reference")
        self._memo[ref] = value
        return value

    def _ref(self, node: dict, depth: int) -> Any:
        if node["r"] not in self._memo:
            raise DecodeError("a reference to nothing")
        return self._memo[node["r"]]

    def _int(self, node: dict, depth: int) -> int:
        return int(str(node["v"])[:5000])

    def _float(self, node: dict, depth: int) -> float:
        return float(str(node["v"])[:50])

    def _ellipsis(self, node: dict, depth: int) -> Any:
        return ...

    def _complex(self, node: dict, depth: int) -> complex:
        return complex(float(node["re"]), float(node["im"]))

    def _range(self, node: dict, depth: int) -> range:
        start, stop, step = (int(v) for v in node["v"])
        return range(start, stop, step)

    def _path(self, node: dict, depth: int) -> pathlib.PurePosixPath:
        return pathlib.PurePosixPath(str(node["v"]))  # a path in the kernel's sandbox

    def _bytes(self, node: dict, depth: int) -> bytes:
        return base64.b64decode(str(node["v"]), validate=True)

    def _tuple(self, node: dict, depth: int) -> tuple:
        return tuple(self._items(node, depth))

    def _list(self, node: dict, depth: int) -> list:
        out = self._keep(node, [])
        out.extend(self._items(node, depth))
        return out

    def _dict(self, node: dict, depth: int) -> dict:
        out = self._keep(node, OrderedDict() if node.get("ordered") is True else {})
        for pair in node["v"]:
            key, value = pair
            out[self.decode(key, depth)] = self.decode(value, depth)
        return out

    def _set(self, node: dict, depth: int) -> set:
        return set(self._items(node, depth))

    def _frozenset(self, node: dict, depth: int) -> frozenset:
        return frozenset(self._items(node, depth))

    def _npscalar(self, node: dict, depth: int) -> Any:
        import numpy as np

        dtype = np.dtype(str(node["dtype"]))
        if dtype.kind not in "biufc":
            raise DecodeError("not a numeric numpy scalar")
        return dtype.type(self.decode(node["v"], depth))

    def _size(self, node: dict, depth: int) -> Any:
        import torch

        return torch.Size(int(d) for d in node["v"])

    def _dtype(self, node: dict, depth: int) -> Any:
        import torch

        value = getattr(torch, str(node["v"]))
        if not isinstance(value, torch.dtype):
            raise DecodeError("not a torch dtype")
        return value

    def _device(self, node: dict, depth: int) -> Any:
        import torch

        return torch.device(str(node["v"]))

    def _blob(self, node: dict) -> bytes:
        name = node["b"]
        if not isinstance(name, str) or name not in self.blobs:
            raise DecodeError("a tensor without its data")
        return self.blobs[name]

    def _tensor(self, node: dict, depth: int) -> Any:
        import torch
        from safetensors.torch import load

        t = load(self._blob(node))["t"]
        grad = node.get("grad") is True and (t.is_floating_point() or t.is_complex())
        t = (
            torch.nn.Parameter(t, requires_grad=grad)
            if node.get("param")
            else t.requires_grad_(grad)
        )
        return self._keep(node, t)

    def _ndarray(self, node: dict, depth: int) -> Any:
        from safetensors.numpy import load

        return self._keep(node, load(self._blob(node))["t"])

    def _class(self, node: dict) -> type:
        module, _, qualname = str(node["cls"]).partition(":")
        if not module or not qualname:
            raise DecodeError("malformed class name")
        probe = type("probe", (), {"__module__": module, "__qualname__": qualname})
        if not allowed_class(probe):
            raise DecodeError(f"objects of {module}.{qualname} are not accepted by value")
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not isinstance(cls, type) or _path(cls) != f"{module}:{qualname}":
            raise DecodeError(f"{module}.{qualname} is not a class")
        return cls

    def _new(self, cls: type) -> Any:
        if cls.__new__ is not object.__new__:
            raise DecodeError(f"{cls.__qualname__} cannot be rebuilt from its attributes")
        return object.__new__(cls)

    def _obj(self, node: dict, depth: int) -> Any:
        cls = self._class(node)
        if dataclasses.is_dataclass(cls) and getattr(cls, "__slots__", None):
            raise DecodeError(f"{cls.__qualname__} has slots")
        obj = self._keep(node, self._new(cls))
        attrs = {str(k): self.decode(v, depth) for k, v in node["attrs"].items()}
        obj.__dict__.update(attrs)
        return obj

    def _ntuple(self, node: dict, depth: int) -> Any:
        cls = self._class(node)
        if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise DecodeError("not a named tuple")
        return tuple.__new__(cls, self._items(node, depth))

    def _enum(self, node: dict, depth: int) -> Any:
        cls = self._class(node)
        if not issubclass(cls, enum.Enum):
            raise DecodeError("not an enum")
        return cls[str(node["name"])]

    def _nn(self, node: dict, depth: int) -> Any:
        import torch

        cls = self._class(node)
        if not issubclass(cls, torch.nn.Module):
            raise DecodeError("not a torch module")
        m = self._keep(node, self._new(cls))
        torch.nn.Module.__init__(m)
        m.__dict__.update({str(k): self.decode(v, depth) for k, v in node["attrs"].items()})
        m.training = node["training"] is True
        for key, value in node["params"].items():
            p = self.decode(value, depth)
            if p is not None and not isinstance(p, torch.nn.Parameter):
                raise DecodeError("a parameter that is not a tensor")
            m._parameters[str(key)] = p
        for key, value in node["buffers"].items():
            b = self.decode(value, depth)
            if b is not None and not isinstance(b, torch.Tensor):
                raise DecodeError("a buffer that is not a tensor")
            m._buffers[str(key)] = b
        m._non_persistent_buffers_set = {str(k) for k in node["transient"]}
        for key, value in node["children"].items():
            child = self.decode(value, depth)
            if child is not None and not isinstance(child, torch.nn.Module):
                raise DecodeError("a submodule that is not a torch module")
            m._modules[str(key)] = child
        return m

    def _handle(self, node: dict, depth: int) -> Any:
        if type(node.get("id")) is not int:
            raise DecodeError("malformed handle")
        return self.remote(node)


KINDS = frozenset(
    name[1:] for name in vars(Decoder) if name.startswith("_") and not name.startswith("__")
) - {"items", "keep", "blob", "class", "new"}
