"""Self-checks for lesson 00 (setup, learning curves): a prediction to come back to, and the
standard error of an accuracy."""

from __future__ import annotations

from .core import Wrong, close, expect_number, question


@question(
    "00.q1",
    "write the epoch you expect to have the lowest validation loss, e.g. `best_epoch_guess = 10`.",
    predict=True,
)
def _best_epoch(answer, *, epochs: int) -> str:
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise Wrong(
            f"`best_epoch_guess` is a {type(answer).__name__}.", "an epoch is a whole number."
        )
    if not 1 <= answer <= epochs:
        raise Wrong(
            f"epoch {answer} is not one of this run's epochs, 1 to {epochs}.",
            "pick an epoch of the run that is about to start.",
        )
    return f"prediction recorded: epoch {answer} of {epochs}. The run below will tell."


@question("00.q2", "the standard error of an accuracy p on n examples is sqrt(p (1 - p) / n).")
def _accuracy_se(answer, *, accuracy: float, n: int) -> str:
    from ..claims import accuracy_se

    value = expect_number(answer, "test_se", 0.0, 0.5)
    expected = accuracy_se(accuracy, n)
    if close(value, expected, rel=1e-3):
        return (
            f"SE {value:.3f}: a second model within about {2 * value:.3f} of {accuracy:.3f} is no "
            "better or worse on this evidence"
        )
    if close(value, expected**2, rel=1e-3):
        raise Wrong("that is the variance.", "take its square root.")
    if close(value, (accuracy * (1 - accuracy)) ** 0.5, rel=1e-3):
        raise Wrong("that is the spread of one example's result, not of the mean.", "divide by n.")
    if close(value, ((accuracy * (1 - accuracy)) / n), rel=1e-3):
        raise Wrong("the square root is missing.", "sqrt(p (1 - p) / n).")
    raise Wrong(
        f"{value:.4f} is not the standard error of {accuracy:.3f} on {n} examples.",
        "use the test accuracy and the number of test images.",
    )
