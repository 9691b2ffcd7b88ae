"""Erasing and mixing per sample: RandomErasing, MixUp and CutMix.

torchvision's laws, drawn for every sample at once on the images' device: each sample gets its own
erased box, its own lambda and its own partner. The images are changed by
:mod:`diffaug.functional.mixing` (a box cover blended in, differentiable in the box corners).
None of these moves pixels, so none carries a ``theta``: inside a :class:`diffaug.Compose` they end
a run of geometric fusion like any non-geometric step.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from diffaug import distributions
from diffaug.distributions import Range
from diffaug.functional import _checks, _constants
from diffaug.functional import mixing as mixing_f
from diffaug.transforms.base import RandomTransform, batch_shape, param_dtype

__all__ = ["ErasingParams", "RandomErasing", "MixParams", "MixUp", "CutMix"]

_TRIES = 10  # torchvision's RandomErasing tries


@dataclasses.dataclass
class ErasingParams:
    """Per-call parameters of :class:`RandomErasing`.

    Attributes:
        boxes: ``(B, 4)`` XYXY pixel box erased in each sample; ``(0, 0, 0, 0)`` where none of
            the tries fitted (torchvision then erases nothing).
        applied: ``(B,)`` float in ``[0, 1]``: 1 where the sample is erased (fractional only for a
            relaxed, learnable ``p``); it scales the box's cover.
        noise: ``(B, C, H, W)`` the normal draw of ``value="random"`` (kept so that a replay paints
            the same noise), else ``None``.
        in_size: ``(H, W)`` the params were drawn for.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.RandomErasing(p=1.0).make_params(torch.rand(2, 3, 32, 32))
        >>> params.boxes.shape, params.applied, params.noise
        (torch.Size([2, 4]), tensor([1., 1.]), None)
    """

    boxes: Tensor
    applied: Tensor
    noise: Tensor | None
    in_size: tuple[int, int]


class RandomErasing(RandomTransform):
    """Erase a random box of each sample (Zhong et al.), torchvision's law, one box per sample.

    The law is torchvision v2's: of 10 tries, each with an area fraction uniform in ``scale`` and
    an aspect ratio **h / w** log-uniform in ``ratio`` (``h = round(sqrt(area ratio))``,
    ``w = round(sqrt(area / ratio))``), the first with ``h < H`` and ``w < W`` is erased at an
    integer position uniform over the places it fits; when no try fits, nothing is erased. Every
    sample draws its own tries, all at once (no loop, no host sync).

    The erased box is painted through a partial-pixel cover (:func:`diffaug.functional.box_cover`):
    exactly torchvision's erase for integer boxes, differentiable in the box corners. With
    ``learnable=True`` the same law is drawn **without rounding** (sizes ``sqrt(area ratio)``,
    continuous positions), so the boxes are smooth functions of the ``scale`` and ``ratio``
    bounds and gradients reach them through the soft box edges.

    Targets (boxes, masks, keypoints, in any call form of :class:`RandomTransform`) are returned
    unchanged, as torchvision passes them through: erasing hides pixels without moving anything.

    Args:
        p: probability that a sample is erased.
        scale: ``(min, max)`` erased area fraction, inside ``[0, 1]``.
        ratio: ``(min, max)`` aspect ratio h / w of the box, ``> 0``.
        value: ``0`` by default; a number; one number per channel; or ``"random"``: per-pixel
            standard normal noise (drawn by ``make_params`` and kept in ``params.noise``).
        inplace: write into the given images (float images only; not with ``requires_grad``).
        learnable: make ``scale`` and ``ratio`` (and ``p`` when ``p < 1``) trainable.
        temperature: of the relaxed probability draw when ``p`` is learnable.

    Raises:
        TypeError: ``value`` of another type, a ``scale``/``ratio`` that is not a pair of numbers.
        ValueError: ``scale`` outside ``[0, 1]`` or unordered, a non-positive ``ratio``, a string
            ``value`` other than ``"random"``, per-channel values that do not match the channels.

    Shapes:
        ``(B, C, H, W) -> (B, C, H, W)``; ``(C, H, W) -> (C, H, W)``.

    Examples:
        >>> import torch, diffaug as da
        >>> erase = da.RandomErasing(p=1.0, value=(0.5, 0.5, 0.5))
        >>> images = torch.rand(4, 3, 32, 32)
        >>> params = erase.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> out = erase.transform(images, params)
        >>> out.shape, bool((out == 0.5).any()), params.boxes.shape
        (torch.Size([4, 3, 32, 32]), True, torch.Size([4, 4]))
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float | Sequence[float] | str = 0.0,
        inplace: bool = False,
        *,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        low, high = _checks.check_range(scale, "scale", low=0.0, high=1.0)
        ratio_low, ratio_high = _checks.check_range(ratio, "ratio", low=0.0, strict_low=True)
        self.value: tuple[float, ...] | None = _erasing_value(value)
        if not isinstance(inplace, bool):
            raise TypeError(f"inplace must be True or False, got {inplace!r}")
        self.inplace = inplace
        self.learnable = learnable
        self.scale = Range((low, high), domain=(0.0, 1.0), learnable=learnable)
        self.ratio = Range((ratio_low, ratio_high), domain=(0.0, math.inf), log=True, learnable=learnable)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ErasingParams:
        """Draw a box per sample (only the images' shape, dtype and device are read)."""
        batch, height, width = batch_shape(images)
        channels = images.shape[-3]
        self._check_channels(channels)
        device, dtype = images.device, param_dtype(images)
        noise = distributions.uniform((batch, _TRIES + 1, 2), generator, device, dtype)
        tries, position = noise[:, :_TRIES], noise[:, _TRIES]
        area = self.scale.sample(tries[..., 0]) * float(height * width)
        log_ratio = self.ratio.sample_log(tries[..., 1])
        # h / w = ratio and h w = area, as torchvision's RandomErasing (RandomResizedCrop's ratio is w / h).
        side = torch.sqrt(area)
        half = torch.exp(0.5 * log_ratio)
        sizes = torch.stack([side / half, side * half], dim=-1)  # (B, tries, 2) as (w, h)
        if not self.learnable:
            sizes = torch.round(sizes)  # half to even, as Python's round
        canvas = _constants.values((float(width), float(height)), sizes)
        fits = (sizes < canvas).all(dim=-1)
        found = fits.any(dim=1, keepdim=True)
        first = fits.view(torch.uint8).argmax(dim=1)  # the first try that fits
        size = sizes.gather(1, first.view(batch, 1, 1).expand(batch, 1, 2)).squeeze(1)  # (B, 2) as (w, h)
        # Fixed ranges: torchvision's randint(0, H - h + 1), an integer uniform over the places the box fits.
        corner = position * (canvas - size) if self.learnable else torch.floor(position * (canvas - size + 1))
        boxes = torch.cat([corner, corner + size], dim=-1) * found.to(dtype)  # nothing where no try fitted
        applied = self.draw_applied(batch, generator, device, dtype)
        noise_image = None
        if self.value is None:
            shape = (batch, channels, height, width)
            noise_image = distributions.normal(shape, generator, device, dtype)
        return ErasingParams(boxes=boxes, applied=applied, noise=noise_image, in_size=(height, width))

    def transform(self, images: Tensor, params: ErasingParams) -> Tensor:
        """Erase ``params.boxes`` (pure: the same params give the same output)."""
        _checks.check_images(images)
        if images.ndim == 3:
            single = dataclasses.replace(params, noise=None if params.noise is None else params.noise[:1])
            return self.transform(images.unsqueeze(0), single).squeeze(0)
        if params.boxes.shape[0] != images.shape[0] or params.in_size != tuple(images.shape[-2:]):
            raise ValueError(
                f"params were drawn for {params.boxes.shape[0]} samples of {params.in_size} but images are "
                f"{tuple(images.shape)}; draw them with make_params(images)"
            )
        self._check_channels(images.shape[-3])
        if params.noise is not None:
            value: Tensor | float = params.noise
        elif self.value is not None and len(self.value) > 1:
            value = _constants.values(self.value, params.boxes).view(-1, 1, 1)
        else:
            value = 0.0 if self.value is None else self.value[0]
        weight = None if self.always else params.applied
        if self.inplace:
            if not images.is_floating_point() or images.requires_grad:
                raise ValueError("inplace=True needs floating point images that do not require gradients")
            cover = mixing_f.box_cover(params.boxes, params.in_size, weight).to(images.dtype)
            target = value if isinstance(value, Tensor) else _constants.values(float(value), cover)
            return images.lerp_(target.to(images.dtype), cover)
        return mixing_f.erase(images, params.boxes, value, weight)

    def _check_channels(self, channels: int) -> None:
        if self.value is not None and len(self.value) not in (1, channels):
            raise ValueError(f"value must have 1 value or one per channel ({channels}), got {len(self.value)}: {self.value}")


