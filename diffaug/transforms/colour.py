"""Colour transforms: torchvision v2's names and laws, parameters drawn per sample, one colour matrix each.

Every transform here draws its parameters on the images' device in one batched call and, where
its map is affine in colour, returns it as a per-sample colour matrix ``params.colour`` (see
:mod:`diffaug.functional.colour`), applied in one pass by
:func:`diffaug.functional.apply_colour`. Inside :class:`diffaug.Compose` consecutive colour
matrices are multiplied and applied once. Samples that are not transformed (probability ``p``)
get the identity matrix; images are never blended.

``ColorJitter`` and ``RandomPhotometricDistort`` follow torchvision exactly by default: each
adjustment is clamped to the valid range before the next, in the per-sample order, and hue is
an HSV shift; the keyword-only ``fused=True`` builds one matrix per sample instead (hue as a
rotation about the grey axis, one clamp at the end), which composes with its neighbours.
``docs/colour.md`` measures what that changes on photos.

Colour never moves boxes, keypoints or masks: targets pass through unchanged.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from diffaug import distributions
from diffaug import functional as daf
from diffaug.distributions import Range
from diffaug.functional import _checks
from diffaug.functional import _constants as _const
from diffaug.functional import colour as _colour
from diffaug.transforms.base import RandomTransform, batch_shape, param_dtype, where_applied

__all__ = [
    "ColourParams",
    "JitterParams",
    "ColourTransform",
    "ColorJitter",
    "RandomPhotometricDistort",
    "RandomChannelPermutation",
    "Grayscale",
    "RandomGrayscale",
    "RGB",
    "RandomInvert",
    "Normalize",
    "ToDtype",
]

# Op ids in ColorJitter's order (torchvision's fn_idx): brightness, contrast, saturation, hue.
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = 0, 1, 2, 3


@dataclasses.dataclass
class ColourParams:
    """Per-call parameters of a colour transform.

    Attributes:
        applied: ``(B,)`` float in ``[0, 1]``: 1 where the transform was applied.
        channels: the input channels the params were drawn for.
        colour: ``(B, C_out, C_in + 1)`` colour matrix in unit range (``(B, C_out, 2 C_in + 1)``
            with a mean part, for contrast), or ``None`` where the transform is not one colour
            matrix (``ColorJitter`` in its exact mode).
        dtype: the output dtype (``ToDtype``), ``None`` for the images' own.
        clamp: whether the output is clamped to the valid range after the matrix.
        diagonal: the matrix scales each channel by a positive gain and shifts it (``Normalize``,
            ``ToDtype``): a clamp before it can be carried through it (``Compose`` fuses across it).
        needs_float: the step refuses integer images (``Normalize``, as torchvision).

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.RandomInvert(p=1.0).make_params(torch.rand(2, 1, 4, 4))
        >>> params.colour[0], params.applied
        (tensor([[-1.,  1.]]), tensor([1., 1.]))
    """

    applied: Tensor
    channels: int
    colour: Tensor | None = None
    dtype: torch.dtype | None = None
    clamp: bool = False
    diagonal: bool = False
    needs_float: bool = False


@dataclasses.dataclass
class JitterParams(ColourParams):
    """:class:`ColourParams` of :class:`ColorJitter` and :class:`RandomPhotometricDistort`.

    Attributes:
        brightness, contrast, saturation, hue: ``(B,)`` factors as torchvision's ``adjust_*``
            take them (1, or 0 for hue, where a sample does not get that adjustment), or
            ``None`` where the transform has no such adjustment.
        order: ``(B, 4)`` ``ColorJitter``: the op at each position (0 brightness, 1 contrast,
            2 saturation, 3 hue), a per-sample random permutation as torchvision's ``fn_idx``.
        contrast_before: ``(B,)`` bool, ``RandomPhotometricDistort``: contrast before saturation
            and hue (else after).
        permutation: ``(B, C)`` the channel permutation each sample drew (``RandomPhotometricDistort``
            applies it where ``op_applied[:, 4]``).
        op_applied: ``(B, 5)`` ``RandomPhotometricDistort``: whether each sample gets brightness,
            contrast, saturation, hue and the permutation.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.ColorJitter(brightness=(1.3, 1.3)).make_params(torch.rand(2, 3, 4, 4))
        >>> params.brightness, params.order.shape
        (tensor([1.3000, 1.3000]), torch.Size([2, 4]))
    """

    brightness: Tensor | None = None
    contrast: Tensor | None = None
    saturation: Tensor | None = None
    hue: Tensor | None = None
    order: Tensor | None = None
    contrast_before: Tensor | None = None
    permutation: Tensor | None = None
    op_applied: Tensor | None = None


class ColourTransform(RandomTransform):
    """Base of diffaug's colour transforms: a probability ``p`` and one colour matrix per sample.

    ``make_params`` returns :class:`ColourParams`; ``transform`` applies ``params.colour`` in one
    pass (:func:`diffaug.functional.apply_colour`). The images' channels must be 1 or 3 unless a
    subclass says otherwise.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomInvert(p=0.5)
        >>> images = torch.rand(4, 3, 8, 8)
        >>> params = t.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(t.transform(images, params), t.transform(images, params))  # pure: a replay
        True
        >>> isinstance(t, da.ColourTransform), params.colour.shape
        (True, torch.Size([4, 3, 4]))
    """

    @abc.abstractmethod
    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ColourParams:
        """Per-sample colour params for ``images``."""

    def check_images(self, images: Tensor) -> int:
        """The images' channels, after the checks this transform needs (1 or 3 channels by default)."""
        return _colour.check_colour_channels(images)

    def transform(self, images: Tensor, params: ColourParams) -> Tensor:
        """Apply ``params`` to ``images`` (pure: the same params give the same output)."""
        _checks.check_images(images)
        if images.ndim == 3:
            return self.transform(images.unsqueeze(0), params).squeeze(0)
        channels = self.check_images(images)
        if params.applied.shape[0] != images.shape[0] or params.channels != channels:
            raise ValueError(
                f"params were drawn for {params.applied.shape[0]} samples of {params.channels} channels but images have "
                f"shape {tuple(images.shape)}; draw them with make_params(images)"
            )
        return self.colour_pass(images, params)

    def colour_pass(self, images: Tensor, params: ColourParams) -> Tensor:
        """The colour pass itself, on checked ``(B, C, H, W)`` images."""
        assert params.colour is not None
        return daf.apply_colour(images, params.colour, dtype=params.dtype, clamp=params.clamp)

    def _setup(self, images: Tensor, generator: torch.Generator | None) -> tuple[int, int, Tensor]:
        """``(B, C, applied)`` for the images (checked) and the probability draw."""
        batch, _, _ = batch_shape(images)
        channels = self.check_images(images)
        applied = self.draw_applied(batch, generator, images.device, param_dtype(images))
        return batch, channels, applied


