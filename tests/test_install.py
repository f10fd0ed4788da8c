"""The install resolved to a torch/torchvision pair that works together (a mismatched pair
breaks `import torchvision`, and with it `import transformers`)."""

import torch


def test_torchvision_imports_and_runs_an_op():
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    keep = torchvision.ops.nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]  # the overlapping lower-score box is suppressed


def test_transformers_imports_with_torch_backend():
    import transformers

    assert transformers.is_torch_available()
    from transformers import BertConfig, BertModel

    model = BertModel(
        BertConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=100,
        )
    )
    out = model(input_ids=torch.tensor([[1, 2, 3]]))
    assert out.last_hidden_state.shape == (1, 3, 32)
