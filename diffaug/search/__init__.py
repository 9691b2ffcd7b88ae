"""Learnable augmentation search: a density-matching search loop and a Faster-AutoAugment-style policy.

* :class:`Policy`: ``K`` sub-policies of learnable operations, Gumbel-softmax operation choice,
  one fused warp per call; :meth:`Policy.export` gives a plain copy for ordinary training.
* :func:`search`: recover hidden crop-scale / rotation ranges and ColorJitter brightness /
  contrast / saturation ranges by matching feature distributions (the ``diffaug search`` command).
* :func:`freeze`, :func:`fused_matrix`, :func:`check_gradient_path`: helpers for learnable pipelines.
"""

from diffaug.search._fuse import check_gradient_path, fused_matrix
from diffaug.search.policy import Policy, Stage, default_ops, freeze
from diffaug.search.search import (
    MMDMatcher,
    QuantileMatcher,
    SearchConfig,
    colour_bank,
    colour_features,
    features,
    search,
    texture_bank,
)

__all__ = [
    "MMDMatcher",
    "Policy",
    "QuantileMatcher",
    "SearchConfig",
    "Stage",
    "check_gradient_path",
    "colour_bank",
    "colour_features",
    "default_ops",
    "features",
    "freeze",
    "fused_matrix",
    "search",
    "texture_bank",
]