# ---------------------------------------------------------------------------------------------- jitter
def _factor_range(value: object, name: str, learnable: bool) -> Range | None:
    """torchvision's ``ColorJitter._check_input`` for brightness, contrast and saturation, as a :class:`Range`."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be non-negative when it is a single number, got {value!r}")
        low, high = max(1.0 - float(value), 0.0), 1.0 + float(value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = _checks.check_range(value, name, low=0.0)
    else:
        raise TypeError(f"{name} must be a non-negative number or a pair (min, max), got {value!r}")
    if low == high == 1.0:
        return None  # torchvision skips the adjustment
    return Range((low, high), domain=(0.0, max(10.0, 2.0 * high)), learnable=learnable)


def _hue_range(value: object, learnable: bool) -> Range | None:
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0 <= float(value) <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5] when it is a single number, got {value!r}")
        low, high = -float(value), float(value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = _checks.check_range(value, "hue", low=-0.5, high=0.5)
    else:
        raise TypeError(f"hue must be a number in [0, 0.5] or a pair (min, max) inside [-0.5, 0.5], got {value!r}")
    if low == high == 0.0:
        return None
    return Range((low, high), domain=(-0.5, 0.5), learnable=learnable)


def _draw(range_: Range | None, noise: Tensor, applied: Tensor, identity: float) -> Tensor | None:
    """Factors from ``range_`` (``None`` if there is none); ``identity`` where a sample is not applied."""
    if range_ is None:
        return None
    return where_applied(applied, range_.sample(noise), identity)


def _op_matrices(
    factors: Sequence[Tensor | None], channels: int, batch: int, like: Tensor, fused_hue: bool
) -> list[Tensor | None]:
    """Brightness, contrast, saturation (and hue as a rotation when ``fused_hue``) matrices in the mean form."""
    builders = (daf.brightness_matrix, daf.contrast_matrix, daf.saturation_matrix, daf.hue_matrix)
    out: list[Tensor | None] = []
    for op, (factor, build) in enumerate(zip(factors, builders, strict=True)):
        if factor is None or (op == _HUE and not fused_hue):
            out.append(None)
            continue
        matrix = build(factor, channels)
        out.append(matrix if op == _CONTRAST else daf.mean_form(matrix, channels))
    return out


def _pick(matrices: Sequence[Tensor | None], op: Tensor, identity: Tensor) -> Tensor:
    """Per sample, the matrix of op ``op[b]`` (``None`` or an op id out of range: identity)."""
    out = identity
    for index, matrix in enumerate(matrices):
        if matrix is not None:
            out = torch.where((op == index)[:, None, None], matrix, out)
    return out


def _compacted_order(order: Tensor, present: Sequence[int]) -> Tensor:
    """``(B, n)``: the ops of ``present`` in each sample's order (torchvision skips absent ops in its order)."""
    # Kept per device (no host-to-device copy per call on an accelerator).
    present_t = _const.memo(("colour_ops", tuple(present)), order, lambda: torch.tensor(present, device=order.device))
    positions = torch.argsort(order, dim=1)  # positions[b, op] = where op comes for sample b
    ranks = torch.argsort(positions[:, present_t], dim=1)
    return present_t[ranks]


