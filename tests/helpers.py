"""Tiny learnable problems and tiny models shared by the tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


def blobs(n: int = 256, dim: int = 10, classes: int = 3, seed: int = 0) -> TensorDataset:
    """Gaussian blobs: a problem a small MLP learns in a few epochs."""
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    return TensorDataset(x, y)


def mlp(dim: int = 10, classes: int = 3, dropout: float = 0.2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, classes))


def tiny_bert_config(**overrides):
    """A 2-layer, 16-wide BERT config: a fast stand-in for MiniLM's shape (random weights).
    Keyword arguments override any field (sizes, num_labels ...)."""
    from transformers import BertConfig

    fields = dict(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    return BertConfig(**{**fields, **overrides})


def tiny_classifier(seed: int = 0) -> nn.Module:
    """A tiny BERT encoder with a 2-way `TextClassifier` head (random weights, for tests)."""
    from transformers import BertModel

    from coursekit.heads import TextClassifier

    torch.manual_seed(seed)
    return TextClassifier(BertModel(tiny_bert_config(), add_pooling_layer=False), num_classes=2)


# --- a tiny decoder and a byte-level chat tokenizer (lesson 08's shapes, random weights) --------

SMOLLM2_CHAT_TEMPLATE = (  # SmolLM2-Instruct's own template (from its GGUF file)
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_chat_tokenizer():
    """A byte-level tokenizer (one token per byte, exact round trip) with SmolLM2's special
    tokens and chat template: ids 0-255 are bytes, 256-258 <|endoftext|>, <|im_start|>,
    <|im_end|> (eos and pad, as in SmolLM2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    # a decoder's inputs, as SmolLM2's tokenizer has them (older transformers add token_type_ids)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, model_input_names=["input_ids", "attention_mask"]
    )
    tok.add_special_tokens(
        {
            "unk_token": "<|endoftext|>",
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>",
        }  # fmt: skip
    )
    tok.chat_template = SMOLLM2_CHAT_TEMPLATE
    return tok


def tiny_llama(vocab_size: int = 259, seed: int = 0) -> nn.Module:
    """A 2-layer, 32-wide Llama decoder (LlamaForCausalLM, tied embeddings, random weights)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True, bos_token_id=257, eos_token_id=258, pad_token_id=258,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()
