import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_cm
from sklearn.metrics import f1_score

from coursekit.training import accuracy, confusion_matrix, macro_f1


def test_accuracy_from_logits_and_from_predictions():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 1])
    assert accuracy(logits, labels) == pytest.approx(0.75)
    assert accuracy(torch.tensor([0, 1, 0, 1]), labels) == pytest.approx(0.75)


def test_confusion_matrix_and_macro_f1_match_scikit_learn():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200,), generator=g)
    preds = torch.where(
        torch.rand(200, generator=g) < 0.6, labels, torch.randint(0, 4, (200,), generator=g)
    )
    assert confusion_matrix(preds, labels, 4).tolist() == sk_cm(labels, preds).tolist()
    assert macro_f1(preds, labels) == pytest.approx(f1_score(labels, preds, average="macro"))


def test_mismatched_shapes_and_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="differ"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))
