"""Pixel operations: blur, noise, posterize, solarize, sharpness, autocontrast, equalize.

Each function is torchvision v2's operation of the same name (``torchvision.transforms.v2.functional``)
on a whole batch at once, with the per-sample magnitudes (blur sigma, noise sigma, solarize
threshold, sharpness factor, posterize bits) given as ``(B,)`` tensors as well as numbers: the results equal
torchvision's per image, computed in one batched call without a Python loop over samples and
without reading tensor values on the host.

Values follow torchvision's scales: ``[0, 1]`` for floating point images, ``[0, 255]`` for
``uint8`` (:func:`diffaug.functional.colour.value_range`). Blur, noise, sharpness and
autocontrast compute half precision and ``uint8`` images in float32 and convert back as
torchvision converts them (``uint8`` blur rounds, sharpness and autocontrast truncate);
posterize and solarize work in the images' dtype, equalize on 256 levels, as torchvision's do;
float64 stays float64, so gradients can be checked there.

Gradients are whatever the exact operations give (autograd through the blur's kernel, the
noise's sigma, the sharpness blend, solarize's two branches; zero or none through ``floor``, the
histogram and ``argmax``); the straight-through estimators that the transforms put on top are in
:mod:`diffaug.transforms.pixel`, with :func:`solarize_surrogate` for the threshold.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffaug.functional import _checks, _constants, _cpu_kernels
from diffaug.functional.colour import check_colour_channels, to_uint8, value_range
from diffaug.functional.geometry import reflect_index
from diffaug.functional.warp import compute_dtype

__all__ = [
    "check_kernel_size",
    "gaussian_kernel1d",
    "blur_matrix",
    "gaussian_blur",
    "gaussian_noise",
    "posterize",
    "solarize",
    "solarize_surrogate",
    "adjust_sharpness",
    "autocontrast",
    "equalize",
]


def _batched(images: Tensor) -> Tensor:
    _checks.check_images(images)
    return images.unsqueeze(0) if images.ndim == 3 else images


def _like_input(out: Tensor, images: Tensor) -> Tensor:
    """Back to the input's layout: one image for one image, channels_last for channels_last."""
    if images.ndim == 3:
        return out.squeeze(0)
    if images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        return out.contiguous(memory_format=torch.channels_last)
    return out


def _per_sample(value: float | Tensor, batch: int, like: Tensor, name: str) -> float | Tensor:
    """A number, or a ``(B,)`` tensor viewed as ``(B, 1, 1, 1)`` in ``like``'s dtype."""
    if not isinstance(value, Tensor):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{name} must be a number or a (B,) tensor, got {type(value).__name__}")
        return float(value)
    if value.shape not in ((batch,), ()):
        raise ValueError(f"{name} must be a number or have shape ({batch},) (one per sample), got {tuple(value.shape)}")
    _checks.check_same_device(value, like, name)
    return value.to(like.dtype).reshape(-1, 1, 1, 1)


def check_kernel_size(kernel_size: int | Sequence[int], name: str = "kernel_size") -> tuple[int, int]:
    """torchvision's ``kernel_size``: an int or ``(kx, ky)`` (``kx`` across the width), odd and positive.

    Raises:
        TypeError: not an int or a pair of ints.
        ValueError: an even or non-positive size.

    Examples:
        >>> check_kernel_size(23), check_kernel_size((5, 3))
        ((23, 23), (5, 3))
    """
    kx, ky = _checks.check_int_pair(kernel_size, name, "(kx, ky)")
    if kx <= 0 or ky <= 0 or kx % 2 == 0 or ky % 2 == 0:
        raise ValueError(f"{name} must be odd and positive, got {kernel_size!r}")
    return kx, ky


