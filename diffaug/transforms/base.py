"""The transform protocol: a per-sample probability for every transform, and the geometric base.

A geometric transform is an ``nn.Module`` with three methods:

* ``make_params(images, generator=None) -> Params``: sample per-sample parameters on the
  images' device (only the images' shape, dtype and device are read);
* ``transform(images, params) -> images``: pure given ``params`` (replay);
* ``forward(images) == transform(images, make_params(images))``.

``Params`` always carry ``theta`` (B, 2, 3) (output normalised -> input normalised, see
:mod:`diffaug.functional.geometry`) and the output ``size``; each transform adds the values it
sampled (boxes, angles, ...). Transforms store nothing between calls.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import distributions
from diffaug import functional as daf
from diffaug.functional import _checks
from diffaug.functional.antialias import filters_shrink
from diffaug.transforms import targets as target_layer

__all__ = ["Params", "RandomTransform", "GeometricTransform"]


@dataclasses.dataclass
class Params:
    """Per-call parameters of a geometric transform.

    Attributes:
        theta: ``(B, 2, 3)`` output -> input normalised coordinates.
        size: output ``(h, w)``.
        in_size: input ``(H, W)`` the params were drawn for.
        applied: ``(B,)`` float in ``[0, 1]``: 1 where the transform was applied (0 gets the
            identity parameters; fractional only for a relaxed, learnable probability).
        batch_index: ``(K,)`` long, which image each row samples (``BoxCrop``), else ``None``.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.RandomHorizontalFlip(p=1.0).make_params(torch.rand(2, 3, 8, 8))
        >>> params.theta[0]  # u -> -u: a left-right flip
        tensor([[-1., 0., 0.],
                [ 0., 1., 0.]])
        >>> params.size, params.in_size, params.applied
        ((8, 8), (8, 8), tensor([1., 1.]))
    """

    theta: Tensor
    size: tuple[int, int]
    in_size: tuple[int, int]
    applied: Tensor
    batch_index: Tensor | None = None


def interpolation_name(interpolation: object) -> str:
    """``interpolation``: a torchvision ``InterpolationMode`` or its value (``"bilinear"`` etc.) -> the warp's ``mode``."""
    value = getattr(interpolation, "value", interpolation)
    return _checks.check_choice(value, _checks.MODES, "interpolation")


# torchvision's padding names -> the warp's (see diffaug.functional.warp), which are accepted as they are.
_WARP_PADDING = {"constant": "zeros", "edge": "border", "reflect": "reflect", "symmetric": "reflection"}


def padding_name(padding_mode: object) -> str:
    """``padding_mode``: torchvision's ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"`` -> the warp's name.

    The warp's own names (``"zeros"``, ``"border"``, ``"reflection"``) pass through unchanged.
    """
    choices = (*_WARP_PADDING, *(name for name in _checks.PADDING_MODES if name not in _WARP_PADDING))
    return _WARP_PADDING.get(_checks.check_choice(padding_mode, choices, "padding_mode"), str(padding_mode))


def batch_shape(images: Tensor) -> tuple[int, int, int]:
    """``(B, H, W)`` of a batch or a single image (B = 1), after checking the images."""
    _checks.check_images(images)
    height, width = images.shape[-2:]
    batch = images.shape[0] if images.ndim == 4 else 1
    return batch, height, width


def param_dtype(images: Tensor) -> torch.dtype:
    """Parameters are drawn in the dtype the images are sampled in: float64 for float64 images (gradcheck), else float32."""
    return daf.compute_dtype(images.dtype)


def where_applied(applied: Tensor, value: Tensor, identity: Tensor | float) -> Tensor:
    """Per sample, ``value`` where applied and ``identity`` where not: the one law for samples a transform skips.

    ``applied`` is ``(B,)`` in ``[0, 1]``; ``value`` ``(B, ...)`` (a parameter, a box, a ``theta``, a
    colour matrix) and ``identity`` (a number or a tensor that broadcasts to it) are what a sample
    gets when applied and when not. The result is ``applied * value + (1 - applied) * identity``:
    exactly ``value`` at 1 and exactly ``identity`` at 0; a relaxed (fractional) draw mixes the two,
    which is how a learnable ``p`` gets its gradient. Parameters are mixed, never images.

    Examples:
        >>> import torch
        >>> where_applied(torch.tensor([1.0, 0.0, 0.25]), torch.tensor([3.0, 3.0, 3.0]), 1.0)
        tensor([3.0000, 1.0000, 1.5000])
    """
    weight = applied.reshape(-1, *(1,) * (value.ndim - 1))
    return weight * value + (1 - weight) * identity


def other_forms(transform: Callable[[Tensor, Any], Tensor], images: Tensor, params: Any) -> Tensor | None:
    """``transform(images, params)`` for a ``tv_tensors.Image`` or a single ``(C, H, W)`` image; ``None`` for a plain batch.

    Both go through the plain ``(B, C, H, W)`` form: an ``Image`` comes back an ``Image``, a single
    image as a batch of one, squeezed. The caller transforms a plain batch itself.

    Examples:
        >>> import torch, diffaug as da
        >>> flip = da.RandomHorizontalFlip(p=1.0)
        >>> image = torch.rand(3, 4, 5)
        >>> params = flip.make_params(image)
        >>> other_forms(flip.transform, image, params).shape, other_forms(flip.transform, image[None], params)
        (torch.Size([3, 4, 5]), None)
    """
    if type(images) is not Tensor:
        return target_layer.wrap_like(transform(target_layer.as_plain(images), params), images)
    if images.ndim == 3:
        return transform(images.unsqueeze(0), params).squeeze(0)
    return None


