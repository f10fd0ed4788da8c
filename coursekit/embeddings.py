"""Looking inside embeddings without training anything: similarity, 2-D projection, and how well
classes separate by distance alone (a nearest-centroid classifier has no trained weights).
Lessons 01, 03 and 06.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "cosine_similarity_matrix",
    "nearest_centroid_accuracy",
    "nearest_centroid_hits",
    "pca_2d",
]


def cosine_similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """All pairwise cosine similarities of the rows of `x` (N×D -> N×N)."""
    x = F.normalize(x.float(), dim=-1)
    return x @ x.T


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """Project rows of `x` onto their top two principal components (deterministic signs)."""
    x = x.float() - x.float().mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    comps = v[:2]
    signs = torch.sign(comps[torch.arange(2), comps.abs().argmax(1)])  # fix the SVD sign ambiguity
    return x @ (comps * signs[:, None]).T


def nearest_centroid_hits(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> torch.Tensor:
    """1.0 / 0.0 for each test row: is it most cosine-similar to its own class's mean train
    embedding? (Per-example results, for paired comparisons of two embeddings.)"""
    classes = int(train_y.max()) + 1
    centroids = torch.stack([train_x[train_y == c].float().mean(0) for c in range(classes)])
    sims = F.normalize(test_x.float(), dim=-1) @ F.normalize(centroids, dim=-1).T
    return (sims.argmax(1) == test_y).float()


def nearest_centroid_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> float:
    """Accuracy of assigning each test row to the class whose mean train embedding is most
    cosine-similar. High accuracy means the classes are already separated in embedding space."""
    return nearest_centroid_hits(train_x, train_y, test_x, test_y).mean().item()
