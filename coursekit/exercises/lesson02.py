"""Self-checks for lesson 02 (transfer learning)."""

from __future__ import annotations

import torch

from .core import Wrong, close, expect_number, expect_type, question


def _centroid_accuracies(train_f, train_y, test_f, test_y) -> list[float]:
    """Nearest class mean on unit-length features, with the means as they are or re-normalised."""
    unit = torch.nn.functional.normalize
    train_f, test_f = unit(train_f, dim=1), unit(test_f, dim=1)
    classes = sorted(set(train_y.tolist()))
    means = torch.stack([train_f[train_y == c].mean(0) for c in classes])
    return [
        (torch.tensor(classes)[(test_f @ m.T).argmax(1)] == test_y).float().mean().item()
        for m in (means, unit(means, dim=1))
    ]


@question("02.q1")
def _centroids(
    answer, *, train_features, train_labels, test_features, test_labels, baseline
) -> str:
    value = expect_number(answer, "centroid_accuracy", 0.0, 1.0)
    expected = _centroid_accuracies(train_features, train_labels, test_features, test_labels)
    if any(abs(value - e) <= 1.5 / len(test_labels) for e in expected):
        return (
            f"{value:.3f} without a single gradient step, vs {baseline:.3f} for the "
            "from-scratch network trained on the same images"
        )
    if value <= 0.2:
        raise Wrong(
            f"{value:.3f} is close to chance (0.1).",
            "average the features of each class over the few training images only, "
            "then compare every test feature with every class mean.",
        )
    raise Wrong(
        f"{value:.3f} is not what the nearest class mean gives on these features.",
        "L2-normalise the features (torch.nn.functional.normalize) before averaging and "
        "before comparing, and use cosine similarity (a dot product of unit vectors).",
    )


@question("02.q2")
def _stale_cache(answer, *, source, reference) -> str:
    expect_type(answer, torch.Tensor, "small_features")
    if tuple(answer.shape) != (32, 1280):
        raise Wrong(
            f"`small_features` has shape {tuple(answer.shape)}, expected (32, 1280).",
            "extract features for the first 32 pool images only.",
        )
    if source != "computed":
        raise Wrong(
            f"last_extraction() says the features came from the {source!r}.",
            "pass the smaller image size to extract_image_features, so the cache key changes.",
        )
    if torch.allclose(answer, reference):
        raise Wrong("the features equal the full-size ones.", "use cfg.image_size // 2 pixels.")
    return "a different image size gives a new cache key, so the features were computed afresh"


def _expect_ratio(value: float, want: float, name: str, what: str, hint: str) -> None:
    if close(value, 1 / want, rel=1e-3):
        raise Wrong(f"`{name}` is upside down.", "divide the from-scratch figure by the other.")
    if not close(value, want, rel=1e-3):
        raise Wrong(f"{name} {value:,.2f} is not the ratio of {what}.", hint)


@question("02.q3")
def _cheaper(answer, *, pre, scratch) -> str:
    expect_type(answer, tuple, "(param_ratio, speedup)")
    ratio = expect_number(answer[0], "param_ratio", 0.0)
    speedup = expect_number(answer[1], "speedup", 0.0)
    _expect_ratio(
        ratio,
        scratch["trainable_params"] / pre["trainable_params"],
        "param_ratio",
        "trainable parameters",
        "use the trainable_params of the from-scratch and the pre-trained methods.",
    )
    _expect_ratio(
        speedup,
        scratch["seconds"] / pre["seconds"],
        "speedup",
        "the total seconds",
        "use totals(): it includes the one-time feature extraction.",
    )
    return f"{ratio:,.0f}x more parameters and {speedup:.1f}x the time for the from-scratch model"


@question("02.q4")
def _decided(answer, *, rows, pre, scratch) -> str:
    from ..claims import compare

    expect_type(answer, list, "decided_shots", "a list of numbers of examples per class")
    shots = sorted({r["shots"] for r in rows})
    unknown = [n for n in answer if n not in shots]
    if unknown:
        raise Wrong(
            f"{unknown} are not numbers of examples per class in the table.", f"use {shots}."
        )

    def row(method, n):
        return next(r for r in rows if r["method"] == method and r["shots"] == n)

    want = []
    for n in shots:
        p, s = row(pre, n), row(scratch, n)
        v = compare("pre", p["accuracy"], "scratch", s["accuracy"], se_a=p["accuracy_se"],
                    se_b=s["accuracy_se"])  # fmt: skip
        if v.winner == "pre":
            want.append(n)
    if sorted(answer) != want:
        missing, extra = sorted(set(want) - set(answer)), sorted(set(answer) - set(want))
        raise Wrong(
            f"missing {missing}, should not be there {extra}.",
            "a shot count belongs in the list only when accuracy(pre) - accuracy(scratch) is "
            "larger than 2 * sqrt(se_pre**2 + se_scratch**2).",
        )
    ties = [n for n in shots if n not in want]
    tail = f"; at {ties} this run cannot tell them apart" if ties else ""
    return f"pre-training wins beyond the noise at {want} examples per class{tail}"
