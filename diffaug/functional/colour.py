"""Colour as matrices: per-sample colour maps, composed by product and applied in one pass.

A *colour matrix* maps each pixel's channel vector ``x`` (``C_in`` values) to ``C_out`` values,
per sample, in **unit range**: values divided by the largest value of their dtype
(:func:`value_range`: 255 for ``uint8``, 1 for floating point), so one matrix serves every dtype.
It has one of two shapes:

* ``(B, C_out, C_in + 1)``, ``[A | t]``: ``y = A x + t`` (brightness, saturation, grayscale,
  invert, channel permutation, normalise, the fused hue rotation; a dtype change without
  scaling is a brightness by the ratio of the dtypes' ranges);
* ``(B, C_out, 2 C_in + 1)``, ``[A | M | t]``: ``y = A x + M mean(x) + t``, where ``mean(x)`` is
  the per-sample, per-channel mean over the image. Contrast mixes each pixel with the mean of
  the grey image, which is linear in the image, so it is a colour matrix too.

Matrices compose in pipeline order with :func:`compose_colour` (the mean of ``A x + M mean(x) +
t`` is ``(A + M) mean(x) + t``, so products stay in this form) and touch the pixels once with
:func:`apply_colour`, which also clamps to the valid range and converts the dtype. The constants
and laws follow ``torchvision.transforms.v2.functional``: grey is ``0.2989 R + 0.587 G + 0.114 B``;
saturation and contrast blend with the grey image and its mean; a one-channel image is its own
grey. Hue is not affine in torchvision (an HSV shift: :func:`adjust_hue`); :func:`hue_matrix` is
StyleGAN2-ADA's rotation about the grey axis, the affine stand-in a fused pass uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from diffaug.functional import _checks
from diffaug.functional import _constants as _const

__all__ = [
    "GRAY_WEIGHTS",
    "value_range",
    "to_uint8",
    "check_colour_channels",
    "colour_identity",
    "brightness_matrix",
    "contrast_matrix",
    "saturation_matrix",
    "hue_matrix",
    "grayscale_matrix",
    "invert_matrix",
    "permutation_matrix",
    "normalize_matrix",
    "compose_colour",
    "mean_form",
    "plain_form",
    "same_form",
    "apply_colour",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "adjust_hue",
]

# ITU-R 601 luma, as torchvision (and PIL) weigh R, G, B for grey.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def value_range(dtype: torch.dtype) -> float:
    """The largest value of an image of ``dtype``: 255 for ``uint8``, 1 for floating point.

    Raises:
        TypeError: ``dtype`` is neither floating point nor ``uint8``.

    Examples:
        >>> import torch
        >>> value_range(torch.uint8), value_range(torch.bfloat16)
        (255.0, 1.0)
    """
    if dtype == torch.uint8:
        return 255.0
    if dtype.is_floating_point:
        return 1.0
    raise TypeError(f"images must be floating point or uint8, got {dtype}")


def to_uint8(values: Tensor) -> Tensor:
    """Floating point values already in ``[0, 255]`` cast to ``uint8``, truncated (the cast torchvision's uint8 kernels end with).

    On a CPU the cast goes through int16: the same values (both casts truncate toward zero),
    about 5x faster, as torch's direct float -> uint8 cast is not vectorised there (600k
    values: 348 us direct, 71 us through int16, one thread). Elsewhere it is the direct cast.

    Args:
        values: any shape, floating point, within ``[0, 255]`` (clamp first); no gradient flows.

    Returns:
        ``uint8`` of the same shape.

    Examples:
        >>> import torch
        >>> to_uint8(torch.tensor([0.0, 1.9, 254.5, 255.0]))
        tensor([  0,   1, 254, 255], dtype=torch.uint8)
    """
    if values.device.type == "cpu":
        return values.to(torch.int16).to(torch.uint8)
    return values.to(torch.uint8)


def check_colour_channels(images: Tensor, name: str = "images") -> int:
    """The channel count of images a colour operation accepts: 1 (grey) or 3 (RGB), as torchvision.

    Raises:
        TypeError: images with another number of channels (the error torchvision raises).

    Examples:
        >>> import torch
        >>> check_colour_channels(torch.rand(2, 3, 4, 4))
        3
    """
    channels = int(images.shape[-3])
    if channels not in (1, 3):
        raise TypeError(f"{name} must have 1 or 3 channels for a colour operation, got {channels} (shape {tuple(images.shape)})")
    return channels


def _eye(channels: int, like: Tensor) -> Tensor:
    return _const.memo(("colour_eye", channels), like, lambda: torch.eye(channels, device=like.device, dtype=like.dtype))


def _gray_row(channels: int, like: Tensor) -> Tensor:
    """``(C,)``: the weights of grey, ``[1]`` for a one-channel image."""
    return _const.values(GRAY_WEIGHTS if channels == 3 else (1.0,) * channels, like)


def _with_offset(linear: Tensor, offset: Tensor | None = None) -> Tensor:
    """``[A | t]`` from ``A`` ``(B, C_out, C_in)`` and ``t`` ``(B, C_out)`` (zero if ``None``)."""
    if offset is None:
        offset = linear.new_zeros(linear.shape[:-1])
    return torch.cat([linear, offset.unsqueeze(-1)], dim=-1)


def colour_identity(batch: int, channels: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(B, C, C + 1)``: the colour matrix that changes nothing.

    Examples:
        >>> colour_identity(1, 3)[0]
        tensor([[1., 0., 0., 0.],
                [0., 1., 0., 0.],
                [0., 0., 1., 0.]])
    """
    eye = torch.eye(channels, device=device, dtype=dtype)
    return _with_offset(eye.expand(batch, channels, channels))


