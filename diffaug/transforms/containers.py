"""Containers that choose per sample: ``RandomApply``, ``RandomChoice``, ``RandomOrder``.

torchvision v2's containers draw once per call: the whole batch is transformed or not, gets the
same transform, the same order. Here every sample draws its own choice in one batched call
(``applied`` ``(B,)``, ``choice`` ``(B,)``, ``order`` ``(B, n)``) and the container's params hold
those choices with the inner transforms' params, so a replay is pure.

How a container runs depends on its inner transforms' params (drawn for the input):

* all *geometric* (params with ``theta``): the container's params carry one ``theta`` per sample
  (the inner product or the identity, the chosen inner matrix, the product in the sample's
  order), so it is one warp alone and fuses with its neighbours inside :class:`diffaug.Compose`;
* all *colour* (params with a ``colour`` matrix) and fusable without moving a clamp: one colour
  matrix per sample, one colour pass alone, fused with the neighbouring colour steps in
  ``Compose``;
* otherwise (pixel operations, mixed kinds, clamps between colour steps): the inner transforms
  run on the whole batch and each sample takes its own result with ``torch.where``
  (``RandomOrder``: a loop over the order's *positions*, each running every inner transform on
  the batch, ``n * n`` inner calls for ``n`` transforms). ``docs/containers.md`` lists the costs.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import distributions
from diffaug import functional as daf
from diffaug.functional import _checks
from diffaug.functional import _constants as _const
from diffaug.transforms.base import RandomTransform, batch_shape, other_forms, param_dtype, replayable, stand_in, where_applied
from diffaug.transforms.compose import Compose, is_geometric

__all__ = ["ContainerParams", "RandomApply", "RandomChoice", "RandomOrder"]


@dataclasses.dataclass
class ContainerParams:
    """Per-call parameters of a container: the per-sample choices and the inner transforms' params.

    Attributes:
        steps: the params of each inner transform, in the order the transforms were given.
        in_size, size: input and output ``(H, W)``.
        applied: ``(B,)`` in ``[0, 1]``: ``RandomApply``'s draw (fractional only for a relaxed,
            learnable ``p``); ones for the other containers.
        channels: the input channels the params were drawn for.
        choice: ``(B,)`` long, ``RandomChoice``: the inner transform each sample got.
        order: ``(B, n)`` long, ``RandomOrder``: the inner transform at each position, per sample.
        matrix: ``(B, 3, 3)`` the per-sample product of the geometric inner steps (what moves
            targets), ``None`` when no inner step is geometric.
        theta: ``matrix[:, :2]`` when every inner step is geometric (the container fuses), else ``None``.
        colour: ``(B, C, C + 1)`` (or the mean form ``(B, C, 2 C + 1)``) when the container is one
            colour pass, else ``None``; ``clamp``, ``diagonal``, ``needs_float`` as in
            :class:`~diffaug.ColourParams` (``dtype`` is always the images').

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.RandomVerticalFlip(p=1.0)])
        >>> params = t.make_params(torch.rand(4, 3, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> params.choice.shape, params.theta.shape, len(params.steps)
        (torch.Size([4]), torch.Size([4, 2, 3]), 2)
    """

    steps: list[Any]
    in_size: tuple[int, int]
    size: tuple[int, int]
    applied: Tensor
    channels: int
    choice: Tensor | None = None
    order: Tensor | None = None
    matrix: Tensor | None = None
    theta: Tensor | None = None
    colour: Tensor | None = None
    dtype: torch.dtype | None = None
    clamp: bool = False
    diagonal: bool = False
    needs_float: bool = False


# A pipeline without overrides: its warp settings for a run of modules are the ones Compose would use.
_DEFAULT_SETTINGS = Compose()


def _check_transforms(transforms: object, owner: str) -> list[nn.Module]:
    """torchvision's checks (a non-empty sequence), and replayable modules: each sample replays its own draw."""
    if not isinstance(transforms, (Sequence, nn.ModuleList)) or isinstance(transforms, str):
        raise TypeError(f"{owner}: transforms must be a sequence of transforms, got {type(transforms).__name__}")
    items = list(transforms)
    if not items:
        raise ValueError(f"{owner}: transforms must hold at least one transform")
    for index, item in enumerate(items):
        if not isinstance(item, nn.Module) or not replayable(item):
            raise TypeError(
                f"{owner}: transforms[{index}] must be a diffaug transform (make_params and transform), got "
                f"{type(item).__name__}: a per-sample choice replays each inner transform's params"
            )
    return items


def _colour_of(params: Any) -> Tensor | None:
    return getattr(params, "colour", None) if not is_geometric(params) else None


def _pick(stacked: Tensor, index: Tensor) -> Tensor:
    """``stacked`` ``(B, n, ...)``: per sample ``b`` the entry ``index[b]`` -> ``(B, ...)``."""
    shape = (index.shape[0], 1) + (1,) * (stacked.ndim - 2)
    return torch.take_along_dim(stacked, index.reshape(shape), dim=1).squeeze(1)


def _select_images(candidates: Sequence[Tensor], index: Tensor, owner: str) -> Tensor:
    """Per sample, the candidate ``index[b]`` (one ``torch.where`` per candidate)."""
    first = candidates[0]
    for position, candidate in enumerate(candidates):
        if candidate.shape != first.shape or candidate.dtype != first.dtype:
            raise ValueError(
                f"{owner}: transforms[{position}] gives {tuple(candidate.shape)} {candidate.dtype} but transforms[0] gives "
                f"{tuple(first.shape)} {first.dtype}; a per-sample choice needs one output shape and dtype"
            )
    out = first
    for position, candidate in enumerate(candidates[1:], start=1):
        out = torch.where((index == position).reshape(-1, 1, 1, 1), candidate, out)
    return out


def _matrix_or_identity(params: Any, identity: Tensor) -> Tensor:
    return daf.to_square(params.theta) if is_geometric(params) else identity


class ContainerTransform(RandomTransform):
    """Base of the per-sample containers: inner transforms, warp settings for Compose, one ``transform``.

    Subclasses draw :class:`ContainerParams` (``make_params``) and define ``run_inner``, what
    they do when their inner transforms neither fuse into a warp nor into a colour pass. The
    warp settings (``mode``, ``padding_mode``, ``antialias``, ``fill``) are the ones
    :class:`diffaug.Compose` would give a run of the inner transforms.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomOrder([da.RandomRotation(10), da.RandomHorizontalFlip()])  # rotation: nearest
        >>> isinstance(t, da.ContainerTransform), t.mode, t.padding_mode
        (True, 'bilinear', 'zeros')
        >>> images = torch.rand(4, 3, 8, 8)
        >>> params = t.make_params(images)
        >>> torch.equal(t.transform(images, params), t.transform(images, params))  # pure: a replay
        True
    """

    def __init__(
        self, transforms: Sequence[nn.Module] | nn.ModuleList, p: float = 1.0, learnable: bool = False, temperature: float = 0.1
    ) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature)
        self.transforms = nn.ModuleList(_check_transforms(transforms, type(self).__name__))

    @abc.abstractmethod
    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ContainerParams:
        """Per-sample choices and inner params for ``images`` (only their shape, dtype and device are read)."""

    @abc.abstractmethod
    def run_inner(self, images: Tensor, params: ContainerParams) -> Tensor:
        """The inner transforms on checked ``(B, C, H, W)`` images, each sample taking its own result."""

    # The fused warp's settings, as Compose chooses them for the inner transforms (read by an outer Compose too).
    @property
    def mode(self) -> str:
        """Interpolation of the one warp: ``"nearest"`` if every inner step uses it, ``"bicubic"`` if any does."""
        return _DEFAULT_SETTINGS._run_settings(list(self.transforms))[0]

    @property
    def padding_mode(self) -> str:
        """Padding of the one warp: the first inner step's."""
        return _DEFAULT_SETTINGS._run_settings(list(self.transforms))[1]

    @property
    def antialias(self) -> bool:
        """Whether the one warp low-pass filters where it shrinks: when any inner step asks for it."""
        return _DEFAULT_SETTINGS._run_settings(list(self.transforms))[2]

    @property
    def fill(self) -> float | tuple[float, ...]:
        """Fill of the one warp: the first inner step's."""
        return _DEFAULT_SETTINGS._run_settings(list(self.transforms))[3]

    def transform(self, images: Tensor, params: ContainerParams) -> Tensor:
        """Apply ``params`` to ``images`` (pure): one warp, one colour pass, or the inner transforms selected per sample."""
        _checks.check_images(images)
        if not isinstance(params, ContainerParams):
            raise TypeError(f"params must be the ContainerParams of make_params, got {type(params).__name__}")
        if (out := other_forms(self.transform, images, params)) is not None:
            return out
        if params.applied.shape[0] != images.shape[0] or len(params.steps) != len(self.transforms):
            raise ValueError(
                f"params were drawn for {params.applied.shape[0]} samples and {len(params.steps)} transforms but images have "
                f"{images.shape[0]} samples and the container {len(self.transforms)} transforms; draw them with make_params"
            )
        if params.theta is not None:
            mode, padding, antialias, fill = _DEFAULT_SETTINGS._run_settings(list(self.transforms))
            _checks.check_finite(params.theta, "params.theta")
            return daf.warp(images, params.theta, params.size, mode, padding, antialias=antialias, fill=fill)
        if params.colour is not None:
            if params.needs_float and not images.dtype.is_floating_point:
                raise TypeError(f"an inner colour step (Normalize) needs floating point images, got {images.dtype}")
            return daf.apply_colour(images, params.colour, clamp=params.clamp)
        return self.run_inner(images, params)

    def _setup(self, images: Tensor) -> tuple[int, int, tuple[int, int], Tensor]:
        """``(B, C, (H, W), canvas)``: the canvas inner transforms draw on (no memory, the images' dtype and device)."""
        batch, height, width = batch_shape(images)
        return batch, images.shape[-3], (height, width), stand_in(images, batch, (height, width))

    def _checked_sizes(self, steps: list[Any], in_size: tuple[int, int], rule: str) -> None:
        for index, step in enumerate(steps):
            size = tuple(step.size) if is_geometric(step) else in_size
            if size != in_size:
                raise ValueError(f"{type(self).__name__}: transforms[{index}] changes the image size {in_size} -> {size}; {rule}")

    def _fused_colour(self, steps: list[Any], channels: int) -> list[Tensor] | None:
        """The inner colour matrices (one form) when every inner step is one colour matrix on ``channels`` that keeps
        them and the images' dtype, else ``None``."""
        matrices = [_colour_of(step) for step in steps]
        if any(m is None for m in matrices) or any(getattr(s, "dtype", None) is not None for s in steps):
            return None
        kept = [m for m in matrices if m is not None]
        if any(getattr(s, "channels", channels) != channels or m.shape[-2] != channels for s, m in zip(steps, kept, strict=True)):
            return None
        return daf.same_form(kept, channels)


def _colour_flags(steps: list[Any]) -> tuple[bool, bool]:
    """``(diagonal, needs_float)`` of a fused colour container: every step diagonal, any step needing floats."""
    return all(bool(getattr(s, "diagonal", False)) for s in steps), any(bool(getattr(s, "needs_float", False)) for s in steps)


class RandomApply(ContainerTransform):
    """Apply the transforms in sequence to each sample with probability ``p`` (``torchvision.transforms.v2.RandomApply``).

    Each sample draws its own Bernoulli(``p``) (torchvision draws one per call for the batch).
    The inner transforms must keep the image size: a batch whose applied samples are cropped
    and whose others are not cannot be one tensor (a ``ValueError`` at ``make_params``; put
    size-changing steps in :class:`diffaug.Compose` around the container).

    Args:
        transforms: a sequence (or ``nn.ModuleList``) of diffaug transforms, applied in order.
        p: probability that a sample gets the transforms.
        learnable: keyword-only: make ``p`` a parameter (relaxed Bernoulli in training mode:
            the matrices, or the images when the container does not fuse, are blended with the
            relaxed weight; hard in eval mode).
        temperature: keyword-only: of the relaxed draw.

    Raises:
        TypeError: ``transforms`` not a sequence, or an item that is not a diffaug transform.
        ValueError: no transforms; ``p`` outside ``[0, 1]``; inner transforms that change the size.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomApply([da.RandomRotation(30, "bilinear"), da.RandomHorizontalFlip()], p=0.5)
        >>> images = torch.rand(8, 3, 16, 16)
        >>> params = t.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> t.transform(images, params).shape, params.applied.tolist()
        (torch.Size([8, 3, 16, 16]), [1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    """

    def __init__(
        self,
        transforms: Sequence[nn.Module] | nn.ModuleList,
        p: float = 0.5,
        *,
        learnable: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(transforms, p=p, learnable=learnable, temperature=temperature)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ContainerParams:
        """Draw ``applied`` ``(B,)`` and the inner params in sequence (each on the size its input has)."""
        batch, channels, in_size, canvas = self._setup(images)
        dtype = param_dtype(images)
        applied = self.draw_applied(batch, generator, images.device, dtype)
        steps, size = [], in_size
        for step in self.transforms:
            drawn = step.make_params(canvas if size == in_size else stand_in(images, batch, size), generator=generator)  # type: ignore[operator]
            size = (int(drawn.size[0]), int(drawn.size[1])) if is_geometric(drawn) else size
            steps.append(drawn)
        if size != in_size:
            raise ValueError(
                f"RandomApply: the transforms change the image size {in_size} -> {size}; they must keep it (a sample "
                "left unapplied keeps the input's): put size-changing steps in Compose around the container"
            )
        identity = daf.identity(batch, images.device, dtype)
        thetas = [step.theta for step in steps if is_geometric(step)]
        params = ContainerParams(steps, in_size, in_size, applied, channels)
        if thetas:
            product = daf.pipeline_theta(thetas)
            params.matrix = daf.to_square(where_applied(applied, product, daf.to_theta(identity)))
            if all(is_geometric(step) for step in steps):
                params.theta = daf.to_theta(params.matrix)
                return params
        matrices = self._fused_colour(steps, channels)
        # One clamp, at the end: only the last inner step may clamp (a clamp before another matrix would move).
        if matrices is not None and not any(getattr(s, "clamp", False) for s in steps[:-1]):
            colour = matrices[0]
            for matrix in matrices[1:]:
                colour = daf.compose_colour(colour, matrix, channels)
            neutral = daf.same_form([daf.colour_identity(batch, channels, images.device, colour.dtype), colour], channels)[0]
            params.colour = where_applied(applied.to(colour.dtype), colour, neutral)
            params.clamp = bool(getattr(steps[-1], "clamp", False))
            params.diagonal, params.needs_float = _colour_flags(steps)
        return params

    def run_inner(self, images: Tensor, params: ContainerParams) -> Tensor:
        """The transforms in sequence on the batch, then per sample the result or the input (blended when relaxed)."""
        out = images
        for step, step_params in zip(self.transforms, params.steps, strict=True):
            out = step.transform(out, step_params)  # type: ignore[operator]
        if out.shape != images.shape or out.dtype != images.dtype:
            raise ValueError(
                f"RandomApply: the transforms give {tuple(out.shape)} {out.dtype} for {tuple(images.shape)} {images.dtype}; "
                "a per-sample choice needs the input's shape and dtype"
            )
        if images.dtype.is_floating_point:
            weight = params.applied.to(out.dtype).reshape(-1, 1, 1, 1)
            return torch.lerp(images, out, weight)  # exact at 0 and 1
        return torch.where(params.applied.reshape(-1, 1, 1, 1) > 0.5, out, images)


class RandomChoice(ContainerTransform):
    """Apply one of the transforms, chosen per sample (``torchvision.transforms.v2.RandomChoice``).

    Each sample draws its own transform with probabilities ``p`` (torchvision draws one per call).
    Every inner transform must give the same output size (each is drawn for the input).

    Args:
        transforms: a sequence of diffaug transforms.
        p: the probability of each transform (normalised to sum 1, as torchvision); ``None``: uniform.

    Raises:
        TypeError: ``transforms`` not a sequence, an item that is not a diffaug transform.
        ValueError: no transforms, ``p`` of another length, negative, or summing to 0; inner
            transforms with different output sizes.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomChoice([da.RandomHorizontalFlip(p=1.0), da.RandomVerticalFlip(p=1.0)], p=[3, 1])
        >>> t.p
        [0.75, 0.25]
        >>> params = t.make_params(torch.rand(6, 3, 8, 8), generator=torch.Generator().manual_seed(0))
        >>> params.choice.tolist()  # one draw per sample
        [0, 1, 0, 0, 0, 0]
    """

    def __init__(self, transforms: Sequence[nn.Module], p: Sequence[float] | None = None) -> None:
        super().__init__(transforms)
        count = len(self.transforms)
        if p is None:
            weights = [1.0] * count
        elif not isinstance(p, Sequence) or isinstance(p, str) or len(p) != count:
            raise ValueError(f"p must hold one probability per transform ({count}), got {p!r}")
        else:
            weights = [float(w) for w in p]
        if any(not w >= 0 for w in weights) or not sum(weights) > 0:
            raise ValueError(f"p must be non-negative and sum to more than 0, got {p!r}")
        total = sum(weights)
        self.weights = [w / total for w in weights]

    @property
    def p(self) -> list[float]:  # type: ignore[override]
        """The probability of each transform (torchvision's normalised ``p``)."""
        return list(self.weights)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ContainerParams:
        """Draw ``choice`` ``(B,)`` and every inner transform's params on the input."""
        batch, channels, in_size, canvas = self._setup(images)
        dtype = param_dtype(images)
        noise = distributions.uniform((batch,), generator, images.device, dtype)
        cumulative = [sum(self.weights[: k + 1]) for k in range(len(self.weights) - 1)]
        bounds = _const.memo(("choice_bounds", tuple(cumulative)), noise, lambda: noise.new_tensor(cumulative))
        choice = (noise[:, None] >= bounds).sum(-1) if cumulative else torch.zeros_like(noise, dtype=torch.long)
        steps = [step.make_params(canvas, generator=generator) for step in self.transforms]  # type: ignore[operator]
        sizes = {tuple(s.size) if is_geometric(s) else in_size for s in steps}
        if len(sizes) > 1:
            raise ValueError(f"RandomChoice: the transforms give different output sizes {sorted(sizes)}; one batch needs one")
        size = sizes.pop()
        params = ContainerParams(steps, in_size, size, torch.ones_like(noise), channels, choice=choice)  # type: ignore[arg-type]
        if any(is_geometric(s) for s in steps):
            identity = daf.identity(batch, images.device, dtype)
            params.matrix = _pick(torch.stack([_matrix_or_identity(s, identity) for s in steps], 1), choice)
            if all(is_geometric(s) for s in steps):
                params.theta = daf.to_theta(params.matrix)
                return params
        matrices = self._fused_colour(steps, channels)
        clamps = {bool(getattr(s, "clamp", False)) for s in steps}
        if matrices is not None and len(clamps) == 1:  # a clamp for every sample or for none
            params.colour = _pick(torch.stack(matrices, 1), choice)
            params.clamp = clamps.pop()
            params.diagonal, params.needs_float = _colour_flags(steps)
        return params

    def run_inner(self, images: Tensor, params: ContainerParams) -> Tensor:
        """Every transform on the batch (``n`` calls), each sample taking its chosen one's result."""
        assert params.choice is not None
        outputs = [step.transform(images, s) for step, s in zip(self.transforms, params.steps, strict=True)]  # type: ignore[operator]
        return _select_images(outputs, params.choice, "RandomChoice")


class RandomOrder(ContainerTransform):
    """Apply all transforms, in an order drawn per sample (``torchvision.transforms.v2.RandomOrder``).

    Each sample draws its own permutation, uniformly (torchvision draws one per call). Every
    inner transform is drawn for the input and must keep its size (and channels).

    Args:
        transforms: a sequence of diffaug transforms.

    Raises:
        TypeError: ``transforms`` not a sequence, an item that is not a diffaug transform.
        ValueError: no transforms; an inner transform that changes the size.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomOrder([da.RandomRotation((90, 90), "bilinear"), da.RandomHorizontalFlip(p=1.0)])
        >>> params = t.make_params(torch.rand(4, 3, 8, 8), generator=torch.Generator().manual_seed(1))
        >>> params.order.tolist()  # one permutation per sample
        [[1, 0], [0, 1], [0, 1], [0, 1]]
        >>> torch.equal(params.theta[0], params.theta[1])  # flip then rotate, rotate then flip
        False
    """

    def __init__(self, transforms: Sequence[nn.Module]) -> None:
        super().__init__(transforms)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> ContainerParams:
        """Draw ``order`` ``(B, n)`` (a uniform permutation per sample) and every inner transform's params on the input."""
        batch, channels, in_size, canvas = self._setup(images)
        dtype = param_dtype(images)
        count = len(self.transforms)
        order = torch.argsort(distributions.uniform((batch, count), generator, images.device, dtype), dim=1)
        steps = [step.make_params(canvas, generator=generator) for step in self.transforms]  # type: ignore[operator]
        self._checked_sizes(steps, in_size, "RandomOrder's transforms must keep it (each is drawn for the input)")
        applied = torch.ones(batch, device=images.device, dtype=dtype)
        params = ContainerParams(steps, in_size, in_size, applied, channels, order=order)
        if any(is_geometric(s) for s in steps):
            identity = daf.identity(batch, images.device, dtype)
            stacked = torch.stack([_matrix_or_identity(s, identity) for s in steps], 1)
            params.matrix = _in_order(stacked, order, lambda a, b: a @ b)
            if all(is_geometric(s) for s in steps):
                params.theta = daf.to_theta(params.matrix)
                return params
        matrices = self._fused_colour(steps, channels)
        # Any order must be one pass with a clamp at the end: no inner step may clamp (unless it is the only one).
        if matrices is not None and (count == 1 or not any(getattr(s, "clamp", False) for s in steps)):
            params.colour = _in_order(torch.stack(matrices, 1), order, lambda a, b: daf.compose_colour(a, b, channels))
            params.clamp = bool(getattr(steps[0], "clamp", False)) and count == 1
            params.diagonal, params.needs_float = _colour_flags(steps)
        return params

    def run_inner(self, images: Tensor, params: ContainerParams) -> Tensor:
        """A loop over the order's positions: every transform on the batch, each sample taking the one at that position."""
        assert params.order is not None
        out = images
        for position in range(params.order.shape[1]):
            outputs = [step.transform(out, s) for step, s in zip(self.transforms, params.steps, strict=True)]  # type: ignore[operator]
            out = _select_images(outputs, params.order[:, position], "RandomOrder")
        return out


def _in_order(stacked: Tensor, order: Tensor, then: Any) -> Tensor:
    """``stacked`` ``(B, n, ...)`` matrices multiplied in each sample's order (pipeline order: first applied first)."""
    out = _pick(stacked, order[:, 0])
    for position in range(1, order.shape[1]):
        out = then(out, _pick(stacked, order[:, position]))
    return out
