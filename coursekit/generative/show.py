"""What lesson 08 shows a learner: tables of tokens and answers, and its three plots.

- `next_token_rows`: what a causal LM predicts at each position of a text, and the loss it pays;
- `token_rows`: an SFT example token by token, with the label each one gets (-100: not graded);
- `position_gradients` + `plot_position_gradients`: how much gradient each position's prediction
  receives, with and without loss masking;
- `plot_runs`: learning curves of several runs (loss per step; held-out answer loss per epoch);
- `answer_rows`: a before/after table of generations;
- `table`: rows as a markdown table that notebooks render (and static views show as text).
Lesson 08.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

from .. import viz  # noqa: F401  (registers the inline PNG formatter for returned Figures)
from ..experiments.data_efficiency import to_markdown
from ..training.history import History
from .sft import IGNORE_INDEX, SFTExample, causal_lm_loss

__all__ = [
    "answer_rows",
    "next_token_rows",
    "plot_position_gradients",
    "plot_runs",
    "position_gradients",
    "table",
    "token_rows",
]


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Any:
    """Rows as a markdown table, displayed rendered in a notebook (`|` in a cell is escaped:
    SmolLM2's special tokens hold it)."""
    from IPython.display import Markdown

    def cell(v: Any) -> Any:
        return v.replace("|", "\\|") if isinstance(v, str) else v

    return Markdown(to_markdown([{k: cell(v) for k, v in r.items()} for r in rows], columns))


def _token(tokenizer: Any, i: int) -> str:
    return repr(tokenizer.decode([i]))[1:-1]  # newlines and spaces visible, no quotes


@torch.no_grad()
def next_token_rows(model: nn.Module, tokenizer: Any, text: str, k: int = 3) -> list[dict]:
    """Position by position: the token, the model's top-k guesses for the next one, and the
    probability and loss (-log p) of the token that really came next."""
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    probs = model(ids.to(next(model.parameters()).device)).logits[0].float().softmax(-1).cpu()
    rows = []
    for t in range(ids.shape[1] - 1):
        top = probs[t].topk(k)
        actual = int(ids[0, t + 1])
        rows.append({"token": _token(tokenizer, int(ids[0, t])),
                     "top guesses for the next": ", ".join(
                         f"{_token(tokenizer, int(i))} {p:.2f}" for p, i in zip(*top, strict=True)),
                     "next (actual)": _token(tokenizer, actual),
                     "p(actual)": round(float(probs[t, actual]), 3),
                     "loss": round(-float(probs[t, actual].log()), 2)})  # fmt: skip
    return rows


def token_rows(tokenizer: Any, example: SFTExample, start: int = 0) -> list[dict]:
    """The example's tokens from `start`, each with its label (-100: the loss ignores it)."""
    return [
        {"position": i, "token": _token(tokenizer, t), "id": t, "label": y,
         "graded": "yes" if y != IGNORE_INDEX else ""}
        for i, (t, y) in enumerate(zip(example.input_ids, example.labels, strict=True))
        if i >= start
    ]  # fmt: skip


def position_gradients(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """|d loss / d logits| summed over the vocabulary, per position of the first example: how
    much each position's prediction is trained by this batch's loss."""
    inputs = {k: v.to(next(model.parameters()).device) for k, v in batch.items() if k != "labels"}
    with torch.no_grad():  # only the gradient on the logits is wanted, not the weights'
        logits = model(**inputs).logits.float().cpu()
    logits.requires_grad_(True)
    causal_lm_loss(logits, batch["labels"]).backward()
    return logits.grad[0].abs().sum(-1)


def plot_position_gradients(
    grads: Mapping[str, torch.Tensor], prompt_length: int, title: str = ""
) -> Figure:
    """One bar per position for each variant (e.g. masked / not masked); the dashed line marks
    where the answer starts (the last prompt token predicts the answer's first token)."""
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, len(grads), sharey=True)
    for ax, (name, g) in zip(list(axes) if len(grads) > 1 else [axes], grads.items(), strict=True):
        ax.bar(range(len(g)), g.numpy(), color=["C0" if i < prompt_length - 1 else "C3"
                                                  for i in range(len(g))])  # fmt: skip
        ax.axvline(prompt_length - 1.5, color="0.4", ls="--", lw=1)
        ax.set(title=name, xlabel="position (predicts the next token)")
    axes_list = list(axes) if len(grads) > 1 else [axes]
    axes_list[0].set_ylabel("|gradient| on its logits")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_runs(histories: Mapping[str, History], title: str = "") -> Figure:
    """Learning curves of several runs: the training loss of every step (left) and the
    held-out answer loss after every epoch (right, `val_loss`)."""
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    for i, (name, h) in enumerate(histories.items()):
        left.plot(range(1, len(h.steps) + 1), h.steps, color=f"C{i}", lw=1.2, label=name)
        if h.metric("val_loss"):
            right.plot(h.metric("epoch"), h.metric("val_loss"), "o-", color=f"C{i}", label=name)
    left.set(xlabel="optimizer step", ylabel="loss (batch)", title="training loss")
    right.set(xlabel="epoch", ylabel="loss on held-out answers", title="validation")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def answer_rows(
    test: Sequence[tuple[Any, str]], answers: Mapping[str, Sequence[str]], n: int = 8
) -> list[dict]:
    """The first `n` test prompts (the user's turn), the reference, and each model's answer."""
    rows = []
    for i, (messages, ref) in enumerate(test[:n]):
        row = {"prompt": messages[-1]["content"][:60], "reference": ref}
        row.update({name: repr(a[i].strip())[1:-1][:50] for name, a in answers.items()})
        rows.append(row)
    return rows
