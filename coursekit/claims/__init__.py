"""A claim is code: check a sentence about a run against the run's own numbers, with its noise.

Every accuracy, timing or loss a lesson measures is an estimate with a standard error (SE);
a sentence comparing two of them is only as true as the difference is larger than its noise.

- `errors`: the SE of an accuracy on n examples (`accuracy_se`, Wilson `interval`), of repeats
  (`mean_se`), of a ratio; `fmt` writes "0.912 ± 0.021";
- `seeds`: several seeds, one number (`over_seeds`, `paired` -> `Measure`), with an SE that
  combines the seed-to-seed spread and the test-set size;
- `verdicts`: `compare` (which is larger, beyond the noise), `expect` (a sentence the run may
  support, tie or contradict) and `shows` (a lesson's phenomenon: the run must support it).

Used by every lesson that compares numbers (00-08), by `experiments`, `strategies` and `finetune`.
"""

from .errors import accuracy_se, fmt, interval, mean_se, ratio
from .seeds import Measure, over_seeds, paired
from .verdicts import ClaimContradicted, PhenomenonNotShown, Verdict, compare, expect, shows

__all__ = [
    "ClaimContradicted",
    "Measure",
    "PhenomenonNotShown",
    "Verdict",
    "accuracy_se",
    "compare",
    "expect",
    "fmt",
    "interval",
    "mean_se",
    "over_seeds",
    "paired",
    "ratio",
    "shows",
]
