"""Your own instruction data: a JSONL file of prompts and answers, checked line by line.

Each line of the file is one JSON object, in one of two shapes:

    {"prompt": "Summarise: ...", "response": "...", "system": "optional system message"}
    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "the answer to learn"}]}

(with `messages`, the last turn is the assistant's: the answer the model learns; the turns before
it are the prompt). Blank lines are allowed. Anything else is an error that names the line and
says what is wrong: not UTF-8, not JSON, not an object, a missing or non-text field, an empty
answer. Nothing is skipped silently. Examples longer than the model's context are refused when
they are tokenized (`sft.encode_example`, with the line number). `coursekit finetune` reads
instruction data with `read_instructions`. Lesson 08.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..finetune.userdata import DataError

__all__ = ["InstructionData", "is_instruction_file", "read_instructions", "read_prompts"]

ROLES = ("system", "user", "assistant")
SHAPES = (
    'each line must be a JSON object with "prompt" and "response" (text; "system" optional), '
    'or "messages": a list of {"role", "content"} turns ending with the assistant\'s answer'
)


@dataclass(frozen=True)
class InstructionData:
    """Conversations (prompt turns) and the answers to learn, with the line each came from."""

    path: Path
    prompts: list[list[dict[str, str]]]
    responses: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.responses)

    def pairs(self) -> list[tuple[list[dict[str, str]], str]]:
        return list(zip(self.prompts, self.responses, strict=True))


def _text(value: Any, field: str, where: str) -> str:
    if not isinstance(value, str):
        raise DataError(f'{where}: "{field}" must be text, got {type(value).__name__}. {SHAPES}.')
    return value


def _from_messages(turns: Any, where: str) -> tuple[list[dict[str, str]], str]:
    if not isinstance(turns, list) or len(turns) < 2:
        raise DataError(f'{where}: "messages" must be a list of at least two turns. {SHAPES}.')
    clean = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise DataError(f'{where}: turn {i} of "messages" needs "role" and "content".')
        role = _text(turn["role"], "role", where)
        if role not in ROLES:
            raise DataError(f"{where}: turn {i} has role {role!r}; roles are {', '.join(ROLES)}.")
        clean.append({"role": role, "content": _text(turn["content"], "content", where)})
    if clean[-1]["role"] != "assistant":
        raise DataError(
            f'{where}: the last turn of "messages" is the {clean[-1]["role"]}\'s; it must be the '
            "assistant's answer, the text the model learns to write."
        )
    return clean[:-1], clean[-1]["content"]


def _record(obj: Any, where: str) -> tuple[list[dict[str, str]], str]:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: a JSON {type(obj).__name__}, not an object. {SHAPES}.")
    if "messages" in obj:
        prompt, response = _from_messages(obj["messages"], where)
    else:
        missing = [f for f in ("prompt", "response") if f not in obj]
        if missing:
            raise DataError(
                f"{where}: no {' or '.join(repr(f) for f in missing)} field (it has "
                f"{sorted(obj)}). {SHAPES}."
            )
        prompt = [{"role": "user", "content": _text(obj["prompt"], "prompt", where)}]
        if "system" in obj:
            prompt.insert(0, {"role": "system", "content": _text(obj["system"], "system", where)})
        response = _text(obj["response"], "response", where)
    if not response.strip():
        raise DataError(f"{where}: the answer is empty; there is nothing to learn from it.")
    return prompt, response


def _objects(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for every non-blank line; a clear error for the first bad one."""
    if not path.is_file():
        raise FileNotFoundError(f"no instruction file at {path}")
    found = []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        where = f"{path.name}, line {number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1})."
                " Save the file as UTF-8."
            ) from None
        if not text.strip():
            continue
        try:
            found.append((number, json.loads(text)))
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not valid JSON ({err.msg} at column {err.colno}).") from None
    if not found:
        raise DataError(f"{path.name}: no examples (the file is empty). {SHAPES}.")
    return found


def read_instructions(path: str | Path) -> InstructionData:
    """Read and check a JSONL instruction file; every problem names its line."""
    path = Path(path)
    prompts, responses, lines = [], [], []
    for number, obj in _objects(path):
        prompt, response = _record(obj, f"{path.name}, line {number}")
        prompts.append(prompt)
        responses.append(response)
        lines.append(number)
    return InstructionData(path, prompts, responses, lines)


def read_prompts(path: str | Path) -> list[list[dict[str, str]]]:
    """Prompts to answer (`coursekit predict`): the same JSONL shapes without the answer
    ("prompt" alone, or "messages" ending with the user's turn); a .txt file: one per line."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        lines = path.read_text("utf-8").splitlines()
        return [[{"role": "user", "content": line}] for line in lines if line.strip()]
    prompts = []
    for number, obj in _objects(path):
        where = f"{path.name}, line {number}"
        if isinstance(obj, dict) and "messages" in obj:
            turns = obj["messages"]
            if isinstance(turns, list) and turns and isinstance(turns[-1], dict):
                if turns[-1].get("role") != "assistant":  # a prompt: add a stand-in answer
                    turns = [*turns, {"role": "assistant", "content": "-"}]
            obj = {"messages": turns}
        elif isinstance(obj, dict):
            obj = {"response": "-", **obj}
        prompts.append(_record(obj, where)[0])
    return prompts


def is_instruction_file(path: str | Path, look: int = 20) -> bool:
    """True for a .jsonl file in which one of the first `look` records has "messages" or
    "prompt" (instruction data; `read_instructions` then checks every line), False for anything
    else (e.g. lesson 07's tables of texts and labels)."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with open(path, "rb") as f:
        for _, raw in zip(range(look), f, strict=False):
            try:
                obj = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8: read_instructions will say which
                continue
            if isinstance(obj, dict) and ("messages" in obj or "prompt" in obj):
                return True
    return False