def _diagonal(factor: Tensor, channels: int) -> Tensor:
    """``(B, C, C)``: ``factor`` ``(B,)`` times the identity."""
    return factor[:, None, None] * _eye(channels, factor)


def brightness_matrix(factor: Tensor, channels: int = 3) -> Tensor:
    """``(B, C, C + 1)``: multiply every channel by ``factor`` ``(B,)`` (torchvision's ``adjust_brightness``).

    Examples:
        >>> import torch
        >>> brightness_matrix(torch.tensor([2.0]), channels=1)
        tensor([[[2., 0.]]])
    """
    return _with_offset(_diagonal(factor, channels))


def contrast_matrix(factor: Tensor, channels: int = 3) -> Tensor:
    """``(B, C, 2 C + 1)``: blend each pixel with the mean of the grey image, ``c x + (1 - c) mean(grey)``.

    The mean of the grey image is ``w . mean(x)``, linear in the image, so contrast is a colour
    matrix with a mean part ``M = (1 - c) 1 w^T`` (torchvision's ``adjust_contrast``).

    Examples:
        >>> import torch
        >>> m = contrast_matrix(torch.tensor([0.0]))  # factor 0: every pixel becomes the grey mean
        >>> images = torch.rand(1, 3, 4, 4)
        >>> grey_mean = (torch.tensor([0.2989, 0.587, 0.114])[:, None, None] * images[0]).sum(0).mean()
        >>> torch.allclose(apply_colour(images, m), grey_mean.expand(1, 3, 4, 4), atol=1e-6)
        True
    """
    linear = _diagonal(factor, channels)
    mean = (1 - factor)[:, None, None] * _gray_row(channels, factor).expand(channels, channels)
    offset = factor.new_zeros(factor.shape[0], channels, 1)
    return torch.cat([linear, mean, offset], dim=-1)


def saturation_matrix(factor: Tensor, channels: int = 3) -> Tensor:
    """``(B, C, C + 1)``: blend each pixel with its grey, ``s x + (1 - s) grey(x)``; identity for one channel.

    Examples:
        >>> import torch
        >>> m = saturation_matrix(torch.tensor([0.0]))  # factor 0: grey
        >>> m[0, :, :3]
        tensor([[0.2989, 0.5870, 0.1140],
                [0.2989, 0.5870, 0.1140],
                [0.2989, 0.5870, 0.1140]])
    """
    if channels == 1:  # a grey image is its own grey (torchvision returns it unchanged)
        return _with_offset(_eye(1, factor).expand(factor.shape[0], 1, 1))
    grey = _gray_row(channels, factor).expand(channels, channels)
    return _with_offset(_diagonal(factor, channels) + (1 - factor)[:, None, None] * grey)