def _affine_step(images: Tensor, matrix: Tensor, channels: int, uses_mean: bool, out: Tensor | None = None) -> Tensor:
    """One torchvision adjustment: the matrix, then the clamp (and uint8 truncation) torchvision applies after it."""
    return daf.apply_colour(images, matrix if uses_mean else daf.plain_form(matrix, channels), clamp=True, out=out)


def _hue_step(images: Tensor, hue: Tensor, skips: bool, out: Tensor | None = None) -> Tensor:
    """HSV hue shift; with ``skips`` (some samples may not be applied), samples with a zero shift keep
    their pixels exactly (no HSV round trip)."""
    shifted = daf.adjust_hue(images, hue, out=out)
    if not skips or shifted is images:
        return shifted
    keep = (hue == 0)[:, None, None, None]
    if not shifted.is_floating_point():
        return torch.where(keep, images, shifted)
    # lerp with a 0 / 1 weight returns one side exactly; in place on the new tensor (addcmul's
    # backward does not read its output), where torch.where would allocate a batch more.
    return shifted.lerp_(images, keep.to(shifted.dtype))


class _Chain:
    """The exact jitter's sequence of full-size passes, each step reading the output of the one before.

    With ``recycle`` (eager, float32 or float64 contiguous images, no gradient wanted), a step writes
    into the memory of the output before last, spent by then: two batches serve the whole sequence.
    On a CPU that halves the time: a fresh batch-sized allocation is returned to the system when
    freed, and touching it again page by page costs about as much as the pass that fills it.
    """

    def __init__(self, images: Tensor, recycle: bool) -> None:
        self.images, self.out, self.recycle = images, images, recycle
        self.spare: Tensor | None = None

    def affine(self, matrix: Tensor, channels: int, uses_mean: bool) -> None:
        self._push(_affine_step(self.out, matrix, channels, uses_mean, out=self.spare))

    def hue(self, hue: Tensor, skips: bool) -> None:
        self._push(_hue_step(self.out, hue, skips, out=self.spare))

    def _push(self, new: Tensor) -> None:
        spent = self.out
        self.spare = spent if self.recycle and spent is not self.images else None
        self.out = new


def _recycles(images: Tensor, tensors: Sequence[Tensor | None]) -> bool:
    """Whether :class:`_Chain` may write into spent intermediates: ``out=`` takes no gradient, and a
    compiled graph plans its own memory."""
    if torch.compiler.is_compiling() or images.dtype not in (torch.float32, torch.float64) or not images.is_contiguous():
        return False
    wants_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (images, *tensors))
    return not wants_grad


