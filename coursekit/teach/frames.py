"""Frames: how the grader and its checking process talk over a pipe (`teach.checking`).

A frame is an 8-byte length, a JSON header (which lists the sizes of the blobs), then the blobs:
the safetensors files of the values it carries (`teach.codec`). The checking process loads this
file by path, like `teach.codec`, so it starts without importing coursekit (and torch).
"""

from __future__ import annotations

import json
import struct
from typing import BinaryIO

__all__ = ["read_frame", "write_frame"]

MAX_HEADER = 256 * 2**20


def write_frame(out: BinaryIO, header: dict, blobs: dict[str, bytes] | None = None) -> None:
    """One frame: 8-byte header length, the JSON header (with blob sizes), then the blobs."""
    blobs = blobs or {}
    head = json.dumps({**header, "blob_sizes": {k: len(v) for k, v in blobs.items()}}).encode()
    out.write(struct.pack(">Q", len(head)) + head)
    for data in blobs.values():
        out.write(data)
    out.flush()


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = inp.read(left)
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(inp: BinaryIO, max_bytes: int = 2**31) -> tuple[dict, dict[str, bytes]]:
    (size,) = struct.unpack(">Q", _read_exact(inp, 8))
    if size > MAX_HEADER:
        raise ValueError("frame header too large")
    header = json.loads(_read_exact(inp, size))
    sizes = header.pop("blob_sizes")
    if sum(sizes.values()) > max_bytes:
        raise ValueError("frame too large")
    return header, {k: _read_exact(inp, int(v)) for k, v in sizes.items()}
