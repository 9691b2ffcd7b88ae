"""Images + theta -> images: the one place diffaug resamples.

One sampling grid (``affine_grid``'s, built by :func:`~diffaug.functional.sampling_grid`) +
``grid_sample`` (``align_corners=False``) per call, batched, on the images' device. This
module handles what sits around the kernel: single images, crops of a gathered batch
(``batch_index``), dtypes (half precision sampled in float32 so the grid keeps sub-pixel
precision, uint8 rounded and clamped back), channels_last and empty batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffaug.functional import _checks, _cpu_kernels
from diffaug.functional.antialias import antialiased_sample
from diffaug.functional.colour import to_uint8
from diffaug.functional.geometry import boxes_to_theta, grid_terms, reflect_grid, reflect_index, sampling_grid

__all__ = ["warp", "crop", "compute_dtype"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype images of ``dtype`` are sampled in: float64 stays, everything else float32.

    Half precision grids lose sub-pixel accuracy (bfloat16 has 8 mantissa bits: about one
    pixel of error on a 224-pixel image), so half images are sampled in float32.

    Examples:
        >>> import torch
        >>> compute_dtype(torch.bfloat16), compute_dtype(torch.uint8), compute_dtype(torch.float64)
        (torch.float32, torch.float32, torch.float64)
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def warp(
    images: Tensor,
    theta: Tensor,
    size: int | Sequence[int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    batch_index: Tensor | None = None,
    antialias: bool = False,
    fill: float | Sequence[float] = 0.0,
) -> Tensor:
    """Resample images through ``theta`` (output normalised -> input normalised coordinates).

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)``, floating point or uint8.
        theta: ``(B, 2, 3)`` (or ``(2, 3)`` for a single image); with ``batch_index``,
            ``(K, 2, 3)``: the ``k``-th output samples ``images[batch_index[k]]``.
        size: output ``(h, w)`` or an int for a square output.
        mode: ``"bilinear"`` | ``"nearest"`` | ``"bicubic"``.
        padding_mode: what is seen outside the image: ``"zeros"`` (constant ``fill``),
            ``"border"`` (edge pixels repeated), ``"reflection"`` (``grid_sample``'s mirror about
            the image's outer edges, the edge pixel repeated: numpy's and torchvision's
            ``"symmetric"``) or ``"reflect"`` (mirror about the edge pixels' centres, the edge
            pixel not repeated: numpy's and torchvision's ``"reflect"``, see
            :func:`~diffaug.functional.reflect_grid`).
        batch_index: optional ``(K,)`` integer tensor.
        antialias: low-pass filter each sample, per its own shrink, where the warp shrinks
            (a mip-map sampled trilinearly, see :mod:`diffaug.functional.antialias`); no effect
            where an output pixel covers at most one input pixel. Not with ``mode="nearest"``.
        fill: with ``padding_mode="zeros"``, the value seen outside the image: a number or one
            per channel. The image is padded with it *before* interpolation (``warp(images -
            fill) + fill``), so an edge pixel blends into ``fill`` over half a pixel as it blends
            into 0 by default. (torchvision blends with its warped coverage mask instead, which
            darkens that half pixel twice; away from edges both agree.)

    Returns:
        ``(B, C, h, w)`` (``(K, C, h, w)`` with ``batch_index``; ``(C, h, w)`` for a single
        image and ``(2, 3)`` theta) in the images' dtype and device. uint8 images come back
        rounded and clamped to ``[0, 255]`` (no gradient). Gradients reach ``images`` and
        ``theta``.

    Raises:
        TypeError, ValueError, IndexError: for malformed arguments, naming the argument.

    Examples:
        >>> import torch
        >>> images = torch.rand(2, 3, 8, 8)
        >>> theta = torch.eye(2, 3).expand(2, 2, 3)
        >>> torch.allclose(warp(images, theta, 8), images, atol=1e-6)
        True
    """
    _checks.check_images(images)
    out_h, out_w = _checks.check_size(size)
    _checks.check_choice(mode, _checks.MODES, "mode")
    _checks.check_choice(padding_mode, _checks.PADDING_MODES, "padding_mode")
    _checks.check_antialias(antialias, mode)
    fill_values = _checks.check_fill(fill, padding_mode, images.shape[-3])
    if not isinstance(theta, Tensor):
        raise TypeError(f"theta must be a torch.Tensor of shape (B, 2, 3), got {type(theta).__name__}")
    if theta.ndim < 2 or theta.shape[-2:] != (2, 3):
        raise ValueError(f"theta must have shape (B, 2, 3) or (2, 3), got {tuple(theta.shape)}")
    if not theta.is_floating_point():
        raise TypeError(f"theta must be floating point, got {theta.dtype}")
    _checks.check_same_device(theta, images, "theta")

    single_image = images.ndim == 3
    single_theta = theta.ndim == 2
    batch = images if not single_image else images.unsqueeze(0)
    thetas = theta if not single_theta else theta.unsqueeze(0)
    if thetas.ndim != 3:
        raise ValueError(f"theta must have shape (B, 2, 3) or (2, 3), got {tuple(theta.shape)}")

    if batch_index is not None:
        if single_image:
            raise ValueError("batch_index needs batched images (B, C, H, W), got a single image (C, H, W)")
        _checks.check_batch_index(batch_index, thetas.shape[0], batch.shape[0])
        _checks.check_same_device(batch_index, images, "batch_index")
        batch = batch[batch_index]
    elif single_image and not single_theta:
        batch = batch.expand(thetas.shape[0], -1, -1, -1)
    elif thetas.shape[0] != batch.shape[0]:
        raise ValueError(
            f"theta has {thetas.shape[0]} matrices but images have {batch.shape[0]} samples; "
            "give one theta per image, or a batch_index saying which image each theta samples"
        )

    out = _sample(batch, thetas, (out_h, out_w), mode, padding_mode, antialias, fill_values)
    if single_image and single_theta:
        out = out.squeeze(0)
    return out


def _sample(
    batch: Tensor,
    thetas: Tensor,
    size: tuple[int, int],
    mode: str,
    padding_mode: str,
    antialias: bool = False,
    fill: tuple[float, ...] | None = None,
) -> Tensor:
    """The kernel call with dtype and layout handling; ``batch`` and ``thetas`` agree in length."""
    count, channels = batch.shape[0], batch.shape[1]
    if count == 0:
        # affine_grid refuses an empty batch; keep the graph connected for autograd anyway.
        empty = batch.new_zeros((0, channels, *size))
        return empty + thetas.sum().to(empty.dtype) * 0 if empty.is_floating_point() else empty

    work_dtype = compute_dtype(batch.dtype)
    channels_last = batch.ndim == 4 and batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()
    levels = nearest_uint8_levels(batch, mode, padding_mode, antialias, fill)
    if levels is not None:
        # uint8 in, uint8 out, no float copy: the CPU kernel picks grid_sample's pixels itself.
        columns, rows = grid_terms(thetas.to(torch.float32), size)
        out = _cpu_kernels.warp_nearest_uint8(batch, columns.flatten(2), rows.flatten(2), levels)
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out
    # Conversions only where the dtype differs: a no-op .to still costs a call on every warp.
    source = batch if batch.dtype == work_dtype else batch.to(work_dtype)
    # uint8 carries no gradient: its float copy and the kernel's output are this function's own, changed in
    # place (on a CPU each fresh batch-sized tensor costs its page faults, several times the arithmetic).
    own_copy = batch.dtype == torch.uint8
    # Constant padding with `fill`: warp (images - fill) with zeros outside, then add fill back.
    offset = source.new_tensor(fill).view(-1, 1, 1) if fill is not None else None
    if offset is not None:
        source = source.sub_(offset) if own_copy else source - offset
    # affine_grid's grid, by broadcasting: its batched matmul cost as much as grid_sample on CPU.
    theta_work = thetas if thetas.dtype == work_dtype else thetas.to(work_dtype)
    grid = sampling_grid(theta_work, size)
    if padding_mode == "reflect":
        grid = reflect_grid(grid, source.shape[-2:])
        padding_mode = "border"  # the folded grid stays within the edge pixels' centres
        if mode == "bicubic":
            source, grid = _reflect_margin(source, grid)
    if antialias:
        out = antialiased_sample(source, theta_work, size, mode, padding_mode, grid=grid)
    else:
        out = F.grid_sample(source, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    if own_copy:
        out = out.detach()
    if offset is not None:
        out = out.add_(offset) if own_copy else out + offset

    # uint8 comes back rounded and clamped (bicubic overshoots); other dtypes as they came. Nearest sampling
    # with a whole-level fill gives input levels or the fill, already whole and in range: only the cast.
    if own_copy:
        out = to_uint8(out if mode == "nearest" and _whole_levels(fill) else out.round_().clamp_(0, 255))
    elif out.dtype != batch.dtype:
        out = out.to(batch.dtype)
    if channels_last:
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def nearest_uint8_levels(
    batch: Tensor, mode: str, padding_mode: str, antialias: bool, fill: tuple[float, ...] | None
) -> list[int] | None:
    """The fill levels (one per channel) when the CPU kernel's nearest uint8 warp serves this call, else ``None``.

    It serves uint8 images on the CPU, nearest sampling, constant padding with whole levels in
    ``[0, 255]`` (a fractional fill is rounded with the rest by the float path), sides below
    2^22 pixels (its rounding is exact there), while the kernel is built and not disabled.
    Shapes, dtypes, devices and flags only.
    """
    if mode != "nearest" or padding_mode != "zeros" or antialias:
        return None
    if not _whole_levels(fill):
        return None
    last_pixel = (batch.shape[2] - 1) * batch.stride(2) + (batch.shape[3] - 1) * batch.stride(3)
    if last_pixel >= 2**31 or max(batch.shape[2], batch.shape[3]) >= 2**22:  # int32 offsets, exact rounding
        return None
    if not _cpu_kernels.serves_uint8(batch):
        return None
    values = fill or (0.0,)
    return [int(value) for value in values] * (batch.shape[1] if len(values) == 1 else 1)


def _whole_levels(fill: tuple[float, ...] | None) -> bool:
    """Whether a fill (``None``: zeros) is whole uint8 levels, which nearest sampling leaves exact."""
    return all(value.is_integer() and 0 <= value <= 255 for value in fill or ())


def _reflect_margin(source: Tensor, grid: Tensor, margin: int = 2) -> tuple[Tensor, Tensor]:
    """Pad ``source`` by ``margin`` reflected pixels and move ``grid`` into the padded frame.

    Bicubic reads two pixels on each side of a (folded) sample point: near an edge those must be
    the mirror image, not the border. With the same margin on both sides the normalised
    coordinate just scales: ``u_padded = u W / (W + 2 margin)``.
    """
    height, width = source.shape[-2:]
    rows = reflect_index(torch.arange(-margin, height + margin, device=source.device), height)
    columns = reflect_index(torch.arange(-margin, width + margin, device=source.device), width)
    padded = source[..., rows[:, None], columns]
    scale = grid.new_tensor([width / (width + 2.0 * margin), height / (height + 2.0 * margin)])
    return padded, grid * scale


def crop(
    images: Tensor,
    boxes: Tensor,
    size: int | Sequence[int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    batch_index: Tensor | None = None,
    antialias: bool = False,
    fill: float | Sequence[float] = 0.0,
) -> Tensor:
    """Crop boxes out of images and resize them to ``size``, differentiably in both.

    Args:
        images: ``(B, C, H, W)`` or a single ``(C, H, W)`` image.
        boxes: XYXY pixel boxes, exclusive ends, fractional allowed: ``(B, 4)`` (one per
            image), ``(4,)`` with a single image, ``(K, 4)`` with a single image (K crops of
            it) or with ``batch_index``.
        size: output ``(h, w)``, or an int for a square output.
        mode: ``"bilinear"`` | ``"nearest"`` | ``"bicubic"``.
        padding_mode: what parts of a box outside the image show: ``"zeros"`` (black; the
            bilinear tap blends to 0 over the half pixel beyond the edge; or ``fill``),
            ``"border"`` (edge pixels repeated), ``"reflection"`` (mirrored about the image
            edges, the edge pixel repeated, as ``numpy.pad(mode="symmetric")``; far outside it
            repeats with period ``2 H`` / ``2 W``) or ``"reflect"`` (mirrored about the edge
            pixels' centres, as ``numpy.pad(mode="reflect")``). A box wholly outside shows only
            padding.
        batch_index: ``(K,)`` long tensor: box ``k`` is cut from ``images[batch_index[k]]``.
        antialias: low-pass filter each box by its own shrink, per axis of the output pixel's
            footprint, as a resize with antialiasing does (see :func:`warp`); gradients still
            reach the boxes, also through the amount of filtering.
        fill: the value ``padding_mode="zeros"`` shows outside the image (see :func:`warp`).

    Returns:
        ``(B, C, h, w)``, ``(K, C, h, w)`` or ``(C, h, w)`` as above, on the images' device
        and in their dtype. An integer box inside the image with ``size`` equal to the box
        size returns exactly ``images[..., t:t+h, l:l+w]``.

    Raises:
        TypeError, ValueError, IndexError: for malformed arguments, naming the argument.
        NaN boxes are not checked (that would synchronise the GPU): they give NaN outputs.

    Examples:
        >>> import torch
        >>> images = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> crop(images, torch.tensor([[1.0, 0.0, 3.0, 2.0]]), (2, 2))
        tensor([[[[1., 2.],
                  [5., 6.]]]])
    """
    _checks.check_images(images)
    _checks.check_boxes(boxes, images)
    height, width = images.shape[-2:]
    if boxes.ndim > 2:
        raise ValueError(f"boxes must have shape (B, 4), (K, 4) or (4,), got {tuple(boxes.shape)}")
    if images.ndim == 4 and boxes.ndim == 1:
        raise ValueError(f"boxes must have shape (B, 4) for batched images, got {tuple(boxes.shape)}")
    if images.ndim == 4 and batch_index is None and boxes.shape[0] != images.shape[0]:
        raise ValueError(
            f"boxes must have shape ({images.shape[0]}, 4), one per image, or (K, 4) with a batch_index; got {tuple(boxes.shape)}"
        )
    # theta in the sampling dtype: half-precision arithmetic here would cost sub-pixel accuracy.
    theta = boxes_to_theta(boxes.to(compute_dtype(images.dtype)), (height, width))
    return warp(
        images, theta, size, mode=mode, padding_mode=padding_mode, batch_index=batch_index, antialias=antialias, fill=fill
    )
