"""A BERT encoder, mean pooling and a linear head as a Hugging Face model, for exported text models.

The course's text classifier (`heads.text_classifier`, lessons 05-07) averages MiniLM's token
vectors (mean pooling, the pooling lesson 03 measured better); transformers' own
`BertForSequenceClassification` reads only the [CLS] token through its pooler layer. So
`finetune`'s text export (lesson 07) saves this class's source next to the weights
(`register_for_auto_class`): `AutoModelForSequenceClassification.from_pretrained(folder,
trust_remote_code=True)` and `pipeline("text-classification", model=folder,
trust_remote_code=True)` then load it anywhere, without coursekit. Its module and parameter names
(`encoder`, `dropout`, `head`) are `TextClassifier`'s, so the same weights and the same peft
adapter fit both.

This file imports only torch and transformers: it is copied as is into every exported folder.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class MeanPoolingClassifier(BertPreTrainedModel):
    """BERT encoder -> mean of the real tokens' vectors -> dropout -> linear head."""

    config_class = BertConfig
    base_model_prefix = "encoder"

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.head = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        logits = self.head(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
