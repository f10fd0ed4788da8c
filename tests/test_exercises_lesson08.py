"""Lesson 08's self-checks: right answers pass, wrong ones get a hint (never the answer),
unanswered ones say so without raising."""

from __future__ import annotations

import pytest

from coursekit import exercises
from coursekit import generative as gen
from coursekit.exercises import Wrong, compare_prediction

from helpers import tiny_chat_tokenizer, tiny_llama


def test_08_q1_records_a_prediction_and_rejects_percentages(capsys):
    exercises.check("08.q1", ...)
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(Wrong, match="percentage"):
        exercises.check("08.q1", 45)
    exercises.check("08.q1", 0.45)
    assert compare_prediction("08.q1", 0.5, tolerance=0.1) is True


def test_08_q2_compares_the_learners_mask_with_encode_example():
    tok = tiny_chat_tokenizer()
    msgs = [{"role": "user", "content": "Topic?"}]
    examples = [gen.encode_example(tok, msgs, a) for a in ("sports", "tech")]

    def right(ids, n):
        return [-100] * n + list(ids[n:])

    def everything(ids, n):
        return list(ids)

    def off_by_one(ids, n):
        return [-100] * (n + 1) + list(ids[n + 1 :])

    assert "2 examples" in exercises.check("08.q2", right, examples=examples)
    with pytest.raises(Wrong, match="prompt tokens keep a label"):
        exercises.check("08.q2", everything, examples=examples)
    with pytest.raises(Wrong, match="answer's labels"):
        exercises.check("08.q2", off_by_one, examples=examples)


def test_08_q3_counts_lora_on_all_four_projections_of_a_grouped_query_decoder():
    model = tiny_llama()  # 2 layers, hidden 32, key/value 16 wide (2 of 4 heads)
    expected = 2 * 16 * (2 * (32 + 32) + 2 * (32 + 16))
    assert "trainable parameters" in exercises.check("08.q3", expected, model=model)
    with pytest.raises(Wrong, match="grouped-query"):
        exercises.check("08.q3", 2 * 16 * 4 * 2 * 32, model=model)
    with pytest.raises(Wrong, match="not the count"):
        exercises.check("08.q3", expected + 1, model=model)
