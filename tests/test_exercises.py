"""Self-checks: a right answer passes; a typical mistake gets specific feedback, not the answer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from coursekit.exercises import CHECKS, Wrong, check
from coursekit.lora import LoRALinear


def feedback(qid, answer, **context) -> str:
    with pytest.raises(Wrong) as err:
        check(qid, answer, **context)
    return str(err.value)


def test_unknown_question_lists_the_known_ones():
    with pytest.raises(KeyError, match="no self-check called '01.q9'"):
        check("01.q9", 1)


def test_pass_prints_a_tick_and_failure_renders_without_a_traceback(capsys):
    stages = [{"part": "stage5", "params": 30}, {"part": "stage6", "params": 70}]
    check("01.q2", 0.7, stages=stages)
    assert capsys.readouterr().out.startswith("✓ 01.q2: 70.0% of all parameters")
    with pytest.raises(Wrong) as err:
        check("01.q2", 0.3, stages=stages)
    shown = "".join(err.value._render_traceback_())
    assert "01.q2: 0.3000 is not stage6's share" in shown and "Hint:" in shown
    assert "0.7" not in shown, "the feedback must not give the answer away"


def test_answers_of_the_wrong_kind_get_feedback_not_a_crash():
    stages = [{"part": "stage6", "params": 70}]
    assert "is a str, expected a int or float" in feedback("01.q2", "0.7", stages=stages)
    assert "percentage" in feedback("01.q2", 70.0, stages=[*stages, {"part": "x", "params": 30}])
    assert "could not be checked" in feedback("03.q3", (0.5, 0.5), lengths=[0], max_length=4)


def test_lesson01_sentence():
    sentences = ["a", "b", "The central bank raised interest rates again.", "c"]
    mine = "Borrowing money will get more expensive."
    check("01.q3", mine, sentences=sentences, nearest=3)
    assert "reuses words" in feedback("01.q3", "Interest is up", sentences=sentences, nearest=2)
    assert "next to sentence 0" in feedback("01.q3", mine, sentences=sentences, nearest=0)


def test_lesson02_prediction_form():
    check("02.q1", ("pre-trained", "tie"))
    assert "1 entries" in feedback("02.q1", ("tie",))
    assert "not an outcome" in feedback("02.q1", ("pre-trained", "maybe"))
    check("02.q1", ...)  # unanswered: "not yet", never an error


def test_a_passed_check_prints_once_in_a_notebook(capsys):
    message = check("03.q2", "mean")
    assert capsys.readouterr().out.startswith("✓ 03.q2: prediction recorded")
    assert isinstance(message, str) and "recorded" in message  # code can still read it
    assert message._ipython_display_() is None  # IPython shows nothing more under the cell


def test_lesson02_centroids():
    torch.manual_seed(0)
    centres = torch.randn(3, 8) * 3
    train_y, test_y = torch.arange(3).repeat(4), torch.arange(3).repeat(20)
    train_f = centres[train_y] + torch.randn(12, 8)
    test_f = centres[test_y] + torch.randn(60, 8)
    unit = torch.nn.functional.normalize
    means = torch.stack([unit(train_f, dim=1)[train_y == c].mean(0) for c in range(3)])
    right = ((unit(test_f, dim=1) @ means.T).argmax(1) == test_y).float().mean().item()
    ctx = dict(
        train_features=train_f,
        train_labels=train_y,
        test_features=test_f,
        test_labels=test_y,
        baseline=0.2,
    )
    check("02.q2", right, **ctx)
    assert "close to chance" in feedback("02.q2", 0.1, **ctx)
    assert "L2-normalise" in feedback("02.q2", right - 0.2, **ctx)


def gap_rows(pre: list[float], scratch: list[float], shots: int = 20) -> list[dict]:
    """data_efficiency-like rows: one per method and seed, each with its per-example answers."""
    rows = []
    for method, accs in (("pre", pre), ("scratch", scratch)):
        for seed, acc in enumerate(accs):
            n_right = round(acc * 100)
            correct = [1] * n_right + [0] * (100 - n_right)
            rows.append(dict(method=method, shots=shots, seed=seed, test_accuracy=acc,
                             correct=correct))  # fmt: skip
    return rows


def test_lesson02_decide_follows_the_runs_numbers():
    ctx = dict(pre="pre", scratch="scratch", shots=20)
    ahead = gap_rows([0.9, 0.91, 0.9], [0.5, 0.52, 0.49])
    why = "the gap at 20 per class is 0.40 with a small SE"
    check("02.q4", ("pre-trained", why), rows=ahead, **ctx)
    assert "not 'either'" in feedback("02.q4", ("either", why), rows=ahead, **ctx)
    assert "quotes this run" in feedback(
        "02.q4", ("pre-trained", "it is better"), rows=ahead, **ctx
    )
    tie = gap_rows([0.7, 0.71, 0.7], [0.7, 0.7, 0.71])
    assert "within noise" in feedback("02.q4", ("from scratch", why), rows=tie, **ctx)


def test_lesson03_checks():
    from coursekit.claims import Measure

    big, small = Measure(0.2, 0.02, [0.2] * 3, None), Measure(0.01, 0.02, [0.01] * 3, None)
    why = "28 px costs 0.20 ± 0.02, the other 0.01 ± 0.02"
    check("03.q1", ("size", why), size_gap=big, norm_gap=small)
    assert "do not point" in feedback("03.q1", ("normalisation", why), size_gap=big, norm_gap=small)
    check("03.q1", ("neither", why), size_gap=small, norm_gap=small)
    check("03.q2", "mean")
    assert "not a pooling" in feedback("03.q2", "max")
    model = nn.Module()
    model._fc = nn.Linear(4, 10)
    check("03.q3", math.log(3), original=model, n_classes=10)
    assert "uniform guess over 10" in feedback("03.q3", math.log(10), original=model, n_classes=10)
    model._fc = nn.Sequential(nn.Identity(), nn.Linear(4, 10))  # a head trained on features
    check("03.q3", math.log(3), original=model, n_classes=10)
    model._fc = nn.Linear(4, 3)
    assert "copy" in feedback("03.q3", math.log(3), original=model, n_classes=10)
    check("03.q4", {"sum": 1e-6, "mean": 0.5, "first": 0.7})
    assert "one entry per method" in feedback("03.q4", {"sum": 1e-6})
    assert "fresh copy" in feedback("03.q4", {"sum": 1e-6, "mean": 1e-6, "first": 0.7})
    lengths = [10, 100, 1000]
    check("03.q5", (0.64, 138 / 1110), lengths=lengths, max_length=64)
    assert "median" in feedback("03.q5", (0.5, 138 / 1110), lengths=lengths, max_length=64)


def test_lesson05_checks():
    measured = 6 * 2 * 16 * 768 + 384 * 2 + 2
    check("05.q2", measured, measured=measured)
    assert "LoRA part only" in feedback("05.q2", 6 * 2 * 16 * 768, measured=measured)
    assert "both query and value" in feedback("05.q2", 6 * 16 * 768 + 770, measured=measured)
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=8)
    nn.init.normal_(layer.lora_B)
    with torch.no_grad():
        merged = layer.base.weight + (layer.alpha / layer.r) * layer.lora_B @ layer.lora_A
        check("05.q4", merged, layer=layer)
        unscaled = layer.base.weight + layer.lora_B @ layer.lora_A
    assert "not scaled" in feedback("05.q4", unscaled, layer=layer)
    assert "B @ A" in feedback("05.q4", torch.zeros(6, 4), layer=layer)
    assert "past 0 or 1" in feedback("05.q1", -1.0)
    assert "prediction recorded" in check("05.q1", 0.05)


def test_every_lesson_has_its_checks_registered():
    for lesson in ("01", "02", "03", "04", "05"):
        for q in (1, 2, 3):
            check_id = f"{lesson}.q{q}"
            with pytest.raises(Exception):  # noqa: B017 - importing the lesson registers it
                check(check_id, object())
            assert check_id in CHECKS


# --- The learner's copy: unanswered questions, worked solutions, predictions ------------------


def test_an_unanswered_question_says_not_yet_with_its_hint_and_never_raises(capsys):
    stages = [{"part": "stage6", "params": 70}]
    for stub in (..., None, (..., 0.5), [1, ...], {"sum": ...}):
        assert check("01.q2", stub, stages=stages) is None
        out = capsys.readouterr().out
        assert out.startswith("… 01.q2: not answered yet.") and 'solution("01.q2")' in out
        assert "0.7" not in out and "✓" not in out


def test_a_function_whose_body_is_still_the_stub_is_unanswered(capsys):
    def stats_changed(model, data): ...

    assert check("04.q5", stats_changed, trap="trap", fix="fix", data=None) is None
    out = capsys.readouterr().out
    assert "04.q5: not answered yet" in out and "forget `return`" in out


def test_under_strict_checks_an_unanswered_question_raises(monkeypatch):
    from coursekit.exercises import NotAnswered

    monkeypatch.setenv("COURSEKIT_CHECKS", "strict")
    with pytest.raises(NotAnswered, match="not answered yet") as err:
        check("01.q2", ..., stages=[])
    assert isinstance(err.value, Wrong) and err.value.qid == "01.q2"


def test_none_is_an_answer_where_the_question_says_so(capsys):
    from coursekit.exercises import question

    @question("98.q2", none_is_answer=True)
    def _pick(answer, *, allowed) -> str:
        if answer not in allowed:
            raise Wrong("not one of the allowed answers.")
        return f"{answer!r} it is"

    assert check("98.q2", None, allowed=(None, 4)) == "None it is"  # None is an answer here
    assert "not one of" in feedback("98.q2", 8, allowed=(None, 4))
    assert check("98.q2", ..., allowed=(None,)) is None  # the stub is still unanswered
    assert "not answered yet" in capsys.readouterr().out
    del CHECKS["98.q2"]


def test_worked_solutions_print_on_request(capsys):
    from coursekit.exercises import solution, solution_text

    solution("01.q2")
    out = capsys.readouterr().out
    assert out.startswith("# Worked solution of exercise 01.q2 (01_pretrained_models.ipynb)")
    assert "stage6_fraction =" in out and "BEGIN SOLUTION" not in out
    assert solution_text("01.q2") in out
    with pytest.raises(KeyError, match="no worked solution for '01.q9'"):
        solution("01.q9")


def test_a_prediction_is_recorded_and_compared_with_the_run(capsys):
    from coursekit.exercises import compare_prediction, core, question

    @question("98.q1", predict=True)
    def _predict(answer) -> str:
        if answer not in ("up", "down"):
            raise Wrong("say 'up' or 'down'.")
        return f"you predict {answer!r}; the run will tell"

    core.PREDICTIONS.pop("98.q1", None)
    assert compare_prediction("98.q1", "up") is None  # a notebook cell shows only the line
    assert "you did not predict" in capsys.readouterr().out
    check("98.q1", "down")
    compare_prediction("98.q1", "up")
    out = capsys.readouterr().out
    assert "you predicted 'down'; this run shows 'up', not what you predicted" in out
    check("98.q1", "up")
    compare_prediction("98.q1", "up")
    assert "this run shows 'up', as you predicted" in capsys.readouterr().out
    del CHECKS["98.q1"], core.PREDICTIONS["98.q1"]


def test_lesson02_stale_cache_accepts_its_own_entry_from_an_earlier_run():
    full, small = torch.zeros(32, 1280), torch.ones(32, 1280)
    check("02.q3", small, source="computed", reference=full)  # raises Wrong if judged wrong
    check("02.q3", small, source="disk", reference=full)  # the small size's own cache entry
    assert "came from the 'disk'" in feedback("02.q3", full, source="disk", reference=full)
