"""The checking process: where verdicts come from. It never runs a submission's code.

`python -m coursekit.teach.checker` runs in a sandbox of its own (`teach.sandbox`), started
by the grader for each submission, and talks to the grader only through frames on its stdin and
stdout (a length, a JSON header, then binary blobs). It receives the course's self-checks (the
package's, plus a course's own checks module), the lesson's imports, and for each question the
check code (visible part, then hidden tests) with the values the student's kernel handed over.
It decodes them (`teach.codec`: data only, classes from a short list), runs the check code on
them with the grader's own `coursekit`, and says how it went.

What the kernel keeps (the student's functions, objects that do not travel by value) arrives as
a `Remote`: using one (calling it, reading an attribute ...) sends a request to the grader, which
has the kernel do it with the arguments this process chose, under its own time limit, and the
result comes back by value. So a student's function is tested on the hidden inputs, and all it
can influence is what it returns.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import os
import sys
import traceback
import types
from typing import Any, BinaryIO

__all__ = ["Remote", "RemoteError", "main"]


# In a kernel or checking process: loaded by path before this file (`teach.kernel.standalone`),
# no coursekit import, no torch. Imported as part of the package: the package's own modules.
codec = sys.modules.get("_coursekit_codec") or importlib.import_module("coursekit.teach.codec")
frames = sys.modules.get("_coursekit_frames") or importlib.import_module("coursekit.teach.frames")


class RemoteError(Exception):
    """The student's code raised while the kernel did what a check asked for."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind, self.message = kind, message
        super().__init__(f"{kind}: {message}" if message else kind)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind


_KINDS: dict[str, type] = {}


def remote_error(kind: str, message: str) -> RemoteError:
    """The error, also an instance of the builtin exception it names (`AttributeError` ...),
    so `hasattr`, `except KeyError` and `functools.wraps` work on what stays in the kernel."""
    builtin = getattr(builtins, kind, None)
    if not (isinstance(builtin, type) and issubclass(builtin, Exception)) or kind == "Exception":
        return RemoteError(kind, message)
    if kind not in _KINDS:
        _KINDS[kind] = type(f"Remote{kind}", (RemoteError, builtin), {})
    return _KINDS[kind](kind, message)


class _Channel:
    """The checker's side of the frames: requests for the kernel, answered by value."""

    def __init__(self, inp: BinaryIO, out: BinaryIO) -> None:
        self.inp, self.out = inp, out

    def request(self, op: str, target: int, args: tuple = (), kwargs: dict | None = None) -> Any:
        encoder = codec.Encoder(handle=_handle_of)
        header = {"type": "request", "op": op, "id": target, "args": encoder.encode(tuple(args)),
                  "kwargs": encoder.encode(dict(kwargs or {}))}  # fmt: skip
        frames.write_frame(self.out, header, encoder.blobs)
        reply, blobs = frames.read_frame(self.inp)
        if "error" in reply:
            error = reply["error"]
            if error.get("type") == "StopIteration":
                raise StopIteration
            raise remote_error(str(error.get("type", "Error")), str(error.get("message", "")))
        return codec.Decoder(blobs, _remote).decode(reply["value"])


CHANNEL: _Channel | None = None


def _handle_of(value: Any) -> dict:
    if isinstance(value, Remote):
        return {"$": "handle", "id": object.__getattribute__(value, "_id")}
    raise TypeError(f"a {type(value).__name__} cannot be passed to the student's code")