def hue_matrix(factor: Tensor, channels: int = 3) -> Tensor:
    """``(B, C, C + 1)``: rotate colours about the grey axis ``(1, 1, 1)`` by ``2 pi factor``; identity for one channel.

    StyleGAN2-ADA's hue: affine, so it fuses with the other colour matrices, and close to an HSV
    hue shift of ``factor`` (red turns towards yellow for a positive factor, as in HSV). It
    keeps ``R + G + B`` rather than HSV's value and saturation; ``docs/colour.md`` measures the
    difference.

    Examples:
        >>> import torch
        >>> m = hue_matrix(torch.tensor([1 / 3]))  # a third of a turn: red -> green -> blue -> red
        >>> torch.allclose(m[0, :, :3], torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]), atol=1e-6)
        True
    """
    batch = factor.shape[0]
    if channels == 1:
        return _with_offset(_eye(1, factor).expand(batch, 1, 1))
    angle = 2 * math.pi * factor
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    third = 1.0 / 3.0
    axis = _const.values(((third,) * 3,) * 3, factor)  # v v^T with v = (1, 1, 1) / sqrt(3)
    # The cross-product matrix [v]_x: a positive angle turns red towards green, hue's direction.
    root = 1.0 / math.sqrt(3.0)
    cross = _const.values(((0.0, -root, root), (root, 0.0, -root), (-root, root, 0.0)), factor)
    rotation = axis + (_eye(3, factor) - axis) * cos + cross * sin
    return _with_offset(rotation)


def grayscale_matrix(batch: int, channels: int, num_output_channels: int = 1, like: Tensor | None = None) -> Tensor:
    """``(B, num_output_channels, C + 1)``: grey in every output channel (torchvision's ``rgb_to_grayscale``).

    A one-channel image is copied to ``num_output_channels``.

    Raises:
        ValueError: ``num_output_channels`` not 1 or 3.

    Examples:
        >>> grayscale_matrix(1, 3)
        tensor([[[0.2989, 0.5870, 0.1140, 0.0000]]])
    """
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels!r}")
    like = like if like is not None else torch.empty(0)
    row = _gray_row(channels, like)
    return _with_offset(row.expand(batch, num_output_channels, channels))


def invert_matrix(batch: int, channels: int, like: Tensor | None = None) -> Tensor:
    """``(B, C, C + 1)``: ``1 - x`` in unit range (``255 - x`` for ``uint8``), torchvision's ``invert``.

    Examples:
        >>> invert_matrix(1, 1)
        tensor([[[-1.,  1.]]])
    """
    like = like if like is not None else torch.empty(0)
    eye = _eye(channels, like).expand(batch, channels, channels)
    return _with_offset(-eye, torch.ones(batch, channels, device=like.device, dtype=like.dtype))


