"""Learnable augmentation search: a density-matching search loop and a Faster-AutoAugment-style policy."""

from diffaug.search._fuse import check_gradient_path, fused_matrix
from diffaug.search.search import MMDMatcher, QuantileMatcher, SearchConfig, features, search, texture_bank

__all__ = [
    "MMDMatcher",
    "QuantileMatcher",
    "SearchConfig",
    "check_gradient_path",
    "features",
    "fused_matrix",
    "search",
    "texture_bank",
]
