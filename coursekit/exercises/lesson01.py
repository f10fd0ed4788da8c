"""Self-checks for lesson 01 (pre-trained models)."""

from __future__ import annotations

from .core import Wrong, close, expect_number, expect_type, question


@question("01.q1", "classify photos['astronaut'] with k=1 and unpack its one pair.")
def _astronaut(answer, *, model, photo, class_names) -> str:
    from ..models import classify_image

    expect_type(answer, tuple, "(astronaut_top1, astronaut_p)")
    name, p = answer
    expect_type(name, str, "astronaut_top1", "classify_image gives (class name, probability) pairs")
    p = expect_number(p, "astronaut_p", 0.0, 1.0)
    if name not in class_names:
        raise Wrong(
            f"{name!r} is not one of the 1,000 ImageNet class names.",
            "take the name straight from classify_image's output.",
        )
    top_name, top_p = classify_image(model, photo, k=1)[0]
    if name != top_name:
        raise Wrong(
            f"{name!r} is not the model's top-1 class for the astronaut photo.",
            "k=1 keeps only the most likely class; check you passed photos['astronaut'].",
        )
    if not close(p, top_p, rel=1e-4):
        raise Wrong(
            "the probability does not belong to that class.",
            "take the name and the probability from the same (name, probability) pair.",
        )
    return f"the model's best guess is {name!r} with probability {p:.2f}"


@question("01.q2")
def _stage6(answer, *, stages) -> str:
    value = expect_number(answer, "stage6_fraction", 0.0, 100.0)
    total = sum(r["params"] for r in stages)
    expected = next(r["params"] for r in stages if r["part"] == "stage6") / total
    if close(value, 100 * expected, rel=1e-6):
        raise Wrong("that looks like a percentage.", "store a fraction between 0 and 1.")
    if not close(value, expected, rel=1e-6):
        raise Wrong(
            f"{value:.4f} is not stage6's share of all parameters.",
            "find the row whose part is 'stage6' and divide its params by the sum of all "
            "rows' params.",
        )
    return f"{value:.1%} of all parameters sit in one late stage"


@question("01.q3", "write a sentence of your own about interest rates into `my_sentence`.")
def _sentence(
    answer, *, sentences, nearest=None, encoder=None, tokenizer=None, embeddings=None
) -> str:
    expect_type(answer, str, "my_sentence")
    words = set(answer.lower().strip(" .!?").split())
    reused = words & set(sentences[2].lower().strip(" .!?").split()) - {"the", "a"}
    if not words:
        raise Wrong("`my_sentence` is empty.", "write a sentence about interest rates.")
    if reused:
        raise Wrong(
            f"your sentence reuses words of sentence 2: {sorted(reused)}.",
            "say the same thing with other words (synonyms), so only meaning can match.",
        )
    if nearest is None:  # the check embeds the sentence itself (the learner's copy)
        from ..models import embed_sentences

        mine = embed_sentences(encoder, tokenizer, [answer])
        nearest = int((mine @ embeddings.T).argmax())
    if nearest not in (2, 3):
        raise Wrong(
            f"the encoder placed your sentence next to sentence {nearest}: {sentences[nearest]!r}.",
            "make it clearly about the price of borrowing money, in your own words.",
        )
    return f"nearest neighbour is sentence {nearest}: the encoder matched meaning, not words"


@question("01.q4")
def _interval(answer, *, accuracy, n, chance) -> str:
    from ..claims import interval

    expect_type(answer, tuple, "(centroid_interval, clearly_above_chance)")
    bounds, above = answer
    expect_type(bounds, tuple, "centroid_interval", "a (low, high) pair of accuracies")
    low, high = (expect_number(b, "an end of centroid_interval", 0.0, 1.0) for b in bounds)
    want_low, want_high = interval(accuracy, n)
    if not low <= accuracy <= high:
        raise Wrong(
            f"({low:.3f}, {high:.3f}) does not contain the measured accuracy {accuracy:.3f}.",
            "an interval for an estimate surrounds the estimate.",
        )
    if not (close(low, want_low, abs_=1e-3) and close(high, want_high, abs_=1e-3)):
        raise Wrong(
            f"({low:.3f}, {high:.3f}) is not the 95 % Wilson interval for {accuracy:.3f} on {n}.",
            "use ck.claims.interval(accuracy, number of test articles).",
        )
    if above is not (want_low > chance):
        raise Wrong(
            f"clearly_above_chance={above}, but the interval's low end is {want_low:.3f} and "
            f"chance is {chance:.2f}.",
            "it is True only when even the low end of the interval is above chance.",
        )
    return f"the true accuracy is probably between {low:.2f} and {high:.2f}: " + (
        "above chance beyond doubt" if above else "not clearly above chance"
    )
