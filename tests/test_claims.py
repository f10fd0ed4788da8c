import math

import pytest

from coursekit.claims import (
    ClaimContradicted,
    accuracy_se,
    compare,
    expect,
    fmt,
    interval,
    mean_se,
    ratio,
)
from coursekit.training import dry_run


def test_accuracy_se_is_the_binomial_standard_error():
    assert accuracy_se(0.5, 100) == pytest.approx(0.05)
    assert accuracy_se(0.9, 400) == pytest.approx(0.015)
    # a perfect score on 20 examples is not certain: half an example in from the edge
    assert accuracy_se(1.0, 20) == pytest.approx(math.sqrt(0.975 * 0.025 / 20))
    with pytest.raises(ValueError, match="positive"):
        accuracy_se(0.5, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        accuracy_se(1.5, 10)


def test_wilson_interval_matches_the_textbook_values_and_stays_in_0_1():
    lo, hi = interval(0.5, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = interval(1.0, 20)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.8389, abs=1e-4)


def test_fmt_keeps_numbers_readable():
    assert fmt(0.9123, 0.0213) == "0.912 ± 0.021"
    assert fmt(40.52, 1.234) == "40.52 ± 1.2"
    assert fmt(12345.6, 67.2) == "12,346 ± 67"


def test_mean_se_and_ratio():
    m, se = mean_se([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0) and se == pytest.approx(1 / math.sqrt(3))
    assert mean_se([4.0]) == (4.0, 0.0)
    r, se_r = ratio(10.0, 2.0, se_a=1.0, se_b=0.2)
    assert r == pytest.approx(5.0) and se_r == pytest.approx(5.0 * math.hypot(0.1, 0.1))


def test_a_supported_claim_passes_and_prints_the_numbers(capsys):
    v = expect("pre-trained beats scratch", 0.91, 0.62, n_a=200, n_b=200, names=("pre", "scr"))
    out = capsys.readouterr().out
    assert v.status == "supported" and v.winner == "pre"
    assert out.startswith("✓ pre-trained beats scratch")
    assert "pre 0.910 ± 0.020 vs scr 0.620 ± 0.034" in out


def test_a_contradicted_claim_fails_naming_the_claim_and_the_numbers():
    with pytest.raises(ClaimContradicted) as err:
        expect("LoRA matches full fine-tuning", 0.75, 0.95, relation="~=", n_a=200, n_b=200)
    msg = str(err.value)
    assert "LoRA matches full fine-tuning" in msg and "0.750" in msg and "0.950" in msg
    with pytest.raises(ClaimContradicted, match="unfreezing helps.*0.500.*0.673"):
        expect("unfreezing helps", 0.50, 0.673, n_a=300, n_b=300)
    with pytest.raises(ClaimContradicted, match="smaller is faster"):
        expect("smaller is faster", 2.0, 1.0, relation="<", se_a=0.1, se_b=0.1)


def test_a_difference_within_noise_is_reported_as_a_tie_not_a_winner(capsys):
    # 120 test examples: SE about 0.04 each, so 0.03 apart is noise
    v = expect("strategy A beats strategy B", 0.78, 0.75, n_a=120, n_b=120)
    out = capsys.readouterr().out
    assert v.status == "tie" and v.winner is None
    assert out.startswith("tie within noise: 'strategy A beats strategy B' cannot be decided")
    assert "full mode" in out
    assert not compare("A", 0.78, "B", 0.75, n_a=120, n_b=120).winner


def test_the_margin_is_derived_from_the_standard_errors():
    v = compare("a", 0.8, "b", 0.7, se_a=0.03, se_b=0.04)
    assert v.se_diff == pytest.approx(0.05) and v.margin == pytest.approx(0.10)
    assert compare("a", 0.79, "b", 0.7, se_a=0.03, se_b=0.04).winner is None  # 1.8 SE
    assert compare("a", 0.79, "b", 0.7, se_a=0.03, se_b=0.04, z=1.0).winner == "a"
    assert compare("a", 0.8, "b", 0.7, se_a=0.03, se_b=0.04, margin=0.05).winner == "a"
    # the same gap on a 20x larger test set is real
    assert compare("a", 0.8, "b", 0.7, n_a=4000, n_b=4000).winner == "a"


def test_repeated_measurements_give_their_own_spread(capsys):
    slow, fast = [1.00, 1.10, 0.95, 1.05], [0.30, 0.32, 0.29, 0.31]
    v = expect("LoRA steps are faster", fast, slow, relation="<", quiet=True)
    assert v.status == "supported" and v.se_a > 0 and v.se_b > 0
    assert capsys.readouterr().out == ""


def test_missing_uncertainty_and_bad_relation_are_clear_errors():
    with pytest.raises(ValueError, match="se_a=.*n_a="):
        compare("a", 0.8, "b", 0.7, n_b=100)
    with pytest.raises(ValueError, match="relation"):
        expect("x", 1.0, 0.0, relation=">=", se_a=0, se_b=0)


def test_a_step_capped_run_is_not_judged(capsys):
    """In a dry run (the full-mode memory check) the numbers mean nothing."""
    with dry_run(2):
        v = expect("pre-trained beats scratch", 0.1, 0.9, n_a=100, n_b=100)  # would contradict
        out = capsys.readouterr().out
        assert v.status == "not checked" and v.winner is None
        assert out.startswith("not checked: a dry run of 2 optimizer steps per training run cut")
        assert "'pre-trained beats scratch'" in out and "0.100" in out
        with pytest.raises(ValueError, match="se_a"):  # bad arguments are still errors
            expect("no uncertainty", 0.5, 0.4, n_b=10)
    with pytest.raises(ClaimContradicted):
        expect("pre-trained beats scratch", 0.1, 0.9, n_a=100, n_b=100)
