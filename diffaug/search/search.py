"""Density-matching search: recover a hidden augmentation by gradient descent on its ranges.

The set-up, in the style of Faster AutoAugment: *target* images are made by a hidden pipeline
(e.g. ``RandomResizedCrop(size, scale=(LO, HI))``) from a set of source images; a learnable
copy of the pipeline starts from broad default ranges and is trained so that the distribution of
its outputs matches the targets'. Gradients reach the ranges through the reparameterised draws
and the bilinear warp (:mod:`diffaug.distributions`).

What makes the ranges identifiable is the source: procedurally generated two-channel images
(:func:`texture_bank`) whose content has one characteristic size, so that the *apparent*
feature size in an output tells how much of the source it shows:

* channel 0, isotropic band-pass noise (period ``period`` pixels): a crop of width ``w`` shown
  at ``S`` pixels has frequency ``S / (period w)`` along ``x``, so ``log`` of the gradient energy
  over the variance is ``2 log w + const`` (likewise ``h`` along ``y``): the crop's area;
* channel 1, a horizontal grating: the orientation of its structure tensor is the rotation.

:func:`features` computes these statistics per image (differentiably); the matcher compares the
two feature distributions.

Those statistics are centred and divided by the spread per channel, so brightness and contrast
cannot change them. Photometric targets (a hidden ``ColorJitter``'s brightness, contrast and
saturation ranges) use colour sources instead (:func:`colour_bank`: a dim grey carrying the
texture plus a constant tint of zero grey) and the statistics of :func:`colour_features`: the log
grey mean (brightness), the log ratio of grey spread to grey mean (contrast) and the log ratio of
the tint's magnitude to the grey spread and to the grey mean (saturation). On these sources no
adjustment of the allowed targets reaches a clamp, so the three adjustments commute and each
statistic is its factor's log plus a constant of the source; the crop statistics are computed on
the grey, which the jitter only scales and shifts. The default matcher is a 1-D Wasserstein-2 distance per feature
(sort the batch, compare with the targets' quantiles; :class:`QuantileMatcher`):
no critic to train, no kernel bandwidth, a low-variance gradient with 256 images on a CPU. An MMD on the same features
is available (``matcher="mmd"``); see the documentation for the measured comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import functional as daf
from diffaug.distributions import Range
from diffaug.functional import GRAY_WEIGHTS
from diffaug.search._fuse import check_gradient_path, fused_matrix
from diffaug.transforms.base import GeometricTransform
from diffaug.transforms.colour import ColorJitter
from diffaug.transforms.crop import RandomResizedCrop

__all__ = [
    "SearchConfig",
    "texture_bank",
    "colour_bank",
    "features",
    "colour_features",
    "QuantileMatcher",
    "MMDMatcher",
    "search",
    "add_parser",
]

MATCHERS = ("quantile", "quantile-unbiased", "mmd")
# The learnable pipeline starts from these ranges (RandomResizedCrop's default scale).
START_SCALE = (0.08, 1.0)
START_DEGREES = 45.0
MAX_DEGREES = 90.0
DEGREES_LR = 15.0
# The polish scores candidates on this many draws per batch image (16,384 with the default batch)...
POLISH_FACTOR = 64
# ... warped this many at a time: a (512, 1, 48, 48) batch stays in cache; 8,192 at once took 3.6x the CPU time.
POLISH_CHUNK = 512
# Scores within this fraction of the polish statistic's null expectation of the best are not told apart.
PLATEAU = 0.25
# A short second-moment memory: after the first large steps Adam would otherwise crawl back from an overshoot.
ADAM_BETAS = (0.8, 0.95)
# What `diffaug search` hides when given no target.
DEMO_SCALE = (0.25, 0.75)
# ColorJitter's factors that can be searched, in its order.
COLOUR_TARGETS = ("brightness", "contrast", "saturation")
# The learnable jitter starts from ColorJitter(0.5)'s factor range; targets lie in (0, MAX_FACTOR].
START_FACTOR = (0.5, 1.5)
# The columns of colour_features each factor moves (saturation: relative to the grey spread and to the grey mean).
COLOUR_COLUMNS = {"brightness": (0,), "contrast": (1,), "saturation": (2, 3)}
MAX_FACTOR = 2.0
# Colour sources: grey mean, the texture's standard deviation in the grey, the tint's magnitude.
# Darkest pixel: GREY_MEAN - 2 * TEXTURE_CLIP * GREY_SPREAD - 4 * TINT (contrast and saturation at most 2) > 0;
# brightest: 2 * (GREY_MEAN + 2 * TEXTURE_CLIP * GREY_SPREAD + 4 * TINT) < 1: no clamp for any allowed target.
GREY_MEAN = 0.25
GREY_SPREAD = 0.01
TEXTURE_CLIP = 5.0
TINT = 0.02


@dataclasses.dataclass
class SearchConfig:
    """Settings of :func:`search`.

    Attributes:
        target_scale: ``(LO, HI)`` of the hidden ``RandomResizedCrop``, ``0 < LO <= HI <= 1``; ``None``: no crop.
        target_degrees: ``D`` of a hidden ``RandomRotation(D)`` after the crop, ``0 < D <= 90``; ``None``: none.
        target_brightness, target_contrast, target_saturation: ``(LO, HI)`` factor ranges of a hidden
            ``ColorJitter`` after the crop, ``0 < LO <= HI <= 2``; ``None``: that adjustment is not in it.
            Not combined with ``target_degrees`` (the colour sources have no grating).
        seed: seeds the source images, the target draws and the search's draws.
        steps: optimisation steps.
        batch: augmented images per step.
        size: output side of the pipeline (the sources are ``source_size`` pixels).
        source_size: side of the generated source images.
        sources: number of generated source images.
        period: feature size of the sources, in pixels.
        targets: number of target images (drawn once).
        lr: Adam learning rate on the raw (unconstrained) parameters, cosine-decayed to 0.
        matcher: ``"quantile"`` (per-feature 1-D Wasserstein-2), ``"quantile-unbiased"`` (its split-batch
            variant) or ``"mmd"``.
        average: fraction of the last steps whose parameters are averaged into the result.
        polish: refine the scale bounds by a derivative-free grid search on a tail-sensitive distance (see ``_polish_scale``).

    Raises:
        ValueError, TypeError: no target, a target outside its domain, colour targets with a rotation,
            non-positive sizes or steps, an unknown matcher.

    Examples:
        >>> SearchConfig(target_scale=(0.2, 0.5)).steps
        200
        >>> SearchConfig(target_scale=(0.5, 0.2))
        Traceback (most recent call last):
        ...
        ValueError: target_scale must satisfy 0 < LO <= HI <= 1, got (0.5, 0.2)
        >>> SearchConfig(target_contrast=(0.6, 2.5))
        Traceback (most recent call last):
        ...
        ValueError: target_contrast must satisfy 0 < LO <= HI <= 2, got (0.6, 2.5)
    """

    target_scale: tuple[float, float] | None = None
    target_degrees: float | None = None
    target_brightness: tuple[float, float] | None = None
    target_contrast: tuple[float, float] | None = None
    target_saturation: tuple[float, float] | None = None
    seed: int = 0
    steps: int = 200
    batch: int = 256
    size: int = 48
    source_size: int = 64
    sources: int = 8
    period: float = 6.0
    targets: int = 4096
    lr: float = 0.2
    matcher: str = "quantile"
    average: float = 0.25
    polish: bool = True

    def __post_init__(self) -> None:
        if self.target_scale is None and self.target_degrees is None and not self.colour_targets():
            raise ValueError("nothing to search: give target_scale, target_degrees and/or a colour target")
        for name, top in (("scale", 1.0), *((colour, MAX_FACTOR) for colour in COLOUR_TARGETS)):
            value = getattr(self, f"target_{name}")
            if value is None:
                continue
            if not isinstance(value, Sequence) or len(value) != 2:
                raise TypeError(f"target_{name} must be a pair (LO, HI), got {value!r}")
            low, high = (float(v) for v in value)
            if not 0.0 < low <= high <= top:
                raise ValueError(f"target_{name} must satisfy 0 < LO <= HI <= {top:g}, got {value!r}")
            setattr(self, f"target_{name}", (low, high))
        if self.target_degrees is not None and not 0.0 < float(self.target_degrees) <= MAX_DEGREES:
            # The grating's orientation repeats every 180 degrees: beyond 90 the range is not identifiable.
            raise ValueError(f"target_degrees must be in (0, {MAX_DEGREES:g}], got {self.target_degrees!r}")
        if self.target_degrees is not None and self.colour_targets():
            raise ValueError("target_degrees cannot be combined with colour targets (the colour sources have no grating)")
        for name in ("steps", "batch", "size", "source_size", "sources", "targets"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.batch < 2:
            raise ValueError(f"batch must be at least 2, got {self.batch!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.period > 1:
            raise ValueError(f"period must be > 1 pixel, got {self.period!r}")
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, got {self.matcher!r}")
        if not 0.0 < self.average <= 1.0:
            raise ValueError(f"average must be in (0, 1], got {self.average!r}")

    def colour_targets(self) -> dict[str, tuple[float, float]]:
        """The hidden ``ColorJitter``'s factor ranges, by name, in its order (empty: no jitter)."""
        return {name: value for name in COLOUR_TARGETS if (value := getattr(self, f"target_{name}")) is not None}


