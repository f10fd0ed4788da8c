"""Feature extraction: run a frozen backbone once, cache its output, reuse it (lessons 02, 03, 06).

extract.py   extract_features and its image / text forms
cache.py     keys that never go stale, the in-memory LRU and safetensors files
"""

from .cache import clear_feature_cache, feature_key, last_extraction, state_digest, tensor_digest
from .extract import (
    extract_features,
    extract_image_features,
    extract_text_features,
    pooled_text_features,
)

__all__ = [
    "clear_feature_cache",
    "extract_features",
    "extract_image_features",
    "extract_text_features",
    "feature_key",
    "last_extraction",
    "pooled_text_features",
    "state_digest",
    "tensor_digest",
]
