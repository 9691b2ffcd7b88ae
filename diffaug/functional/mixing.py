"""Erasing and mixing: boxes painted with a value, images blended with partners, labels mixed alike.

Pure tensor functions behind :class:`diffaug.RandomErasing`, :class:`diffaug.MixUp` and
:class:`diffaug.CutMix`. A box ``(x1, y1, x2, y2)`` is in pixels with exclusive ends (pixel
``(i, j)`` is the square ``[j, j + 1) x [i, i + 1)``). Boxes may be fractional: each pixel is
blended by the fraction of its square the box covers (:func:`box_cover`), so the result is
differentiable in the corners, and exactly the hard paste (weights 0 or 1) for integer corners.
"""

from __future__ import annotations

import torch
from torch import Tensor

from diffaug.functional import _checks, _constants

__all__ = ["box_cover", "box_area_fraction", "erase", "mixup", "cutmix", "one_hot", "mix_labels"]


def _ramp(t: Tensor, zero: Tensor, one: Tensor) -> Tensor:
    # min(max(t, 0), 1) with maximum/minimum, whose gradient at a tie is one half: at an integer
    # corner the two pixels beside it share the gradient (the mean of the one-sided derivatives).
    return torch.minimum(torch.maximum(t, zero), one)


def _axis_cover(low: Tensor, high: Tensor, length: int) -> Tensor:
    """``(B, length)``: the length of ``[low, high]`` inside each unit cell ``[k, k + 1)``."""
    edges = _constants.memo(("mixing-edges", length), low, lambda: torch.arange(length, device=low.device, dtype=low.dtype))
    zero, one = _constants.values(0.0, low), _constants.values(1.0, low)
    # |[k, k + 1) n (-inf, x]| = ramp(x - k); the overlap with [low, high] is the difference, never negative
    # once a reversed box is made empty (high raised to low; a clamp of the difference would add ties at 0).
    high = torch.maximum(high, low)
    return _ramp(high - edges, zero, one) - _ramp(low - edges, zero, one)


def box_cover(boxes: Tensor, size: tuple[int, int], weight: Tensor | None = None) -> Tensor:
    """The fraction of each pixel square inside each box: ``(B, 1, H, W)`` in ``[0, 1]``.

    The cover is separable, ``cover_y (B, H) x cover_x (B, W)``: exactly 0 or 1 for integer
    corners, fractional on the edge pixels of a fractional box, and differentiable in the corners
    (at an integer corner the gradient is the mean of its one-sided values). Corners outside the
    image are clipped by the cover itself; a box with ``x2 <= x1`` or ``y2 <= y1`` covers nothing.

    Args:
        boxes: ``(B, 4)`` XYXY pixel boxes, floating point.
        size: ``(H, W)`` of the images.
        weight: optional ``(B,)`` factor per box (a per-sample strength, e.g. the probability draw).

    Examples:
        >>> import torch
        >>> box_cover(torch.tensor([[1.0, 0.0, 3.0, 1.0]]), (2, 4))[0, 0]
        tensor([[0., 1., 1., 0.],
                [0., 0., 0., 0.]])
        >>> box_cover(torch.tensor([[0.5, 0.0, 1.0, 2.0]]), (2, 2))[0, 0]  # half of pixel column 0
        tensor([[0.5000, 0.0000],
                [0.5000, 0.0000]])
    """
    cover_y, cover_x = _axis_covers(boxes, size, weight)
    return (cover_y * cover_x).unsqueeze(1)


