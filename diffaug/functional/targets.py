"""Boxes, keypoints and masks through the same ``theta`` as the images.

``theta`` maps output normalised coordinates to input normalised coordinates (see
:mod:`diffaug.functional.geometry`), so targets, which live in the input, go through its
inverse: points by the forward pixel matrix, boxes by their four corners (the enclosing
axis-aligned box, clipped to the output canvas, with a validity flag), masks by resampling
with the same ``theta`` (nearest for integer masks, which stay integer; bilinear for soft
masks). Every function also takes the inverse of a pipeline's ``theta``
(:func:`inverse_theta`) to map targets back, e.g. for test-time augmentation.

Pixel coordinates are continuous: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, so the
centre of a pixel is ``(j + 0.5, i + 0.5)``. torchvision's ``KeyPoints`` are pixel indices
(its flips map ``x`` to ``W - 1 - x``); :func:`transform_tv` shifts them by half a pixel on
the way in and out.

torchvision ``tv_tensors`` are handled by :func:`transform_tv`: ``BoundingBoxes`` of every
format (``XYXY``, ``XYWH``, ``CXCYWH`` through the enclosing box; the rotated ``XYWHR``,
``CXCYWHR`` and ``XYXYXYXY`` through their four corners), ``KeyPoints`` and ``Mask`` come
back as the same type with the new ``canvas_size``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from diffaug.functional import _checks
from diffaug.functional.geometry import apply_to_points, invert, pixel_matrix_from_normalized, to_square, to_theta
from diffaug.functional.warp import warp

__all__ = [
    "inverse_theta",
    "forward_pixel_matrix",
    "transform_points",
    "transform_boxes",
    "transform_keypoints",
    "transform_masks",
    "transform_tv",
]


def inverse_theta(theta: Tensor) -> Tensor:
    """The ``theta`` of the inverse warp: ``(..., 2, 3)`` -> ``(..., 2, 3)``.

    Examples:
        >>> import torch
        >>> theta = torch.tensor([[0.5, 0.0, 0.25], [0.0, 2.0, 0.0]])
        >>> torch.allclose(inverse_theta(theta), torch.tensor([[2.0, 0.0, -0.5], [0.0, 0.5, 0.0]]))
        True
    """
    return to_theta(invert(to_square(theta)))


def forward_pixel_matrix(theta: Tensor, in_size: Sequence[int], out_size: Sequence[int]) -> Tensor:
    """``(..., 3, 3)`` matrix taking *input* pixel coordinates to *output* pixel coordinates.

    Examples:
        >>> import torch
        >>> zoom = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # the central half, enlarged
        >>> forward_pixel_matrix(zoom, (8, 8), (8, 8))[:2].tolist()  # x_out = 2 x_in - 4
        [[2.0, -0.0, -4.0], [-0.0, 2.0, -4.0]]
    """
    return invert(pixel_matrix_from_normalized(to_square(theta), in_size, out_size))


def _check_theta(theta: object) -> Tensor:
    if not isinstance(theta, Tensor) or not theta.is_floating_point():
        raise TypeError(f"theta must be a floating point torch.Tensor of shape (B, 2, 3) or (2, 3), got {type(theta).__name__}")
    if theta.ndim not in (2, 3) or theta.shape[-2:] != (2, 3):
        raise ValueError(f"theta must have shape (B, 2, 3) or (2, 3), got {tuple(theta.shape)}")
    return _checks.check_finite(theta, "theta")


def _matrices(
    theta: Tensor, in_size: Sequence[int], out_size: Sequence[int], target: Tensor, name: str, batch_index: Tensor | None
) -> Tensor:
    """Forward pixel matrices: ``(K, 3, 3)`` with ``batch_index``, ``(B, 3, 3)`` or a single ``(3, 3)``."""
    _check_theta(theta)
    _checks.check_same_device(target, theta, name)
    matrix = forward_pixel_matrix(theta.to(target.dtype), in_size, out_size)
    if batch_index is not None:
        if theta.ndim != 3:
            raise ValueError("batch_index needs a batch of theta (B, 2, 3)")
        _checks.check_batch_index(batch_index, target.shape[0], theta.shape[0])
        return matrix[batch_index]
    if theta.ndim == 3 and (target.ndim < 2 or target.shape[0] != theta.shape[0]):
        raise ValueError(
            f"{name} must have a leading batch dimension of {theta.shape[0]} (one row per image) or come with a "
            f"batch_index, got shape {tuple(target.shape)}"
        )
    return matrix


def transform_points(
    points: Tensor, theta: Tensor, in_size: Sequence[int], out_size: Sequence[int], batch_index: Tensor | None = None
) -> Tensor:
    """Input pixel points -> output pixel points under the warp ``theta``.

    Args:
        points: ``(B, N, 2)`` (or ``(B, ..., 2)``) with ``theta`` ``(B, 2, 3)``; ``(K, 2)`` with
            ``batch_index`` ``(K,)``; any ``(..., 2)`` with a single ``theta`` ``(2, 3)``.
        theta: output normalised -> input normalised, as :func:`diffaug.functional.warp` takes it.
        in_size, out_size: ``(H, W)`` of the input and output canvases.

    Returns:
        points of the same shape, differentiable in ``points`` and ``theta``.

    Examples:
        >>> import torch
        >>> flip = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> transform_points(torch.tensor([[0.5, 1.0]]), flip, (4, 8), (4, 8))
        tensor([[7.5000, 1.0000]])
    """
    _check_points(points, "points")
    matrix = _matrices(theta, in_size, out_size, points, "points", batch_index)
    # (B, M, 2) against (B, 3, 3); a single matrix takes every point at once.
    flat = points.reshape(-1, 2) if matrix.ndim == 2 else points.reshape(points.shape[0], -1, 2)
    return apply_to_points(matrix, flat).reshape(points.shape)


def _check_points(points: object, name: str) -> Tensor:
    return _checks.check_coordinates(points, name, 2, "as (x, y) pixel coordinates")


def transform_boxes(
    boxes: Tensor,
    theta: Tensor,
    in_size: Sequence[int],
    out_size: Sequence[int],
    box_mask: Tensor | None = None,
    batch_index: Tensor | None = None,
    clip: bool = True,
    box_format: str = "XYXY",
) -> tuple[Tensor, Tensor]:
    """XYXY pixel boxes through the warp ``theta``: enclosing box of the four corners, clipped.

    Args:
        boxes: XYXY pixel boxes (exclusive ends): ``(B, N, 4)`` padded per image with
            ``theta`` ``(B, 2, 3)`` (``box_mask`` ``(B, N)`` marks the real ones); ``(K, 4)``
            with ``batch_index`` ``(K,)`` naming each box's image; ``(N, 4)`` or ``(4,)`` with
            a single ``theta`` ``(2, 3)``.
        theta: output normalised -> input normalised.
        in_size, out_size: ``(H, W)`` of the input and output canvases.
        box_mask: optional bool mask of real (non-padding) boxes, shaped like ``boxes[..., 0]``.
        batch_index: optional ``(K,)`` long tensor.
        clip: clip the boxes to the output canvas ``[0, W] x [0, H]``.
        box_format: ``"XYXY"`` (default), ``"XYWH"`` or ``"CXCYWH"`` (torchvision's names); the
            result comes back in the same format. Rotated formats: see :func:`transform_tv`.

    Returns:
        ``(boxes, valid)``: boxes of the input's shape, and a bool tensor ``boxes.shape[:-1]``,
        true where the (clipped) box keeps a positive area on the output and is a real box.

    Raises:
        TypeError, ValueError: malformed boxes, theta, mask or batch index; an unknown ``box_format``;
            NaN or inf in the boxes (a ``ValueError`` on CPU, a device-side assert elsewhere).

    Examples:
        >>> import torch
        >>> theta = torch.tensor([[[0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]])  # zoom into the bottom-right quarter
        >>> boxes, valid = transform_boxes(torch.tensor([[[0.0, 0.0, 2.0, 2.0], [5.0, 6.0, 7.0, 8.0]]]), theta, (8, 8), (8, 8))
        >>> boxes, valid
        (tensor([[[0., 0., 0., 0.],
                 [2., 4., 6., 8.]]]), tensor([[False,  True]]))
    """
    _checks.check_boxes(boxes)
    _check_theta(theta)
    if theta.ndim == 3 and batch_index is None and boxes.ndim != 3:
        raise ValueError(
            "boxes for a batch must have shape (B, N, 4) (padded, with box_mask) or (K, 4) with batch_index, "
            f"got {tuple(boxes.shape)}"
        )
    if theta.ndim == 3 and batch_index is not None and boxes.ndim != 2:
        raise ValueError(f"boxes must have shape (K, 4) with batch_index, got {tuple(boxes.shape)}")
    if theta.ndim == 2 and boxes.ndim > 2:
        raise ValueError(f"boxes for a single image must have shape (N, 4) or (4,), got {tuple(boxes.shape)}")
    if box_format not in _BOX_FORMATS:
        raise ValueError(f"box_format must be one of {', '.join(_BOX_FORMATS)} (rotated boxes: transform_tv), got {box_format!r}")
    matrix = _matrices(theta, in_size, out_size, boxes, "boxes", batch_index)
    if box_format != "XYXY":
        boxes = _convert(boxes, box_format, "XYXY")
    x1, y1, x2, y2 = boxes.unbind(-1)
    corners = torch.stack([torch.stack(c, dim=-1) for c in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], dim=-2)
    if batch_index is None and theta.ndim == 3:
        matrix = matrix.unsqueeze(1)  # (B, 1, 3, 3) against corners (B, N, 4, 2)
    moved = apply_to_points(matrix, corners)
    low, high = moved.amin(dim=-2), moved.amax(dim=-2)
    if clip:
        out_h, out_w = out_size
        limit = moved.new_tensor([float(out_w), float(out_h)])
        low = torch.minimum(low.clamp_min(0.0), limit)
        high = torch.minimum(high.clamp_min(0.0), limit)
    out = torch.cat([low, high], dim=-1)
    valid = (high > low).all(dim=-1)
    if box_mask is not None:
        if not isinstance(box_mask, Tensor) or box_mask.shape != boxes.shape[:-1]:
            raise ValueError(
                f"box_mask must be a bool tensor of shape {tuple(boxes.shape[:-1])}, got {getattr(box_mask, 'shape', box_mask)}"
            )
        valid = valid & box_mask.to(torch.bool)
    if box_format != "XYXY":
        out = _convert(out, "XYXY", box_format)
    return out, valid


_BOX_FORMATS = ("XYXY", "XYWH", "CXCYWH")


def _convert(boxes: Tensor, old: str, new: str) -> Tensor:
    from torchvision.transforms.v2 import functional as F

    return F.convert_bounding_box_format(boxes, old_format=old, new_format=new)


def transform_keypoints(
    keypoints: Tensor,
    theta: Tensor,
    in_size: Sequence[int],
    out_size: Sequence[int],
    visible: Tensor | None = None,
    batch_index: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Keypoints through the warp, with visibility: a point is visible if it was and lands on the output.

    Args:
        keypoints: ``(B, N, 2)`` (or ``(B, ..., 2)``) with ``theta`` ``(B, 2, 3)``, ``(K, 2)``
            with ``batch_index``, or ``(..., 2)`` with a single ``theta``; continuous pixel
            ``(x, y)``.
        visible: optional bool ``keypoints.shape[:-1]``.

    Returns:
        ``(keypoints, visible)``: moved points (not clipped) and their visibility on the output
        canvas ``[0, W) x [0, H)``.

    Examples:
        >>> import torch
        >>> theta = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # shrink the content by 2
        >>> transform_keypoints(torch.tensor([[1.0, 1.0], [7.0, 3.0]]), theta, (4, 8), (4, 8))
        (tensor([[2.5000, 1.5000],
                [5.5000, 2.5000]]), tensor([True, True]))
    """
    _check_points(keypoints, "keypoints")
    moved = transform_points(keypoints, theta, in_size, out_size, batch_index)
    out_h, out_w = out_size
    x, y = moved.unbind(-1)
    inside = (x >= 0) & (x < out_w) & (y >= 0) & (y < out_h)
    if visible is not None:
        if not isinstance(visible, Tensor) or visible.shape != keypoints.shape[:-1]:
            raise ValueError(
                f"visible must be a bool tensor of shape {tuple(keypoints.shape[:-1])}, got {getattr(visible, 'shape', visible)}"
            )
        inside = inside & visible.to(torch.bool)
    return moved, inside


def transform_masks(
    masks: Tensor,
    theta: Tensor,
    in_size: Sequence[int],
    out_size: Sequence[int],
    mode: str | None = None,
    fill: float = 0,
    batch_index: Tensor | None = None,
) -> Tensor:
    """Resample masks through ``theta``: integer and bool masks stay so, float masks are soft.

    Args:
        masks: with ``theta`` ``(B, 2, 3)``: ``(B, H, W)`` or ``(B, N, H, W)``; with a single
            ``theta`` ``(2, 3)``: ``(H, W)`` or ``(N, H, W)``. ``(H, W)`` must equal ``in_size``.
        mode: ``"nearest"`` (default for integer and bool masks: labels are never mixed) or
            ``"bilinear"`` (default for float masks: soft masks, probabilities, logits).
        fill: the value outside the input (e.g. an ignore index such as 255).
        batch_index: optional ``(K,)`` with masks ``(K, H, W)`` / ``(K, N, H, W)``: mask ``k``
            belongs to image ``batch_index[k]`` and goes through its ``theta``.

    Returns:
        masks of the same dtype, with ``(H, W)`` replaced by ``out_size``. Integer labels are
        exact up to ``2**24`` (they are sampled in float32).

    Raises:
        TypeError, ValueError: malformed masks, or masks whose size differs from ``in_size``.

    Examples:
        >>> import torch
        >>> labels = torch.tensor([[[0, 1, 2, 3]]])
        >>> flip = torch.tensor([[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> transform_masks(labels, flip, (1, 4), (1, 4))
        tensor([[[3, 2, 1, 0]]])
    """
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
    _check_theta(theta)
    _checks.check_same_device(masks, theta, "masks")
    if batch_index is not None:
        # Mask k is its own source; it goes through the matrix of image batch_index[k].
        if theta.ndim != 3:
            raise ValueError("batch_index needs a batch of theta (B, 2, 3)")
        _checks.check_batch_index(batch_index, masks.shape[0] if masks.ndim else -1, theta.shape[0])
        theta = theta[batch_index]
    if masks.ndim < 2 or tuple(masks.shape[-2:]) != tuple(in_size):
        raise ValueError(f"masks must end in the images' size {tuple(in_size)}, got shape {tuple(masks.shape)}")
    batched = theta.ndim == 3
    if batched and (masks.ndim not in (3, 4) or masks.shape[0] != theta.shape[0]):
        raise ValueError(
            f"masks for a batch of {theta.shape[0]} images must have shape (B, H, W) or (B, N, H, W), got {tuple(masks.shape)}"
        )
    if not batched and masks.ndim not in (2, 3):
        raise ValueError(f"masks for a single image must have shape (H, W) or (N, H, W), got {tuple(masks.shape)}")
    discrete = not masks.is_floating_point()
    mode = mode if mode is not None else ("nearest" if discrete else "bilinear")
    _checks.check_choice(mode, _checks.MODES, "mode")

    # To (B, C, H, W): one channel per instance mask.
    squeeze = masks.ndim == (3 if batched else 2)
    work = masks.unsqueeze(-3) if squeeze else masks
    if not batched:
        work, theta = work.unsqueeze(0), theta.unsqueeze(0)
    source = work.to(torch.float32 if discrete or masks.dtype != torch.float64 else torch.float64)
    # Warping (mask - fill) with zero padding and adding fill back shows `fill` outside.
    out = warp(source - fill, theta.to(source.dtype), tuple(out_size), mode=mode, padding_mode="zeros") + fill
    if masks.dtype == torch.bool:
        out = out > 0.5
    elif discrete:
        out = out.detach().round_().to(masks.dtype)  # in place on the warp's own result: discrete masks carry no gradient
    else:
        out = out.to(masks.dtype)
    if not batched:
        out = out.squeeze(0)
    return out.squeeze(-3) if squeeze else out


def transform_tv(
    target: Tensor, theta: Tensor, in_size: Sequence[int], out_size: Sequence[int], batch_index: Tensor | None = None
) -> Tensor:
    """A torchvision ``BoundingBoxes``, ``KeyPoints`` or ``Mask`` through ``theta``.

    With a single ``theta`` ``(2, 3)`` the target belongs to one image. With ``theta``
    ``(B, 2, 3)``, the rows of the target (first dimension) belong to the images named by
    ``batch_index`` ``(K,)``; a ``Mask`` ``(B, H, W)`` may also come without ``batch_index``.

    Returns the same type with ``canvas_size = out_size``. ``BoundingBoxes``: unrotated formats
    become the enclosing box, clipped to the canvas (boxes that leave it get zero width or
    height, which ``SanitizeBoundingBoxes`` removes); rotated formats move their four corners
    exactly (a shear or an anisotropic scale makes a parallelogram, which ``XYXYXYXY`` keeps and
    ``XYWHR``/``CXCYWHR`` approximate through torchvision's conversion) and are clamped by
    torchvision's ``clamp_bounding_boxes`` according to their ``clamping_mode``.

    Raises:
        TypeError: for anything else (plain tensors go through :func:`transform_boxes` etc.).

    Examples:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> boxes = tv_tensors.BoundingBoxes([[1.0, 1.0, 2.0, 2.0]], format="CXCYWH", canvas_size=(4, 8))
        >>> flip = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> out = transform_tv(boxes, flip, (4, 8), (4, 8))
        >>> out.format.value, out.canvas_size, out.tolist()
        ('CXCYWH', (4, 8), [[7.0, 1.0, 2.0, 2.0]])
    """
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    out_size = (int(out_size[0]), int(out_size[1]))
    if isinstance(target, tv_tensors.BoundingBoxes):
        plain = target.as_subclass(Tensor)
        dtype = plain.dtype if plain.is_floating_point() else torch.float32
        fmt = target.format
        if tv_tensors.is_rotated_bounding_format(fmt):
            corners = F.convert_bounding_box_format(
                plain.to(dtype), old_format=fmt, new_format=tv_tensors.BoundingBoxFormat.XYXYXYXY
            )
            moved = transform_points(corners.unflatten(-1, (4, 2)), theta, in_size, out_size, batch_index)
            # A mirroring warp reverses the corners' winding; swap them pairwise (1<->2, 3<->4) so the
            # first edge and the winding mean what torchvision's rotated formats expect.
            rows = theta if batch_index is None else theta[batch_index]
            mirrored = rows[..., 0, 0] * rows[..., 1, 1] - rows[..., 0, 1] * rows[..., 1, 0] < 0
            mirrored = mirrored.view(-1, 1, 1) if mirrored.ndim else mirrored
            moved = torch.where(mirrored, moved[..., [1, 0, 3, 2], :], moved).flatten(-2)
            back = F.convert_bounding_box_format(moved, old_format=tv_tensors.BoundingBoxFormat.XYXYXYXY, new_format=fmt)
            wrapped = tv_tensors.wrap(back.to(plain.dtype), like=target, canvas_size=out_size)
            return F.clamp_bounding_boxes(wrapped) if target.clamping_mode is not None else wrapped
        xyxy = F.convert_bounding_box_format(plain.to(dtype), old_format=fmt, new_format=tv_tensors.BoundingBoxFormat.XYXY)
        moved, _ = transform_boxes(xyxy, theta, in_size, out_size, batch_index=batch_index)
        back = F.convert_bounding_box_format(moved, old_format=tv_tensors.BoundingBoxFormat.XYXY, new_format=fmt)
        if not plain.is_floating_point():
            back = back.round()
        return tv_tensors.wrap(back.to(plain.dtype), like=target, canvas_size=out_size)
    if isinstance(target, tv_tensors.KeyPoints):
        plain = target.as_subclass(Tensor)
        dtype = plain.dtype if plain.is_floating_point() else torch.float32
        # torchvision's keypoints are pixel indices: their centre is at integer coordinates.
        moved = transform_points(plain.to(dtype) + 0.5, theta, in_size, out_size, batch_index) - 0.5
        return tv_tensors.wrap(moved.to(plain.dtype), like=target, canvas_size=out_size)
    if isinstance(target, tv_tensors.Mask):
        plain = target.as_subclass(Tensor)
        return tv_tensors.wrap(transform_masks(plain, theta, in_size, out_size, batch_index=batch_index), like=target)
    raise TypeError(f"expected a torchvision BoundingBoxes, KeyPoints or Mask, got {type(target).__name__}")