def _erasing_value(value: object) -> tuple[float, ...] | None:
    """``value`` -> a tuple of floats, or ``None`` for ``"random"``."""
    if isinstance(value, str):
        if value != "random":
            raise ValueError(f"value must be a number, a sequence of numbers or 'random', got {value!r}")
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    numbers = isinstance(value, Sequence) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if numbers and isinstance(value, Sequence) and len(value) > 0:
        return tuple(float(v) for v in value)
    raise TypeError(f"value must be a number, a sequence of numbers (one per channel) or 'random', got {value!r}")


# --------------------------------------------------------------------------- MixUp and CutMix
@dataclasses.dataclass
class MixParams:
    """Per-call parameters of :class:`MixUp` and :class:`CutMix`.

    Attributes:
        lam: ``(B,)`` each sample's Beta(alpha, alpha) draw: MixUp's own share of the image.
        partner: ``(B,)`` long: the sample each one is mixed with (a random cycle through the batch).
        applied: ``(B,)`` float in ``[0, 1]``: 1 where the sample is mixed.
        boxes: CutMix's ``(B, 4)`` XYXY pixel box taken from the partner (clipped to the image);
            ``None`` for MixUp.
        in_size: ``(H, W)`` the params were drawn for.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.MixUp(num_classes=10).make_params(torch.rand(4, 3, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> params.lam.shape, sorted(params.partner.tolist()), params.boxes
        (torch.Size([4]), [0, 1, 2, 3], None)
    """

    lam: Tensor
    partner: Tensor
    applied: Tensor
    boxes: Tensor | None
    in_size: tuple[int, int]


