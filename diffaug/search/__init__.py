"""Learnable augmentation search: a density-matching search loop and a Faster-AutoAugment-style policy.

* :class:`Policy`: ``K`` sub-policies of learnable operations (geometric, colour and pixel;
  :func:`default_ops` geometric, :func:`all_ops` the whole set), Gumbel-softmax operation choice,
  one warp per call; :meth:`Policy.export` gives a plain copy for ordinary training.
* :func:`search`: recover hidden crop-scale / rotation ranges and ColorJitter brightness /
  contrast / saturation ranges by matching feature distributions (the ``diffaug search`` command).
* :func:`freeze`, :func:`fused_matrix`, :func:`check_gradient_path`: helpers for learnable pipelines.
"""

from diffaug.search._fuse import check_gradient_path, fused_matrix
from diffaug.search.policy import LearnablePolicyParams, Policy, Stage, all_ops, default_ops, freeze, op_kind
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
    "LearnablePolicyParams",
    "QuantileMatcher",
    "SearchConfig",
    "Stage",
    "all_ops",
    "check_gradient_path",
    "colour_bank",
    "colour_features",
    "default_ops",
    "features",
    "freeze",
    "fused_matrix",
    "op_kind",
    "search",
    "texture_bank",
]