def permutation_matrix(permutation: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(B, C, C + 1)``: output channel ``i`` is input channel ``permutation[:, i]`` (torchvision's ``permute_channels``).

    Args:
        permutation: ``(B, C)`` integer, a permutation of ``0 .. C-1`` per sample.

    Examples:
        >>> import torch
        >>> permutation_matrix(torch.tensor([[2, 0, 1]]))[0, :, :3]
        tensor([[0., 0., 1.],
                [1., 0., 0.],
                [0., 1., 0.]])
    """
    channels = permutation.shape[-1]
    columns = torch.arange(channels, device=permutation.device)
    # A comparison, not one_hot (which reads the indices to check their range: a host read).
    linear = (permutation.unsqueeze(-1) == columns).to(dtype)
    return _with_offset(linear)


def normalize_matrix(mean: Tensor, std: Tensor, batch: int) -> Tensor:
    """``(B, C, C + 1)``: ``(x - mean) / std`` per channel (torchvision's ``normalize``; float images).

    Args:
        mean, std: ``(C,)`` (or ``(1,)`` for every channel), ``std > 0``.

    Examples:
        >>> import torch
        >>> normalize_matrix(torch.tensor([0.5]), torch.tensor([0.25]), batch=1)
        tensor([[[ 4., -2.]]])
    """
    channels = mean.shape[-1]
    inverse = 1.0 / std
    linear = torch.diag_embed(inverse.expand(channels))
    offset = -mean * inverse
    return _with_offset(linear.expand(batch, channels, channels), offset.expand(batch, channels))


def _parts(matrix: Tensor, channels: int) -> tuple[Tensor, Tensor | None, Tensor]:
    """``A`` ``(B, C_out, C_in)``, ``M`` or ``None``, ``t`` ``(B, C_out, 1)`` of a colour matrix."""
    width = matrix.shape[-1]
    if width == channels + 1:
        return matrix[..., :channels], None, matrix[..., channels:]
    if width == 2 * channels + 1:
        return matrix[..., :channels], matrix[..., channels : 2 * channels], matrix[..., 2 * channels :]
    raise ValueError(
        f"a colour matrix for {channels} input channels must have {channels + 1} or {2 * channels + 1} columns, "
        f"got shape {tuple(matrix.shape)}"
    )


def mean_form(matrix: Tensor, channels: int) -> Tensor:
    """A plain ``[A | t]`` matrix ``(B, C, C + 1)`` widened to ``[A | 0 | t]`` ``(B, C, 2 C + 1)``.

    Matrices of both forms can then be selected, mixed or multiplied per sample (a mean part of 0
    reads no mean).

    Examples:
        >>> import torch
        >>> mean_form(torch.tensor([[[2.0, 0.5]]]), 1)
        tensor([[[2.0000, 0.0000, 0.5000]]])
    """
    return torch.cat([matrix[..., :channels], torch.zeros_like(matrix[..., :channels]), matrix[..., channels:]], -1)


def plain_form(matrix: Tensor, channels: int) -> Tensor:
    """``[A | M | t]`` -> ``[A | t]``: drop the mean part of a matrix whose mean part is zero (no mean pass then).

    Examples:
        >>> import torch
        >>> plain_form(torch.tensor([[[2.0, 0.0, 0.5]]]), 1)
        tensor([[[2.0000, 0.5000]]])
    """
    return torch.cat([matrix[..., :channels], matrix[..., 2 * channels :]], -1)


def same_form(matrices: Sequence[Tensor], channels: int) -> list[Tensor]:
    """Colour matrices on ``channels`` inputs in one form: all in the mean form if any has a mean part.

    Examples:
        >>> import torch
        >>> [m.shape[-1] for m in same_form([torch.zeros(1, 1, 2), torch.zeros(1, 1, 3)], 1)]
        [3, 3]
    """
    if all(m.shape[-1] == channels + 1 for m in matrices):
        return list(matrices)
    return [m if m.shape[-1] == 2 * channels + 1 else mean_form(m, channels) for m in matrices]


def compose_colour(first: Tensor, second: Tensor, channels: int) -> Tensor:
    """The colour matrix of ``first`` then ``second`` (pipeline order, as :func:`~diffaug.functional.compose_theta`).

    Args:
        first: ``(B, C_1, C_0 + 1)`` or ``(B, C_1, 2 C_0 + 1)``.
        second: ``(B, C_2, C_1 + 1)`` or ``(B, C_2, 2 C_1 + 1)``.
        channels: ``C_0``, the input channels of ``first`` (a width alone can be either form).

    Returns:
        ``(B, C_2, C_0 + 1)``, or the mean form ``(B, C_2, 2 C_0 + 1)`` if either has a mean part.

    Examples:
        >>> import torch
        >>> brighter, inverted = brightness_matrix(torch.tensor([2.0]), 1), invert_matrix(1, 1)
        >>> compose_colour(brighter, inverted, channels=1)  # 1 - 2 x
        tensor([[[-2.,  1.]]])
    """
    mid = first.shape[-2]
    a1, m1, t1 = _parts(first, channels)
    a2, m2, t2 = _parts(second, mid)
    linear = a2 @ a1
    offset = a2 @ t1 + t2
    mean = None if m1 is None else a2 @ m1
    if m2 is not None:
        # The mean of first's output is (A1 + M1) mean(x) + t1.
        mean_of_first = a1 if m1 is None else a1 + m1
        mean = m2 @ mean_of_first if mean is None else mean + m2 @ mean_of_first
        offset = offset + m2 @ t1
    if mean is None:
        return torch.cat([linear, offset], dim=-1)
    return torch.cat([linear, mean, offset], dim=-1)


def apply_colour(
    images: Tensor,
    matrix: Tensor,
    *,
    dtype: torch.dtype | None = None,
    clamp: bool = False,
    bounds: tuple[Tensor, Tensor] | None = None,
    out: Tensor | None = None,
    diagonal: bool = False,
) -> Tensor:
    """Apply a colour matrix to every pixel: one pass over the images (plus a mean for the mean form).

    Args:
        images: ``(B, C_in, H, W)`` or ``(C_in, H, W)``, floating point or ``uint8``; any memory format.
        matrix: ``(B, C_out, C_in + 1)`` or ``(B, C_out, 2 C_in + 1)`` in unit range (module docstring).
        dtype: of the output (default: the images'); the matrix maps unit range to unit range, so
            ``uint8`` in and ``float32`` out divides by 255 on the way, in the same pass.
        clamp: clamp to the output dtype's valid range (``[0, 1]``, ``[0, 255]``), as torchvision does
            after each adjustment. Integer outputs are always clamped, then truncated (torchvision's
            rounding for ``uint8`` colour adjustments).
        bounds: per-sample, per-channel ``(low, high)``, each ``(B, C_out)`` in the output's unit
            range, to clamp to instead: a clamp carried through later per-channel maps (a
            fused pipeline's ``Normalize`` after a clamping jitter).
        out: a contiguous ``(B, C_out, H, W)`` tensor of the output dtype (float32 or float64, the
            dtype the pass computes in) to write the result into, for contiguous images; no gradient
            flows through ``out=``. Lets a caller recycle the memory of a spent intermediate: on a
            CPU, touching fresh memory costs about as much as the pass.
        diagonal: the caller knows that ``A`` is diagonal (brightness, contrast, invert, a per-channel
            stretch; ``C_out = C_in``): each channel is scaled instead of a matrix product, with the
            same values (the product's other terms are exact zeros) at a fifth of its cost on a CPU
            (4 x 3 x 224 x 224 float32, one thread: 35 us against 170 us). Off-diagonal entries are ignored.

    Returns:
        ``(B, C_out, H, W)`` of ``dtype``, channels-last if the images are. Computed in float32
        (float64 for float64 images or a float64 output); differentiable in images and matrix.

    Raises:
        ValueError: the matrix does not fit the images (batch, channels).

    Examples:
        >>> import torch
        >>> images = torch.tensor([[[[0, 100, 255]]]], dtype=torch.uint8)  # (1, 1, 1, 3)
        >>> apply_colour(images, invert_matrix(1, 1))
        tensor([[[[255, 155,   0]]]], dtype=torch.uint8)
        >>> apply_colour(images, invert_matrix(1, 1), dtype=torch.float64)  # and to float, in one pass
        tensor([[[[1.0000, 0.6078, 0.0000]]]], dtype=torch.float64)
    """
    _checks.check_images(images)
    if images.ndim == 3:
        into = None if out is None else out.unsqueeze(0)
        return apply_colour(images.unsqueeze(0), matrix, dtype=dtype, clamp=clamp, bounds=bounds, out=into).squeeze(0)
    out_dtype = images.dtype if dtype is None else dtype
    out_range = value_range(out_dtype)
    batch, channels, height, width = images.shape
    if matrix.ndim != 3 or matrix.shape[0] != batch:
        raise ValueError(f"matrix must have shape (B, C_out, C_in + 1) with B = {batch}, got {tuple(matrix.shape)}")
    linear, mean_part, offset = _parts(matrix, channels)
    work = torch.float64 if torch.float64 in (images.dtype, out_dtype, matrix.dtype) else torch.float32
    x = images.to(work)
    # Unit range in, unit range out: fold 1 / range(in) and range(out) into the matrix (tiny), not the pixels.
    gain = out_range / value_range(images.dtype)
    linear = linear.to(work) * gain
    offset = offset.to(work).squeeze(-1) * out_range
    if mean_part is not None:
        means = x.mean(dim=(-2, -1))  # (B, C_in)
        offset = offset + (mean_part.to(work) @ means.unsqueeze(-1)).squeeze(-1) * gain
    c_out = linear.shape[-2]
    if out is not None and (out.dtype != work or out_dtype != work or not (out.is_contiguous() and images.is_contiguous())):
        raise ValueError(f"out= needs contiguous images and a contiguous {work} output, got {out.dtype} for {out_dtype}")
    if diagonal:
        if c_out != channels:
            raise ValueError(f"diagonal=True needs a square linear part, got shape {tuple(matrix.shape)} for {channels} channels")
        scale = torch.diagonal(linear, dim1=-2, dim2=-1).reshape(batch, channels, 1, 1)
        # In place on the converted copy when no graph needs its values (uint8 and half images): one batch less.
        own = x is not images and out is None and not scale.requires_grad
        out = (x.mul_(scale) if own else torch.mul(x, scale, out=out)).add_(offset.view(batch, channels, 1, 1))
    elif images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        out = torch.bmm(pixels, linear.transpose(-1, -2)).add_(offset.unsqueeze(-2))
        out = out.view(batch, height, width, c_out).permute(0, 3, 1, 2)
    else:
        # bmm, then the offset in place: baddbmm would first copy the broadcast offset to full size.
        pixels = x.reshape(batch, channels, height * width)
        into = None if out is None else out.view(batch, c_out, height * width)
        out = torch.bmm(linear, pixels, out=into).add_(offset.unsqueeze(-1)).view(batch, c_out, height, width)
    # In place: out is this function's own fresh tensor (bmm's backward does not read it), and a
    # second full-size allocation costs more than the clamp itself.
    if bounds is not None:
        low, high = (bound.to(work).reshape(batch, c_out, 1, 1) * out_range for bound in bounds)
        out = out.clamp_(min=low, max=high)
    if out_dtype.is_floating_point:
        if clamp:
            out = out.clamp_(0.0, out_range)
        return out.to(out_dtype)
    # Truncate as torchvision's uint8 colour kernels do (their float result cast to uint8 after the clamp).
    # uint8 (the one integer dtype): the cast truncates, which is the floor of these non-negative values.
    return to_uint8(out.clamp_(0.0, out_range))


def rgb_to_hsv(images: Tensor) -> Tensor:
    """``(..., 3, H, W)`` RGB in ``[0, 1]`` -> HSV, hue in ``[0, 1)`` (PIL's and torchvision's conventions).

    Grey pixels (max == min) get hue 0 and saturation 0; black gets saturation 0. Where two
    channels share the maximum, red wins over green over blue, as in PIL.

    Examples:
        >>> import torch
        >>> rgb_to_hsv(torch.tensor([0.0, 1.0, 0.0])[:, None, None]).flatten()  # green: hue 1/3
        tensor([0.3333, 1.0000, 1.0000])
    """
    red, green, blue = images.unbind(-3)
    value, _ = images.max(dim=-3)
    low, _ = images.min(dim=-3)
    chroma = value - low
    grey = chroma == 0
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    saturation = chroma / torch.where(value == 0, torch.ones_like(value), value)
    # Sector by which channel is the maximum; each branch is a position within +-1 of its sector's centre.
    hue_red = (green - blue) / safe_chroma
    hue_green = (blue - red) / safe_chroma + 2
    hue_blue = (red - green) / safe_chroma + 4
    hue = torch.where(value == red, hue_red, torch.where(value == green, hue_green, hue_blue))
    hue = torch.where(grey, torch.zeros_like(hue), hue)
    hue = torch.remainder(hue / 6, 1.0)
    return torch.stack([hue, saturation, value], dim=-3)


def hsv_to_rgb(images: Tensor) -> Tensor:
    """``(..., 3, H, W)`` HSV -> RGB, the inverse of :func:`rgb_to_hsv` (hue taken modulo 1).

    Uses the branch-free form ``channel_n = V - V S clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 H) mod 6`` and ``n = 5, 3, 1`` for R, G, B: differentiable in all three inputs
    almost everywhere.

    Examples:
        >>> import torch
        >>> hsv_to_rgb(torch.tensor([1 / 3, 1.0, 1.0])[:, None, None]).flatten()
        tensor([0., 1., 0.])
    """
    hue, saturation, value = images.unbind(-3)
    offsets = _const.values((5.0, 3.0, 1.0), images).view(3, 1, 1)
    k = torch.remainder(offsets + 6 * hue.unsqueeze(-3), 6.0)
    ramp = torch.minimum(k, 4 - k).clamp(0.0, 1.0)
    v, s = value.unsqueeze(-3), saturation.unsqueeze(-3)
    return v - v * s * ramp


def adjust_hue(images: Tensor, factor: Tensor, *, out: Tensor | None = None) -> Tensor:
    """Shift each sample's hue by ``factor`` ``(B,)`` in HSV, as torchvision's ``adjust_hue``; batched.

    Args:
        images: ``(B, C, H, W)`` (C = 1 is returned unchanged) or ``(C, H, W)`` with a ``(1,)``
            factor; floating point in ``[0, 1]`` or ``uint8``.
        factor: ``(B,)`` in ``[-0.5, 0.5]`` (a turn is 1).
        out: keyword-only: a tensor of the images' shape and dtype (float32 or float64) to write the
            result into (no gradient flows through ``out=``): lets a caller that owns spent
            intermediates recycle their memory instead of allocating a new batch.

    Returns:
        images of the same shape and dtype (``uint8`` converted back as torchvision's ``to_dtype(scale=True)``).

    Examples:
        >>> import torch
        >>> red = torch.tensor([1.0, 0.0, 0.0])[None, :, None, None]
        >>> adjust_hue(red, torch.tensor([1 / 3])).flatten()  # red -> green
        tensor([0., 1., 0.])
    """
    _checks.check_images(images)
    if images.ndim == 3:
        return adjust_hue(images.unsqueeze(0), factor, out=None if out is None else out.unsqueeze(0)).squeeze(0)
    if check_colour_channels(images) == 1 or images.numel() == 0:
        return images
    if out is not None and images.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"out= needs float32 or float64 images, got {images.dtype}")
    bound = value_range(images.dtype)
    x = images.to(torch.float64 if images.dtype == torch.float64 else torch.float32)
    if bound != 1.0:
        x = x / bound
    # A hue shift keeps each pixel's max V and chroma C = max - min and moves only its position h on the
    # hue circle (in sixths of a turn), so the HSV round trip reduces to a closed form: h from the
    # largest channel, then each output channel V - C ramp(t), t = h + shift - n, where ramp is 1 within
    # one sixth of a turn of the channel's opposite colour n (cyan 3, magenta 5, yellow 1), 0 beyond two,
    # linear between (hsv_to_rgb's ramp, centred). The wrap around the circle is folded into per-sample
    # constants, so no pixel needs a remainder. On a CPU the cost is mostly the first touch of each
    # fresh allocation (freed batch-sized memory goes back to the system), so the work is on (B, H, W)
    # planes, few of them, and temporaries are updated in place where autograd allows it (the
    # gradcheck tests would fail otherwise).
    red, green, blue = x.unbind(-3)
    value = x.amax(dim=-3)
    chroma = value - x.amin(dim=-3)
    # C h, by sector: blue's, overridden where green is the largest, then where red is (red wins ties
    # over green over blue, as PIL). lerp with a 0 / 1 weight returns one side exactly, and is several
    # times faster than torch.where on CPUs.
    position = (red - green).add_(chroma, alpha=4.0)
    position = position.lerp_((blue - red).add_(chroma, alpha=2.0), (green == value).to(x.dtype))
    position = position.lerp_(green - blue, (red == value).to(x.dtype))
    # Grey (C = 0): position 0, any hue; the output is V whatever h is.
    position = position.div_(chroma.clamp_min(torch.finfo(x.dtype).tiny))  # in [-1, 5]
    # Per sample and channel, t = h + offset, the offset (shift - n) brought by whole turns into [-5, 1),
    # so that t lies in [-6, 6], its distance to the nearest whole turn is 3 - ||t| - 3|, and
    # ramp = clamp(2 - distance, 0, 1) = clamp(||t| - 3| - 1, 0, 1): one plane per channel, in place.
    offsets = _const.values((3.0, 5.0, 1.0), x)
    offsets = torch.remainder(6 * factor.to(x.dtype).unsqueeze(-1) - offsets + 5.0, 6.0) - 5.0  # (B, 3)
    channels = []
    for channel in range(3):
        ramp = (position + offsets[:, channel, None, None]).abs_().sub_(3.0).abs_().sub_(1.0).clamp_(0.0, 1.0)
        into = None if out is None else out[:, channel]
        channels.append(torch.addcmul(value, chroma, ramp, value=-1, out=into))
    out = out if out is not None else torch.stack(channels, dim=-3)
    if bound != 1.0:
        # Back to uint8 as torchvision's scaled conversion does: times (255 + 1 - 1e-3), truncated, so a
        # value that the HSV round trip leaves just under an integer keeps its level.
        return (out * (bound + 1 - 1e-3)).floor().clamp(0.0, bound).to(images.dtype)
    return out.to(images.dtype)