class _Mixing(RandomTransform):
    """What MixUp and CutMix share: arguments, lambda and partner draws, labels and the call."""

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        num_classes: int | None = None,
        labels_getter: str | Callable[[Any], Any] | None = "default",
        p: float = 1.0,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a positive number (the Beta(alpha, alpha) concentration), got {alpha!r}")
        if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1):
            raise ValueError(f"num_classes must be None or a positive int, got {num_classes!r}")
        if not (labels_getter == "default" or labels_getter is None or callable(labels_getter)):
            raise ValueError(f"labels_getter must be 'default', a callable or None, got {labels_getter!r}")
        self.alpha = float(alpha)
        self.num_classes = num_classes
        self.labels_getter = labels_getter

    def _draw(self, images: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        """``(lam, partner, applied)`` for a batch, with the images' batch size and device."""
        _checks.check_images(images)
        if images.ndim != 4:
            raise ValueError(f"images must be a batch (B, C, H, W) to mix, got {tuple(images.shape)}")
        batch, device, dtype = images.shape[0], images.device, param_dtype(images)
        lam = distributions.beta(self.alpha, (batch,), generator, device, dtype)
        # Partners: a random cycle through the batch (the batch in a random order, each sample mixed with
        # the next), so no sample is its own partner (B > 1) and each lends its image exactly once.
        order = distributions.uniform((batch,), generator, device, dtype).argsort()
        partner = torch.empty_like(order).scatter_(0, order, order.roll(-1))
        applied = self.draw_applied(batch, generator, device, dtype)
        return lam, partner, applied

    def transform_labels(self, labels: Tensor, params: MixParams) -> Tensor:
        """``(B,)`` class indices or ``(B, K)`` rows -> ``(B, K)`` soft labels mixed as the images were.

        Integer labels need ``num_classes`` and give rows in the lambdas' dtype (float32, float64 for
        float64 images); ``(B, K)`` rows keep their floating dtype (integer rows become float32).
        Rows that sum to 1 stay so.
        """
        labels = self._check_labels(labels, params.partner.shape[0], params.partner.device)
        return mixing_f.mix_labels(labels, params.partner, self.own_share(params), self.num_classes)

    @abc.abstractmethod
    def own_share(self, params: MixParams) -> Tensor:
        """``(B,)`` the part of each output image that is the sample's own: its label's weight."""

    @abc.abstractmethod
    def transform(self, images: Tensor, params: MixParams) -> Tensor:
        """The mixed images for ``params``."""

    @abc.abstractmethod
    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> MixParams:
        """Per-sample lambdas and partners."""

    def forward(self, *inputs: Any, generator: torch.Generator | None = None) -> Any:  # type: ignore[override]
        """``(images, labels)`` -> ``(mixed images, soft labels (B, num_classes))``, as torchvision's.

        The images are the first input (of a tuple or list given as one argument or as several);
        the labels are the second, or what a callable ``labels_getter`` returns from the inputs.
        Other inputs pass through unchanged; torchvision boxes, masks and keypoints are refused.
        ``generator`` (keyword-only) draws the params from it.
        """
        sample = inputs if len(inputs) > 1 else inputs[0]
        if isinstance(sample, Tensor):
            raise TypeError(f"{type(self).__name__} takes (images, labels), got images alone")
        if not isinstance(sample, (tuple, list)) or len(sample) < 2:
            raise TypeError(
                f"{type(self).__name__} takes (images, labels) as arguments or as one tuple, got {type(sample).__name__}"
            )
        _refuse_spatial_targets(sample, type(self).__name__)
        images = sample[0]
        if self.labels_getter is None:
            raise ValueError(f"{type(self).__name__} mixes labels: labels_getter=None leaves it none to mix")
        labels = sample[1] if self.labels_getter == "default" else self.labels_getter(sample)  # type: ignore[operator]
        _checks.check_images(images)
        if images.ndim != 4:
            raise ValueError(f"images must be a batch (B, C, H, W) to mix, got {tuple(images.shape)}")
        self._check_labels(labels, images.shape[0], images.device)
        params = self.make_params(images, generator=generator)
        out: list[Any] = list(sample)
        out[0] = self.transform(images, params)
        mixed = self.transform_labels(labels, params)
        if self.labels_getter == "default":
            out[1] = mixed
        else:
            out = [mixed if item is labels else item for item in out]
        return type(sample)(out) if isinstance(sample, tuple) else out

    def _check_labels(self, labels: object, batch: int, device: torch.device) -> Tensor:
        """Labels checked: ``(B,)`` class indices as given, ``(B, K)`` rows as floating point."""
        if not isinstance(labels, Tensor):
            raise TypeError(f"labels must be a torch.Tensor (B,) of class indices or (B, K), got {type(labels).__name__}")
        if labels.ndim not in (1, 2) or labels.shape[0] != batch:
            raise ValueError(f"labels must have shape (B,) or (B, num_classes) with B = {batch}, got {tuple(labels.shape)}")
        _checks.check_same_device(labels, torch.empty(0, device=device), "labels")
        if labels.ndim == 2:
            if self.num_classes is not None and labels.shape[1] != self.num_classes:
                raise ValueError(f"labels (B, K) must have K = num_classes = {self.num_classes}, got {labels.shape[1]}")
            return labels if labels.is_floating_point() else labels.float()
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"labels (B,) must be integer class indices, got {labels.dtype}")
        if self.num_classes is None:
            raise ValueError("num_classes must be given for labels that are class indices (B,)")
        if labels.device.type == "cpu" and not torch.compiler.is_compiling() and batch > 0:
            # Free on the CPU; elsewhere an index outside the classes would give a zero row.
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= self.num_classes:
                raise ValueError(f"labels must be in [0, {self.num_classes}), got values in [{low}, {high}]")
        return labels

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, num_classes={self.num_classes}"


