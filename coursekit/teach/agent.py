"""The grader's agent inside a student's kernel: hands values over and runs calls, nothing more.

The grader imports this module in every submission's kernel and calls it through IPython's
`user_expressions` (never as a cell, so it is in no input history). It does two things:

- `export(request)`: the values of the names a check reads, by value (`teach.codec`), tensors
  and arrays as safetensors files in the sandbox's hand-over folder;
- `op(request)`: one operation on an object the kernel keeps for the checker (a handle): call it
  with the checker's arguments, read an attribute or an item, iterate, ... and the result by value.

Nothing here decides anything: the submission's code shares this process and can change what
this module returns, which is why the checking process treats every value as the student's
own and judges it itself. Errors are returned, never raised, so the grader can say what failed.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys
from typing import Any

# In a kernel or checking process: loaded by path before this file (`teach.kernel.standalone`),
# no coursekit import, no torch. Imported as part of the package: the package's own modules.
codec = sys.modules.get("_coursekit_codec") or importlib.import_module("coursekit.teach.codec")

__all__ = ["export", "op"]

_handles: dict[int, Any] = {}
_numbers: dict[int, int] = {}  # id(obj) -> handle number

OPS = {
    "call": lambda t, a, k: t(*a, **k),
    "getattr": lambda t, a, k: getattr(t, a[0]),
    "setattr": lambda t, a, k: setattr(t, a[0], a[1]),
    "getitem": lambda t, a, k: t[a[0]],
    "setitem": lambda t, a, k: t.__setitem__(a[0], a[1]),
    "len": lambda t, a, k: len(t),
    "iter": lambda t, a, k: iter(t),
    "next": lambda t, a, k: next(t),
    "bool": lambda t, a, k: bool(t),
    "str": lambda t, a, k: str(t),
    "repr": lambda t, a, k: repr(t),
    "contains": lambda t, a, k: a[0] in t,
}


def _handle(value: Any) -> dict:
    number = _numbers.get(id(value))
    if number is None or _handles.get(number) is not value:
        number = len(_handles) + 1
        _handles[number], _numbers[id(value)] = value, number
    kind = getattr(type(value), "__qualname__", "object")
    return {"$": "handle", "id": number, "call": callable(value), "type": str(kind)[:80]}


def _resolve(node: dict) -> Any:
    return _handles[node["id"]]


def _reply(request: dict, encoder: Any, body: dict) -> str:
    sizes = {}
    for name, data in encoder.blobs.items():
        path = os.path.join(request["dir"], f"{request['tag']}-{name}")
        with open(path, "wb") as f:
            f.write(data)
        sizes[name] = len(data)
    return json.dumps({**body, "blobs": sizes}, ensure_ascii=True)


def _error(err: BaseException) -> dict:
    return {"type": type(err).__name__[:80], "message": str(err)[:2000]}


def export(request: str) -> str:
    """The values of `request["names"]` that the notebook defines, by value, as JSON."""
    from IPython import get_ipython

    req = json.loads(request)
    namespace = get_ipython().user_ns
    encoder = codec.Encoder(_handle, int(req["max_bytes"]))
    values, errors = {}, {}
    for name in req["names"]:
        if name not in namespace:
            continue
        try:
            values[name] = encoder.encode(namespace[name])
        except Exception as err:  # noqa: BLE001 - reported per name to the checker
            errors[name] = _error(err)
    return _reply(req, encoder, {"values": values, "errors": errors})


def op(request: str) -> str:
    """Apply one operation to a kept object with the checker's arguments; the result as JSON."""
    req = json.loads(request)
    blobs = {k: base64.b64decode(v) for k, v in req.get("blobs", {}).items()}
    encoder = codec.Encoder(_handle, int(req["max_bytes"]))
    try:
        decoder = codec.Decoder(blobs, _resolve)
        target = _handles[req["id"]]
        args, kwargs = decoder.decode(req["args"]), decoder.decode(req["kwargs"])
        result = OPS[req["op"]](target, list(args), dict(kwargs))
    except BaseException as err:  # noqa: BLE001 - KeyboardInterrupt (a timeout) included
        return _reply(req, encoder, {"error": _error(err)})
    try:
        value = encoder.encode(result)
    except Exception as err:  # noqa: BLE001
        return _reply(req, codec.Encoder(), {"error": _error(err)})
    return _reply(req, encoder, {"value": value})
