"""Crops: RandomResizedCrop, ZoomCrop and BoxCrop.

Each samples boxes (continuous, never rounded) and turns them into ``theta`` with
:func:`diffaug.functional.boxes_to_theta`; the warp does the rest.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from diffaug import distributions
from diffaug import functional as daf
from diffaug.distributions import Range
from diffaug.functional import _checks
from diffaug.transforms import targets as target_layer
from diffaug.transforms.base import GeometricTransform, Params, batch_shape, output_size, param_dtype, where_applied

__all__ = ["CropParams", "RandomResizedCrop", "ZoomCrop", "BoxCrop"]

_TRIES = 10


@dataclasses.dataclass
class CropParams(Params):
    """:class:`Params` plus ``boxes`` ``(B, 4)``: the XYXY pixel box each output shows.

    Examples:
        >>> import torch, diffaug as da
        >>> boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [8.0, 4.0, 32.0, 20.0]])
        >>> params = da.BoxCrop(8).make_params(torch.rand(2, 3, 32, 32), boxes)
        >>> torch.equal(params.boxes, boxes), params.theta.shape
        (True, torch.Size([2, 2, 3]))
    """

    boxes: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0, 4))


def box_params(
    boxes: Tensor,
    size: tuple[int, int],
    in_size: tuple[int, int],
    applied: Tensor | None = None,
    batch_index: Tensor | None = None,
) -> CropParams:
    """The parameters of crops of ``boxes`` ``(B, 4)`` resized to ``size``: their ``theta``; every box applied by default."""
    if applied is None:
        applied = torch.ones(boxes.shape[0], device=boxes.device, dtype=boxes.dtype)
    theta = daf.boxes_to_theta(boxes, in_size)
    return CropParams(theta=theta, size=size, in_size=in_size, applied=applied, batch_index=batch_index, boxes=boxes)


def shrink_inside(in_size: tuple[int, int], out_size: tuple[int, int]) -> float:
    """``max_shrink`` of a transform whose outputs show parts of the image resized (never more than the image)."""
    return max(in_size[0] / out_size[0], in_size[1] / out_size[1])


def _whole_image(batch: int, height: int, width: int, like: Tensor) -> Tensor:
    return like.new_tensor([0.0, 0.0, float(width), float(height)]).expand(batch, 4)


class RandomResizedCrop(GeometricTransform):
    """Crop a random area and aspect ratio of each sample, resized to ``size``; differentiable.

    The law is torchvision's: the area fraction is uniform in ``scale``, the aspect ratio
    (w / h) log-uniform in ``ratio``; of up to 10 tries the first that fits in the image is
    taken, otherwise torchvision's centred fallback; the position is uniform over the places the
    crop fits. Unlike torchvision every sample gets its own crop, drawn at once on the images'
    device, and nothing is rounded, so gradients reach ``scale`` and ``ratio``.

    Args:
        size: output ``(h, w)`` or an int.
        scale: ``(min, max)`` area fraction, ``0 < min <= max``.
        ratio: ``(min, max)`` aspect ratio w / h, ``0 < min <= max``.
        interpolation: a torchvision ``InterpolationMode`` or its value, bilinear by default.
        antialias: low-pass filter each crop by its own shrink before resampling (see
            :mod:`diffaug.functional.antialias`). ``None`` (the default): on unless
            ``interpolation`` is nearest, see :class:`~diffaug.transforms.base.GeometricTransform`.
            On a 2-core CPU, for (64, 3, 448, 448) -> 224 crops, it costs about 1.45x the plain
            warp forward and 1.7x forward + backward (a compiled kernel); pass ``False`` for the
            plain warp.
        p: keyword-only: probability of cropping a sample; the others are the whole image resized.
        learnable: keyword-only: make the bounds of ``scale`` and ``ratio`` (and ``p``) trainable.
        padding_mode, temperature: keyword-only, see :class:`~diffaug.transforms.base.GeometricTransform`.

    Shapes:
        ``(B, C, H, W) -> (B, C, h, w)``; ``(C, H, W) -> (C, h, w)``.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomResizedCrop(32)
        >>> images = torch.rand(4, 3, 64, 48)
        >>> params = t.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> params.boxes.shape, params.theta.shape
        (torch.Size([4, 4]), torch.Size([4, 2, 3]))
        >>> t.transform(images, params).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: object = "bilinear",
        antialias: bool | None = None,
        *,
        p: float = 1.0,
        learnable: bool = False,
        padding_mode: str = "constant",
        temperature: float = 0.1,
    ) -> None:
        super().__init__(
            interpolation=interpolation,
            padding_mode=padding_mode,
            antialias=antialias,
            p=p,
            learnable=learnable,
            temperature=temperature,
        )
        self.size = output_size(size)
        low, high = _checks.check_range(scale, "scale", low=0.0, strict_low=True)
        _checks.check_range(ratio, "ratio", low=0.0, strict_low=True)
        # The learnable domain of scale is (0, 1]: beyond 1 every try fails and the fallback wins.
        self.scale = Range((low, high), domain=(0.0, max(1.0, high)), learnable=learnable)
        self.ratio = Range(tuple(ratio), domain=(0.0, math.inf), log=True, learnable=learnable)  # type: ignore[arg-type]

    def max_shrink(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> float:
        return shrink_inside(in_size, out_size)  # every crop, and the whole image where not applied, lies inside it

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> CropParams:
        batch, height, width = batch_shape(images)
        device, dtype = images.device, param_dtype(images)
        noise = distributions.uniform((batch, _TRIES + 1, 2), generator, device, dtype)
        tries, position = noise[:, :_TRIES], noise[:, _TRIES]
        # Every try at once, (B, tries) each: the area uniform in scale, the ratio w / h log-uniform in ratio.
        area = self.scale.sample(tries[..., 0]) * float(height * width)
        crop_w = torch.sqrt(area * self.ratio.sample(tries[..., 1]))
        crop_h = area / crop_w
        fits = (crop_w <= width) & (crop_h <= height)
        # The first try that fits (argmax returns the first maximum, and takes no bool), else the fallback.
        found = fits.any(dim=1, keepdim=True)
        first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)
        fallback_w, fallback_h = self._fallback(height, width, area)
        crop_w = torch.where(found, crop_w.gather(1, first), fallback_w)
        crop_h = torch.where(found, crop_h.gather(1, first), fallback_h)
        # Uniform over the places an accepted crop fits; torchvision centres the fallback.
        corner = torch.where(found, position, 0.5)
        left, top = corner[:, :1] * (width - crop_w), corner[:, 1:] * (height - crop_h)
        boxes = torch.cat([left, top, left + crop_w, top + crop_h], dim=-1)

        applied = self.draw_applied(batch, generator, device, dtype)
        if not self.always:
            boxes = where_applied(applied, boxes, _whole_image(batch, height, width, boxes))
        return box_params(boxes, self.size, (height, width), applied)

    def _fallback(self, height: int, width: int, like: Tensor) -> tuple[Tensor | float, Tensor | float]:
        """torchvision's centred fallback, continuous: the largest crop of an allowed ratio, as (w, h)."""
        in_ratio = width / height
        if self.ratio.fixed_values is not None:
            ratio_low, ratio_high = self.ratio.fixed_values
            fixed_w = height * ratio_high if in_ratio > ratio_high else float(width)
            fixed_h = width / ratio_low if in_ratio < ratio_low else float(height)
            return fixed_w, fixed_h
        low, high = (bound.to(like) for bound in self.ratio.bounds())
        # full_like(low, width) / low, not width / low: Python computes that as width * (1 / low), another rounding.
        fallback_w = torch.where(high < in_ratio, height * high, width)
        fallback_h = torch.where(low > in_ratio, torch.full_like(low, width) / low, height)
        return fallback_w, fallback_h


