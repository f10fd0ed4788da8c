"""Instruction-tuning a generative language model (lesson 08), in small modules:

    loader        the packaged SmolLM2-135M-Instruct (GGUF -> cached float32, offline) or a hub
                  model (4-bit on a GPU for QLoRA): `load_decoder()`
    sft           chat template, SFT examples with the loss masked on the prompt, batches,
                  `causal_lm_loss` for `fit`, the held-out answer loss (`ResponseLoss`)
    generate      answers in batches: greedy or sampled, capped, stopped at end of turn,
                  left-padded
    metrics       exact match, format rate, lenient accuracy (with intervals), perplexity
    tasks         the lesson's task: a BBC News headline's topic in one word
    quantization  what 4-bit storage keeps and saves; bitsandbytes' QLoRA settings
    experiment    one run: `tune` (LoRA or full, through `fit`) and `grade` (answers, scores)
    plan          which model, precision and sizes a run uses (mode, GPU, network)
    parity        the course's LoRA against peft's on the decoder: logits and gradients
    export        merge LoRA, save a Hugging Face model + a peft adapter, check they reload
    instructions  your own instruction data (JSONL) for `coursekit finetune`, checked line by line
    command       `coursekit finetune | predict` on instruction data
    show          the lesson's tables and plots

Training goes through `coursekit.fit` with `loss_fn=causal_lm_loss`; LoRA is `coursekit.lora`.
"""

from .experiment import (
    Graded,
    adapter_off,
    answer_losses,
    encode_pairs,
    grade,
    lora_vs_full,
    tune,
)
from .export import export_merged, export_peft_adapter, folder_mb, reload_and_generate
from .generate import GenerationSettings, generate, generate_batch
from .loader import PACKAGED, Decoder, cache_dir, load_decoder, restore_packaged
from .metrics import Score, exact_match, format_rate, lenient_accuracy, parse_label, perplexity
from .parity import lora_peft_gap
from .plan import HUB_IDS, SFTPlan, parameter_count, sft_plan
from .quantization import (
    BITS_PER_WEIGHT,
    block_levels,
    bnb_4bit_config,
    compare_weights,
    requantize_roundtrip,
    rounding_error,
    storage_table,
)
from .sft import (
    IGNORE_INDEX,
    ResponseLoss,
    SFTExample,
    causal_lm_loss,
    chat_prompt,
    collate,
    encode_example,
    response_loss,
    sft_loader,
)
from .tasks import SYSTEM, TopicTask, headline, headline_topics

__all__ = [
    "BITS_PER_WEIGHT",
    "HUB_IDS",
    "IGNORE_INDEX",
    "PACKAGED",
    "SYSTEM",
    "Decoder",
    "Graded",
    "GenerationSettings",
    "ResponseLoss",
    "SFTExample",
    "SFTPlan",
    "Score",
    "TopicTask",
    "adapter_off",
    "answer_losses",
    "block_levels",
    "bnb_4bit_config",
    "cache_dir",
    "causal_lm_loss",
    "chat_prompt",
    "collate",
    "compare_weights",
    "encode_example",
    "encode_pairs",
    "exact_match",
    "export_merged",
    "export_peft_adapter",
    "folder_mb",
    "format_rate",
    "generate",
    "generate_batch",
    "grade",
    "headline",
    "headline_topics",
    "lenient_accuracy",
    "lora_peft_gap",
    "lora_vs_full",
    "load_decoder",
    "parse_label",
    "parameter_count",
    "perplexity",
    "reload_and_generate",
    "requantize_roundtrip",
    "restore_packaged",
    "response_loss",
    "rounding_error",
    "sft_loader",
    "sft_plan",
    "storage_table",
    "tune",
]
