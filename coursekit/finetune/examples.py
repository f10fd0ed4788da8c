"""Real course data written out the way a learner keeps their own (for lesson 07 and its tests).

`fashion_mnist_folder` writes Fashion-MNIST test images as PNG files, one sub-folder per class
(`root/Trouser/0003.png`): the `ImageFolder` layout of a phone's photos sorted into folders.
`tweets_csv` writes the sentiment-labelled tweets as a CSV with a `text` and a `sentiment` column,
the table a spreadsheet export gives. Both sample a fixed number per class from a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from coursekit.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, load_tweets

__all__ = ["fashion_mnist_folder", "tweets_csv"]


def _sample(labels: np.ndarray, classes: Sequence[int], per_class: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [
        int(i) for c in classes for i in rng.permutation(np.flatnonzero(labels == c))[:per_class]
    ]


def fashion_mnist_folder(
    root: str | Path, per_class: int = 60, classes: Sequence[str] | None = None, seed: int = 0
) -> Path:
    """PNG files of Fashion-MNIST test images under `root/<class>/NNNN.png`; returns `root`.
    `classes`: a subset of the class names (default all 10; "/" in a name becomes "-")."""
    from PIL import Image

    root = Path(root)
    test = load_fashion_mnist().test
    names = list(classes) if classes is not None else list(FASHION_MNIST_CLASSES)
    ids = [FASHION_MNIST_CLASSES.index(n) for n in names]
    for i in _sample(test.y.numpy(), ids, per_class, seed):
        folder = root / FASHION_MNIST_CLASSES[int(test.y[i])].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.x[i].numpy(), mode="L").save(folder / f"{i:05d}.png")
    return root


def tweets_csv(path: str | Path, per_class: int = 150, seed: int = 0, binary: bool = False) -> Path:
    """A UTF-8 CSV of tweets (columns `text`, `sentiment`), `per_class` of each sentiment."""
    import pandas as pd

    data = load_tweets(binary=binary)
    texts = data.train.x + data.val.x + data.test.x
    labels = np.concatenate([data.train.y.numpy(), data.val.y.numpy(), data.test.y.numpy()])
    chosen = _sample(labels, range(len(data.classes)), per_class, seed)
    rows = {
        "text": [texts[i] for i in chosen],
        "sentiment": [data.classes[labels[i]] for i in chosen],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).sample(frac=1.0, random_state=seed).to_csv(path, index=False)
    return path