class ZoomCrop(GeometricTransform):
    """Zoom into each sample by a factor and move the window: a spatial-transformer crop.

    The window has the image's aspect ratio and sides ``W / zoom`` and ``H / zoom``. ``zoom``
    and the window ``center`` are sampled, or given per sample (e.g. predicted by a network);
    gradients reach both.

    Args:
        size: output ``(h, w)`` or an int.
        zoom: ``(min, max)`` zoom factors, ``> 0``, sampled log-uniformly (so zooming in by 2
            is as likely as out by 2 in a symmetric range). ``zoom > 1`` zooms in; ``< 1``
            shows the image smaller, padded with ``padding_mode`` (keyword-only, see
            :class:`~diffaug.transforms.base.GeometricTransform`).
        allow_outside: sampled windows may leave the image (their centre is uniform over the
            image); by default a sampled window stays inside the image when it fits
            (``zoom >= 1``) and contains it otherwise (``zoom < 1``: the whole image shows,
            placed at random, the rest padded).

    Keyword-only:
        interpolation: a torchvision ``InterpolationMode`` or its value, bilinear by default.
        antialias: low-pass filter windows that shrink (zoom below ``in / out``) before
            resampling; gradients still reach ``zoom`` and ``center``. ``None`` (the default):
            on unless ``interpolation`` is nearest, see :class:`~diffaug.transforms.base.GeometricTransform`.
        fill: what a zoom-out shows around the image with ``padding_mode="constant"``: a number
            or one per channel.
        p: probability of zooming a sample; the others are the whole image resized.
        learnable: make the bounds of ``zoom`` (and ``p``) trainable.
        padding_mode, temperature: see :class:`~diffaug.transforms.base.GeometricTransform`.

    ``make_params(images, generator=None, zoom=None, center=None)`` takes ``zoom`` ``(B,)``
    and ``center`` ``(B, 2)`` in normalised image coordinates (``(-1, -1)`` is the top-left
    edge, ``(0, 0)`` the middle), used as given.

    Shapes:
        ``(B, C, H, W) -> (B, C, h, w)``; ``(C, H, W) -> (C, h, w)``.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.ZoomCrop(16)
        >>> images = torch.rand(2, 3, 32, 32)
        >>> zoom = torch.tensor([2.0, 4.0], requires_grad=True)
        >>> center = torch.zeros(2, 2, requires_grad=True)
        >>> out = t(images, zoom=zoom, center=center)
        >>> out.sum().backward(); out.shape, zoom.grad.shape
        (torch.Size([2, 3, 16, 16]), torch.Size([2]))
    """

    def __init__(
        self,
        size: int | Sequence[int],
        zoom: tuple[float, float] = (1.0, 2.0),
        allow_outside: bool = False,
        *,
        interpolation: object = "bilinear",
        antialias: bool | None = None,
        fill: float | Sequence[float] = 0,
        p: float = 1.0,
        learnable: bool = False,
        padding_mode: str = "constant",
        temperature: float = 0.1,
    ) -> None:
        super().__init__(
            interpolation=interpolation,
            padding_mode=padding_mode,
            antialias=antialias,
            fill=fill,
            p=p,
            learnable=learnable,
            temperature=temperature,
        )
        self.size = output_size(size)
        _checks.check_range(zoom, "zoom", low=0.0, strict_low=True)
        self.zoom = Range(tuple(zoom), domain=(0.0, math.inf), log=True, learnable=learnable)  # type: ignore[arg-type]
        self.allow_outside = bool(allow_outside)

    def make_params(
        self,
        images: Tensor,
        generator: torch.Generator | None = None,
        zoom: Tensor | None = None,
        center: Tensor | None = None,
    ) -> CropParams:
        batch, height, width = batch_shape(images)
        device, dtype = images.device, param_dtype(images)
        noise = distributions.uniform((batch, 3), generator, device, dtype)
        zoom = self.zoom.sample(noise[:, 0]) if zoom is None else self._given(zoom, (batch,), "zoom", images)
        half = 1.0 / zoom  # half window side in normalised units
        if center is None:
            # Inside: centre uniform in [-1 + half, 1 - half]; outside: uniform in [-1, 1].
            reach = torch.ones_like(half) if self.allow_outside else 1.0 - half
            center = (2.0 * noise[:, 1:] - 1.0) * reach.unsqueeze(-1)
        else:
            center = self._given(center, (batch, 2), "center", images)
        corners = torch.cat([center - half.unsqueeze(-1), center + half.unsqueeze(-1)], dim=-1)
        boxes = daf.normalized_to_boxes(corners, (height, width))

        applied = self.draw_applied(batch, generator, device, dtype)
        if not self.always:
            boxes = where_applied(applied, boxes, _whole_image(batch, height, width, boxes))
        return box_params(boxes, self.size, (height, width), applied)

    @staticmethod
    def _given(value: object, shape: tuple[int, ...], name: str, images: Tensor) -> Tensor:
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating point torch.Tensor of shape {shape}")
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} (one per sample), got {tuple(value.shape)}")
        _checks.check_same_device(value, images, name)
        return value.to(param_dtype(images))

    def forward(  # type: ignore[override]
        self,
        images: Tensor,
        *tv_targets: Any,
        zoom: Tensor | None = None,
        center: Tensor | None = None,
        generator: torch.Generator | None = None,
        **targets: Any,
    ) -> Any:
        """Zoom crops, with ``zoom`` / ``center`` given per sample (else drawn); targets as every transform takes them."""
        return target_layer.call(self, images, tv_targets, targets, generator=generator, zoom=zoom, center=center)


