"""Lesson 06's checklist for choosing a fine-tuning strategy, each answer printed from the run.

The questions are the ones any project asks (is a linear probe enough? is the encoder worth
training? is memory or storage tight? must the encoder keep other abilities? how much labelled
data is there?); the numbers come from a sweep over seeds (`run_strategies` -> `summarize`), the
paired verdicts against the most accurate strategy, the step costs of LoRA and full fine-tuning
(`cost.measure_step`), and the forgetting measures of `forgetting.ForgettingProbe`.
A sentence that compares two numbers says "tie" unless the run separates them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..claims import Measure, Verdict

__all__ = ["checklist"]

PROBE, LORA, FULL, LPFT, DISCR = (
    "linear probe",
    "LoRA r=8",
    "full FT, one LR",
    "LP-FT, one LR",
    "full FT, discriminative LRs",
)


def _forgot(row: Mapping[str, Any]) -> str:
    se = row["ability_measure"].se if "ability_measure" in row else 0.0
    return f"{row['forgetting']:+.3f} ± {se:.3f}"


def checklist(
    summary: Sequence[Mapping[str, Any]],
    verdicts: Mapping[str, Verdict],
    step_cost: Mapping[str, Any],
    kept: Measure,
    drift_ratio: Measure,
    n_train: int,
) -> list[str]:
    """Six lines, one per question. `summary`: `summarize(rows)` of a sweep holding the lesson's
    six strategies (forgetting measured on the encoder strategies); `verdicts`: {strategy:
    `claims.compare(best, difference(rows, best, strategy), ...)`}; `step_cost`: {"LoRA r=8",
    "full FT, one LR": `cost.StepCost`}; `kept`: LP-FT's ability minus full FT's (paired);
    `drift_ratio`: log(full FT's drift / LP-FT's) over seeds; `n_train`: training examples."""
    by = {r["strategy"]: r for r in summary}
    best = max(summary, key=lambda r: r["accuracy"])
    tied = [name for name, v in verdicts.items() if v.winner is None]
    probe, lora, full, lpft = by[PROBE], by[LORA], by[FULL], by[LPFT]
    probe_tied = PROBE in tied or best is probe
    lora_step, full_step = step_cost[LORA], step_cost[FULL]
    kept_text = (
        f"{kept.mean:+.3f} ± {kept.se:.3f} more BBC-topic accuracy kept"
        if abs(kept.mean) > 2 * kept.se
        else f"a tie in BBC-topic accuracy ({kept.mean:+.3f} ± {kept.se:.3f})"
    )
    return [
        f"1. Start with a linear probe: the floor every other strategy must beat. Here: "
        f"{probe['measure']} in {probe['seconds']:.1f} s, {probe['trainable']:,} trainable "
        "parameters.",
        f"2. Not enough? Train (part of) the encoder. Most accurate here: {best['strategy']} "
        f"{best['measure']}, {best['seconds']:.1f} s a run; "
        + (
            f"tied with it within noise: {', '.join(tied)}."
            if tied
            else "ahead of every other strategy beyond 2 SE."
        )  # fmt: skip
        + f" ({best['n_test']} test tweets; a larger test set and more seeds could separate what "
        "this run cannot.)",
        f"3. Memory or storage tight, or many tasks on one base model? LoRA trained "
        f"{lora['trainable']:,} parameters ({lora['trainable_pct']:.2f}%), with "
        f"{lora['optimizer_state_bytes'] / 1e6:.1f} MB of optimizer state (full FT: "
        f"{full['optimizer_state_bytes'] / 1e6:.0f} MB), and reached {lora['measure']}; its step "
        f"took {lora_step.seconds_per_step:.2f} s vs {full_step.seconds_per_step:.2f} s.",
        f"4. Must the encoder keep its other abilities? BBC-topic accuracy lost: full FT one LR "
        f"{_forgot(full)}, discriminative LRs {_forgot(by[DISCR])}, LP-FT {_forgot(lpft)}; LoRA "
        "with its adapter off: none (it is the pre-trained encoder).",
        f"5. Fine-tuning everything anyway? Train the head first: with the same optimizer, full FT "
        f"from a random head drifted {math.exp(drift_ratio.mean):.1f}x as far as LP-FT "
        f"(geometric mean over seeds); LP-FT: {kept_text}; accuracy {lpft['measure']} vs "
        f"{full['measure']}.",
        f"6. Little labelled data ({n_train} examples here)? Prefer few trainable parameters: the "
        + (
            "probe is as good as the best strategy in this run"
            if probe_tied
            else "probe is behind the best strategy beyond the noise in this run"
        )  # fmt: skip
        + ". With more labels (lesson 05 fine-tuned on 1,000 tweets) training the encoder has "
        "room to pull ahead of the probe.",
    ]