class ColorJitter(ColourTransform):
    """Randomly change brightness, contrast, saturation and hue, per sample (``torchvision.transforms.v2.ColorJitter``).

    Each factor is drawn uniformly per sample from ``[max(0, 1 - x), 1 + x]`` for a number
    ``x`` or from a given ``(min, max)`` (hue: ``[-x, x]``, inside ``[-0.5, 0.5]``), and each
    sample draws its own random order of the four adjustments, as torchvision draws one per call.

    Args:
        brightness, contrast, saturation, hue: as torchvision; ``None`` (default) leaves it out.
        p: keyword-only: probability that a sample is jittered (torchvision's
            ``RandomApply([ColorJitter(...)], p)``).
        fused: keyword-only: one colour matrix per sample (brightness, contrast, saturation, and
            hue as a rotation about the grey axis, multiplied in the sample's order) with one clamp
            at the end, instead of torchvision's clamp after every adjustment and HSV hue. It
            fuses with neighbouring colour steps in :class:`diffaug.Compose`.
        learnable: keyword-only: make the four ranges (and ``p`` when ``p < 1``) trainable.
        temperature: keyword-only: of the relaxed probability draw (learnable ``p``).

    Raises:
        ValueError: a negative number, a reversed range, factors below 0, hue outside
            ``[-0.5, 0.5]``; images with other than 1 or 3 channels (TypeError, as torchvision).

    Examples:
        >>> import torch, diffaug as da
        >>> jitter = da.ColorJitter(0.4, 0.4, 0.4, 0.1)
        >>> images = torch.rand(8, 3, 16, 16)
        >>> params = jitter.make_params(images)
        >>> out = jitter.transform(images, params)
        >>> out.shape, params.brightness.shape, bool(((out >= 0) & (out <= 1)).all())
        (torch.Size([8, 3, 16, 16]), torch.Size([8]), True)
        >>> da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True).make_params(images).colour.shape  # one matrix
        torch.Size([8, 3, 7])
    """

    def __init__(
        self,
        brightness: float | Sequence[float] | None = None,
        contrast: float | Sequence[float] | None = None,
        saturation: float | Sequence[float] | None = None,
        hue: float | Sequence[float] | None = None,
        *,
        p: float = 1.0,
        fused: bool = False,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        self.brightness = _factor_range(brightness, "brightness", learnable)
        self.contrast = _factor_range(contrast, "contrast", learnable)
        self.saturation = _factor_range(saturation, "saturation", learnable)
        self.hue = _hue_range(hue, learnable)
        self.fused = bool(fused)

    def _ranges(self) -> tuple[Range | None, Range | None, Range | None, Range | None]:
        return self.brightness, self.contrast, self.saturation, self.hue

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> JitterParams:
        """Draw per-sample factors and order (and, with ``fused=True``, the colour matrix)."""
        batch, channels, applied = self._setup(images, generator)
        noise = distributions.uniform((batch, 8), generator, images.device, applied.dtype)
        factors = [_draw(range_, noise[:, op], applied, 0.0 if op == _HUE else 1.0) for op, range_ in enumerate(self._ranges())]
        order = torch.argsort(noise[:, 4:], dim=1)  # a uniform random permutation per sample
        colour = None
        if self.fused:
            colour = self._fused_matrix(factors, order, channels, applied)
        brightness, contrast, saturation, hue = factors
        return JitterParams(
            applied,
            channels,
            colour,
            clamp=True,
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            order=order,
        )

    def _fused_matrix(self, factors: Sequence[Tensor | None], order: Tensor, channels: int, applied: Tensor) -> Tensor:
        matrices = _op_matrices(factors, channels, applied.shape[0], applied, fused_hue=True)
        identity = daf.mean_form(daf.colour_identity(applied.shape[0], channels, applied.device, applied.dtype), channels)
        product = identity
        for position in range(4):
            product = daf.compose_colour(product, _pick(matrices, order[:, position], identity), channels)
        return product if factors[_CONTRAST] is not None else daf.plain_form(product, channels)

    def colour_pass(self, images: Tensor, params: ColourParams) -> Tensor:
        if params.colour is not None:
            return super().colour_pass(images, params)
        assert isinstance(params, JitterParams) and params.order is not None
        factors = [params.brightness, params.contrast, params.saturation, params.hue]
        present = [op for op, factor in enumerate(factors) if factor is not None]
        if not present:
            return images
        channels = images.shape[-3]
        like = params.applied
        matrices = _op_matrices(factors, channels, images.shape[0], like, fused_hue=False)
        identity = daf.mean_form(daf.colour_identity(images.shape[0], channels, like.device, like.dtype), channels)
        uses_mean = params.contrast is not None
        sequence = _compacted_order(params.order, present)  # (B, n)
        count = len(present)
        hue = params.hue
        chain = _Chain(images, _recycles(images, [params.applied, *factors]))
        if hue is None:
            for position in range(count):
                chain.affine(_pick(matrices, sequence[:, position], identity), channels, uses_mean)
            return chain.out
        # Hue is not affine: run it once, between each sample's ops before and after it. The
        # affine ops before it take positions 0 .. count-2 (identity where a sample has fewer).
        hue_at = (sequence == _HUE).to(torch.long).argmax(dim=1)  # (B,)
        for position in range(count - 1):
            op = torch.where(position < hue_at, sequence[:, position], -1)
            chain.affine(_pick(matrices, op, identity), channels, uses_mean)
        chain.hue(hue, skips=not self.always)
        for step in range(count - 1):
            after = hue_at + 1 + step  # (B,) the position of this sample's next op
            op = sequence.gather(1, after.clamp(max=count - 1).unsqueeze(1)).squeeze(1)
            op = torch.where(after < count, op, -1)
            chain.affine(_pick(matrices, op, identity), channels, uses_mean)
        return chain.out


class RandomPhotometricDistort(ColourTransform):
    """SSD's photometric distortion, per sample (``torchvision.transforms.v2.RandomPhotometricDistort``).

    Each of brightness, contrast, saturation, hue and a random channel permutation is applied
    with probability ``p`` per sample, factors drawn uniformly from their ranges; contrast comes
    before saturation and hue or after them, with probability 1/2 per sample. Order: brightness,
    contrast (before), saturation, hue, contrast (after), channel permutation.

    Args:
        brightness, contrast, saturation, hue: ``(min, max)`` ranges (torchvision's defaults).
        p: probability of each operation, per sample; learnable with ``learnable=True``.
        fused: keyword-only: one colour matrix per sample and one clamp (see :class:`ColorJitter`).
        learnable: keyword-only: make the ranges and ``p`` trainable.
        temperature: keyword-only: of the relaxed probability draws (learnable ``p``).

    Examples:
        >>> import torch, diffaug as da
        >>> distort = da.RandomPhotometricDistort()
        >>> params = distort.make_params(torch.rand(4, 3, 8, 8))
        >>> params.contrast_before.shape, params.permutation.shape
        (torch.Size([4]), torch.Size([4, 3]))
    """

    def __init__(
        self,
        brightness: tuple[float, float] = (0.875, 1.125),
        contrast: tuple[float, float] = (0.5, 1.5),
        saturation: tuple[float, float] = (0.5, 1.5),
        hue: tuple[float, float] = (-0.05, 0.05),
        p: float = 0.5,
        *,
        fused: bool = False,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        self.brightness = _factor_range(_pair(brightness, "brightness"), "brightness", learnable)
        self.contrast = _factor_range(_pair(contrast, "contrast"), "contrast", learnable)
        self.saturation = _factor_range(_pair(saturation, "saturation"), "saturation", learnable)
        self.hue = _hue_range(_pair(hue, "hue"), learnable)
        self.fused = bool(fused)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> JitterParams:
        """Draw which operations each sample gets, their factors, the contrast position and the permutation."""
        batch, channels = batch_shape(images)[0], self.check_images(images)
        device, dtype = images.device, param_dtype(images)
        # One probability draw per operation (brightness, contrast, saturation, hue, permutation).
        draws = [self.draw_applied(batch, generator, device, dtype) for _ in range(5)]
        noise = distributions.uniform((batch, 5 + channels), generator, device, dtype)
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        factors = [_draw(r, noise[:, op], draws[op], 0.0 if op == _HUE else 1.0) for op, r in enumerate(ranges)]
        contrast_before = noise[:, 4] < 0.5
        op_applied = torch.stack(draws, dim=1)
        brightness, contrast, saturation, hue = factors
        params = JitterParams(
            op_applied.amax(dim=1),
            channels,
            clamp=True,
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            contrast_before=contrast_before,
            permutation=torch.argsort(noise[:, 5:], dim=1),
            op_applied=op_applied,
        )
        if self.fused:
            params.colour = self._fused_matrix(params, channels)
        return params

    def _permutation(self, params: JitterParams, channels: int) -> Tensor:
        """The permutation matrix where the sample drew one, the identity elsewhere (mixed for a relaxed draw)."""
        assert params.permutation is not None and params.op_applied is not None
        matrix = daf.permutation_matrix(params.permutation, params.applied.dtype)
        identity = daf.colour_identity(matrix.shape[0], channels, matrix.device, matrix.dtype)
        return where_applied(params.op_applied[:, 4], matrix, identity)

    def _sequence(self, params: JitterParams, channels: int, fused_hue: bool) -> list[Tensor | None]:
        """The matrices in torchvision's order: brightness, contrast before, saturation, hue, contrast after."""
        assert params.contrast_before is not None
        factors = [params.brightness, params.contrast, params.saturation, params.hue]
        b, c, s, h = _op_matrices(factors, channels, params.applied.shape[0], params.applied, fused_hue)
        if c is None:
            return [b, None, s, h, None]
        identity = daf.mean_form(daf.colour_identity(c.shape[0], channels, c.device, c.dtype), channels)
        before = params.contrast_before[:, None, None]
        return [b, torch.where(before, c, identity), s, h, torch.where(before, identity, c)]

    def _fused_matrix(self, params: JitterParams, channels: int) -> Tensor:
        like = params.applied
        identity = daf.mean_form(daf.colour_identity(like.shape[0], channels, like.device, like.dtype), channels)
        product = identity
        for matrix in self._sequence(params, channels, fused_hue=True):
            if matrix is not None:
                product = daf.compose_colour(product, matrix, channels)
        product = daf.compose_colour(product, daf.mean_form(self._permutation(params, channels), channels), channels)
        return product if params.contrast is not None else daf.plain_form(product, channels)

    def colour_pass(self, images: Tensor, params: ColourParams) -> Tensor:
        if params.colour is not None:
            return super().colour_pass(images, params)
        assert isinstance(params, JitterParams)
        channels = images.shape[-3]
        uses_mean = params.contrast is not None
        factors = [params.applied, params.op_applied, params.brightness, params.contrast, params.saturation, params.hue]
        chain = _Chain(images, _recycles(images, factors))
        for index, matrix in enumerate(self._sequence(params, channels, fused_hue=False)):
            if index == _HUE and params.hue is not None:
                chain.hue(params.hue, skips=True)
            elif matrix is not None:
                chain.affine(matrix, channels, uses_mean)
        # A permutation moves values: exact, and it needs no clamp.
        return daf.apply_colour(chain.out, self._permutation(params, channels), out=chain.spare)


def _pair(value: object, name: str) -> tuple[float, float]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise TypeError(f"{name} must be a pair (min, max), got {value!r}")
    return _checks.check_range(value, name)


# ------------------------------------------------------------------------------------- channel maps
class RandomChannelPermutation(ColourTransform):
    """Permute the channels at random, per sample (``torchvision.transforms.v2.RandomChannelPermutation``).

    Any number of channels; each sample draws a uniform random permutation.

    Args:
        p: keyword-only: probability that a sample is permuted.
        learnable: keyword-only: make ``p`` trainable (when ``p < 1``).
        temperature: keyword-only: of the relaxed probability draw.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.arange(3.0).view(1, 3, 1, 1).expand(4, 3, 2, 2)
        >>> out = da.RandomChannelPermutation()(images)
        >>> bool((out.sort(dim=1).values == images).all())  # the same values, in another order
        True
    """

    def __init__(self, *, p: float = 1.0, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)

    def check_images(self, images: Tensor) -> int:
        return int(images.shape[-3])

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> JitterParams:
        """Draw one permutation per sample (the identity where not applied)."""
        batch, channels, applied = self._setup(images, generator)
        noise = distributions.uniform((batch, channels), generator, images.device, applied.dtype)
        permutation = torch.argsort(noise, dim=1)
        matrix = daf.permutation_matrix(permutation, applied.dtype)
        identity = daf.colour_identity(batch, channels, images.device, applied.dtype)
        keep = torch.arange(channels, device=images.device).expand(batch, channels)
        permutation = torch.where(applied[:, None] > 0.5, permutation, keep)
        return JitterParams(applied, channels, where_applied(applied, matrix, identity), permutation=permutation)


class Grayscale(ColourTransform):
    """Convert to grey (``torchvision.transforms.v2.Grayscale``): ``0.2989 R + 0.587 G + 0.114 B``.

    Args:
        num_output_channels: 1 or 3 (grey repeated).
        p: keyword-only: probability per sample; ``p < 1`` needs ``num_output_channels`` equal to
            the images' channels (a batch has one channel count; see :class:`RandomGrayscale`).
        learnable, temperature: keyword-only: learnable ``p`` (when ``p < 1``) and its relaxation.

    Raises:
        ValueError: ``num_output_channels`` not 1 or 3.

    Examples:
        >>> import torch, diffaug as da
        >>> da.Grayscale()(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(
        self, num_output_channels: int = 1, *, p: float = 1.0, learnable: bool = False, temperature: float = 0.1
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        if num_output_channels not in (1, 3) or isinstance(num_output_channels, bool):
            raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels!r}")
        self.num_output_channels = int(num_output_channels)

    def _outputs(self, channels: int) -> int:
        return self.num_output_channels

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ColourParams:
        """The grey matrix for every sample (the identity where not applied)."""
        batch, channels, applied = self._setup(images, generator)
        outputs = self._outputs(channels)
        grey = daf.grayscale_matrix(batch, channels, outputs, like=applied)
        if self.always:
            return ColourParams(applied, channels, grey)
        if outputs != channels:
            raise ValueError(
                f"{type(self).__name__} with p < 1 keeps the channels of the samples it skips, so num_output_channels "
                f"({outputs}) must equal the images' channels ({channels})"
            )
        identity = daf.colour_identity(batch, channels, images.device, applied.dtype)
        return ColourParams(applied, channels, where_applied(applied, grey, identity))


class RandomGrayscale(Grayscale):
    """Convert samples to grey with probability ``p``, keeping their channels (``torchvision.transforms.v2.RandomGrayscale``).

    Args:
        p: probability per sample (torchvision's default 0.1).
        learnable, temperature: keyword-only: learnable ``p`` and its relaxation.

    Examples:
        >>> import torch, diffaug as da
        >>> out = da.RandomGrayscale(p=1.0)(torch.rand(2, 3, 4, 4))
        >>> out.shape, torch.allclose(out[:, 0], out[:, 2])
        (torch.Size([2, 3, 4, 4]), True)
    """

    def __init__(self, p: float = 0.1, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(1, p=p, learnable=learnable, temperature=temperature)

    def _outputs(self, channels: int) -> int:
        return channels


class RGB(ColourTransform):
    """Make images RGB (``torchvision.transforms.v2.RGB``): one channel repeated three times; 3 or more unchanged.

    Args:
        p: keyword-only, 1 (a batch has one channel count; the argument exists for uniformity).

    Examples:
        >>> import torch, diffaug as da
        >>> da.RGB()(torch.rand(2, 1, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, *, p: float = 1.0) -> None:
        if p != 1.0:
            raise ValueError(f"RGB changes the channel count of the whole batch, so p must be 1, got {p!r}")
        super().__init__(p=p)

    def check_images(self, images: Tensor) -> int:
        channels = int(images.shape[-3])
        if channels == 2:
            raise TypeError(f"images must have 1 or at least 3 channels for RGB, got 2 (shape {tuple(images.shape)})")
        return channels

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ColourParams:
        """The identity, or one channel copied to three."""
        batch, channels, applied = self._setup(images, generator)
        if channels == 1:
            return ColourParams(applied, channels, daf.grayscale_matrix(batch, 1, 3, like=applied))
        return ColourParams(applied, channels, daf.colour_identity(batch, channels, images.device, applied.dtype))

    def colour_pass(self, images: Tensor, params: ColourParams) -> Tensor:
        # torchvision returns images of three or more channels as they are; so does a standalone RGB
        # (inside Compose its identity matrix joins the colour run at no cost).
        return super().colour_pass(images, params) if images.shape[-3] == 1 else images


class RandomInvert(ColourTransform):
    """Invert samples with probability ``p``: ``1 - x`` (``255 - x`` for uint8) (``torchvision.transforms.v2.RandomInvert``).

    Any number of channels (torchvision inverts any).

    Args:
        p: probability per sample (torchvision's default 0.5).
        learnable, temperature: keyword-only: learnable ``p`` and its relaxation.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.tensor([[[[0, 55, 255]]]], dtype=torch.uint8)
        >>> da.RandomInvert(p=1.0)(images)
        tensor([[[[255, 200,   0]]]], dtype=torch.uint8)
    """

    def __init__(self, p: float = 0.5, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)

    def check_images(self, images: Tensor) -> int:
        return int(images.shape[-3])

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ColourParams:
        """The inverting matrix where applied, the identity elsewhere."""
        batch, channels, applied = self._setup(images, generator)
        identity = daf.colour_identity(batch, channels, images.device, applied.dtype)
        return ColourParams(applied, channels, where_applied(applied, daf.invert_matrix(batch, channels, like=applied), identity))


# ----------------------------------------------------------------------------------------- normalise
def _numbers(value: object, name: str) -> tuple[float, ...]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, Tensor) and value.ndim <= 1 and value.dtype.is_floating_point:
        return tuple(float(v) for v in value.reshape(-1).tolist())
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        return tuple(float(v) for v in value)
    raise TypeError(f"{name} must be a sequence of numbers (one per channel), got {value!r}")


class Normalize(ColourTransform):
    """``(x - mean) / std`` per channel (``torchvision.transforms.v2.Normalize``), as a colour matrix.

    Args:
        mean, std: one number per channel (or one for all); ``std > 0``.
        inplace: write the result into the images (as torchvision; not with gradients). Inside
            :class:`diffaug.Compose`, a colour run's one pass writes a new tensor instead.
        p: keyword-only: probability per sample (1 by default).
        learnable, temperature: keyword-only: learnable ``p`` (when ``p < 1``) and its relaxation.

    Raises:
        TypeError: non-numeric mean or std; images that are not floating point (as torchvision).
        ValueError: ``std <= 0``; mean and std of different lengths; a channel count that
            differs from the images'.

    Examples:
        >>> import torch, diffaug as da
        >>> norm = da.Normalize(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
        >>> norm(torch.full((1, 3, 2, 2), 0.75))[0, :, 0, 0]
        tensor([1., 1., 1.])
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        inplace: bool = False,
        *,
        p: float = 1.0,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        means, stds = _numbers(mean, "mean"), _numbers(std, "std")
        if not all(s > 0 and math.isfinite(s) for s in stds):
            raise ValueError(f"std must be positive and finite, got {std!r}")
        if not all(math.isfinite(m) for m in means):
            raise ValueError(f"mean must be finite, got {mean!r}")
        if len(means) != len(stds) and 1 not in (len(means), len(stds)):
            raise ValueError(f"mean and std must have the same length (one per channel), got {len(means)} and {len(stds)}")
        length = max(len(means), len(stds))
        # float64, so float64 images get the numbers as given (float32 ones get them rounded once).
        self.register_buffer("mean", torch.tensor(means * (length // len(means)), dtype=torch.float64), persistent=False)
        self.register_buffer("std", torch.tensor(stds * (length // len(stds)), dtype=torch.float64), persistent=False)
        self.inplace = bool(inplace)

    def check_images(self, images: Tensor) -> int:
        channels = int(images.shape[-3])
        if self.mean.shape[0] not in (1, channels):
            raise ValueError(f"Normalize has {self.mean.shape[0]} channels (mean, std) but images have {channels}")
        return channels

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ColourParams:
        """The normalising matrix where applied, the identity elsewhere."""
        batch, channels, applied = self._setup(images, generator)
        mean = self.mean.to(device=images.device, dtype=applied.dtype).expand(channels)
        std = self.std.to(device=images.device, dtype=applied.dtype).expand(channels)
        matrix = daf.normalize_matrix(mean, std, batch)
        if not self.always:
            matrix = where_applied(applied, matrix, daf.colour_identity(batch, channels, images.device, applied.dtype))
        return ColourParams(applied, channels, matrix, diagonal=True, needs_float=True)

    def colour_pass(self, images: Tensor, params: ColourParams) -> Tensor:
        if not images.is_floating_point():
            raise TypeError(f"Normalize needs floating point images (as torchvision), got {images.dtype}; use ToDtype first")
        out = super().colour_pass(images, params)
        return images.copy_(out) if self.inplace else out


class ToDtype(ColourTransform):
    """Convert the dtype, scaling values with ``scale=True`` (``torchvision.transforms.v2.ToDtype``).

    ``uint8`` -> float with ``scale=True`` divides by 255; float -> ``uint8`` multiplies by 255
    (clamped, truncated). As a colour matrix (a gain), so inside :class:`diffaug.Compose` it
    joins the colour pass next to it: ``uint8`` in, normalised float out, in one pass.

    Args:
        dtype: a ``torch.dtype``: floating point or ``torch.uint8``.
        scale: rescale values to the new dtype's range.
        p: keyword-only, 1 (a batch has one dtype; the argument exists for uniformity).

    Raises:
        TypeError: ``dtype`` not a floating point ``torch.dtype`` or ``torch.uint8`` (a dict, as
            torchvision takes for ``tv_tensors``, is not supported).

    Examples:
        >>> import torch, diffaug as da
        >>> da.ToDtype(torch.float32, scale=True)(torch.tensor([[[0, 51, 255]]], dtype=torch.uint8))
        tensor([[[0.0000, 0.2000, 1.0000]]])
    """

    def __init__(self, dtype: torch.dtype, scale: bool = False, *, p: float = 1.0) -> None:
        if p != 1.0:
            raise ValueError(f"ToDtype changes the dtype of the whole batch, so p must be 1, got {p!r}")
        super().__init__(p=p)
        if not isinstance(dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype (a floating point type or torch.uint8), got {dtype!r}")
        if not (dtype.is_floating_point or dtype == torch.uint8):
            raise TypeError(f"dtype must be floating point or torch.uint8, got {dtype}")
        self.dtype = dtype
        self.scale = bool(scale)

    def check_images(self, images: Tensor) -> int:
        return int(images.shape[-3])

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ColourParams:
        """A gain: 1 in unit range when scaling, else the ratio of the two dtypes' ranges."""
        batch, channels, applied = self._setup(images, generator)
        gain = 1.0 if self.scale else daf.value_range(images.dtype) / daf.value_range(self.dtype)
        # A gain in unit range is a brightness factor (unclamped: the pass clamps only integer outputs).
        matrix = daf.brightness_matrix(torch.full((batch,), gain, device=images.device, dtype=applied.dtype), channels)
        return ColourParams(applied, channels, matrix, dtype=self.dtype, diagonal=True)

    def colour_pass(self, images: Tensor, params: ColourParams) -> Tensor:
        if images.dtype == self.dtype:
            return images  # torchvision returns the images unchanged
        if images.is_floating_point() and self.dtype.is_floating_point:
            return images.to(self.dtype)  # float to float: a cast, with or without scale
        return super().colour_pass(images, params)
