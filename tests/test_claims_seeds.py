"""Claims across seeds: one number per arm from several seeds, with both noises counted."""

import math

import numpy as np
import pytest

from coursekit.claims import (
    ClaimContradicted,
    Measure,
    PhenomenonNotShown,
    accuracy_se,
    compare,
    expect,
    over_seeds,
    paired,
    shows,
)


def test_over_seeds_adds_the_seed_spread_and_the_test_set_part():
    m = over_seeds([0.81, 0.79, 0.83], n_test=400)
    spread = 0.02 / math.sqrt(3)  # sample std 0.02 over sqrt(3 seeds)
    assert m.mean == pytest.approx(0.81)
    assert m.se == pytest.approx(math.hypot(spread, accuracy_se(0.81, 400)))
    assert m.seeds == 3 and m.values == pytest.approx((0.81, 0.79, 0.83))
    assert str(m) == "0.810 ± 0.023 (3 seeds)"
    # identical seeds: only the test set is uncertain
    assert over_seeds([0.5, 0.5], n_test=100).se == pytest.approx(0.05)
    # no test set given: the spread alone
    assert over_seeds([1.0, 2.0, 3.0]).se == pytest.approx(1 / math.sqrt(3))


def test_per_example_results_give_a_sharper_test_set_part_than_the_binomial():
    rng = np.random.default_rng(0)
    truth = rng.random(500) < 0.8  # which examples a good model gets right
    seeds = [truth.copy() for _ in range(3)]
    seeds[1][:5] = ~seeds[1][:5]
    m = over_seeds(seeds)
    assert m.mean == pytest.approx(np.mean([s.mean() for s in seeds]))
    assert m.n_test == 500
    assert m.se <= over_seeds([s.mean() for s in seeds], n_test=500).se + 1e-12


def test_paired_cancels_what_the_seeds_share():
    a, b = [0.81, 0.79, 0.83], [0.75, 0.74, 0.78]
    d = paired(a, b)
    assert d.mean == pytest.approx(0.16 / 3) and d.values == pytest.approx((0.06, 0.05, 0.05))
    # the seeds move both arms together: the paired SE is far below the unpaired one
    unpaired = math.hypot(over_seeds(a).se, over_seeds(b).se)
    assert d.se < unpaired / 3
    # per-example: two models that differ on exactly 10 of 200 examples, every seed
    base = np.zeros(200, dtype=bool)
    base[:150] = True
    better = base.copy()
    better[150:160] = True
    e = paired([better] * 3, [base] * 3)
    assert e.mean == pytest.approx(10 / 200)
    assert e.se == pytest.approx(math.sqrt(np.var(better.astype(float) - base, ddof=1) / 200))


def test_paired_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="as many"):
        paired([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="both"):
        paired([np.ones(3)], [0.5])
    with pytest.raises(ValueError, match="one length"):
        over_seeds([np.ones(3), np.ones(4)])


def test_measures_go_wherever_numbers_go():
    a, b = over_seeds([0.9, 0.91, 0.92], n_test=1000), over_seeds([0.7, 0.71, 0.69], n_test=1000)
    v = compare("a", a, "b", b)
    assert v.winner == "a" and v.se_a == pytest.approx(a.se)
    assert expect("a beats b", a, b, quiet=True).status == "supported"


def test_shows_passes_a_phenomenon_the_run_supports(capsys):
    v = shows("deeper beats the head", paired([0.80, 0.82, 0.81], [0.70, 0.71, 0.72]))
    assert v.status == "supported"
    assert capsys.readouterr().out.startswith("✓ deeper beats the head")


def test_shows_fails_on_a_tie_and_on_the_opposite():
    tie = over_seeds([0.80, 0.70, 0.75])
    with pytest.raises(PhenomenonNotShown, match="does not show 'x beats y'"):
        shows("x beats y", tie, over_seeds([0.74, 0.76, 0.75]))
    with pytest.raises(ClaimContradicted):
        shows("x beats y", Measure(0.5, 0.01, (0.5,)), Measure(0.9, 0.01, (0.9,)))
    with pytest.raises(ValueError, match="direction"):
        shows("x equals y", 0.5, 0.5, relation="~=", se_a=0.1, se_b=0.1)


def test_verdicts_and_measures_show_as_sentences_in_a_notebook():
    pretty = pytest.importorskip("IPython.lib.pretty")
    v = compare("a", 0.9, "b", 0.5, n_a=100, n_b=100)
    assert pretty.pretty(v) == v.text and not pretty.pretty(v).startswith("Verdict(")
    assert pretty.pretty(over_seeds([0.5, 0.6])) == str(over_seeds([0.5, 0.6]))
