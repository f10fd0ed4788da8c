"""Self-checks for lesson 02 (transfer learning): a prediction the lesson comes back to, the
nearest class mean, the feature cache, and a decision made from the run's own numbers."""

from __future__ import annotations

import torch

from .core import Wrong, expect_decision, expect_number, expect_type, question

OUTCOMES = ("pre-trained", "scratch", "tie")


@question(
    "02.q1",
    'write two of "pre-trained", "scratch", "tie", e.g. `my_prediction = ("tie", "tie")`.',
    predict=True,
)
def _predict(answer) -> str:
    expect_type(answer, tuple, "my_prediction", "a tuple of two answers: (smallest, largest)")
    if len(answer) != 2:
        raise Wrong(
            f"`my_prediction` has {len(answer)} entries.", "one per size: smallest, then largest."
        )
    for which, value in zip(("smallest", "largest"), answer, strict=True):
        if value not in OUTCOMES:
            raise Wrong(
                f"{value!r} (at the {which} size) is not an outcome.", f"use one of {OUTCOMES}."
            )
    return f"prediction recorded: {answer[0]} at the smallest size, {answer[1]} at the largest"


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


@question("02.q2", "average the normalised features of each class, then compare by dot product.")
def _centroids(
    answer, *, train_features, train_labels, test_features, test_labels, baseline
) -> str:
    value = expect_number(answer, "centroid_accuracy", 0.0, 1.0)
    expected = _centroid_accuracies(train_features, train_labels, test_features, test_labels)
    if any(abs(value - e) <= 1.5 / len(test_labels) for e in expected):
        return (
            f"{value:.3f} without a single gradient step, vs {baseline} for the from-scratch "
            "CNN trained on as many images per class"
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


@question("02.q3", "call extract_image_features with the smaller size and the same cache_dir.")
def _stale_cache(answer, *, source, reference) -> str:
    expect_type(answer, torch.Tensor, "small_features")
    if tuple(answer.shape) != (32, 1280):
        raise Wrong(
            f"`small_features` has shape {tuple(answer.shape)}, expected (32, 1280).",
            "extract features for the first 32 pool images only.",
        )
    if torch.allclose(answer, reference):  # a cache hit on the full-size key, or the same size
        if source != "computed":
            raise Wrong(
                f"last_extraction() says the features came from the {source!r}.",
                "pass the smaller image size to extract_image_features, so the cache key changes.",
            )
        raise Wrong("the features equal the full-size ones.", "use cfg.image_size // 2 pixels.")
    # a cache hit with different features is this size's own entry, e.g. from an earlier run
    return "a different image size gives a new cache key, so the features were computed afresh"


ROUTES = ("pre-trained", "from scratch", "either")


@question("02.q4", 'set `route` to one of "pre-trained", "from scratch", "either", and `why`.')
def _decide(answer, *, rows, pre, scratch, shots) -> str:
    from ..claims import compare
    from ..experiments.gaps import gap

    example = "e.g. the gap at that size with its ±, or the seconds each route trained."
    route = expect_decision(answer, "route", ROUTES, example)
    g = gap(rows, pre, scratch, shots)
    v = compare("gap", g, "no gap", 0.0, se_b=0.0)
    ahead = None if v.winner is None else ("pre-trained" if g.mean > 0 else "from scratch")
    if ahead and route != ahead:
        raise Wrong(
            f"at {shots} per class this run puts one route ahead beyond the noise, and it is not "
            f"{route!r}.",
            f"look at the gap at {shots} per class and its standard error (ex.gap).",
        )
    if ahead is None and route == "from scratch":
        raise Wrong(
            f"at {shots} per class the two are within noise of each other, so accuracy does not "
            "favour the from-scratch CNN.",
            "with a tie in accuracy, what else differs between the routes (section 8)?",
        )
    said = "a tie within noise" if ahead is None else f"{ahead} ahead"
    return f"{route!r} fits this run: at {shots} per class the gap is {g} ({said})"
