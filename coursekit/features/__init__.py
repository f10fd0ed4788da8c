"""Feature extraction: run a frozen backbone once, cache what it says, reuse it (lessons 02, 03, 06)."""

from .cache import clear_feature_cache, feature_key, last_extraction, state_digest, tensor_digest
from .extract import extract_features, extract_image_features, extract_text_features

__all__ = [
    "clear_feature_cache",
    "extract_features",
    "extract_image_features",
    "extract_text_features",
    "feature_key",
    "last_extraction",
    "state_digest",
    "tensor_digest",
]
