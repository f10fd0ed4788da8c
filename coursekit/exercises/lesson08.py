"""Self-checks for lesson 08 (instruction-tuning a generative language model)."""

from __future__ import annotations

from .core import Wrong, close, expect_number, expect_type, question


@question(
    "08.q1",
    "store your prediction, a number between 0 and 1, in `predicted_exact_match`.",
    predict=True,
)
def _predict_exact_match(answer, **_) -> str:
    value = expect_number(answer, "predicted_exact_match", 0.0, 100.0)
    if value > 1:
        raise Wrong("that looks like a percentage.", "write the fraction, e.g. 0.25 for 25 %.")
    return f"prediction recorded ({value:.2f}); section 7 measures it"


@question(
    "08.q2",
    "write the body of `mask_labels`: a list as long as `input_ids`, -100 for the prompt.",
)
def _mask_labels(answer, *, examples) -> str:
    if not callable(answer):
        raise Wrong("`mask_labels` is not a function.", "keep the `def mask_labels(...)` line.")
    for ex in examples:
        got = answer(list(ex.input_ids), ex.prompt_length)
        expect_type(got, list, "mask_labels(...)", "return a plain Python list.")
        if len(got) != len(ex.input_ids):
            raise Wrong(
                f"it returned {len(got)} labels for {len(ex.input_ids)} tokens.",
                "one label per token: the loss lines labels up with the tokens.",
            )
        prompt, rest = got[: ex.prompt_length], got[ex.prompt_length :]
        if any(y != -100 for y in prompt):
            raise Wrong(
                "some prompt tokens keep a label: the loss would grade the model on predicting "
                "the prompt.",
                "every position before prompt_length gets -100.",
            )
        if rest != list(ex.input_ids[ex.prompt_length :]):
            raise Wrong(
                "the answer's labels are not the answer's own token ids.",
                "from prompt_length on, the label of a token is the token id itself (the loss "
                "does the shift by one).",
            )
    return f"labels match encode_example's on {len(examples)} examples"


@question("08.q3", "store the number of trainable parameters (an int) in `lora_r16_count`.")
def _lora_count(answer, *, model) -> str:
    value = expect_number(answer, "lora_r16_count", 0)
    attention = model.model.layers[0].self_attn
    per_layer = sum(
        16 * (getattr(attention, n).in_features + getattr(attention, n).out_features)
        for n in ("q_proj", "k_proj", "v_proj", "o_proj")
    )
    expected = len(model.model.layers) * per_layer
    if close(value, expected, rel=0):
        total = sum(p.numel() for p in model.parameters())
        return f"{int(value):,} trainable parameters, {value / total:.2%} of the model's"
    square = len(model.model.layers) * 16 * 4 * 2 * attention.q_proj.in_features
    if close(value, square, rel=0):
        raise Wrong(
            "that counts k_proj and v_proj as square.",
            "SmolLM2 uses grouped-query attention: print the four projections of "
            "model.model.layers[0].self_attn and read each one's in and out features.",
        )
    raise Wrong(
        f"{value:,.0f} is not the count.",
        "each projection adds r x (in_features + out_features); four projections per layer, "
        "times the number of layers.",
    )
