"""Strategy sweep: several ways of adapting one pre-trained model, one call each, one tidy table.

A *strategy* is how much of a pre-trained model may change and how fast: a linear probe on cached
features, the head plus the last blocks, full fine-tuning with discriminative learning rates,
LoRA, ... `run_strategies` trains each one on the same task with `fit`, tests it on the same
split and measures what it cost, so the choice between them rests on numbers measured side by
side instead of folklore. Each row of the result holds:

    strategy, accuracy, macro_f1     on the test split (graded here, never by the strategy)
    accuracy_se, n_test              the accuracy's binomial standard error on n_test examples
                                     (two strategies closer than ~2 SE apart are a tie)
    trainable, total, trainable_pct  parameters (`total` includes a frozen encoder whose
                                     features were cached: it still runs, once)
    seconds                          wall time from pre-trained weights to a trained model:
                                     setup (e.g. feature extraction) + build + training
    train_seconds, steps, s_per_step the training loop alone (`fit`, no validation pass)
    peak_mb                          how far training pushed memory above where it started
                                     (CUDA: allocated tensors; CPU: the process's resident memory)
    optimizer_state_bytes            what AdamW (or your optimizer) kept per trainable weight
    seed, correct, history           the seed; 1/0 per test example (for paired comparisons);
                                     the run's `History` (learning curves, with `val` per epoch)

One run is one draw: another seed (another head initialisation, dropout, shuffle) gives another
accuracy. `run_strategies(..., seeds=(0, 1, 2))` trains every strategy once per seed;
`summarize(rows)` gives one row per strategy with its accuracy over seeds (`claims.Measure`,
whose SE counts the seed spread and the test-set size), `difference(rows, a, b)` the paired
difference of two strategies, the sharp test when they share seeds and test examples, and
`closer_to(rows, a, near, far)` whether a lands closer to one than to the other.
Plot the table with `viz.plot_strategies`, the curves with `viz.plot_runs`. Lessons 05 and 06.
"""

from .checklist import checklist
from .compare import closer_to, difference, per_example, summarize
from .sweep import Strategy, run_strategies, run_strategy

__all__ = [
    "Strategy",
    "checklist",
    "closer_to",
    "difference",
    "per_example",
    "run_strategies",
    "run_strategy",
    "summarize",
]