def texture_bank(count: int, size: int, period: float = 6.0, generator: torch.Generator | None = None) -> Tensor:
    """``(count, 2, size, size)`` generated source images with one characteristic feature size.

    Channel 0 is isotropic band-pass noise (a ring of radius ``1 / period`` cycles per pixel in
    the Fourier domain, so it tiles seamlessly); channel 1 a horizontal sine grating of period
    ``period`` with a random phase. Both have zero mean and unit variance.

    Examples:
        >>> bank = texture_bank(2, 32, generator=torch.Generator().manual_seed(0))
        >>> bank.shape, round(float(bank[:, 0].std()), 1)
        (torch.Size([2, 2, 32, 32]), 1.0)
    """
    noise = torch.randn(count, size, size, generator=generator, dtype=torch.float64)
    freq = torch.fft.fftfreq(size, dtype=torch.float64)
    radius = torch.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    ring = torch.exp(-0.5 * ((radius - 1.0 / period) / (0.25 / period)) ** 2)
    texture = torch.fft.ifft2(torch.fft.fft2(noise) * ring).real
    texture = (texture - texture.mean((-2, -1), keepdim=True)) / texture.std((-2, -1), keepdim=True)
    rows = torch.arange(size, dtype=torch.float64) + 0.5
    phase = torch.rand(count, 1, 1, generator=generator, dtype=torch.float64) * 2 * math.pi
    grating = math.sqrt(2.0) * torch.sin(2 * math.pi * rows[None, :, None] / period + phase).expand(count, size, size)
    return torch.stack([texture, grating], dim=1).float()


