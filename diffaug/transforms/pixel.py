"""Pixel transforms: blur, noise, posterize, solarize, sharpness, autocontrast, equalize, per sample.

torchvision v2's names, arguments, argument order and defaults; each transform draws its own
values for every sample of the batch in one call (torchvision draws one per call) and applies
its operation of :mod:`diffaug.functional.pixel` to the whole batch. ``p`` is torchvision's where
it has one (``RandomPosterize(bits, p=0.5)``) and a keyword-only extra, default 1, where it has
none (``GaussianBlur``, ``GaussianNoise``). A sample that is not drawn keeps its input.

Same protocol as the geometric transforms: ``make_params(images, generator=None)`` reads only the
images' shape, dtype and device and returns :class:`PixelParams`; ``transform(images, params)``
is pure. The params carry no ``theta``: inside :class:`diffaug.Compose` these steps end a run of
fused warps, and targets (boxes, masks, keypoints) are never changed by them.

Gradients (``docs/pixel-ops.md`` has the table): blur and noise are differentiable in the images
and in their sigma, sharpness in the images and its factor; posterize, autocontrast and equalize
pass the output's gradient straight through to the images (forward the exact operation,
backward the identity); solarize's images get the exact derivative (``+1`` / ``-1``) and its
threshold, when learnable, the gradient of a sigmoid-relaxed step. With a learnable ``p`` a
sample's output is ``lerp(input, op(input), a)`` with ``a`` the relaxed draw, which is how ``p``
receives its gradient (``a`` is exactly 0 or 1 with a fixed ``p``: no blending then).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from diffaug import distributions
from diffaug.distributions import Range
from diffaug.functional import _checks, pixel
from diffaug.functional.warp import compute_dtype
from diffaug.transforms.base import RandomTransform, batch_shape, param_dtype

__all__ = [
    "PixelParams",
    "GaussianBlur",
    "GaussianNoise",
    "RandomPosterize",
    "RandomSolarize",
    "RandomAdjustSharpness",
    "RandomAutocontrast",
    "RandomEqualize",
]


@dataclasses.dataclass
class PixelParams:
    """Per-call parameters of a pixel transform (no ``theta``: nothing moves).

    Attributes:
        applied: ``(B,)`` in ``[0, 1]``: 1 where the operation is applied (fractional only for a
            relaxed, learnable ``p``); a sample with 0 keeps its input.
        magnitude: ``(B,)`` the value drawn per sample, or ``None``: the blur's or the noise's
            sigma, the solarize threshold, the sharpness factor.
        noise: ``GaussianNoise`` only: the standard normal noise ``(B, C, H, W)`` (the images'
            shape), scaled by ``magnitude`` when applied; kept so that a replay adds the same noise.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.GaussianBlur(5, sigma=(1.5, 1.5)).make_params(torch.rand(2, 3, 8, 8))
        >>> params.magnitude, params.applied, params.noise
        (tensor([1.5000, 1.5000]), tensor([1., 1.]), None)
    """

    applied: Tensor
    magnitude: Tensor | None = None
    noise: Tensor | None = None


def _sigma_range(sigma: float | Sequence[float], name: str, allow_zero: bool) -> tuple[float, float]:
    """A number (fixed) or ``(min, max)``: torchvision's ``sigma`` -> an ordered pair, positive (or ``>= 0``)."""
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        low = high = float(sigma)
    elif isinstance(sigma, Sequence) and not isinstance(sigma, str) and len(sigma) == 1:
        return _sigma_range(sigma[0], name, allow_zero)
    else:
        low, high = _checks.check_range(sigma, name)
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError(f"{name} must be finite, got {sigma!r}")
    if low > high:
        raise ValueError(f"{name} must be ordered as (min, max), got {sigma!r}")
    if low < 0 or (low == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got {sigma!r}")
    return low, high


def _check_params(images: Tensor, params: PixelParams) -> Tensor:
    """The images as a batch, after checking that ``params`` were drawn for as many samples."""
    _checks.check_images(images)
    if not isinstance(params, PixelParams):
        raise TypeError(f"params must be the PixelParams of make_params, got {type(params).__name__}")
    batch = images.shape[0] if images.ndim == 4 else 1
    if params.applied.shape[0] != batch:
        raise ValueError(
            f"params were drawn for {params.applied.shape[0]} samples but images have {batch}; draw them with make_params(images)"
        )
    return images


def _select(module: RandomTransform, images: Tensor, out: Tensor, applied: Tensor) -> Tensor:
    """Per sample, the operation's output where applied and the input elsewhere (no host read)."""
    if module.always:
        return out
    weight = applied.reshape((-1, 1, 1, 1) if images.ndim == 4 else (1, 1, 1))
    if module.p_logit is None or not images.is_floating_point():
        return torch.where(weight > 0.5, out, images)
    # Relaxed draws blend, which is how a learnable p gets its gradient; lerp is exact at 0 and 1.
    return torch.lerp(images, out, weight.to(images.dtype))


def _draw(module: RandomTransform, images: Tensor, generator: torch.Generator | None, value: Range | None) -> PixelParams:
    """``applied`` and, for a ``value`` range, one value per sample (drawn first, as the geometric transforms do)."""
    batch, _, _ = batch_shape(images)
    device, dtype = images.device, param_dtype(images)
    magnitude = None if value is None else value.sample(distributions.uniform((batch,), generator, device, dtype))
    applied = module.draw_applied(batch, generator, device, dtype)
    return PixelParams(applied=applied, magnitude=magnitude)


class GaussianBlur(RandomTransform):
    """Gaussian blur with one sigma per sample, drawn uniformly in ``sigma`` (torchvision's law).

    torchvision's ``GaussianBlur(kernel_size, sigma=(0.1, 2.0))``: reflect padding, the same sigma
    across and down an image, ``kernel_size`` an int or ``(kx, ky)`` (odd, positive; ``kx`` across the
    width); ``sigma`` a number (fixed) or ``(min, max)``. torchvision draws one sigma per call;
    here each sample gets its own, and the batch is blurred in one call of
    :func:`diffaug.functional.pixel.gaussian_blur`.

    Args:
        kernel_size: int or ``(kx, ky)``.
        sigma: a positive number or ``(min, max)`` with ``0 < min <= max``.
        p: probability that a sample is blurred (keyword-only; torchvision's has none: 1).
        learnable: make the sigma range (and ``p`` when ``p < 1``) trainable; gradients reach the
            images and sigma through the kernel.
        temperature: of the relaxed draw of a learnable ``p``.

    Raises:
        TypeError, ValueError: an even or non-positive ``kernel_size``, a non-positive or reversed ``sigma``.

    Examples:
        >>> import torch, diffaug as da
        >>> blur = da.GaussianBlur(5, sigma=(0.1, 2.0))
        >>> images = torch.rand(4, 3, 16, 16)
        >>> params = blur.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> params.magnitude.shape, blur.transform(images, params).shape
        (torch.Size([4]), torch.Size([4, 3, 16, 16]))
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        sigma: float | Sequence[float] = (0.1, 2.0),
        *,
        p: float = 1.0,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        self.kernel_size = pixel.check_kernel_size(kernel_size)
        low, high = _sigma_range(sigma, "sigma", allow_zero=False)
        self.sigma = Range((low, high), domain=(0.0, max(10.0, 2.0 * high)), learnable=learnable)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PixelParams:
        """One sigma per sample (``magnitude``) and ``applied``; reads only the images' shape, dtype, device."""
        return _draw(self, images, generator, self.sigma)

    def transform(self, images: Tensor, params: PixelParams) -> Tensor:
        """Blur each sample with its sigma (pure: the same params give the same output)."""
        _check_params(images, params)
        assert params.magnitude is not None
        out = pixel.gaussian_blur(images, self.kernel_size, params.magnitude.to(compute_dtype(images.dtype)))
        return _select(self, images, out, params.applied)


class GaussianNoise(RandomTransform):
    """Add Gaussian noise, ``mean + sigma * N(0, 1)`` per pixel, then clip: torchvision's ``GaussianNoise``.

    ``GaussianNoise(mean=0.0, sigma=0.1, clip=True)`` in torchvision's scale (``[0, 1]`` units for
    every dtype; ``uint8`` as torchvision computes it). ``sigma`` may also be ``(min, max)``: one
    sigma per sample, drawn uniformly (an extension; torchvision takes a number). The noise is
    drawn by :meth:`make_params` and kept in the params (``noise``, the images' shape), so a replay
    adds the same noise; the images' size of memory is the cost of that.

    Args:
        mean: added to every pixel.
        sigma: a number ``>= 0`` or ``(min, max)``.
        clip: clamp to the valid range afterwards.
        p: probability that a sample gets noise (keyword-only; default 1).
        learnable: make the sigma range (and ``p`` when ``p < 1``) trainable.
        temperature: of the relaxed draw of a learnable ``p``.

    Raises:
        ValueError: a negative or reversed ``sigma``. TypeError: a non-bool ``clip``.

    Examples:
        >>> import torch, diffaug as da
        >>> noise = da.GaussianNoise(sigma=0.05)
        >>> images = torch.full((2, 3, 8, 8), 0.5)
        >>> params = noise.make_params(images)
        >>> out = noise.transform(images, params)
        >>> torch.allclose(out, 0.5 + 0.05 * params.noise)
        True
    """

    def __init__(
        self,
        mean: float = 0.0,
        sigma: float | Sequence[float] = 0.1,
        clip: bool = True,
        *,
        p: float = 1.0,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        if not isinstance(mean, (int, float)) or isinstance(mean, bool) or not math.isfinite(mean):
            raise TypeError(f"mean must be a finite number, got {mean!r}")
        if not isinstance(clip, bool):
            raise TypeError(f"clip must be True or False, got {clip!r}")
        self.mean = float(mean)
        self.clip = clip
        low, high = _sigma_range(sigma, "sigma", allow_zero=True)
        self.sigma = Range((low, high), domain=(0.0, max(1.0, 2.0 * high)), learnable=learnable)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PixelParams:
        """One sigma per sample (``magnitude``), ``applied`` and the standard normal ``noise``."""
        params = _draw(self, images, generator, self.sigma)
        params.noise = distributions.normal(images.shape, generator, images.device, compute_dtype(images.dtype))
        return params

    def transform(self, images: Tensor, params: PixelParams) -> Tensor:
        """Add ``mean + magnitude * noise`` to each sample (pure)."""
        _check_params(images, params)
        assert params.magnitude is not None and params.noise is not None
        sigma = params.magnitude.to(compute_dtype(images.dtype))
        out = pixel.gaussian_noise(images, params.noise, self.mean, sigma if images.ndim == 4 else sigma[0], self.clip)
        return _select(self, images, out, params.applied)


class RandomPosterize(RandomTransform):
    """Posterize each sample with probability ``p``: torchvision's ``RandomPosterize(bits, p=0.5)``.

    The output's gradient passes straight through to the images (posterize is a staircase, its
    derivative is zero almost everywhere). ``bits`` is an integer and receives no gradient.

    Args:
        bits: bits kept per channel, in ``[0, 8]``.
        p: probability that a sample is posterized.
        learnable: make ``p`` trainable (when ``p < 1``).
        temperature: of the relaxed draw of a learnable ``p``.

    Raises:
        TypeError: ``bits`` not an int. ValueError: ``bits`` outside ``[0, 8]``.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.tensor([[[[0, 100, 255]]]], dtype=torch.uint8)
        >>> da.RandomPosterize(2, p=1.0)(images)
        tensor([[[[  0,  64, 192]]]], dtype=torch.uint8)
    """

    def __init__(self, bits: int, p: float = 0.5, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        pixel.posterize(torch.zeros(1, 1, 1, dtype=torch.uint8), bits)  # the functional's checks of bits
        self.bits = bits

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PixelParams:
        """``applied`` per sample."""
        return _draw(self, images, generator, None)

    def transform(self, images: Tensor, params: PixelParams) -> Tensor:
        """Posterize the applied samples (pure)."""
        _check_params(images, params)
        out = distributions.straight_through(images, pixel.posterize(images, self.bits))
        return _select(self, images, out, params.applied)


class RandomSolarize(RandomTransform):
    """Invert the pixels at or above ``threshold`` with probability ``p``: torchvision's ``RandomSolarize(threshold, p=0.5)``.

    ``threshold`` is in the images' scale (``[0, 1]`` for float, ``[0, 255]`` for ``uint8``; a
    threshold beyond the images' range is refused when they arrive, as torchvision refuses it).
    The images get the exact derivative (``1`` below the threshold, ``-1`` above). With
    ``learnable=True`` the threshold becomes a trainable range (one value per sample, drawn
    uniformly; it starts as ``(threshold, threshold)``) and gets the gradient of a sigmoid-relaxed
    step (:func:`diffaug.functional.pixel.solarize_surrogate`) while the forward pass stays exact.

    Args:
        threshold: a number ``>= 0``.
        p: probability that a sample is solarized.
        learnable: make the threshold (and ``p`` when ``p < 1``) trainable.
        temperature: of the relaxed draw of a learnable ``p``.

    Raises:
        TypeError: a threshold that is not a number.
        ValueError: a threshold below 0; at call time, one beyond the images' range.

    Examples:
        >>> import torch, diffaug as da
        >>> da.RandomSolarize(0.5, p=1.0)(torch.tensor([[[[0.2, 0.5, 0.9]]]]))
        tensor([[[[0.2000, 0.5000, 0.1000]]]])
    """

    def __init__(self, threshold: float, p: float = 0.5, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold):
            raise TypeError(f"threshold must be a number, got {threshold!r}")
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0 (the images' range), got {threshold!r}")
        self.threshold = float(threshold)
        # A learnable threshold lives in float images' [0, 1]; uint8 images carry no gradient anyway.
        if learnable and self.threshold > 1:
            raise ValueError(f"a learnable threshold is in float images' range [0, 1], got {threshold!r}")
        self.threshold_range = Range((self.threshold,) * 2, domain=(0.0, 1.0), learnable=True) if learnable else None

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PixelParams:
        """``applied`` per sample and, when learnable, one threshold per sample (``magnitude``)."""
        return _draw(self, images, generator, self.threshold_range)

    def transform(self, images: Tensor, params: PixelParams) -> Tensor:
        """Solarize the applied samples (pure)."""
        _check_params(images, params)
        if params.magnitude is None:
            out = pixel.solarize(images, self.threshold)
        else:
            if not images.is_floating_point():
                raise ValueError(
                    "RandomSolarize(learnable=True) has its threshold in float images' range [0, 1]; "
                    f"got {images.dtype} images (convert them with ToDtype(torch.float32, scale=True) first)"
                )
            level = params.magnitude.to(compute_dtype(images.dtype))
            level = level if images.ndim == 4 else level[0]
            out = pixel.solarize(images, level) + pixel.solarize_surrogate(images, level).to(images.dtype)
        return _select(self, images, out, params.applied)


class RandomAdjustSharpness(RandomTransform):
    """Sharpen (factor > 1) or soften (< 1) with probability ``p``: torchvision's ``RandomAdjustSharpness``.

    Differentiable in the images and, with ``learnable=True``, in the factor, which then becomes a
    trainable range (one value per sample, starting at ``(sharpness_factor, sharpness_factor)``).
    Images with 1 or 3 channels, as torchvision.

    Args:
        sharpness_factor: a number ``>= 0`` (1 leaves the image as it is).
        p: probability that a sample is adjusted.
        learnable: make the factor (and ``p`` when ``p < 1``) trainable.
        temperature: of the relaxed draw of a learnable ``p``.

    Raises:
        ValueError: a negative factor; at call time (TypeError) images without 1 or 3 channels.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 3, 8, 8)
        >>> torch.equal(da.RandomAdjustSharpness(1.0, p=1.0)(images), images)
        True
    """

    def __init__(self, sharpness_factor: float, p: float = 0.5, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        if not isinstance(sharpness_factor, (int, float)) or isinstance(sharpness_factor, bool):
            raise TypeError(f"sharpness_factor must be a number, got {sharpness_factor!r}")
        if not 0 <= sharpness_factor < math.inf:
            raise ValueError(f"sharpness_factor must be a finite number >= 0, got {sharpness_factor!r}")
        self.sharpness_factor = float(sharpness_factor)
        domain = (0.0, max(10.0, 2.0 * self.sharpness_factor))
        self.factor_range = Range((self.sharpness_factor,) * 2, domain=domain, learnable=True) if learnable else None

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PixelParams:
        """``applied`` per sample and, when learnable, one factor per sample (``magnitude``)."""
        return _draw(self, images, generator, self.factor_range)

    def transform(self, images: Tensor, params: PixelParams) -> Tensor:
        """Adjust the sharpness of the applied samples (pure)."""
        _check_params(images, params)
        factor: float | Tensor = self.sharpness_factor
        if params.magnitude is not None:
            factor = params.magnitude.to(compute_dtype(images.dtype))
            factor = factor if images.ndim == 4 else factor[0]
        return _select(self, images, pixel.adjust_sharpness(images, factor), params.applied)


class _StraightThroughOp(RandomTransform):
    """An operation without a useful derivative, applied per sample with probability ``p``.

    The forward pass is the exact operation ``op``; the backward pass sends the output's gradient
    straight through to the images (Faster AutoAugment's estimator).
    """

    op: Callable[[Tensor], Tensor]

    def __init__(self, p: float = 0.5, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PixelParams:
        """``applied`` per sample."""
        return _draw(self, images, generator, None)

    def transform(self, images: Tensor, params: PixelParams) -> Tensor:
        """The operation on the applied samples (pure)."""
        _check_params(images, params)
        out = distributions.straight_through(images, self.op(images))
        return _select(self, images, out, params.applied)


class RandomAutocontrast(_StraightThroughOp):
    """Stretch each channel to the full range with probability ``p``: torchvision's ``RandomAutocontrast(p=0.5)``.

    The output's gradient passes straight through to the images. Images with 1 or 3 channels.

    Args:
        p: probability that a sample is stretched.
        learnable: make ``p`` trainable (when ``p < 1``).
        temperature: of the relaxed draw of a learnable ``p``.

    Examples:
        >>> import torch, diffaug as da
        >>> da.RandomAutocontrast(p=1.0)(torch.tensor([[[[0.2, 0.4, 0.6]]]]))
        tensor([[[[0.0000, 0.5000, 1.0000]]]])
    """

    op = staticmethod(pixel.autocontrast)


class RandomEqualize(_StraightThroughOp):
    """Equalize each channel's histogram with probability ``p``: torchvision's ``RandomEqualize(p=0.5)``.

    The output's gradient passes straight through to the images.

    Args:
        p: probability that a sample is equalized.
        learnable: make ``p`` trainable (when ``p < 1``).
        temperature: of the relaxed draw of a learnable ``p``.

    Examples:
        >>> import torch, diffaug as da
        >>> images = (torch.arange(512) // 8).to(torch.uint8).view(1, 1, 16, 32)
        >>> int(da.RandomEqualize(p=1.0)(images).max())
        255
    """

    op = staticmethod(pixel.equalize)
