"""`--dropout 0` means no dropout anywhere: two forward passes in train mode are identical.

On transformers 4.x, BERT's SDPA attention takes its rate from `dropout_prob` (set from the
config), not from its `nn.Dropout`, so setting `nn.Dropout.p` alone left attention dropout on.
"""

import pytest
import torch
from transformers import BertModel

from coursekit.multi_gpu_example import set_dropout

from helpers import tiny_bert_config

IDS = torch.tensor([[1, 5, 7, 9, 11, 2], [1, 4, 4, 8, 2, 0]])
MASK = (IDS != 0).long()


def _bert(attn: str) -> BertModel:
    torch.manual_seed(0)
    config = tiny_bert_config(
        hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5, attn_implementation=attn
    )
    return BertModel(config).train()


def _twice(model: BertModel) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    first = model(input_ids=IDS, attention_mask=MASK).last_hidden_state
    second = model(input_ids=IDS, attention_mask=MASK).last_hidden_state
    return first, second


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_dropout_zero_makes_train_mode_deterministic(attn):
    model = _bert(attn)
    first, second = _twice(model)
    assert not torch.equal(first, second), "dropout 0.5 must change the output"
    set_dropout(model, 0.0)
    first, second = _twice(model)
    assert torch.equal(first, second)
    assert model.config.attention_probs_dropout_prob == 0.0
    assert model.config.hidden_dropout_prob == 0.0


def test_set_dropout_sets_every_rate_it_finds():
    model = _bert("sdpa")
    changed = set_dropout(model, 0.25)
    assert "" in changed and "embeddings.dropout" in changed  # the model's config, a Dropout
    rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    rates += [m.dropout_prob for m in model.modules() if hasattr(m, "dropout_prob")]
    assert rates and set(rates) == {0.25}