class Remote:
    """Something that stays in the student's kernel; every use is a request for the kernel."""

    __slots__ = ("_id", "_type")

    def __init__(self, number: int, kind: str) -> None:
        object.__setattr__(self, "_id", number)
        object.__setattr__(self, "_type", kind)

    def _ask(self, op: str, *args: Any, **kwargs: Any) -> Any:
        return CHANNEL.request(op, object.__getattribute__(self, "_id"), args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return self._ask("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name, value)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ask("setitem", key, value)

    def __len__(self) -> int:
        return int(self._ask("len"))

    def __iter__(self) -> Any:
        return self._ask("iter")

    def __next__(self) -> Any:
        return self._ask("next")

    def __bool__(self) -> bool:
        return bool(self._ask("bool"))

    def __contains__(self, item: Any) -> bool:
        return bool(self._ask("contains", item))

    def __str__(self) -> str:
        return str(self._ask("str"))

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_type')} in the student's kernel>"


class RemoteFunction(Remote):
    """A callable that stays in the kernel (a student's function): calling it is a request."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", *args, **kwargs)


def _remote(node: dict) -> Remote:
    cls = RemoteFunction if node.get("call") is True else Remote
    return cls(node["id"], str(node.get("type", "object"))[:80])


class _State:
    """The namespace the check code runs in, and each question's values."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"__name__": "__checks__"}
        self.values: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, dict[str, Any]] = {}
        self.trusted: set[str] = set()

    def init(self, header: dict) -> None:
        os.environ["COURSEKIT_CHECKS"] = "strict"
        for name, source in header.get("modules", {}).items():
            module = types.ModuleType(name)
            module.__file__ = f"<{name}.py>"
            sys.modules[name] = module
            exec(compile(source, f"<{name}.py>", "exec"), module.__dict__)  # noqa: S102
        for statement in header.get("imports", []):
            with contextlib.suppress(Exception):
                exec(statement, self.ns)  # noqa: S102 - the instructor's own imports
        for code in header.get("defines", []):
            exec(compile(code, "<checks defined in the lesson>", "exec"), self.ns)  # noqa: S102
        self.trusted = set(self.ns)  # what no value from the kernel may replace

    def run(self, header: dict, blobs: dict[str, bytes]) -> dict:
        qid = header["qid"]
        if "values" in header:
            decoder = codec.Decoder(blobs, _remote)
            values: dict[str, Any] = {}
            self.errors[qid] = dict(header.get("errors", {}))
            for name, tree in header["values"].items():
                if name in self.trusted or name.startswith("__"):
                    continue
                try:
                    values[name] = decoder.decode(tree)
                except (codec.DecodeError, RecursionError) as err:
                    self.errors[qid][name] = {"type": "DecodeError", "message": str(err)[:300]}
            self.values[qid] = values
        self.ns.update(self.values.get(qid, {}))
        for name in header.get("assigned", []):  # no stale value from another question
            if name not in self.values.get(qid, {}):
                self.ns.pop(name, None)
        out = io.StringIO()
        result = {"type": "done", "qid": qid, "part": header["part"], "status": "ok"}
        try:
            code = compile(header["code"], f"<{qid} {header['part']}>", "exec")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                exec(code, self.ns)  # noqa: S102 - the instructor's check code
        except BaseException as err:  # noqa: BLE001 - every way a check can end is reported
            result.update(_outcome(err, self.errors.get(qid, {})))
            lines = header["code"].splitlines()
            if result["status"] == "failed" and not result["message"] and result.get("line"):
                shown = lines[result["line"] - 1].strip() if result["line"] <= len(lines) else ""
                result["message"] = f"the check `{shown}` failed" if shown else "a check failed"
        for name in header.get("assigned", []):  # visible code's own names, for the hidden part
            if name in self.ns:
                self.values.setdefault(qid, {})[name] = self.ns[name]
        result["stdout"] = out.getvalue()[-20000:]
        return result


def _outcome(err: BaseException, export_errors: dict) -> dict:
    """How a check ended: its status, a message for the learner, details for the instructor."""
    kind = type(err).__name__
    trace = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:])
    line = _check_line(err)
    if kind == "NotAnswered":
        return {"status": "unanswered", "message": str(err), "detail": trace}
    if kind == "Wrong" or any(c.__name__ == "Wrong" for c in type(err).__mro__):
        return {"status": "failed", "message": str(err), "detail": trace}
    if isinstance(err, RemoteError):
        return {"status": "error", "remote": err.kind, "message": str(err)[:1000],
                "detail": trace, "line": line}  # fmt: skip
    if isinstance(err, AssertionError):
        return {"status": "failed", "message": str(err)[:1000], "detail": trace, "line": line}
    if isinstance(err, NameError) and getattr(err, "name", None) in export_errors:
        failed = export_errors[err.name]
        message = f"`{err.name}` could not be handed over ({failed.get('type')}: "
        message += f"{failed.get('message', '')})"
        return {"status": "error", "message": message[:1000], "detail": trace}
    return {"status": "error", "message": f"{kind}: {err}"[:1000], "detail": trace, "line": line}


def _check_line(err: BaseException) -> int | None:
    """The line of the check code where `err` surfaced (the innermost frame in that code)."""
    tb, line = err.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<") and " " in tb.tb_frame.f_code.co_filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def main() -> None:
    global CHANNEL
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing else may write into the frames
    inp = sys.stdin.buffer
    CHANNEL = _Channel(inp, out)
    state = _State()
    while True:
        try:
            header, blobs = frames.read_frame(inp)
        except EOFError:
            return
        if header["type"] == "init":
            try:
                state.init(header)
                frames.write_frame(out, {"type": "ready"})
            except BaseException as err:  # noqa: BLE001
                message = f"{type(err).__name__}: {err}"
                frames.write_frame(out, {"type": "failed", "message": message})
                return
        elif header["type"] == "run":
            frames.write_frame(out, state.run(header, blobs))
        else:
            return


if __name__ == "__main__":
    main()