def replayable(module: nn.Module) -> bool:
    """Whether ``module`` follows diffaug's protocol (``make_params`` and ``transform``), so its params can be replayed.

    Examples:
        >>> import diffaug as da
        >>> from torchvision.transforms import v2
        >>> replayable(da.RandomHorizontalFlip()), replayable(v2.RandomHorizontalFlip())
        (True, False)
    """
    if type(module).__module__.startswith("torchvision."):
        return False  # torchvision's make_params/transform take other arguments
    return callable(getattr(module, "make_params", None)) and callable(getattr(module, "transform", None))


class RandomTransform(nn.Module, metaclass=abc.ABCMeta):
    """Base of every diffaug transform: a per-sample probability ``p``, fixed or learnable.

    A transform defines ``make_params(images, generator=None)`` (abstract here) and
    ``transform(images, params)``; ``forward`` is theirs composed, in the call forms of
    :mod:`diffaug.transforms.targets`.

    Args:
        p: probability that a sample is transformed; the others get identity parameters.
        learnable: make ``p`` a parameter when ``p < 1`` (a fixed ``p = 1`` means "always" and
            stays fixed); draws are then relaxed Bernoulli with ``temperature`` in training mode
            and hard (straight-through) in eval mode. The one place of this rule.
        temperature: of the relaxed Bernoulli draw.

    Raises:
        ValueError: ``p`` outside ``[0, 1]``, a non-positive ``temperature``.

    Examples:
        >>> import torch, diffaug as da
        >>> flip = da.RandomHorizontalFlip(p=0.5)  # every transform is a RandomTransform
        >>> applied = flip.draw_applied(6, torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32)
        >>> applied.tolist(), isinstance(flip, da.RandomTransform), flip.always
        ([1.0, 0.0, 1.0, 1.0, 1.0, 0.0], True, False)
    """

    @abc.abstractmethod
    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> Any:
        """Per-sample params for ``images`` (only their shape, dtype and device are read)."""

    def __init__(self, p: float = 1.0, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__()
        p = _checks.check_probability(p)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        if learnable and p < 1.0:
            clipped = min(max(p, 1e-3), 1 - 1e-3)
            self.p_logit: nn.Parameter | None = nn.Parameter(torch.logit(torch.tensor(clipped)))
        else:
            self.p_logit = None
        self.p_fixed = p

    @property
    def p(self) -> Tensor | float:
        """The application probability (a tensor when learnable)."""
        return torch.sigmoid(self.p_logit) if self.p_logit is not None else self.p_fixed

    @property
    def always(self) -> bool:
        """Whether every sample is transformed (a fixed ``p`` of 1): no draw needed to decide."""
        return self.p_logit is None and self.p_fixed == 1.0

    def draw_applied(self, batch: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``(B,)`` in ``[0, 1]``: which samples get the transform (no host sync)."""
        noise = distributions.uniform((batch,), generator, device, dtype)
        if self.p_logit is None:
            # p == 1: every noise value is below it (rand is in [0, 1)); still drawn, so the random stream
            # does not depend on p. One op fewer than the comparison and the conversion.
            return torch.ones_like(noise) if self.p_fixed == 1.0 else (noise < self.p_fixed).to(dtype)
        probability = torch.sigmoid(self.p_logit).to(device=device, dtype=dtype)
        return distributions.relaxed_bernoulli(probability, noise, self.temperature, hard=not self.training)

    def forward(self, images: Tensor, *tv_targets: Any, generator: torch.Generator | None = None, **targets: Any) -> Any:
        """``transform(images, make_params(images))``, with targets in the call form of :mod:`diffaug.transforms.targets`.

        ``t(images)`` -> images; ``t(images, *tv_targets)`` -> a tuple of the same types;
        ``t(images, boxes=..., masks=..., keypoints=...)`` -> a dict. Params with a ``theta``
        move the targets; params without one (colour, pixel transforms) leave them unchanged.
        """
        return target_layer.call(self, images, tv_targets, targets, generator=generator)


class GeometricTransform(RandomTransform):
    """Base of diffaug's geometric transforms: a probability ``p`` and the warp settings.

    Every keyword is keyword-only, so subclasses lay out their own positional arguments in
    torchvision's order and pass these on by name.

    Args:
        interpolation: a torchvision ``InterpolationMode`` or its value: ``"bilinear"``,
            ``"nearest"`` or ``"bicubic"``.
        padding_mode: what the warp shows outside the image: torchvision's ``"constant"``
            (``fill``), ``"edge"``, ``"reflect"`` (mirror about the edge pixels) or
            ``"symmetric"`` (mirror repeating them); the warp's own names ``"zeros"``,
            ``"border"``, ``"reflection"`` are accepted too.
        antialias: low-pass filter samples the warp shrinks (see :func:`diffaug.functional.warp`).
            **The rule for every transform that can shrink** (``RandomResizedCrop``, ``Resize``,
            ``RandomAffine``, ``ZoomCrop``, ``BoxCrop``, ``MultiCrop.dino``): the default
            ``None`` means on unless ``interpolation`` is nearest (torchvision's
            ``RandomResizedCrop`` and ``Resize``, whose ``antialias=True`` is ignored for
            nearest); ``True`` with nearest is a ``ValueError`` (filtering blends values, which
            nearest exists to avoid); ``False`` is the plain warp. ``Compose``'s ``antialias=None``
            filters a fused run when any of its steps does. Transforms that never shrink (flips,
            rotation, ``CenterCrop``, ``RandomCrop``) take no ``antialias``.
        fill: what ``padding_mode="constant"`` shows outside the image, a number or one per
            channel (images only; masks are filled by :meth:`diffaug.Compose.transform_targets`).
        p, temperature: see :class:`RandomTransform`.
        learnable: the subclass's ranges are trainable; ``p`` too when ``p < 1`` (a fixed
            ``p = 1`` stays fixed: every sample is transformed). Needs an interpolation that
            blends: nearest sampling gives a zero gradient with respect to the warp.

    Attributes:
        mode, padding_mode, antialias, fill: the warp's settings, in
            :func:`diffaug.functional.warp`'s names (``padding_mode="constant"`` is stored as
            ``"zeros"``).

    Raises:
        ValueError: ``p`` outside ``[0, 1]``, an unknown ``interpolation`` or ``padding_mode``, a
            non-positive ``temperature``, ``antialias=True`` or ``learnable=True`` with nearest.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomRotation(degrees=30, p=0.5)  # every transform follows this protocol
        >>> images = torch.rand(4, 3, 16, 16)
        >>> params = t.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(t.transform(images, params), t.transform(images, params))  # pure: a replay
        True
        >>> isinstance(t, da.GeometricTransform), params.theta.shape, params.applied.shape
        (True, torch.Size([4, 2, 3]), torch.Size([4]))
        >>> da.RandomResizedCrop(8).antialias, da.RandomResizedCrop(8, interpolation="nearest").antialias
        (True, False)
    """

    def __init__(
        self,
        *,
        interpolation: object = "bilinear",
        padding_mode: str = "constant",
        antialias: bool | None = None,
        fill: float | Sequence[float] = 0.0,
        p: float = 1.0,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        self.mode = interpolation_name(interpolation)
        if learnable and self.mode == "nearest":
            raise ValueError(
                f"{type(self).__name__}(learnable=True) needs interpolation=InterpolationMode.BILINEAR (or BICUBIC): "
                "nearest sampling gives a zero gradient with respect to the warp parameters "
                "(RandomRotation and RandomAffine default to nearest, as torchvision's)"
            )
        self.padding_mode = padding_name(padding_mode)
        self.antialias = _checks.check_antialias(self.mode != "nearest" if antialias is None else antialias, self.mode)
        fill_values = _checks.check_fill(fill, self.padding_mode)
        self.fill: float | tuple[float, ...] = 0.0 if fill_values is None else fill_values

    def transform(self, images: Tensor, params: Params) -> Tensor:
        """Apply ``params`` to ``images`` (pure: the same params give the same output); a ``tv_tensors.Image`` stays one."""
        _checks.check_images(images)
        if (out := other_forms(self.transform, images, params)) is not None:
            return out
        if params.batch_index is None and params.theta.shape[0] != images.shape[0]:
            raise ValueError(
                f"params were drawn for {params.theta.shape[0]} samples but images have {images.shape[0]}; "
                "draw them with make_params(images)"
            )
        _checks.check_finite(params.theta, "params.theta")
        antialias = self.antialias
        if antialias:
            bound = self.max_shrink((images.shape[-2], images.shape[-1]), (params.size[0], params.size[1]))
            # Exact: below the first level the antialiased warp is the plain one (a margin for rounding).
            antialias = bound is None or filters_shrink(bound * (1 + 1e-6))
        return daf.warp(
            images,
            params.theta,
            params.size,
            self.mode,
            self.padding_mode,
            params.batch_index,
            antialias=antialias,
            fill=self.fill,
        )

    def max_shrink(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> float | None:
        """The most input pixels an output pixel can span, from the shapes alone; ``None`` if unbounded.

        Transforms that only crop inside the image and resize (``RandomResizedCrop``, ``Resize``)
        bound it by ``in / out``; where that bound is below the first pyramid level,
        ``antialias=True`` skips the filter's work (the result is the same).
        """
        return None


def output_size(size: int | Sequence[int]) -> tuple[int, int]:
    return _checks.check_size(size)


def stand_in(images: Tensor, count: int, size: tuple[int, int]) -> Tensor:
    """``(count, C, *size)`` zeros with the images' dtype and device, without memory: what ``make_params`` reads."""
    return images.new_zeros(()).expand(count, images.shape[-3], *size)