def features(images: Tensor) -> Tensor:
    """Per-image, per-channel statistics that reveal crop scale and rotation: ``(B, C, H, W) -> (B, C, 5)``.

    For each channel: ``0.5 log(E[dx^2] / Var)`` and ``0.5 log(E[dy^2] / Var)`` (log apparent
    frequency along x and y, from finite differences), their sum (minus log area, up to a
    constant) and the doubled orientation of the structure tensor as ``(cos 2a, sin 2a)``,
    continuous in the angle ``a``. Differentiable.

    Examples:
        >>> features(torch.rand(4, 2, 16, 16)).shape
        torch.Size([4, 2, 5])
    """
    centred = images - images.mean((-2, -1), keepdim=True)
    variance = centred.square().mean((-2, -1)) + 1e-6
    dx = centred[..., :-1, 1:] - centred[..., :-1, :-1]
    dy = centred[..., 1:, :-1] - centred[..., :-1, :-1]
    jxx, jyy, jxy = dx.square().mean((-2, -1)), dy.square().mean((-2, -1)), (dx * dy).mean((-2, -1))
    freq_x = 0.5 * torch.log(jxx / variance + 1e-6)
    freq_y = 0.5 * torch.log(jyy / variance + 1e-6)
    norm = jxx + jyy + 1e-6
    return torch.stack([freq_x, freq_y, freq_x + freq_y, (jyy - jxx) / norm, 2 * jxy / norm], dim=-1)