def _axis_covers(boxes: Tensor, size: tuple[int, int], weight: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(B, H, 1)`` and ``(B, 1, W)``: the cover's two factors (the weight folded into the first)."""
    height, width = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    cover_y = _axis_cover(y1.unsqueeze(-1), y2.unsqueeze(-1), height)
    cover_x = _axis_cover(x1.unsqueeze(-1), x2.unsqueeze(-1), width)
    if weight is not None:
        cover_y = cover_y * weight.to(cover_y).unsqueeze(-1)
    return cover_y.unsqueeze(-1), cover_x.unsqueeze(-2)


def box_area_fraction(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B,)``: the part of the image each box covers after clipping to it (``box_cover``'s mean).

    Examples:
        >>> import torch
        >>> box_area_fraction(torch.tensor([[-2.0, 0.0, 2.0, 4.0], [1.0, 1.0, 1.0, 3.0]]), (4, 4))
        tensor([0.5000, 0.0000])
    """
    height, width = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    inside_w = (x2.clamp(max=width) - x1.clamp(min=0)).clamp(min=0)
    inside_h = (y2.clamp(max=height) - y1.clamp(min=0)).clamp(min=0)
    return inside_w * inside_h / float(height * width)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # The cover in float32 (float64 stays): bfloat16 holds integers exactly only up to 256, so a corner
    # at 257 would move; the 0/1 weights it gives are exact in every dtype.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _blend(start: Tensor, end: Tensor, weight: Tensor, scratch: bool = False) -> Tensor:
    """``start + weight (end - start)``, exactly ``start`` where ``weight`` is 0 and ``end`` where it is 1.

    ``uint8`` is blended in float32 and rounded back (saturating); untouched pixels keep their value.
    ``scratch``: ``start`` is a temporary of the output's shape (a gather) and is blended in place,
    which saves allocating and first touching a new batch-sized tensor.
    """
    if start.dtype == torch.uint8:
        blended = torch.lerp(start.float(), end.float(), weight.float())
        return blended.round_().clamp_(0, 255).to(torch.uint8)
    if scratch:
        return start.lerp_(end.to(start.dtype), weight.to(start.dtype))
    return torch.lerp(start, end.to(start.dtype), weight.to(start.dtype))


def erase(images: Tensor, boxes: Tensor, value: Tensor | float = 0.0, weight: Tensor | None = None) -> Tensor:
    """Paint each image's box with ``value``: ``images + cover (value - images)``.

    Pixels outside the box are returned bitwise unchanged; with integer corners the box is
    painted exactly (torchvision's ``erase`` per sample). Differentiable in the images, the
    value and the corners (see :func:`box_cover`).

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)``, floating point or ``uint8``.
        boxes: ``(B, 4)`` (or ``(4,)`` for one image) XYXY pixel boxes.
        value: a number, or a tensor that broadcasts to the images: ``(C, 1, 1)`` one per channel,
            ``(B, C, H, W)`` per pixel (noise, or other images: CutMix).
        weight: optional ``(B,)`` strength per sample (0 leaves the image unchanged).

    Returns:
        The images' shape and dtype.

    Examples:
        >>> import torch
        >>> out = erase(torch.ones(1, 1, 3, 4), torch.tensor([[1.0, 1.0, 3.0, 2.0]]), value=0.0)
        >>> out[0, 0]
        tensor([[1., 1., 1., 1.],
                [1., 0., 0., 1.],
                [1., 1., 1., 1.]])
    """
    _checks.check_images(images)
    if images.ndim == 3:
        one_weight = None if weight is None else weight.reshape(1)
        return erase(images.unsqueeze(0), boxes.reshape(1, 4), value, one_weight).squeeze(0)
    _checks.check_boxes(boxes, images)
    if boxes.shape != (images.shape[0], 4):
        raise ValueError(f"boxes must have shape (B, 4) = ({images.shape[0]}, 4), one per image, got {tuple(boxes.shape)}")
    compute = _compute_dtype(images.dtype)
    cover = box_cover(boxes.to(compute), (images.shape[-2], images.shape[-1]), weight)
    target = value if isinstance(value, Tensor) else _constants.values(float(value), cover)
    return _blend(images, target, cover)


def _check_batch(images: Tensor, partner: Tensor) -> None:
    _checks.check_images(images)
    if images.ndim != 4:
        raise ValueError(f"images must be a batch (B, C, H, W) to mix, got {tuple(images.shape)}")
    if not isinstance(partner, Tensor) or partner.shape != (images.shape[0],) or partner.dtype != torch.long:
        got = (tuple(partner.shape), partner.dtype) if isinstance(partner, Tensor) else type(partner).__name__
        raise ValueError(f"partner must be a (B,) = ({images.shape[0]},) long tensor of indices into the batch, got {got}")


def _partners(images: Tensor, partner: Tensor) -> Tensor:
    """``images[partner]``: the same values, through ``index_select`` on one CPU thread.

    For a (64, 3, 224, 224) float32 batch on one thread (as in data-loading workers) indexing costs
    about 1.2x a ``clone`` and ``index_select`` 1.0x: it copies whole samples as blocks. But it runs
    one parallel region per sample, so with more threads than free cores every sample waits for a
    core (2 threads beside a busy process: 6x a ``clone``, indexing 1.25x); there indexing is kept.
    Compiled, indexing too (the thread count is not traced; Inductor fuses the gather into the blend).
    """
    # index_select returns a contiguous batch: only for contiguous images (channels-last stays channels-last).
    if torch.compiler.is_compiling() or images.device.type != "cpu" or not images.is_contiguous():
        return images[partner]
    if torch.get_num_threads() == 1:
        return images.index_select(0, partner)
    return images[partner]


def mixup(images: Tensor, partner: Tensor, lam: Tensor) -> Tensor:
    """Blend each image with its partner: ``lam * images + (1 - lam) * images[partner]``.

    Args:
        images: ``(B, C, H, W)``, floating point or ``uint8``.
        partner: ``(B,)`` long: the image each sample is mixed with.
        lam: ``(B,)``: each sample's own share (1 keeps the image, bitwise).

    Examples:
        >>> import torch
        >>> images = torch.tensor([0.0, 10.0]).view(2, 1, 1, 1)
        >>> mixup(images, torch.tensor([1, 0]), torch.tensor([0.75, 1.0])).flatten()
        tensor([ 2.5000, 10.0000])
    """
    _check_batch(images, partner)
    return _blend(_partners(images, partner), images, lam.view(-1, 1, 1, 1), scratch=True)


def cutmix(images: Tensor, partner: Tensor, boxes: Tensor, weight: Tensor | None = None) -> Tensor:
    """Paste each partner's box into each image: :func:`erase` with ``images[partner]`` as the value.

    Args:
        images: ``(B, C, H, W)``, floating point or ``uint8`` (exact for integer boxes: masks too).
        partner: ``(B,)`` long: the image each sample takes its box from.
        boxes: ``(B, 4)`` XYXY pixel boxes, clipped to the image by the cover.
        weight: optional ``(B,)`` strength per sample.

    Examples:
        >>> import torch
        >>> images = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
        >>> cutmix(images, torch.tensor([1, 0]), torch.tensor([[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0]]))[:, 0]
        tensor([[[1., 0.],
                 [1., 0.]],
        <BLANKLINE>
                [[1., 1.],
                 [1., 1.]]])
    """
    _check_batch(images, partner)
    _checks.check_boxes(boxes, images)
    if boxes.shape != (images.shape[0], 4):
        raise ValueError(f"boxes must have shape (B, 4) = ({images.shape[0]}, 4), one per image, got {tuple(boxes.shape)}")
    compute = _compute_dtype(images.dtype)
    cover_y, cover_x = _axis_covers(boxes.to(compute), (images.shape[-2], images.shape[-1]), weight)
    own = torch.addcmul(_constants.values(1.0, cover_y), cover_y, cover_x, value=-1).unsqueeze(1)  # 1 - cover, one pass
    # The partner's pixels blended towards the sample's own outside the box: one batch-sized temporary.
    return _blend(_partners(images, partner), images, own, scratch=True)


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(B,)`` class indices -> ``(B, num_classes)`` one-hot rows (an index outside the classes gives a zero row).

    A comparison with ``arange``, not ``F.one_hot``, which reads the indices (a host sync).

    Examples:
        >>> import torch
        >>> one_hot(torch.tensor([2, 0]), 3)
        tensor([[0., 0., 1.],
                [1., 0., 0.]])
    """
    classes = _constants.memo(("mixing-classes", num_classes), labels, lambda: torch.arange(num_classes, device=labels.device))
    return (labels.unsqueeze(-1) == classes).to(dtype)


def mix_labels(labels: Tensor, partner: Tensor, weight: Tensor, num_classes: int | None = None) -> Tensor:
    """Soft labels of mixed samples: ``weight * labels + (1 - weight) * labels[partner]``.

    Args:
        labels: ``(B, K)`` floating point rows (one-hot or soft), or ``(B,)`` class indices with
            ``num_classes``: the two weights are then scattered into zero rows, without building
            one-hot rows first (an index outside the classes is dropped).
        partner: ``(B,)`` long.
        weight: ``(B,)``: each sample's own share of its image (MixUp's lambda, CutMix's kept area).
        num_classes: ``K``, for class indices.

    Returns:
        ``(B, K)`` in ``weight``'s dtype for class indices, else in the labels' dtype.

    Examples:
        >>> import torch
        >>> mix_labels(torch.eye(2), torch.tensor([1, 0]), torch.tensor([0.75, 1.0]))
        tensor([[0.7500, 0.2500],
                [0.0000, 1.0000]])
        >>> mix_labels(torch.tensor([1, 0]), torch.tensor([1, 0]), torch.tensor([0.75, 1.0]), num_classes=3)
        tensor([[0.2500, 0.7500, 0.0000],
                [1.0000, 0.0000, 0.0000]])
    """
    if labels.ndim == 2:
        return torch.lerp(labels[partner], labels, weight.to(labels.dtype).unsqueeze(-1))
    if num_classes is None:
        raise ValueError("num_classes must be given for labels that are class indices (B,)")
    columns = torch.stack([labels, labels[partner]], dim=-1)
    # An index outside [0, K) adds nothing (a zero row, as one_hot's comparison gives), read by no host.
    valid = (columns >= 0) & (columns < num_classes)
    shares = torch.stack([weight, 1 - weight], dim=-1) * valid
    return weight.new_zeros(labels.shape[0], num_classes).scatter_add_(1, columns.clamp(0, num_classes - 1), shares)
