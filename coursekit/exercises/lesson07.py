"""Self-checks for lesson 07 (your own data): an interval by hand, the exported model without
coursekit, and your own folder or table loaded and split."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..claims import interval
from ..finetune import Predictor, UserData
from .core import Wrong, close, expect_number, expect_type, question


@question("07.q1")
def _q1(answer: Any, *, correct: int, n: int) -> str:
    expect_type(answer, (tuple, list), "accuracy_interval", "store a pair: (low, high).")
    if len(answer) != 2:
        raise Wrong(f"`accuracy_interval` has {len(answer)} values.", "store (low, high).")
    low = expect_number(answer[0], "low", 0.0, 1.0)
    high = expect_number(answer[1], "high", 0.0, 1.0)
    want_low, want_high = interval(correct / n, n)
    p, z = correct / n, 1.96
    wald = z * math.sqrt(p * (1 - p) / n)
    if low > high:
        raise Wrong("low is above high.", "put the smaller end first.")
    if close(low, max(0.0, p - wald), rel=1e-3) and close(high, min(1.0, p + wald), rel=1e-3):
        raise Wrong(
            "that is the normal-approximation (Wald) interval, p +/- 1.96 sqrt(p(1-p)/n).",
            "Wilson's interval is centred at (p + z^2/2n) / (1 + z^2/n), not at p.",
        )
    if not (close(low, want_low, rel=1e-3) and close(high, want_high, rel=1e-3)):
        raise Wrong(
            f"({low:.4f}, {high:.4f}) is not Wilson's 95% interval for {correct}/{n}.",
            "use z = 1.96, the centre (p + z^2/2n) / (1 + z^2/n) and the half-width "
            "z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).",
        )
    return (
        f"{correct}/{n} correct: the accuracy is {p:.3f}, and anywhere from {low:.3f} to "
        f"{high:.3f} is plausible."
    )


@question("07.q2")
def _q2(answer: Callable[[Sequence[str]], list[str]], *, out_dir: Any, files: Sequence) -> str:
    if not callable(answer):
        raise Wrong("`onnx_labels` is not a function.", "define it with def onnx_labels(files):")
    want = [r["label"] for r in Predictor(out_dir).predict(list(files))]
    got = answer(list(files))
    expect_type(got, (list, tuple), "onnx_labels(files)", "return a list of class names.")
    if len(got) != len(want):
        raise Wrong(f"{len(got)} labels for {len(want)} files.", "one label per file.")
    if all(isinstance(g, int) for g in got):
        raise Wrong("those are class numbers.", "look the names up in run.json's 'classes'.")
    wrong = [str(f) for f, g, w in zip(files, got, want, strict=True) if g != w]
    if wrong:
        raise Wrong(
            f"{len(wrong)} of {len(want)} labels differ from the exported model's, e.g. for "
            f"{Path(wrong[0]).name}.",
            "RGB, centre square resized to image_size, pixels / 255 as float32, laid out "
            "N x 3 x H x W; the normalisation is inside the ONNX graph.",
        )
    return f"all {len(want)} labels match, with nothing but PIL, numpy and onnxruntime."


@question("07.q3")
def _q3(answer: Any, **_: Any) -> str:
    expect_type(answer, UserData, "my_data", "assign the result of load_data(...) to my_data.")
    if answer.num_classes < 2:
        raise Wrong("a classifier needs at least two classes.", "check the label column.")
    empty = [k for k, v in answer.splits.items() if len(v) == 0]
    if empty or set(answer.splits) != {"train", "val", "test"}:
        raise Wrong("the data is not split into train, val and test.", "use load_data(...).")
    sizes = ", ".join(f"{k} {len(v)}" for k, v in answer.splits.items())
    return (
        f"{len(answer.items)} {answer.kind} examples in {answer.num_classes} classes ({sizes}); "
        f"{len(answer.skipped)} skipped, each listed in my_data.skipped."
    )