def _refuse_spatial_targets(sample: Sequence[Any], name: str) -> None:
    try:
        from torchvision import tv_tensors
    except ImportError:  # pragma: no cover - torchvision is optional
        return
    for item in sample[1:]:
        if isinstance(item, (tv_tensors.BoundingBoxes, tv_tensors.Mask, tv_tensors.KeyPoints)):
            raise ValueError(
                f"{name} does not mix {type(item).__name__} (as torchvision's); mix masks with "
                f"{name.lower()}.transform(masks, params) using the params of the images"
            )


class MixUp(_Mixing):
    """MixUp (Zhang et al.) with a lambda and a partner per sample: ``lam x_i + (1 - lam) x_partner(i)``.

    torchvision's MixUp draws one lambda per batch and mixes each sample with the previous one;
    here every sample draws its own ``lam ~ Beta(alpha, alpha)``, and partners follow a random
    cycle through the batch (never the sample itself when ``B > 1``; each sample lends its image
    exactly once), in one batched call. Labels are mixed with the same weights. Gradients reach
    the images and ``params.lam``.

    Masks: torchvision refuses boxes, masks and keypoints, and so does ``forward``; soft
    segmentation targets (one-hot masks as floats) mix like images with ``transform(masks, params)``.

    Args:
        alpha: Beta concentration, ``> 0``.
        num_classes: needed for integer labels ``(B,)``; ``(B, K)`` labels must have ``K`` of it.
        labels_getter: ``"default"`` (the second input), or a callable returning the labels.
        p: probability that a sample is mixed (the others keep their image and label).
        learnable: make ``p`` trainable (when ``p < 1``).
        temperature: of the relaxed probability draw when ``p`` is learnable.

    Shapes:
        images ``(B, C, H, W)`` float or uint8; labels ``(B,)`` int or ``(B, K)`` -> ``(B, K)`` float.

    Examples:
        >>> import torch, diffaug as da
        >>> images, labels = torch.rand(8, 3, 16, 16), torch.randint(0, 10, (8,))
        >>> mixed, soft = da.MixUp(num_classes=10)(images, labels)
        >>> mixed.shape, soft.shape, torch.allclose(soft.sum(1), torch.ones(8))
        (torch.Size([8, 3, 16, 16]), torch.Size([8, 10]), True)
    """

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> MixParams:
        """Draw a lambda and a partner per sample (only the images' shape, dtype and device are read)."""
        lam, partner, applied = self._draw(images, generator)
        return MixParams(lam=lam, partner=partner, applied=applied, boxes=None, in_size=(images.shape[-2], images.shape[-1]))

    def own_share(self, params: MixParams) -> Tensor:
        if self.always:
            return params.lam
        return torch.lerp(torch.ones_like(params.lam), params.lam, params.applied)  # 1 where not applied, exactly

    def transform(self, images: Tensor, params: MixParams) -> Tensor:
        """Mix ``images`` as ``params`` say (pure); one-hot float masks mix the same way."""
        _check_mix_params(images, params)
        return mixing_f.mixup(images, params.partner, self.own_share(params))


