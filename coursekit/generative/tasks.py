"""Lesson 08's task: name a BBC News headline's topic in one word.

Classification as generation: the model reads a headline and must *write* its topic, exactly
one of five words. The base instruction model understands the request but answers in sentences,
lists or echoes of the headline; supervised fine-tuning on a few dozen examples teaches it the
format and the mapping. Headlines are short (about 10 tokens), so a training example with its
chat template is about 40 tokens: short enough to train a 135M-parameter model on a laptop CPU.

Data come from the course's BBC News splits (`datasets.load_bbc_news`): training examples from
its train split, validation from val, the held-out test from test, balanced over topics.
Lesson 08.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets import Split, load_bbc_news, per_class

__all__ = ["SYSTEM", "TopicTask", "headline", "headline_topics"]

SYSTEM = "Reply with the topic: business, entertainment, politics, sports or tech."


def headline(article: str) -> str:
    """A BBC News article's headline: its first line."""
    return article.strip().split("\n", 1)[0].strip()


def _messages(title: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": title}]


@dataclass(frozen=True)
class TopicTask:
    """Conversations (system + user headline) and one-word answers for each split."""

    labels: tuple[str, ...]
    train: list[tuple[list[dict[str, str]], str]]
    val: list[tuple[list[dict[str, str]], str]]
    test: list[tuple[list[dict[str, str]], str]]
    test_bodies: list[str]  # the test articles' text without headline: general text

    def sample(self, n: int, seed: int) -> list[tuple[list[dict[str, str]], str]]:
        """`n` training examples drawn (without replacement) with `seed`: one seed, one run."""
        if n > len(self.train):
            raise ValueError(f"only {len(self.train)} training examples, asked for {n}")
        order = np.random.default_rng(seed).permutation(len(self.train))[:n]
        return [self.train[i] for i in order]


def _pairs(split: Split, labels: tuple[str, ...]) -> list[tuple[list[dict[str, str]], str]]:
    return [(_messages(headline(x)), labels[int(y)]) for x, y in zip(split.x, split.y, strict=True)]


def headline_topics(
    train_per_class: int = 40, val_per_class: int = 4, test_per_class: int = 12, seed: int = 0
) -> TopicTask:
    """The headline-topic task on balanced samples of BBC News's train / val / test splits."""
    bbc = load_bbc_news(seed=0)
    labels = tuple(bbc.classes)
    parts = {
        name: per_class(split, n, seed=seed)
        for name, split, n in (("train", bbc.train, train_per_class),
                               ("val", bbc.val, val_per_class),
                               ("test", bbc.test, test_per_class))
    }  # fmt: skip
    bodies = [x.strip().split("\n", 1)[-1].strip() for x in parts["test"].x]
    return TopicTask(
        labels,
        _pairs(parts["train"], labels),
        _pairs(parts["val"], labels),
        _pairs(parts["test"], labels),
        bodies,
    )