def colour_bank(texture: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``(count, 3, H, W)`` colour sources from :func:`texture_bank`'s ``texture``: a dim textured grey plus a tint.

    The grey is ``GREY_MEAN + GREY_SPREAD * t`` with ``t`` the texture's channel 0 clipped to
    ``+-TEXTURE_CLIP``; each source adds one constant tint of magnitude ``TINT`` in a random
    direction of zero grey (``GRAY_WEIGHTS . tint = 0``), so its grey is the textured grey exactly.
    Every pixel of every allowed ``ColorJitter`` target (factors up to 2) stays inside ``(0, 1)``.

    Examples:
        >>> texture = texture_bank(2, 16, generator=torch.Generator().manual_seed(0))
        >>> images = colour_bank(texture, torch.Generator().manual_seed(1))
        >>> images.shape, 0.1 < float(images.min()) and float(images.max()) < 0.4
        (torch.Size([2, 3, 16, 16]), True)
    """
    weights = torch.tensor(GRAY_WEIGHTS, dtype=torch.float64)
    grey = GREY_MEAN + GREY_SPREAD * texture[:, 0].double().clamp(-TEXTURE_CLIP, TEXTURE_CLIP)
    direction = torch.randn(texture.shape[0], 3, generator=generator, dtype=torch.float64)
    direction -= (direction @ weights)[:, None] * weights / weights.square().sum()  # no grey component
    tint = TINT * direction / direction.norm(dim=1, keepdim=True)
    return (grey[:, None] + tint[:, :, None, None]).float()


def _grey(images: Tensor) -> Tensor:
    """``(B, 3, H, W) -> (B, 1, H, W)``: ``GRAY_WEIGHTS`` (torchvision's grey, as ``ColorJitter`` uses it)."""
    return (images * images.new_tensor(GRAY_WEIGHTS)[:, None, None]).sum(-3, keepdim=True)


def colour_features(images: Tensor) -> Tensor:
    """Per-image colour statistics that reveal brightness, contrast and saturation: ``(B, 3, H, W) -> (B, 4)``.

    With ``g`` the grey (``GRAY_WEIGHTS``), ``m`` and ``s`` its mean and standard deviation and
    ``q`` the root mean square of the chroma ``x - g``: ``log m``, ``log(s / m)``, ``log(q / s)``
    and ``log(q / m)``. Without clamping, brightness ``b`` multiplies ``m``, ``s`` and ``q``;
    contrast ``c`` keeps ``m`` and multiplies ``s`` and ``q``; saturation ``k`` multiplies ``q``
    only: the columns move by ``log b``, ``log c``, ``log k`` and ``log c + log k``. Differentiable.

    Examples:
        >>> import diffaug as da
        >>> images = 0.3 + 0.05 * torch.rand(4, 3, 16, 16)
        >>> shift = colour_features(da.ColorJitter(brightness=(1.5, 1.5))(images)) - colour_features(images)
        >>> [abs(round(v, 3)) for v in shift.mean(0).tolist()]  # log 1.5 = 0.405 on the mean only
        [0.405, 0.0, 0.0, 0.0]
    """
    grey = _grey(images)
    mean = grey.mean((-3, -2, -1))
    spread = (grey - mean[:, None, None, None]).square().mean((-3, -2, -1)).add(1e-12).sqrt()
    chroma = (images - grey).square().mean((-3, -2, -1)).add(1e-12).sqrt()
    log_mean, log_spread, log_chroma = mean.clamp_min(1e-6).log(), spread.log(), chroma.log()
    return torch.stack([log_mean, log_spread - log_mean, log_chroma - log_spread, log_chroma - log_mean], dim=-1)


class QuantileMatcher:
    """Per-feature 1-D Wasserstein-2 matching between a batch and the targets.

    Each feature's batch values are sorted and compared with the targets' quantiles at levels
    ``(i + 0.5) / n``: ``mean((sorted - q)^2)`` over ranks and features, features standardised by
    the targets' mean and spread. Each sample's gradient is its distance to the target value at
    its rank.

    With ``unbiased=True`` the batch is split into halves ``a``, ``b`` compared with the targets'
    expected order statistics ``q`` of a half-batch, and the loss is ``mean((a - q) * (b - q))``:
    an unbiased estimate of the squared distance between expected order statistics (the plain
    loss adds ``Var(a)``, a term that favours narrower ranges). Measured on the crop-scale search
    it was the worse choice (higher variance; see the documentation), hence off by default.

    Examples:
        >>> target = torch.randn(1000, 2)
        >>> m = QuantileMatcher(target, 200, generator=torch.Generator().manual_seed(0))
        >>> float(m(torch.randn(200, 2))) < float(m(torch.randn(200, 2) + 1.0))
        True
    """

    def __init__(
        self, target: Tensor, batch: int, generator: torch.Generator | None = None, unbiased: bool = False, subsets: int = 64
    ) -> None:
        self.mean, self.std = target.mean(0), target.std(0).clamp_min(1e-6)
        self.unbiased = unbiased
        standard = (target - self.mean) / self.std
        if unbiased:
            self.half = batch // 2
            picks = torch.stack([torch.randperm(target.shape[0], generator=generator)[: self.half] for _ in range(subsets)])
            self.quantiles = standard[picks].sort(dim=1).values.mean(0)
        else:
            levels = (torch.arange(batch, dtype=target.dtype) + 0.5) / batch
            self.quantiles = torch.quantile(standard, levels, dim=0)

    def __call__(self, batch_features: Tensor) -> Tensor:
        standard = (batch_features - self.mean) / self.std
        if not self.unbiased:
            return (standard.sort(dim=0).values - self.quantiles).square().mean()
        first = standard[: self.half].sort(dim=0).values - self.quantiles
        second = standard[self.half : 2 * self.half].sort(dim=0).values - self.quantiles
        return (first * second).mean()


class MMDMatcher:
    """Squared maximum mean discrepancy with a Gaussian kernel on standardised features.

    The targets are subsampled to the batch size each call (with ``generator``); bandwidths
    1, 2 and 4 (in units of the features' standard deviation) are summed.

    Examples:
        >>> target = torch.randn(1000, 2)
        >>> m = MMDMatcher(target, 200, generator=torch.Generator().manual_seed(0))
        >>> float(m(torch.randn(200, 2))) < float(m(torch.randn(200, 2) + 1.0))
        True
    """

    def __init__(self, target: Tensor, batch: int, generator: torch.Generator | None = None) -> None:
        self.mean, self.std = target.mean(0), target.std(0).clamp_min(1e-6)
        self.target = (target - self.mean) / self.std
        self.batch = batch
        self.generator = generator

    def __call__(self, batch_features: Tensor) -> Tensor:
        x = (batch_features - self.mean) / self.std
        pick = torch.randint(0, self.target.shape[0], (self.batch,), generator=self.generator)
        y = self.target[pick]

        def kernel(a: Tensor, b: Tensor) -> Tensor:
            distance = torch.cdist(a, b).square()
            return sum(torch.exp(-distance / (2 * s * s)).mean() for s in (1.0, 2.0, 4.0))  # type: ignore[return-value]

        return kernel(x, x) + kernel(y, y) - 2 * kernel(x, y)


def _pipeline(
    config: SearchConfig,
    scale: tuple[float, float] | None,
    degrees: float | None,
    colour: dict[str, tuple[float, float]],
    learnable: bool,
) -> list[nn.Module]:
    """The crop (or a resize), the rotation, then the jitter of the ``colour`` factor ranges (none if empty).

    The jitter is ``ColorJitter(fused=True)`` (one colour matrix per sample, one clamp) in the hidden
    pipeline and the learnable copy alike. On the colour sources no allowed target reaches a clamp,
    so this is also torchvision's law (its exact mode clamps after each adjustment): the same images,
    at about 0.7x the time of a step with the exact mode.
    """
    from diffaug.transforms.geometric import RandomRotation, Resize

    ops: list[nn.Module] = []
    if scale is None:
        ops.append(Resize((config.size, config.size)))  # the same output size as with a crop
    else:
        crop = RandomResizedCrop(config.size, scale=scale, learnable=learnable)
        if learnable:
            # The aspect-ratio law is known (torchvision's default): only the scale is searched.
            assert crop.ratio.raw is not None
            crop.ratio.raw.requires_grad_(False)
        ops.append(crop)
    if degrees is not None:
        ops.append(RandomRotation(degrees, "bilinear", learnable=learnable))
    if colour:
        ops.append(ColorJitter(**colour, fused=True, learnable=learnable))  # type: ignore[arg-type]
    return ops


def _apply(ops: Sequence[nn.Module], images: Tensor, generator: torch.Generator) -> Tensor:
    """The geometric steps as one warp (see :func:`fused_matrix`), then the colour steps in order."""
    geometric = [op for op in ops if isinstance(op, GeometricTransform)]
    matrix, size = fused_matrix(geometric, images, generator)
    out = daf.warp(images, daf.to_theta(matrix), size)
    for op in ops:
        if not isinstance(op, GeometricTransform):
            out = op(out, generator=generator)
    return out


@dataclasses.dataclass(frozen=True)
class _Columns:
    """The feature columns the matcher compares.

    ``geometric``: ``(channel, k)`` pairs of :func:`features` (of the grey when ``grey``);
    ``colour``: columns of :func:`colour_features`.
    """

    geometric: tuple[tuple[int, int], ...]
    colour: tuple[int, ...] = ()
    grey: bool = False

    def __len__(self) -> int:
        return len(self.geometric) + len(self.colour)

    def of(self, images: Tensor) -> Tensor:
        """``(B, len(self))``: the selected statistics of ``images``."""
        parts = []
        if self.geometric:
            feats = features(_grey(images) if self.grey else images)
            parts += [feats[:, c, k] for c, k in self.geometric]
        if self.colour:
            feats = colour_features(images)
            parts += [feats[:, k] for k in self.colour]
        return torch.stack(parts, dim=-1)


def _select(config: SearchConfig, texture: Tensor, generator: torch.Generator) -> tuple[Tensor, _Columns]:
    """The sources and feature columns that depend on what is searched.

    Scale: the isotropic texture's apparent frequencies. Rotation: the grating's orientation.
    Colour: :func:`colour_bank` sources, the scale's frequencies read on their grey, and per factor
    its :func:`colour_features` columns (saturation has two: relative to the spread and to the mean).
    Constant or irrelevant columns would only add noise (and time).
    """
    colour = config.colour_targets()
    if colour:
        columns = tuple(k for name in colour for k in COLOUR_COLUMNS[name])
        geometric = ((0, 0), (0, 1), (0, 2)) if config.target_scale is not None else ()
        return colour_bank(texture, generator), _Columns(geometric, columns, grey=True)
    channels: list[int] = []
    pairs: list[tuple[int, int]] = []
    if config.target_scale is not None:
        pairs += [(len(channels), 0), (len(channels), 1), (len(channels), 2)]
        channels.append(0)
    if config.target_degrees is not None:
        # Orientation only: the grating's log frequency along x is log|sin a|, whose slope blows up near a = 0.
        pairs += [(len(channels), 3), (len(channels), 4)]
        channels.append(1)
    return texture[:, channels], _Columns(tuple(pairs))


def _learned(ops: Sequence[nn.Module]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for op in ops:
        if isinstance(op, RandomResizedCrop):
            out["scale"] = [float(v.detach()) for v in op.scale.bounds()]
        elif isinstance(op, ColorJitter):
            for name in COLOUR_TARGETS:
                range_ = getattr(op, name)
                if range_ is not None:
                    out[name] = [float(v.detach()) for v in range_.bounds()]
        elif isinstance(getattr(op, "degrees", None), Range):
            out["degrees"] = [float(v.detach()) for v in op.degrees.bounds()]  # type: ignore[operator, union-attr]
    return out


def _features_in_chunks(ops: Sequence[nn.Module], images: Tensor, generator: torch.Generator, columns: _Columns) -> Tensor:
    """The selected feature columns of the augmented ``images``, without gradient, ``POLISH_CHUNK`` images at a time.

    The draws follow one another on ``generator`` as in a single call, so equal seeds give equal
    noise for any parameters (the crop draws a fixed amount of noise per image).
    """
    with torch.no_grad():
        parts = [
            columns.of(_apply(ops, images[begin : begin + POLISH_CHUNK], generator))
            for begin in range(0, images.shape[0], POLISH_CHUNK)
        ]
    return torch.cat(parts)


def _anderson_darling(sample: Tensor, reference: Tensor) -> Tensor:
    """Two-sample Anderson-Darling distance per column, summed: ``(n, k)`` and sorted ``(k, N)`` -> scalar.

    ``sum_j (F_sample(z_j) - F_reference(z_j))^2 / (H_j (1 - H_j))`` over the pooled sorted values
    ``z_j`` (``H`` their pooled CDF), divided by the pooled count. Unlike the W2 loss it weighs a
    CDF difference in the tails as much as one in the middle, and its sampling floor (about
    ``1 / n`` per column) does not depend on how thin a tail is.

    Examples:
        >>> reference = torch.rand(4000, 1).T.sort(dim=1).values
        >>> same, narrower = torch.rand(1000, 1), 0.9 * torch.rand(1000, 1)
        >>> float(_anderson_darling(same, reference)) < float(_anderson_darling(narrower, reference))
        True
    """
    candidate = sample.T.contiguous().sort(dim=1).values
    pooled = torch.cat([candidate, reference], dim=1).sort(dim=1).values
    total = pooled.shape[1]
    below = (torch.arange(1, total, dtype=torch.float64) / total).expand(pooled.shape[0], -1)
    # The last pooled value has H = 1 (both CDFs are 1 there): left out.
    values = pooled[:, :-1].contiguous()
    in_sample = torch.searchsorted(candidate, values, right=True).double() / candidate.shape[1]
    in_reference = torch.searchsorted(reference, values, right=True).double() / reference.shape[1]
    return ((in_sample - in_reference).square() / (below * (1 - below))).sum() / total


def _polish_scale(
    ops: Sequence[GeometricTransform],
    hidden: Sequence[GeometricTransform],
    bounds: list[float],
    sources: Tensor,
    columns: _Columns,
    config: SearchConfig,
    progress: bool = False,
) -> list[float]:
    """Refine the scale bounds by a derivative-free coordinate search on a tail-sensitive distance.

    The pathwise gradient of ``RandomResizedCrop`` does not see its rejection of tries that do not
    fit (frequent above scale 3/4 with the default ratios), so where an upper bound lies in
    ``(0.85, 0.95)`` the gradient's fixed point misses it. Here each candidate ``(low, high)`` is
    scored on ``n = POLISH_FACTOR * batch`` draws with the *same* noise for every candidate (common
    random numbers: differences between candidates are not drowned by sampling noise), against
    ``4 n`` fresh target draws.

    The score is the Anderson-Darling distance (:func:`_anderson_darling`), not the W2 loss of the
    gradient phase: near scale 1 the accepted crops' density falls to 0 (a try of scale ``s > 3/4``
    fits only for ratios in ``[s, 1/s]``), so an upper bound between 0.95 and 1 moves well under 1%
    of the crops, and W2 weighs those few top ranks like any other rank. The CDF difference weighted
    by ``1 / (H (1 - H))`` counts a change of tail mass at its significance: for ``(0.1, 1.0)`` with
    six independent draws of the polish's samples, the upper bound minimising W2 ranged over
    ``[0.95, 1.0]`` (the W2 polish returned 0.947 on seed 1), the one minimising this distance over ``[0.98, 1.0]``.
    """
    count = POLISH_FACTOR * config.batch
    generator = torch.Generator().manual_seed(config.seed + 1)
    # Every source equally often, in the targets and in the candidates: random proportions would
    # differ between the two by a few percent, and near scale 1 a feature depends mostly on the source.
    pick = torch.arange(4 * count) % config.sources
    reference = _features_in_chunks(hidden, sources[pick], generator, columns).T.contiguous().sort(dim=1).values
    crop = next(op for op in ops if isinstance(op, RandomResizedCrop))
    others = [op for op in ops if op is not crop]
    images = sources[torch.arange(count) % config.sources]
    rounds = ((0.1, 0.2), (0.025, 0.05))
    # A bar over every candidate scored (two grids of 21 per round): this phase is most of a run's time.
    bar = _progress_bar(progress, 2 * 21 * len(rounds), "refinement")

    def loss(low: float, high: float) -> float:
        fixed = Range((low, high), domain=crop.scale.domain, learnable=True)
        with torch.no_grad():
            assert crop.scale.raw is not None and fixed.raw is not None
            crop.scale.raw.copy_(fixed.raw)
        # The same generator seed for every candidate: common random numbers.
        out = _features_in_chunks([crop, *others], images, torch.Generator().manual_seed(config.seed + 2), columns)
        if bar is not None:
            bar.update()
        return float(_anderson_darling(out, reference))

    # The statistic's expectation between two samples of one law is about (1/n + 1/N) per column.
    tolerance = PLATEAU * (1.0 / count + 1.0 / (4 * count)) * len(columns)
    low, high = bounds
    # Two rounds, the second on a 4x finer grid around the first's result.
    for low_reach, high_reach in rounds:
        # The lower bound first: it is sharply identified, while the flat score near scale 1 lets a
        # wrong lower bound pull the upper one (the two trade off through the bulk of the law).
        grid = torch.linspace(max(0.01, low - low_reach), min(low + low_reach, high - 0.02), 21).tolist()
        low = _plateau_choice(grid, [loss(lo, high) for lo in grid], tolerance, low)
        grid = torch.linspace(max(low + 0.02, high - high_reach), min(1.0, high + high_reach), 21).tolist()
        high = _plateau_choice(grid, [loss(low, h) for h in grid], tolerance, high)
    if bar is not None:
        bar.close()
    return [low, high]


def _progress_bar(show: bool, total: int | None, phase: str) -> Any:
    """A tqdm bar on stderr for one phase of the search, or ``None`` when not shown (or tqdm is not installed)."""
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # a development dependency: without it the search runs silently
        return None

    return tqdm(total=total, desc=f"search: {phase}", file=sys.stderr, leave=False)


def _plateau_choice(grid: list[float], scores: list[float], tolerance: float, current: float) -> float:
    """``current`` if the score does not tell it from the best grid point, else the middle of the best run.

    The run is the contiguous grid points around the best score whose scores are within
    ``tolerance`` of it. Near scale 1 the score is flat (the density of accepted crops vanishes
    there) and its noisy minimum wanders over the flat part: a value inside it (the gradient
    phase's, which is precise there) is kept, else the middle of the run is the steadier choice.
    Where the score is sharp the run is the minimum alone.

    Examples:
        >>> _plateau_choice([0.8, 0.9, 1.0], [5.0, 1.05, 1.0], 0.1, current=0.7)
        0.95
        >>> _plateau_choice([0.8, 0.9, 1.0], [5.0, 1.05, 1.0], 0.1, current=0.93)
        0.93
    """
    best = min(range(len(grid)), key=scores.__getitem__)
    first = last = best
    while first > 0 and scores[first - 1] <= scores[best] + tolerance:
        first -= 1
    while last < len(grid) - 1 and scores[last + 1] <= scores[best] + tolerance:
        last += 1
    if grid[first] <= current <= grid[last]:
        return current
    return 0.5 * (grid[first] + grid[last])


def search(config: SearchConfig, progress: bool = False) -> dict[str, object]:
    """Run the search; returns the result dictionary (see :func:`add_parser`) plus ``"history"``.

    ``history`` maps each learned parameter (``"scale"``, ``"degrees"``, ``"brightness"``,
    ``"contrast"``, ``"saturation"``) to a list of
    ``[low, high]`` per step; ``"learned"`` is the average over the last ``average`` fraction of
    the steps (iterate averaging removes most of the last steps' noise).

    Examples:
        >>> small = dict(steps=2, batch=8, targets=16, size=16, source_size=16, sources=2)
        >>> cfg = SearchConfig(target_scale=(0.3, 0.6), target_degrees=20, **small)
        >>> result = search(cfg)
        >>> sorted(result)
        ['history', 'learned', 'max_abs_error', 'seconds', 'target']
    """
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)  # every draw uses it: the global RNG is untouched
    texture = texture_bank(config.sources, config.source_size, config.period, generator)
    sources, columns = _select(config, texture, generator)

    colour = config.colour_targets()
    hidden = _pipeline(config, config.target_scale, config.target_degrees, colour, learnable=False)
    with torch.no_grad():
        chunks = []
        for begin in range(0, config.targets, 512):
            pick = torch.randint(0, config.sources, (min(512, config.targets - begin),), generator=generator)
            chunks.append(columns.of(_apply(hidden, sources[pick], generator)))
        target = torch.cat(chunks)

    ops = _pipeline(
        config,
        START_SCALE if config.target_scale is not None else None,
        START_DEGREES if config.target_degrees is not None else None,
        dict.fromkeys(colour, START_FACTOR),
        learnable=True,
    )
    model = nn.ModuleList(ops)
    check_gradient_path(model)
    # Raw parameters of angle ranges are in degrees, those of the scale range are logits: one
    # Adam step moves a parameter by about its learning rate, so angles get a larger one.
    groups = [
        {"params": [p for name, p in model.named_parameters() if p.requires_grad and "degrees" not in name], "lr": config.lr},
        {
            "params": [p for name, p in model.named_parameters() if p.requires_grad and "degrees" in name],
            "lr": config.lr * DEGREES_LR,
        },
    ]
    optimiser = torch.optim.Adam([g for g in groups if g["params"]], lr=config.lr, betas=ADAM_BETAS)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps)))
    if config.matcher == "mmd":
        matcher: QuantileMatcher | MMDMatcher = MMDMatcher(target, config.batch, generator)
    else:
        matcher = QuantileMatcher(target, config.batch, generator, unbiased=config.matcher == "quantile-unbiased")

    history: dict[str, list[list[float]]] = {name: [] for name in _learned(ops)}
    bar = _progress_bar(progress, config.steps, "gradient")
    for _ in range(config.steps):
        pick = torch.randint(0, config.sources, (config.batch,), generator=generator)
        loss = matcher(columns.of(_apply(ops, sources[pick], generator)))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            for name, bounds in _learned(ops).items():
                history[name].append(bounds)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()

    tail = max(1, int(round(config.average * config.steps)))
    learned = {name: torch.tensor(values[-tail:]).mean(0).tolist() for name, values in history.items()}
    if config.polish and config.target_scale is not None:
        # The crop's statistics, read on the grey, do not depend on the jitter: the polish leaves it out, and
        # warps the grey of the sources (the grey of a warp is the warp of the grey): a third of the work.
        learner, truth = ([op for op in pipeline if isinstance(op, GeometricTransform)] for pipeline in (ops, hidden))
        if columns.grey:
            sources = _grey(sources)
        scale_only = _Columns(columns.geometric)
        learned["scale"] = _polish_scale(learner, truth, learned["scale"], sources, scale_only, config, progress)
    target_values: dict[str, list[float]] = {}
    if config.target_scale is not None:
        target_values["scale"] = list(config.target_scale)
    if config.target_degrees is not None:
        target_values["degrees"] = [-float(config.target_degrees), float(config.target_degrees)]
    target_values.update({name: list(value) for name, value in colour.items()})
    error = max(abs(a - b) for name in target_values for a, b in zip(learned[name], target_values[name], strict=True))
    return {
        "target": target_values,
        "learned": {name: [round(v, 4) for v in values] for name, values in learned.items()},
        "max_abs_error": round(error, 4),
        "seconds": round(time.perf_counter() - start, 2),
        "history": history,
    }


