"""Chain geometric transforms into one matrix per sample and resample once.

Each transform's ``make_params`` is drawn for the canvas it would see (the crop's output size
after a crop), their thetas composed in the order the transforms apply
(``M = M_first @ ... @ M_last``, the convention of :mod:`diffaug.functional.geometry`), and the
images are warped once: no blur from repeated bilinear resampling, one kernel call.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from diffaug import functional as daf
from diffaug.functional.geometry import pipeline_theta
from diffaug.transforms.base import GeometricTransform, param_dtype, stand_in

__all__ = ["fused_matrix", "check_gradient_path"]


def fused_matrix(
    transforms: Sequence[GeometricTransform], images: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, tuple[int, int]]:
    """Draw each transform's parameters and compose them into ``(B, 3, 3)`` (output -> input, normalised).

    Args:
        transforms: applied left to right.
        images: ``(B, C, H, W)``; only the shape, dtype and device are read.
        generator: optional random generator shared by all draws.

    Returns:
        ``(matrix, size)``: the composed matrix and the output ``(h, w)`` of the last transform.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 1, 8, 8)
        >>> m, size = fused_matrix([da.RandomResizedCrop(4), da.RandomRotation(10)], images)
        >>> m.shape, size
        (torch.Size([2, 3, 3]), (4, 4))
    """
    batch, _, height, width = images.shape
    size = (height, width)
    thetas = [daf.to_theta(daf.identity(batch, images.device, param_dtype(images)))]
    for transform in transforms:
        params = transform.make_params(stand_in(images, batch, size), generator=generator)
        thetas.append(params.theta)
        size = (int(params.size[0]), int(params.size[1]))
    return daf.to_square(pipeline_theta(thetas)), size


def check_gradient_path(module: nn.Module) -> None:
    """Refuse a learnable pipeline that samples with nearest interpolation: its warp parameters get no gradient.

    ``grid_sample``'s nearest mode is piecewise constant in the sampling grid, so the gradient
    with respect to every warp parameter is exactly zero; only a learnable probability would
    still learn (through the relaxed draw). A silent zero gradient looks like a converged search,
    so this raises instead. A single transform refuses ``learnable=True`` with nearest itself
    (:class:`~diffaug.transforms.base.GeometricTransform`); this checks a module whose warp settings
    and learnable parts sit in different places (a :class:`~diffaug.search.Policy` and its operations).

    Raises:
        ValueError: naming the transform.

    Examples:
        >>> from diffaug.search import Policy
        >>> Policy(num_subpolicies=1, depth=1, interpolation="nearest")  # runs check_gradient_path(self)
        Traceback (most recent call last):
        ...
        ValueError: Policy at 'top level' has learnable ... but interpolation is nearest: ...
    """
    for name, sub in module.named_modules():
        if not isinstance(sub, GeometricTransform) or getattr(sub, "mode", "bilinear") != "nearest":
            continue
        learnable = [n for n, p in sub.named_parameters() if p.requires_grad and n != "p_logit"]
        if learnable:
            raise ValueError(
                f"{type(sub).__name__} at {name or 'top level'!r} has learnable {', '.join(learnable)} but interpolation is "
                "nearest: nearest sampling gives a zero gradient with respect to the warp; use interpolation='bilinear'"
            )
        if sub.p_logit is not None:
            warnings.warn(f"{type(sub).__name__} uses nearest interpolation: only its probability can learn", stacklevel=2)