def gaussian_kernel1d(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian weights ``(..., size)`` for each ``sigma`` ``(...)``, torchvision's kernel.

    Tap ``t`` (centred: ``t - size // 2``) weighs ``exp(-t^2 / (2 sigma^2))``, divided by the sum; a
    softmax, so that a tiny sigma gives the unit impulse instead of ``0 / 0``. Differentiable in sigma.

    Examples:
        >>> import torch
        >>> gaussian_kernel1d(torch.tensor([1.0]), 3)
        tensor([[0.2741, 0.4519, 0.2741]])
    """
    offsets = _constants.memo(("blur_offsets", size), sigma, lambda: torch.arange(size, device=sigma.device, dtype=sigma.dtype))
    scaled = (offsets - size // 2) / sigma.unsqueeze(-1)
    return torch.softmax(-0.5 * scaled * scaled, dim=-1)


def _reflect_taps(length: int, size: int, like: Tensor) -> Tensor:
    """``(length, size)``: the pixel tap ``t`` of output ``i`` reads, reflect padding folded in."""
    taps = torch.arange(length, device=like.device)[:, None] + torch.arange(size, device=like.device) - size // 2
    return reflect_index(taps, length)


def blur_matrix(weights: Tensor, length: int) -> Tensor:
    """``(B, length, length)``: a 1-D filter ``(B, k)`` with reflect padding, as a matrix per sample.

    Row ``i`` holds the weights output pixel ``i`` gives the input pixels (a band, folded back at the
    edges the way ``numpy.pad(mode="reflect")`` mirrors); ``matrix @ signal`` filters a column.
    Differentiable in the weights. Any ``k`` works (the reflection repeats where ``k // 2 >= length``).

    Examples:
        >>> import torch
        >>> blur_matrix(torch.tensor([[0.25, 0.5, 0.25]]), 3)
        tensor([[[0.5000, 0.5000, 0.0000],
                 [0.2500, 0.5000, 0.2500],
                 [0.0000, 0.5000, 0.5000]]])
    """
    batch, size = weights.shape
    taps = _constants.memo(("blur_taps", length, size), weights, lambda: _reflect_taps(length, size, weights))
    matrix = weights.new_zeros(batch, length, length)
    return matrix.scatter_add(2, taps.expand(batch, length, size), weights.unsqueeze(1).expand(batch, length, size))


def _sigma_pairs(sigma: float | Sequence[float] | Tensor, batch: int, like: Tensor) -> Tensor:
    """``sigma`` as ``(B, 2)`` ``(sigma_x, sigma_y)`` in ``like``'s dtype."""
    if isinstance(sigma, Tensor):
        _checks.check_same_device(sigma, like, "sigma")
        if sigma.shape in ((batch,), ()):
            sigma = sigma.reshape(-1, 1).expand(batch, 2)
        elif sigma.shape not in ((batch, 2), (2,)):
            raise ValueError(f"sigma must have shape ({batch},) or ({batch}, 2) (one per sample), got {tuple(sigma.shape)}")
        return sigma.to(like.dtype).expand(batch, 2)
    values = (sigma,) if isinstance(sigma, (int, float)) else tuple(sigma)
    if len(values) not in (1, 2) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"sigma must be a number, a pair (sigma_x, sigma_y) or a tensor, got {sigma!r}")
    if not all(v > 0 for v in values):
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    pair = (float(values[0]), float(values[-1]))
    return like.new_tensor(pair).expand(batch, 2)


def gaussian_blur(images: Tensor, kernel_size: int | Sequence[int], sigma: float | Sequence[float] | Tensor) -> Tensor:
    """Gaussian blur with reflect padding, one sigma per sample: torchvision's ``gaussian_blur`` batched.

    Separable. Up to :data:`MATRIX_SIDE` pixels a side, each axis is filtered by one matrix product
    per sample with :func:`blur_matrix` (reflect padding folded into the matrix, so no padded
    copy), on BLAS / cuBLAS: on (64, 3, 224, 224) with a 23-tap kernel it beats grouped
    convolutions and the padded copy they need (``docs/pixel-ops.md``). Larger images, whose
    dense matrices would cost ``side`` multiply-adds a pixel and ``B side^2`` memory, take two
    grouped convolutions with per-sample kernels instead. Values are not read: sigma must be positive.

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)``, float or ``uint8``, any channel count.
        kernel_size: int or ``(kx, ky)``, odd and positive (``kx`` across the width).
        sigma: a number, ``(sigma_x, sigma_y)``, or a tensor ``(B,)`` / ``(B, 2)``: one per sample.

    Returns:
        Images of the input's shape, dtype and memory format.

    Examples:
        >>> import torch
        >>> images = torch.rand(2, 3, 8, 8)
        >>> out = gaussian_blur(images, 3, torch.tensor([0.5, 2.0]))
        >>> out.shape, bool(out[1].std() < images[1].std())
        (torch.Size([2, 3, 8, 8]), True)
    """
    kx, ky = check_kernel_size(kernel_size)
    batch_images = _batched(images)
    batch, channels, height, width = batch_images.shape
    work = batch_images.to(compute_dtype(images.dtype))
    sigmas = _sigma_pairs(sigma, batch, work)
    weights_x = gaussian_kernel1d(sigmas[:, 0], kx)
    weights_y = gaussian_kernel1d(sigmas[:, 1], ky)
    if max(height, width) > MATRIX_SIDE and kx // 2 < width and ky // 2 < height:
        out = _blur_grouped(work, weights_x, weights_y)
    else:
        across = blur_matrix(weights_x, width)
        # One matrix serves both axes of a square image with one sigma per sample (torchvision's case).
        isotropic = sigma.ndim < 2 if isinstance(sigma, Tensor) else isinstance(sigma, (int, float)) or len(set(sigma)) == 1
        same = isotropic and (ky, height) == (kx, width)
        down = across if same else blur_matrix(weights_y, height)
        out = torch.matmul(work.reshape(batch, channels * height, width), across.transpose(1, 2))
        # One (H, H) matrix per image and channel, materialised (matmul would expand and copy it too), so that
        # forward and backward are plain bmm calls.
        downs = down.unsqueeze(1).expand(batch, channels, height, height).reshape(batch * channels, height, height)
        out = torch.bmm(downs, out.view(batch * channels, height, width)).view(batch, channels, height, width)
    if images.dtype == torch.uint8:
        # uint8 carries no gradient: rounded and clamped in place on this function's own result.
        return _like_input(to_uint8(out.detach().round_().clamp_(0, 255)), images)
    return _like_input(out.to(images.dtype), images)


MATRIX_SIDE = 512
"""Image side up to which :func:`gaussian_blur` filters by dense matrix products (beyond: grouped convolutions)."""


def _blur_grouped(work: Tensor, weights_x: Tensor, weights_y: Tensor) -> Tensor:
    """Two grouped convolutions, one group per (sample, channel), on a reflect-padded copy."""
    batch, channels, height, width = work.shape
    rx, ry = weights_x.shape[1] // 2, weights_y.shape[1] // 2
    groups = batch * channels
    padded = F.pad(work, (rx, rx, ry, ry), mode="reflect").reshape(1, groups, height + 2 * ry, width + 2 * rx)
    out = F.conv2d(padded, weights_x.repeat_interleave(channels, 0)[:, None, None, :], groups=groups)
    out = F.conv2d(out, weights_y.repeat_interleave(channels, 0)[:, None, :, None], groups=groups)
    return out.view(batch, channels, height, width)


def gaussian_noise(images: Tensor, noise: Tensor, mean: float = 0.0, sigma: float | Tensor = 0.1, clip: bool = True) -> Tensor:
    """``images + mean + sigma * noise``, torchvision's ``gaussian_noise`` with the noise given.

    ``noise`` is standard normal (``torch.randn`` of the images' shape): the randomness lives in
    the caller, so the same noise replays the same result. ``uint8`` follows torchvision: the
    noise, scaled to ``[0, 255]``, is truncated to an integer before it is added.

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)``, float or ``uint8``.
        noise: standard normal, the images' shape, floating point.
        mean: added to every pixel (the images' scale: ``[0, 1]`` units, as torchvision).
        sigma: a number ``>= 0`` or a ``(B,)`` tensor, one per sample.
        clip: clamp to ``[0, 1]`` (``[0, 255]`` for ``uint8``); without it ``uint8`` wraps around.

    Examples:
        >>> import torch
        >>> images = torch.full((2, 1, 4, 4), 0.5)
        >>> out = gaussian_noise(images, torch.ones(2, 1, 4, 4), sigma=torch.tensor([0.1, 0.2]))
        >>> out[:, 0, 0, 0]
        tensor([0.6000, 0.7000])
    """
    batch_images = _batched(images)
    if not isinstance(noise, Tensor) or not noise.is_floating_point():
        raise TypeError(f"noise must be a floating point tensor (standard normal), got {getattr(noise, 'dtype', type(noise))}")
    if noise.shape != images.shape:
        raise ValueError(f"noise must have the images' shape {tuple(images.shape)}, got {tuple(noise.shape)}")
    _checks.check_same_device(noise, images, "noise")
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    work_dtype = compute_dtype(images.dtype)
    unit = noise.reshape(batch_images.shape).to(work_dtype)
    scale = _per_sample(sigma, batch_images.shape[0], unit, "sigma")
    if images.dtype == torch.uint8:
        shift = (mean * 255 + unit * (scale * 255)).to(torch.int16)
        out = batch_images.to(torch.int16) + shift
        out = out.clamp(0, 255) if clip else out
    else:
        # One fused multiply-add per pixel (noise is memory-bound); clamp in place on the fresh result.
        work = batch_images.to(work_dtype)
        out = torch.addcmul(work, unit, scale) if isinstance(scale, Tensor) else torch.add(work, unit, alpha=scale)
        out = out.add_(mean) if mean != 0 else out
        out = out.clamp_(0, 1) if clip else out
    return _like_input(out.to(images.dtype), images)


def posterize(images: Tensor, bits: int | Tensor) -> Tensor:
    """Keep ``bits`` bits per channel: torchvision's ``posterize`` (``uint8`` masks, floats floor to ``2**bits`` levels).

    ``bits`` is an int, or an integer ``(B,)`` tensor with one value per sample (values in
    ``[0, 8]``, not read on the host).

    Raises:
        TypeError: ``bits`` is not an int or an integer tensor. ValueError: ``bits`` outside ``[0, 8]``.

    Examples:
        >>> import torch
        >>> posterize(torch.tensor([[[[0, 100, 255]]]], dtype=torch.uint8), 2)
        tensor([[[[  0,  64, 192]]]], dtype=torch.uint8)
        >>> posterize(torch.tensor([[[[100]]], [[[100]]]], dtype=torch.uint8), torch.tensor([2, 8])).flatten()
        tensor([ 64, 100], dtype=torch.uint8)
    """
    _checks.check_images(images)
    if isinstance(bits, Tensor):
        if bits.is_floating_point() or bits.dtype == torch.bool:
            raise TypeError(f"bits must be an int or an integer (B,) tensor, got {bits.dtype}")
        batch = images.shape[0] if images.ndim == 4 else 1
        if bits.shape not in ((batch,), ()):
            raise ValueError(f"bits must be an int or have shape ({batch},) (one per sample), got {tuple(bits.shape)}")
        _checks.check_same_device(bits, images, "bits")
        shape = (-1, 1, 1, 1) if images.ndim == 4 else (1, 1, 1)
        per_sample = bits.long().reshape(shape)
        if images.dtype == torch.uint8:
            return images & ((0xFF << (8 - per_sample)) & 0xFF).to(torch.uint8)
        steps = (1 << per_sample).to(images.dtype)
        return torch.minimum(images.mul(steps).floor().clamp_min(0), steps - 1) / steps
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise TypeError(f"bits must be an int in [0, 8], got {bits!r}")
    if not 0 <= bits <= 8:
        raise ValueError(f"bits must be in [0, 8], got {bits}")
    if images.dtype == torch.uint8:
        return images & ((0xFF << (8 - bits)) & 0xFF)
    levels = 1 << bits
    return images.mul(levels).floor().clamp(0, levels - 1).mul(1.0 / levels)


def _check_threshold(threshold: float | Tensor, dtype: torch.dtype) -> None:
    if isinstance(threshold, Tensor):
        return  # values are not read: a learnt threshold outside the range inverts all or nothing
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise TypeError(f"threshold must be a number or a (B,) tensor, got {type(threshold).__name__}")
    bound = value_range(dtype)
    if not 0 <= threshold <= bound:
        raise ValueError(f"threshold must be in [0, {bound:g}] for {dtype} images, got {threshold!r}")


def solarize(images: Tensor, threshold: float | Tensor) -> Tensor:
    """Invert the pixels at or above ``threshold``: torchvision's ``solarize``, per-sample thresholds allowed.

    Gradient to the images: ``1`` below the threshold, ``-1`` at or above it (the exact derivative).
    None to the threshold (a step); :func:`solarize_surrogate` gives it one.

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)``, float or ``uint8``.
        threshold: a number in ``[0, 1]`` (``[0, 255]`` for ``uint8``) or a ``(B,)`` tensor.

    Examples:
        >>> import torch
        >>> solarize(torch.tensor([[[[0.2, 0.5, 0.9]]]]), 0.5)
        tensor([[[[0.2000, 0.5000, 0.1000]]]])
    """
    batch_images = _batched(images)
    _check_threshold(threshold, images.dtype)
    # uint8 images are compared with the threshold in float32 (torch's type promotion), not rounded to levels.
    like = batch_images if images.is_floating_point() else batch_images.new_zeros((), dtype=torch.float32)
    level = _per_sample(threshold, batch_images.shape[0], like, "threshold")
    if images.is_floating_point():
        out = torch.where(batch_images >= level, value_range(images.dtype) - batch_images, batch_images)
    else:
        out = _solarize_uint8(batch_images, level)
    return out.squeeze(0) if images.ndim == 3 else out


def _solarize_uint8(images: Tensor, level: float | Tensor) -> Tensor:
    """``where(x >= level, ~x, x)`` for uint8 ``x`` in integer arithmetic, the same values.

    For an integer ``x``, ``x >= level`` is ``x >= ceil(level)`` (float32, as the comparison promotes);
    ``(ceil(level) - 1 - x) >> 15`` is then -1 where to invert and 0 elsewhere, 255 or 0 as uint8, and
    the inversion an xor with it. On a CPU a comparison over the pixels and ``torch.where`` cost 10 to 100
    times a pass of integer arithmetic (600k uint8 values, one thread: 340 us, 2.4 ms, about 25 us).
    """
    # NaN inverts nothing (x >= NaN is false), as a threshold above 255 does: 256 stands for both.
    first: int | Tensor
    if isinstance(level, Tensor):
        first = level.to(torch.float32).ceil().nan_to_num(256.0).clamp_(0.0, 256.0).to(torch.int16)
    else:
        # A number stays on the host (a tensor made from it would be a copy to the images' device per call).
        value = min(max(level, -1.0), 257.0)  # beyond these bounds every threshold acts alike
        value = struct.unpack("f", struct.pack("f", value))[0]  # rounded to float32, as the comparison promotes
        first = 256 if math.isnan(value) else math.ceil(min(max(value, 0.0), 256.0))
    flip = ((first - 1) - images.to(torch.int16)).bitwise_right_shift_(15).to(torch.uint8)
    return images ^ flip


def solarize_surrogate(images: Tensor, threshold: Tensor, width: float = 0.05) -> Tensor:
    """Zero in value, with the threshold's gradient of solarize relaxed by a sigmoid of ``width``.

    ``s - s.detach()`` with ``s = (1 - 2 x) sigmoid((x - t) / width)`` (``x`` detached): adding it to
    :func:`solarize`'s output changes no value and gives ``t`` the gradient of the relaxed step,
    each pixel's jump ``1 - 2 x`` spread over ``width`` around the threshold (a kernel estimate of
    how the expected output moves with ``t``). Floating point images in ``[0, 1]`` only.

    Examples:
        >>> import torch
        >>> t = torch.tensor([0.5], requires_grad=True)
        >>> images = torch.tensor([[[[0.2, 0.48, 0.9]]]])
        >>> extra = solarize_surrogate(images, t)
        >>> bool((extra == 0).all()); extra.sum().backward(); bool(t.grad < 0)
        True
        True
    """
    x = _batched(images).detach()
    level = _per_sample(threshold, x.shape[0], x, "threshold")
    relaxed = (1 - 2 * x) * torch.sigmoid((x - level) / width)
    out = relaxed - relaxed.detach()
    return out.squeeze(0) if images.ndim == 3 else out


def adjust_sharpness(images: Tensor, sharpness_factor: float | Tensor) -> Tensor:
    """torchvision's ``adjust_sharpness``: blend with a 3 x 3 smoothed copy, edges kept; one factor per sample allowed.

    ``factor`` 0 gives the smoothed image, 1 the original, 2 twice as sharp. The one-pixel border
    is kept as it is, as torchvision keeps it. Differentiable in the images and the factor.
    ``uint8`` images on the CPU go through a compiled kernel (:mod:`diffaug.functional._cpu_kernels`):
    one pass, the same levels (one apart at most, where a blend lies within rounding of a level).

    Args:
        images: ``(B, C, H, W)`` or ``(C, H, W)`` with 1 or 3 channels, float or ``uint8``.
        sharpness_factor: a number ``>= 0`` or a ``(B,)`` tensor.

    Raises:
        TypeError: images without 1 or 3 channels. ValueError: a negative factor.

    Examples:
        >>> import torch
        >>> images = torch.rand(2, 3, 5, 5)
        >>> torch.equal(adjust_sharpness(images, 1.0), images)
        True
    """
    batch_images = _batched(images)
    check_colour_channels(batch_images)
    if isinstance(sharpness_factor, (int, float)) and not isinstance(sharpness_factor, bool) and sharpness_factor < 0:
        raise ValueError(f"sharpness_factor must be >= 0, got {sharpness_factor!r}")
    height, width = batch_images.shape[-2:]
    if height <= 2 or width <= 2:
        return images
    if _cpu_kernels.serves_uint8(batch_images):
        # On the CPU a compiled kernel, one pass: the same arithmetic, except that PyTorch's vectorised lerp
        # may fuse its multiply-add (one level apart where a blend lands within rounding of a whole level).
        batch = batch_images.shape[0]
        like = batch_images.new_empty((), dtype=torch.float32)
        factor = _per_sample(sharpness_factor, batch, like, "sharpness_factor")
        factors = factor.reshape(-1).expand(batch) if isinstance(factor, Tensor) else like.new_full((batch,), factor)
        return _like_input(_cpu_kernels.adjust_sharpness_uint8(batch_images.contiguous(), factors.contiguous()), images)
    work = batch_images.to(compute_dtype(images.dtype))
    factor = _per_sample(sharpness_factor, batch_images.shape[0], work, "sharpness_factor")
    # torchvision's 3 x 3 kernel (1 around, 5 in the centre, / 13) as a separable box sum plus 4 x the centre:
    # a few adds over the image, several times faster on a CPU than a grouped convolution; the same
    # values (the sums are exact, and uint8 never rounds at a tie: a multiple of 1/13 is never k + 1/2).
    # In place on this function's own temporaries (none is read by the backward): fewer passes over the pixels.
    inner = work[..., 1:-1, 1:-1]
    rows = (work[..., :, :-2] + work[..., :, 1:-1]).add_(work[..., :, 2:])
    smooth = (rows[..., :-2, :] + rows[..., 1:-1, :]).add_(rows[..., 2:, :]).add_(inner, alpha=4).div_(13.0)
    if images.dtype == torch.uint8:
        # Blended in place, then copied over the interior of this function's own float copy, the border kept
        # (uint8 carries no gradient): no further batch.
        with torch.no_grad():
            inner.copy_(smooth.round_().lerp_(inner, factor))
        return _like_input(to_uint8(work.clamp_(0, 255)), images)
    # factor * x + (1 - factor) * smooth on the interior, the border kept.
    out = work.clone()
    out[..., 1:-1, 1:-1] = torch.lerp(smooth, inner, factor)
    out = out.clamp_(0, value_range(images.dtype))
    return _like_input(out.to(images.dtype), images)


def autocontrast(images: Tensor) -> Tensor:
    """Stretch each channel of each image to the full range: torchvision's ``autocontrast``.

    A channel with one value throughout is left as it is. ``uint8`` is computed in float32 and
    truncated back, as torchvision does.

    Raises:
        TypeError: images without 1 or 3 channels.

    Examples:
        >>> import torch
        >>> autocontrast(torch.tensor([[[[0.2, 0.4, 0.6]]]]))
        tensor([[[[0.0000, 0.5000, 1.0000]]]])
    """
    batch_images = _batched(images)
    check_colour_channels(batch_images)
    bound = value_range(images.dtype)
    work = batch_images.to(compute_dtype(images.dtype))
    low = work.amin(dim=(-2, -1), keepdim=True)
    high = work.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    # (high - low) / bound, as torchvision divides by it; flat channels: offset 0, scale 1.
    scale = torch.where(flat, torch.ones_like(high), (high - low) * (1.0 / bound))
    out = ((work - torch.where(flat, torch.zeros_like(low), low)) / scale).clamp(0, bound)
    return _like_input(to_uint8(out) if images.dtype == torch.uint8 else out.to(images.dtype), images)


def equalize(images: Tensor) -> Tensor:
    """Histogram equalisation per channel of each image: torchvision's ``equalize`` (PIL's lookup table).

    Float images are binned to ``uint8`` as torchvision bins them (``x * (256 - 1e-3)``, truncated)
    and come back as ``level / 255``. The histograms of all channels of all images are one
    ``scatter_add`` into a ``(B * C, 256)`` table, so the batch costs one pass and no host read.
    ``uint8`` images on the CPU go through a compiled kernel (:mod:`diffaug.functional._cpu_kernels`)
    with the same integers.

    Examples:
        >>> import torch
        >>> images = (torch.arange(512) // 8).to(torch.uint8).view(1, 1, 16, 32)  # levels 0 to 63
        >>> out = equalize(images)  # spread over the whole range
        >>> int(images.max()), int(out.max()), out.unique()[:4].tolist()
        (63, 255, [0, 8, 16, 24])
    """
    batch_images = _batched(images)
    if _cpu_kernels.serves_uint8(batch_images):
        # On the CPU a compiled kernel: one pass for the histograms, one through the tables (the same integers).
        return _like_input(_cpu_kernels.equalize_uint8(batch_images), images)
    # Float images binned as torchvision's to_dtype(uint8, scale=True) bins them.
    levels = batch_images if images.dtype == torch.uint8 else batch_images.detach().mul(256 - 1e-3).to(torch.uint8)
    batch, channels, height, width = levels.shape
    flat = levels.reshape(batch * channels, height * width).long()
    count = height * width
    histogram = torch.zeros(batch * channels, 256, dtype=torch.int32, device=images.device)
    histogram.scatter_add_(1, flat, histogram.new_ones(()).expand_as(flat))  # an expanded one: no per-pixel ones
    cumulative = histogram.cumsum(1, dtype=torch.int32)
    # PIL's table: step = pixels not at the top level, // 255; entry k = (cumulative[k-1] + step // 2) // step.
    top = histogram.gather(1, cumulative.argmax(1, keepdim=True))
    step = torch.div(count - top, 255, rounding_mode="floor")
    table = torch.div(cumulative[:, :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp(0, 255)
    table = torch.cat([torch.zeros_like(table[:, :1]), table], dim=1)
    # A channel with step 0 is kept: its table is the identity (a select over the tables, not the pixels).
    table = torch.where(step > 0, table, torch.arange(256, device=table.device, dtype=table.dtype)).to(torch.uint8)
    out = table.gather(1, flat).view(batch, channels, height, width)
    if images.dtype != torch.uint8:
        out = out.to(images.dtype).mul_(1.0 / 255)
    return _like_input(out, images)