def plot_history(result: dict[str, object], path: Path) -> None:
    """Write a PNG of the learned bounds over the steps, with the targets dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    history: dict[str, list[list[float]]] = result["history"]  # type: ignore[assignment]
    target: dict[str, list[float]] = result["target"]  # type: ignore[assignment]
    figure = Figure(figsize=(5.0 * len(history), 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    for index, (name, values) in enumerate(history.items()):
        axis = figure.add_subplot(1, len(history), index + 1)
        series = torch.tensor(values)
        for column, label in ((0, "low"), (1, "high")):
            line = axis.plot(series[:, column].tolist(), label=f"learned {label}")[0]
            axis.axhline(target[name][column], color=line.get_color(), linestyle="--", linewidth=1, label=f"target {label}")
        axis.set_xlabel("step")
        axis.set_ylabel(name)
        axis.legend(fontsize=7, loc="best")
    figure.savefig(path, dpi=110)


def _run(args: argparse.Namespace) -> int:
    colour = {f"target_{name}": getattr(args, f"target_{name}") for name in COLOUR_TARGETS}
    scale = args.target_scale
    if scale is None and args.target_degrees is None and all(value is None for value in colour.values()):
        scale = DEMO_SCALE
    try:
        config = SearchConfig(
            target_scale=tuple(scale) if scale is not None else None,  # type: ignore[arg-type]
            target_degrees=args.target_degrees,
            **{name: tuple(value) if value is not None else None for name, value in colour.items()},  # type: ignore[arg-type]
            seed=args.seed,
            steps=args.steps,
            batch=args.batch,
            matcher=args.matcher,
        )
    except (TypeError, ValueError) as error:
        print(f"diffaug search: error: {error}", file=sys.stderr)
        return 2
    result = search(config, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_history(result, out / "search.png")
    history = result.pop("history")
    (out / "history.json").write_text(json.dumps({"config": dataclasses.asdict(config), "history": history}))
    print(f"wrote {out / 'search.png'} and {out / 'history.json'}", file=sys.stderr)
    print(json.dumps(result))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``diffaug search`` on the CLI's subparsers."""
    p = sub.add_parser(
        "search",
        help="recover a hidden augmentation's ranges by gradient (density matching)",
        description=(
            "Make target images with a hidden RandomResizedCrop(scale=(LO, HI)) (and/or RandomRotation(D), or a "
            "ColorJitter of brightness, contrast and/or saturation factor ranges after the crop) from generated source "
            "images, then learn the ranges of a learnable copy, started from broad defaults (scale "
            f"{START_SCALE}, degrees +-{START_DEGREES:g}, colour factors {START_FACTOR}), by matching feature "
            "distributions. Writes a plot of the "
            "learned parameters over the steps to OUT/search.png; the last line printed is a JSON object "
            '{"target": ..., "learned": ..., "max_abs_error": E, "seconds": S}.'
        ),
    )
    p.add_argument(
        "--target-scale",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help=f"hidden crop scale range (default without any other target: {DEMO_SCALE[0]} {DEMO_SCALE[1]})",
    )
    p.add_argument("--target-degrees", type=float, default=None, metavar="D", help="hidden rotation range [-D, D], 0 < D <= 90")
    for name in COLOUR_TARGETS:
        p.add_argument(
            f"--target-{name}",
            type=float,
            nargs=2,
            metavar=("LO", "HI"),
            default=None,
            help=f"hidden ColorJitter {name} factor range, 0 < LO <= HI <= {MAX_FACTOR:g} (not with --target-degrees)",
        )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--steps", type=int, default=SearchConfig.steps, help=f"optimisation steps (default: {SearchConfig.steps})")
    p.add_argument("--batch", type=int, default=SearchConfig.batch, help=f"images per step (default: {SearchConfig.batch})")
    p.add_argument("--matcher", choices=MATCHERS, default="quantile", help="distribution distance (default: quantile)")
    p.add_argument("--out", default="diffaug-search", help="output folder for the plot (default: diffaug-search)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run)
    return p