class CutMix(_Mixing):
    """CutMix (Yun et al.) with a lambda, a partner and a box per sample; label weight = area kept.

    Each sample draws ``lam ~ Beta(alpha, alpha)`` and a partner (a random cycle through the
    batch, as :class:`MixUp`), and takes torchvision's box for it: centre uniform over the
    pixels, half sides ``int(0.5 sqrt(1 - lam) W)`` and ``int(0.5 sqrt(1 - lam) H)``, clipped to
    the image. The partner's box is pasted in; the label weight is the part of the image the
    sample keeps after clipping, ``1 - box area / (H W)`` (torchvision's ``lam_adjusted``).
    The boxes are integers, so the paste is exact (uint8 label masks too); gradients reach the
    images (and ``params.boxes`` through the cover's edges).

    Masks: ``forward`` refuses torchvision boxes, masks and keypoints, as torchvision does;
    segmentation masks ``(B, 1, H, W)`` (float, or uint8 class maps) are cut and pasted
    exactly like the images with ``transform(masks, params)``.

    Args:
        alpha, num_classes, labels_getter, p, learnable, temperature: see :class:`MixUp`.

    Shapes:
        images ``(B, C, H, W)`` float or uint8; labels ``(B,)`` int or ``(B, K)`` -> ``(B, K)`` float.

    Examples:
        >>> import torch, diffaug as da
        >>> cutmix = da.CutMix(num_classes=3)
        >>> images = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 8, 8)  # image k is constant k
        >>> params = cutmix.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> mixed, soft = cutmix.transform(images, params), cutmix.transform_labels(torch.arange(3), params)
        >>> torch.allclose(mixed.mean((1, 2, 3)), soft @ torch.arange(3.0))  # each image is its label's mixture
        True
    """

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> MixParams:
        """Draw a lambda, a partner and a box per sample (only the images' shape, dtype and device are read)."""
        lam, partner, applied = self._draw(images, generator)
        height, width = images.shape[-2], images.shape[-1]
        canvas = _constants.values((float(width), float(height)), lam)
        # torchvision's law: centre randint(W), randint(H); half sides int(r W), int(r H) with r = sqrt(1 - lam) / 2.
        centre = torch.floor(distributions.uniform((lam.shape[0], 2), generator, images.device, lam.dtype) * canvas)
        half = torch.floor(0.5 * torch.sqrt(1 - lam).unsqueeze(-1) * canvas)
        boxes = torch.cat([(centre - half).clamp(min=0), torch.minimum(centre + half, canvas)], dim=-1)
        return MixParams(lam=lam, partner=partner, applied=applied, boxes=boxes, in_size=(height, width))

    def own_share(self, params: MixParams) -> Tensor:
        assert params.boxes is not None
        pasted = mixing_f.box_area_fraction(params.boxes, params.in_size)
        return 1 - pasted if self.always else 1 - params.applied * pasted

    def transform(self, images: Tensor, params: MixParams) -> Tensor:
        """Paste the partners' boxes into ``images`` (pure); masks of any dtype paste the same way."""
        _check_mix_params(images, params)
        if params.boxes is None:
            raise ValueError("CutMix params need boxes; draw them with CutMix.make_params(images)")
        return mixing_f.cutmix(images, params.partner, params.boxes, None if self.always else params.applied)


def _check_mix_params(images: Tensor, params: MixParams) -> None:
    _checks.check_images(images)
    if images.ndim != 4 or images.shape[0] != params.partner.shape[0] or tuple(images.shape[-2:]) != params.in_size:
        raise ValueError(
            f"params were drawn for {params.partner.shape[0]} samples of {params.in_size} but images are "
            f"{tuple(images.shape)}; draw them with make_params(images)"
        )