class BoxCrop(GeometricTransform):
    """Crop given boxes and resize them to ``size``; gradients reach the boxes.

    Boxes are XYXY pixel boxes (exclusive ends, fractional allowed, may leave the image): one
    per image ``(B, 4)``, or many per image as ``(K, 4)`` with ``batch_index`` ``(K,)`` naming
    each box's image (as ``roi_align`` takes them, but differentiable in the boxes too).

    Keyword-only: ``interpolation`` (bilinear by default), ``antialias`` (low-pass filter each
    box by its own shrink, gradients still reach the boxes; ``None``, the default: on unless
    ``interpolation`` is nearest), ``padding_mode`` and ``fill`` (what shows where a box leaves
    the image); see :class:`~diffaug.transforms.base.GeometricTransform`.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 3, 32, 32)
        >>> boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [4.5, 4.5, 30.0, 20.0], [8.0, 0.0, 9.0, 32.0]])
        >>> da.BoxCrop(8)(images, boxes, batch_index=torch.tensor([0, 0, 1])).shape
        torch.Size([3, 3, 8, 8])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        *,
        interpolation: object = "bilinear",
        antialias: bool | None = None,
        padding_mode: str = "constant",
        fill: float | Sequence[float] = 0,
    ) -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, antialias=antialias, fill=fill)
        self.size = output_size(size)

    def make_params(  # type: ignore[override]
        self,
        images: Tensor,
        boxes: Tensor,
        batch_index: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> CropParams:
        batch, height, width = batch_shape(images)
        _checks.check_boxes(boxes, images)
        if batch_index is not None:
            if images.ndim == 3:
                raise ValueError("batch_index needs batched images (B, C, H, W), got a single image (C, H, W)")
            if boxes.ndim != 2:
                raise ValueError(f"boxes must have shape (K, 4) with batch_index, got {tuple(boxes.shape)}")
            _checks.check_batch_index(batch_index, boxes.shape[0], batch)
            _checks.check_same_device(batch_index, images, "batch_index")
        else:
            expected = (batch, 4) if images.ndim == 4 else (4,)
            if tuple(boxes.shape) != expected:
                raise ValueError(
                    f"boxes must have shape {expected} (one per image) or (K, 4) with batch_index, got {tuple(boxes.shape)}"
                )
            if images.ndim == 3:
                boxes = boxes.unsqueeze(0)
        boxes = boxes.to(param_dtype(images))
        return box_params(boxes, self.size, (height, width), batch_index=batch_index)

    def forward(  # type: ignore[override]
        self, images: Tensor, boxes: Tensor, *tv_targets: Any, batch_index: Tensor | None = None, **targets: Any
    ) -> Any:
        """Crops of ``boxes``; targets as every transform takes them (with ``batch_index``, one row of targets per crop)."""
        return target_layer.call(self, images, tv_targets, targets, boxes=boxes, batch_index=batch_index)
