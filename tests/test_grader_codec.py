"""The by-value format answers travel in (teach.codec): data only, classes from a short list."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch

from coursekit.teach.codec import DecodeError, Decoder, EncodeError, Encoder


def round_trip(value, handles=None):
    kept = []

    def handle(v):
        kept.append(v)
        return {"$": "handle", "id": len(kept), "call": callable(v), "type": type(v).__name__}

    encoder = Encoder(handle)
    tree = json.loads(json.dumps(encoder.encode(value)))  # it is JSON, nothing else
    return Decoder(encoder.blobs, lambda node: ("remote", node["id"])).decode(tree), kept


def test_values_come_back_equal_and_of_the_same_types():
    shared = [1, 2]
    value = {
        "ints": (1, -(2**70), True, None),
        "floats": [0.5, float("inf"), float("nan")],
        "text": "π \udcff",
        ("tuple", "key"): {3, 4},
        "bytes": b"\x00\xff",
        "more": [..., range(1, 9, 2), PurePosixPath("/tmp/work/x"), 1 + 2j],
        "numpy": (np.arange(6, dtype=np.int16).reshape(2, 3), np.float64(0.25)),
        "torch": (torch.Size([2, 3]), torch.float16, torch.device("cpu")),
        "shared": (shared, shared),
        "ordered": OrderedDict(b=1, a=2),
    }
    out, _ = round_trip(value)
    assert out["ints"] == (1, -(2**70), True, None) and type(out["ints"][2]) is bool
    assert out["floats"][:2] == [0.5, float("inf")] and out["floats"][2] != out["floats"][2]
    assert out["text"] == "π \udcff" and out[("tuple", "key")] == {3, 4}
    assert out["bytes"] == b"\x00\xff" and out["more"][0] is ...
    assert out["more"][1:] == [range(1, 9, 2), PurePosixPath("/tmp/work/x"), 1 + 2j]
    assert out["numpy"][0].dtype == np.int16 and out["numpy"][0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert type(out["numpy"][1]) is np.float64
    assert out["torch"] == (torch.Size([2, 3]), torch.float16, torch.device("cpu"))
    assert out["shared"][0] is out["shared"][1], "a shared list stays shared"
    assert type(out["ordered"]) is OrderedDict and list(out["ordered"]) == ["b", "a"]


def test_a_model_travels_as_its_weights_and_stays_a_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU())
    model[0].weight.requires_grad_(False)
    model.eval()
    out, handles = round_trip(model)
    assert type(out) is torch.nn.Sequential and not handles
    assert not out.training and out[0].weight.requires_grad is False
    x = torch.randn(5, 4)
    assert torch.equal(out(x), model(x)), "the same function, computed in the checking process"
    assert sum(p.numel() for p in out.parameters()) == sum(p.numel() for p in model.parameters())


class Anything(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class Layer(torch.nn.Module):  # a notebook's own class: the model stays in the kernel
    def forward(self, x):
        return x


def test_what_is_not_data_stays_behind_as_a_handle():
    out, handles = round_trip({"eq": Anything(0), "f": len, "m": torch.nn.Sequential(Layer())})
    assert type(out["eq"]) is int and out["eq"] == 0 and not out["eq"] == 6
    assert out["f"] == ("remote", 1) and out["m"] == ("remote", 2) and handles[0] is len


@pytest.mark.parametrize(
    "node",
    [
        {"$": "obj", "cls": "__main__:Anything", "attrs": {}},
        {"$": "obj", "cls": "os:system", "attrs": {}},
        {"$": "obj", "cls": "coursekit.teach.grade:Limits", "attrs": {}},
        {"$": "nn", "cls": "torch.nn.modules.linear:Linear", "attrs": {}, "training": True,
         "params": {"weight": "not a tensor"}, "buffers": {}, "transient": [], "children": {}},
        {"$": "pickle", "v": "gASV"},
        {"$": "ref", "r": 7},
    ],
)  # fmt: skip
def test_anything_else_is_refused(node):
    with pytest.raises(DecodeError):
        Decoder({}, lambda n: n).decode(node)


def test_too_large_values_are_refused_while_encoding():
    with pytest.raises(EncodeError, match="larger than"):
        Encoder(max_bytes=1000).encode(torch.zeros(1000))
