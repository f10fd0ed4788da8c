import pytest
import torch

from coursekit.embeddings import (
    cosine_similarity_matrix,
    nearest_centroid_accuracy,
    nearest_centroid_hits,
    pca_2d,
)


def test_cosine_similarity_matrix_values():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    sim = cosine_similarity_matrix(x)
    torch.testing.assert_close(sim.diag(), torch.ones(3))
    assert sim[0, 1].item() == 0.0
    assert abs(sim[0, 2].item() - 2**-0.5) < 1e-6


def test_pca_2d_finds_the_direction_of_largest_spread():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 5, generator=g) * torch.tensor([10.0, 0.1, 0.1, 3.0, 0.1])
    p = pca_2d(x)
    assert p.shape == (500, 2)
    assert p[:, 0].var() > 50 and 5 < p[:, 1].var() < 15  # variances ~100 and ~9


def test_nearest_centroid_separates_clusters_and_fails_on_noise():
    g = torch.Generator().manual_seed(0)
    centers = torch.eye(3) * 5
    y = torch.arange(300) % 3
    x = centers[y] + torch.randn(300, 3, generator=g)
    assert nearest_centroid_accuracy(x[:150], y[:150], x[150:], y[150:]) > 0.95
    noise = torch.randn(300, 3, generator=g)
    assert nearest_centroid_accuracy(noise[:150], y[:150], noise[150:], y[150:]) < 0.6


def test_nearest_centroid_hits_mark_each_test_row():
    train_x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    train_y = torch.tensor([0, 1])
    test_x = torch.tensor([[2.0, 0.1], [0.1, 3.0], [1.0, 0.0]])
    test_y = torch.tensor([0, 1, 1])  # the last one sits on class 0's centroid
    hits = nearest_centroid_hits(train_x, train_y, test_x, test_y)
    assert hits.tolist() == [1.0, 1.0, 0.0]
    assert nearest_centroid_accuracy(train_x, train_y, test_x, test_y) == pytest.approx(2 / 3)
