"""A learnable augmentation policy in the shape of Faster AutoAugment, over geometric, colour and pixel operations.

A :class:`Policy` holds ``K`` sub-policies; a sub-policy is a sequence of ``depth`` stages; a
stage chooses one of several candidate operations. Every (sub-policy, stage, operation) has its
own learnable magnitude ranges and application probability (the transforms' ``learnable=True``),
and every stage has learnable choice logits. A candidate is one of three kinds
(:func:`op_kind`): a geometric transform (its params carry a ``theta``), a colour transform
(one colour matrix per sample) or a pixel operation of :mod:`diffaug.transforms.pixel`. Per call:

* each sample gets a sub-policy, uniformly at random (a one-hot mask, no loop);
* each stage draws its operation per sample with a Gumbel-softmax
  (:func:`diffaug.distributions.relaxed_one_hot`): hard (exactly one op, straight-through
  gradient) by default, or a soft mixture with ``hard=False``; ``w`` below is that draw;
* **geometry first, in one warp**: each stage's matrix is ``sum_k w_k M_k``, a non-geometric
  candidate contributing the identity; the stages' matrices are multiplied and the images are
  resampled once, to ``size``;
* **then the photometric part, stage by stage**, on the warped images ``x``:
  ``apply_colour(x, sum_k w_k C_k) + sum_k w_k P_k(x)``, where a colour candidate's ``C_k`` is
  its colour matrix, a geometric candidate's the identity (the warp already happened) and a
  pixel candidate's zero, while ``P_k(x)`` is a pixel candidate's output (zero for the others):
  one colour pass per stage plus one pass per pixel candidate. This is the mixture
  ``sum_k w_k op_k(x)``; with hard weights every term but one is multiplied by an exact zero,
  so the forward pass is exactly the chosen op, while the weights (and the logits behind them)
  get the straight-through gradient of every candidate's output. A stage clamps to ``[0, 1]``
  when a colour candidate clamps (``ColorJitter``).

Where this differs from applying each sample's chosen ops strictly in sequence: the geometric
ops are hoisted ahead of the photometric ones. A geometric op commutes with a per-pixel op
except at the fill (padding shows ``fill`` where a sequence would have shown the colour of
``fill`` after the colour op) and in interpolation rounding (pixel ops such as posterize or
equalize see interpolated values instead of producing values that are then interpolated); and
contrast, autocontrast and equalize read statistics of the warped image rather than of the
image before the warp. Every candidate is evaluated on the whole batch (each pixel candidate
of every sub-policy once per stage), so a small candidate set is cheaper.

Pixel operations that have no useful derivative (posterize, autocontrast, equalize) pass the
output's gradient straight through to their input (:func:`diffaug.distributions.straight_through`);
solarize's learnable threshold gets a sigmoid surrogate's gradient; sharpness is differentiable
in its factor. Photometric candidates need floating point images.

:meth:`Policy.export` returns a copy without parameters for ordinary training: by default it
draws each sample's operation from the learned probabilities (RandAugment-like), with
``mode="argmax"`` it keeps each stage's most likely op, and with ``mode="compose"`` it is built
from :class:`diffaug.Compose` and :class:`diffaug.RandomChoice`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffaug import distributions
from diffaug import functional as daf
from diffaug.distributions import Range
from diffaug.functional import _checks
from diffaug.functional.geometry import pipeline_theta
from diffaug.search._fuse import check_gradient_path
from diffaug.transforms import pixel as pixel_transforms
from diffaug.transforms.base import (
    GeometricTransform,
    Params,
    RandomTransform,
    batch_shape,
    other_forms,
    param_dtype,
    stand_in,
)
from diffaug.transforms.colour import ColourTransform

__all__ = ["Policy", "LearnablePolicyParams", "Stage", "all_ops", "default_ops", "freeze", "op_kind"]

OpFactory = Callable[[], RandomTransform]

GEOMETRIC, COLOUR, PIXEL = "geometric", "colour", "pixel"
_EXPORT_MODES = ("sample", "argmax", "compose")


def op_kind(op: object, name: str = "op") -> str:
    """The kind of a candidate operation: ``"geometric"``, ``"colour"`` or ``"pixel"``.

    Geometric: a :class:`~diffaug.GeometricTransform`. Colour: a :class:`~diffaug.ColourTransform`
    whose params are one colour matrix (``ColorJitter`` and ``RandomPhotometricDistort`` need
    ``fused=True``). Pixel: a transform of :mod:`diffaug.transforms.pixel` (posterize, solarize,
    sharpness, autocontrast, equalize, blur, noise).

    Raises:
        TypeError: anything else, naming ``name``. ValueError: a colour transform in its exact,
            non-matrix mode.

    Examples:
        >>> import diffaug as da
        >>> op_kind(da.RandomRotation(10)), op_kind(da.RandomInvert()), op_kind(da.RandomEqualize())
        ('geometric', 'colour', 'pixel')
    """
    if isinstance(op, GeometricTransform):
        return GEOMETRIC
    if isinstance(op, ColourTransform):
        if getattr(op, "fused", True) is False:
            raise ValueError(
                f"{name}: {type(op).__name__} in its exact mode is a chain of passes, not one colour matrix; "
                f"use {type(op).__name__}(..., fused=True) in a policy"
            )
        return COLOUR
    if isinstance(op, RandomTransform) and type(op).__module__ == pixel_transforms.__name__:
        return PIXEL
    raise TypeError(
        f"{name} must be a diffaug geometric, colour or pixel transform (GeometricTransform, ColourTransform, or one "
        f"of diffaug.transforms.pixel), got {type(op).__name__}"
    )


def _affine_only(still: Sequence[str] = (), **kwargs: Any) -> OpFactory:
    """A learnable ``RandomAffine`` that moves only along the given ranges: no rotation, and no ``still`` axes."""
    from diffaug.transforms.geometric import RandomAffine

    def build() -> RandomTransform:
        op = RandomAffine(degrees=0.0, interpolation="bilinear", p=0.5, learnable=True, **kwargs)
        op.degrees = Range((0.0, 0.0), domain=(-math.inf, math.inf))
        for axis in still:
            setattr(op, axis, None)  # the other axis of a TranslateX or ShearY op: not drawn, not learned
        return op

    return build


def _bounds(rng: Range) -> tuple[float, float]:
    low, high = (float(v.detach()) for v in rng.bounds())
    return low, high


def default_ops() -> dict[str, OpFactory]:
    """The default candidate operations, geometric only, by name: each call builds a fresh learnable transform.

    ``zoom`` (:class:`~diffaug.ZoomCrop`, zoom in ``[1.05, 1.5]``: not from 1, the identity warp,
    where bilinear gradients are one-sided), ``rotate`` (+-20 degrees),
    ``translate`` (10 % of each side), ``shear`` (+-10 degrees) and ``hflip``; all with a
    learnable probability starting at 0.5. Output sizes are irrelevant here: a policy warps once,
    to its own size. A geometric-only policy is one warp (it fuses inside :class:`diffaug.Compose`);
    :func:`all_ops` adds colour and pixel operations.

    Examples:
        >>> sorted(default_ops())
        ['hflip', 'rotate', 'shear', 'translate', 'zoom']
    """
    from diffaug.transforms.crop import ZoomCrop
    from diffaug.transforms.geometric import RandomHorizontalFlip, RandomRotation

    return {
        "zoom": lambda: ZoomCrop(1, zoom=(1.05, 1.5), p=0.5, learnable=True),
        "rotate": lambda: RandomRotation(20.0, interpolation="bilinear", p=0.5, learnable=True),
        "translate": _affine_only(translate=(0.1, 0.1)),
        "shear": _affine_only(shear=10.0),
        "hflip": lambda: RandomHorizontalFlip(p=0.5, learnable=True),
    }


def all_ops() -> dict[str, OpFactory]:
    """Candidate operations over the whole operation set, with torchvision's RandAugment names.

    Geometric: ``ShearX``/``ShearY`` (+-15 degrees), ``TranslateX``/``TranslateY`` (15 % of the
    side), ``Rotate`` (+-30 degrees), all with learnable ranges. Colour (one matrix each, learnable
    factor ranges): ``Brightness``, ``Color`` (saturation), ``Contrast``, factors in ``[0.5, 1.5]``,
    and ``Invert``. Pixel: ``Sharpness`` (learnable factor, starting at 1.5), ``Posterize``
    (4 bits), ``Solarize`` (learnable threshold, starting at 0.5), ``AutoContrast``,
    ``Equalize`` (straight-through). Every op starts with a learnable probability of 0.5.

    Examples:
        >>> ops = all_ops()
        >>> len(ops), sorted({op_kind(build()) for build in ops.values()})
        (14, ['colour', 'geometric', 'pixel'])
    """
    import diffaug as da

    def jitter(**kwargs: float) -> OpFactory:
        return lambda: da.ColorJitter(**kwargs, p=0.5, fused=True, learnable=True)  # type: ignore[arg-type]

    return {
        "ShearX": _affine_only(("shear_y",), shear=(-15.0, 15.0, 0.0, 0.0)),
        "ShearY": _affine_only(("shear_x",), shear=(0.0, 0.0, -15.0, 15.0)),
        "TranslateX": _affine_only(("translate_y",), translate=(0.15, 0.0)),
        "TranslateY": _affine_only(("translate_x",), translate=(0.0, 0.15)),
        "Rotate": lambda: da.RandomRotation(30.0, interpolation="bilinear", p=0.5, learnable=True),
        "Brightness": jitter(brightness=0.5),
        "Color": jitter(saturation=0.5),
        "Contrast": jitter(contrast=0.5),
        "Sharpness": lambda: da.RandomAdjustSharpness(1.5, p=0.5, learnable=True),
        "Posterize": lambda: da.RandomPosterize(4, p=0.5, learnable=True),
        "Solarize": lambda: da.RandomSolarize(0.5, p=0.5, learnable=True),
        "AutoContrast": lambda: da.RandomAutocontrast(p=0.5, learnable=True),
        "Equalize": lambda: da.RandomEqualize(p=0.5, learnable=True),
        "Invert": lambda: da.RandomInvert(p=0.5, learnable=True),
    }


def freeze(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with every learnable range and probability replaced by its current value.

    The copy has no parameters from :class:`~diffaug.distributions.Range` or learnable ``p``: it
    samples exactly as the original does now, for use in ordinary training.

    Examples:
        >>> import diffaug as da
        >>> frozen = freeze(da.RandomResizedCrop(8, learnable=True, p=0.5))
        >>> len(list(frozen.parameters())), round(frozen.p, 3)
        (0, 0.5)
    """
    frozen = copy.deepcopy(module)
    for sub in list(frozen.modules()):
        for name, child in list(sub.named_children()):
            if isinstance(child, Range) and child.raw is not None:
                low, high = _bounds(child)
                setattr(sub, name, Range((low, min(max(high, low), child.domain[1])), domain=child.domain, log=child.log))
        if isinstance(sub, RandomTransform) and sub.p_logit is not None:
            sub.p_fixed = float(torch.sigmoid(sub.p_logit.detach()))
            sub.p_logit = None
    return frozen


@dataclasses.dataclass
class StageDraw:
    """One stage's draw: the choice weights and every candidate's params.

    Attributes:
        weights: ``(B, n)`` per-sample choice weights (one-hot when the stage is hard).
        steps: the params of each candidate, drawn on the input canvas (geometric candidates) or
            on the output canvas (the others).
    """

    weights: Tensor
    steps: list[Any]


class Stage(nn.Module):
    """One stage of a sub-policy: a learnable choice among candidate operations of any kind (:func:`op_kind`).

    Args:
        ops: the candidate transforms (at least one).
        temperature: Gumbel-softmax temperature, ``> 0``.
        hard: one operation per sample in the forward pass (straight-through gradient); with
            ``False`` the operations are mixed with the relaxed weights in training mode (in eval
            mode the choice is hard either way).

    Raises:
        ValueError: no ops, ``temperature <= 0``. TypeError: an op that is not a diffaug
            geometric, colour or pixel transform.

    Examples:
        >>> import torch, diffaug as da
        >>> stage = Stage([da.RandomRotation(10, "bilinear", learnable=True), da.RandomInvert(p=1.0)])
        >>> stage.kinds, stage.probabilities().tolist()
        (('geometric', 'colour'), [0.5, 0.5])
        >>> stage.matrix(torch.zeros(4, 3, 8, 8)).shape  # the geometric part; the invert counts as the identity
        torch.Size([4, 3, 3])
    """

    def __init__(self, ops: Sequence[RandomTransform], temperature: float = 0.5, hard: bool = True) -> None:
        super().__init__()
        if isinstance(ops, (str, nn.Module)) or not isinstance(ops, Sequence):
            raise TypeError(f"ops must be a sequence of diffaug transforms, got {type(ops).__name__}")
        if len(ops) == 0:
            raise ValueError("a stage needs at least one candidate operation, got none")
        self.kinds = tuple(op_kind(op, f"ops[{index}]") for index, op in enumerate(ops))
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.ops = nn.ModuleList(ops)
        self.logits: Tensor | None = nn.Parameter(torch.zeros(len(ops))) if len(ops) > 1 else None
        self.temperature = float(temperature)
        self.hard = bool(hard)

    def weights(self, batch: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``(B, n_ops)`` per-sample choice weights (one-hot when ``hard`` or in eval mode)."""
        if self.logits is None:
            return torch.ones(batch, 1, device=device, dtype=dtype)
        noise = distributions.uniform((batch, len(self.ops)), generator, device, dtype)
        # In eval mode the choice is hard, as every learnable probability's draw is (RandomTransform).
        hard = self.hard or not self.training
        return distributions.relaxed_one_hot(self.logits.to(device=device, dtype=dtype), noise, self.temperature, hard)

    def draw(self, canvas: Tensor, out_canvas: Tensor, generator: torch.Generator | None = None) -> StageDraw:
        """Every candidate's params (geometric ones on ``canvas``, the others on ``out_canvas``) and the weights."""
        ops: list[RandomTransform] = list(self.ops)  # type: ignore[arg-type]
        steps = [
            op.make_params(canvas if kind == GEOMETRIC else out_canvas, generator=generator)
            for op, kind in zip(ops, self.kinds, strict=True)
        ]
        return StageDraw(self.weights(canvas.shape[0], generator, canvas.device, param_dtype(canvas)), steps)

    def matrix(self, canvas: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, 3, 3)``: each sample's chosen (or mixed) operation matrix on ``canvas``'s size (non-geometric ops: identity)."""
        drawn = self.draw(canvas, canvas, generator)
        return mix_warps(drawn.weights, _thetas(drawn.steps, self.kinds))

    def probabilities(self) -> Tensor:
        """``softmax(logits)``: the probability of choosing each operation."""
        if self.logits is None:
            return torch.ones(1)
        return torch.softmax(self.logits.detach().float(), dim=0)


def mix_warps(weights: Tensor, thetas: Sequence[Tensor | None]) -> Tensor:
    """``(B, 3, 3)``: ``sum_k weights[:, k] M_k``, ``M_k`` the square ``thetas[k]`` ``(B, 2, 3)``, the identity for ``None``.

    Examples:
        >>> import torch
        >>> flip = torch.tensor([[[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> mix_warps(torch.tensor([[0.0, 1.0]]), [flip, None])[0, 0].tolist()  # the second (identity) chosen
        [1.0, 0.0, 0.0]
    """
    batch, dtype = weights.shape[0], weights.dtype
    identity = daf.identity(batch, weights.device, dtype)
    mats = torch.stack([identity if t is None else daf.to_square(t).to(dtype) for t in thetas], dim=1)
    return torch.einsum("bk,bkij->bij", weights, mats)


def mix_colours(weights: Tensor, colours: Sequence[Tensor | None], kinds: Sequence[str], channels: int) -> Tensor:
    """``(B, C, C + 1)`` (or the mean form): ``sum_k weights[:, k] C_k``.

    ``C_k`` is ``colours[k]`` for a colour candidate, the identity for a geometric one (already
    applied by the warp) and zero for a pixel one (whose output is added separately). Colour is
    linear in its matrix, so applying this matrix is the weighted sum of the candidates' outputs.

    Examples:
        >>> import torch, diffaug as da
        >>> invert = da.functional.invert_matrix(1, 1)
        >>> mix_colours(torch.tensor([[0.25, 0.75, 0.0]]), [invert, None, None], ["colour", "geometric", "pixel"], 1)
        tensor([[[0.5000, 0.2500]]])
    """
    batch, dtype = weights.shape[0], weights.dtype
    identity = daf.colour_identity(batch, channels, weights.device, dtype)
    # A pixel candidate's matrix is zero: its share of the output is its own output, added by the caller.
    matrices = [
        c.to(dtype) if k == COLOUR and c is not None else identity if k == GEOMETRIC else torch.zeros_like(identity)
        for c, k in zip(colours, kinds, strict=True)
    ]
    return torch.einsum("bk,bkij->bij", weights, torch.stack(daf.same_form(matrices, channels), dim=1))


@dataclasses.dataclass
class LearnablePolicyParams:
    """Per-call parameters of a :class:`Policy`.

    Attributes:
        theta: ``(B, 2, 3)`` the one warp when every candidate is geometric (the policy then fuses
            inside :class:`diffaug.Compose`), else ``None`` (Compose runs the policy as a step).
        matrix: ``(B, 3, 3)`` the one warp (output normalised -> input normalised); targets follow it.
        size, in_size: output and input ``(h, w)``.
        applied: ``(B,)`` ones.
        weights: per stage position, ``(B, K n)``: each sample's weight of each (sub-policy, op),
            sub-policies outer (zero outside the sample's sub-policy).
        steps: per stage position, the params of each (sub-policy, op), in the same order.
        colours: per stage position, ``(B, C, C + 1)`` or the mean form: the mixed colour matrix
            (:func:`mix_colours`), ``None`` without photometric candidates. (Not ``colour``: that
            name marks a one-pass colour step for :class:`diffaug.Compose`.)
        clamps: per stage position, whether the stage clamps to ``[0, 1]``.

    Examples:
        >>> import torch
        >>> params = Policy(all_ops(), num_subpolicies=2, depth=1).make_params(torch.rand(4, 3, 8, 8))
        >>> params.theta is None, params.matrix.shape, params.weights[0].shape
        (True, torch.Size([4, 3, 3]), torch.Size([4, 28]))
    """

    theta: Tensor | None
    matrix: Tensor
    size: tuple[int, int]
    in_size: tuple[int, int]
    applied: Tensor
    weights: list[Tensor]
    steps: list[list[Any]]
    colours: list[Tensor | None]
    clamps: list[bool]
    batch_index: Tensor | None = None


class Policy(GeometricTransform):
    """Faster-AutoAugment-shaped learnable policy over geometric, colour and pixel operations.

    The data flow (one warp, then one colour pass and the pixel candidates per stage) and where
    it differs from applying the ops in sequence are in the module's docstring.

    Args:
        ops: candidate operations as ``{name: factory}`` (each factory builds a fresh transform,
            learnable or not; geometric, colour or pixel, see :func:`op_kind`); default
            :func:`default_ops` (geometric), :func:`all_ops` for the whole operation set.
        num_subpolicies: ``K >= 1`` sub-policies.
        depth: stages per sub-policy, ``>= 1``.
        size: output ``(h, w)``; ``None`` keeps the input size.
        temperature: Gumbel-softmax temperature of the operation choice, ``> 0``.
        hard: one operation per sample per stage (straight-through); ``False`` mixes them in
            training mode (eval mode chooses one either way).
        interpolation, padding_mode: of the single warp (see
            :class:`~diffaug.transforms.base.GeometricTransform`); nearest is refused when anything
            is learnable (no gradient reaches the warp parameters).

    Raises:
        ValueError: empty ``ops``, ``num_subpolicies`` or ``depth`` below 1, ``temperature <= 0``,
            nearest sampling with learnable operations, a colour op in its exact mode. TypeError:
            ``ops`` not a dict, a factory that does not build a diffaug geometric, colour or pixel
            transform; at call time, integer images with photometric candidates.

    Shapes:
        ``(B, C, H, W) -> (B, C, h, w)``; ``(C, H, W) -> (C, h, w)``.

    Examples:
        >>> import torch
        >>> policy = Policy(all_ops(), num_subpolicies=2, depth=2)
        >>> images = torch.rand(4, 3, 16, 16)
        >>> out = policy(images)
        >>> out.mean().backward()
        >>> out.shape, policy.subpolicies[0][0].logits.grad.shape
        (torch.Size([4, 3, 16, 16]), torch.Size([14]))
        >>> plain = policy.export()  # each sample draws its ops from the learned probabilities
        >>> len(list(plain.parameters())), plain(images).shape
        (0, torch.Size([4, 3, 16, 16]))
    """

    def __init__(
        self,
        ops: dict[str, OpFactory] | None = None,
        num_subpolicies: int = 4,
        depth: int = 2,
        size: int | Sequence[int] | None = None,
        temperature: float = 0.5,
        hard: bool = True,
        interpolation: object = "bilinear",
        padding_mode: str = "constant",
    ) -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, antialias=False, temperature=temperature)
        ops = default_ops() if ops is None else ops
        if not isinstance(ops, dict):
            raise TypeError(f"ops must be a dict {{name: factory}}, got {type(ops).__name__}")
        if len(ops) == 0:
            raise ValueError("empty policy: ops must name at least one operation")
        for name, factory in ops.items():
            if not callable(factory):
                raise TypeError(f"ops[{name!r}] must be a factory (a callable that builds a transform), got {factory!r}")
        for name, value in (("num_subpolicies", num_subpolicies), ("depth", depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"empty policy: {name} must be an int >= 1, got {value!r}")
        self.names = list(ops)
        self.size = None if size is None else _checks.check_size(size)
        self.subpolicies = nn.ModuleList(
            nn.ModuleList(Stage(_build(ops), temperature, hard) for _ in range(depth)) for _ in range(num_subpolicies)
        )
        check_gradient_path(self)

    def stages(self) -> list[list[Stage]]:
        """The stages, per sub-policy."""
        return [list(stages) for stages in self.subpolicies]  # type: ignore[call-overload]

    def kinds(self) -> set[str]:
        """The kinds of operation among the candidates."""
        return {kind for stages in self.stages() for stage in stages for kind in stage.kinds}

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> LearnablePolicyParams:
        """Draw every candidate's params, each stage's choice and each sample's sub-policy; mix the warp and colours.

        Only the images' shape, dtype and device are read. Geometric candidates draw on the input
        size, the others on the output size.
        """
        batch, height, width = batch_shape(images)
        dtype = param_dtype(images)
        size = self.size or (height, width)
        canvas, out_canvas = stand_in(images, batch, (height, width)), stand_in(images, batch, size)
        stages = self.stages()
        draws = [[stage.draw(canvas, out_canvas, generator) for stage in row] for row in stages]
        # Each sample follows one sub-policy, chosen uniformly: a one-hot selection, folded into the stage weights.
        pick = distributions.integers(len(stages), (batch,), generator, images.device)
        # A comparison, not F.one_hot: one_hot reads the indices to check their range (a host read).
        chosen = (pick.unsqueeze(-1) == torch.arange(len(stages), device=pick.device)).to(dtype)
        weights: list[Tensor] = []
        steps: list[list[Any]] = []
        thetas: list[Tensor] = []
        colours: list[Tensor | None] = []
        clamps: list[bool] = []
        for position in range(len(stages[0])):
            column = [(row[position], draws[k][position]) for k, row in enumerate(stages)]
            w = torch.cat([chosen[:, k : k + 1] * drawn.weights.to(dtype) for k, (_, drawn) in enumerate(column)], dim=1)
            step = [s for _, drawn in column for s in drawn.steps]
            kind = [kd for stage, _ in column for kd in stage.kinds]
            weights.append(w)
            steps.append(step)
            thetas.append(daf.to_theta(mix_warps(w, _thetas(step, kind))))
            colour, clamp = None, False
            if kind.count(GEOMETRIC) < len(kind):
                _check_colour_steps(step, kind, images.shape[-3])
                colour = mix_colours(w, [getattr(s, "colour", None) for s in step], kind, images.shape[-3])
                clamp = any(bool(getattr(s, "clamp", False)) for s, kd in zip(step, kind, strict=True) if kd == COLOUR)
            colours.append(colour)
            clamps.append(clamp)
        theta = pipeline_theta(thetas)
        only_geometric = all(c is None for c in colours)
        applied = torch.ones(batch, device=images.device, dtype=dtype)
        return LearnablePolicyParams(
            theta if only_geometric else None,
            daf.to_square(theta),
            size,
            (height, width),
            applied,
            weights,
            steps,
            colours,
            clamps,
        )

    def transform(self, images: Tensor, params: LearnablePolicyParams) -> Tensor:  # type: ignore[override]
        """Apply ``params`` (pure): one warp, then each stage's colour pass and pixel candidates."""
        _checks.check_images(images)
        if not isinstance(params, LearnablePolicyParams):
            raise TypeError(f"params must be the LearnablePolicyParams of this policy's make_params, got {type(params).__name__}")
        if (out := other_forms(self.transform, images, params)) is not None:
            return out  # tv_tensors.Image in, Image out; a single image as a batch of one
        photometric = any(c is not None for c in params.colours)
        if photometric and not images.is_floating_point():
            raise TypeError(f"a policy with colour or pixel candidates needs floating point images, got {images.dtype}")
        warp = Params(daf.to_theta(params.matrix), params.size, params.in_size, params.applied)
        out = images
        if GEOMETRIC in self.kinds() or tuple(params.size) != tuple(images.shape[-2:]):
            out = super().transform(images, warp)
        for position, colour in enumerate(params.colours):
            if colour is None:
                continue
            column = [row[position] for row in self.stages()]
            pixel_ops = [(index, op) for index, (op, kind) in enumerate(_candidates(column)) if kind == PIXEL]
            out = _photometric_stage(
                out, params.weights[position], colour, pixel_ops, params.steps[position], params.clamps[position]
            )
        return out

    def _hardened(self, choose: Callable[[Stage], int]) -> Policy:
        plain = freeze(self)
        assert isinstance(plain, Policy)
        for stages in plain.stages():
            for stage in stages:
                keep = choose(stage)
                stage.ops = nn.ModuleList([stage.ops[keep]])
                stage.kinds = (stage.kinds[keep],)
                stage.logits = None
                stage.chosen = self.names[keep]  # type: ignore[assignment]
        return plain

    def export(self, mode: str = "sample") -> nn.Module:
        """A copy for ordinary training: every learned range and probability fixed, no parameters.

        Args:
            mode: ``"sample"`` (default): a :class:`Policy` whose stages draw each sample's
                operation from the learned choice probabilities (the logits become a buffer,
                choices are hard), RandAugment-like, with the same one-warp data flow;
                ``"argmax"``: each stage keeps its most likely operation; ``"compose"``: ordinary
                building blocks, a :class:`diffaug.RandomChoice` per stage (``p`` the learned
                probabilities) inside a :class:`diffaug.Compose` per sub-policy, and a
                ``RandomChoice`` over the sub-policies; the ops run in sequence (each geometric
                op resamples on its own). It needs ops that keep the image size and a policy
                without ``size``.

        Raises:
            ValueError: an unknown ``mode``; ``"compose"`` with a ``size`` or an op with its own
                output size.

        Examples:
            >>> import torch
            >>> policy = Policy(all_ops(), num_subpolicies=2, depth=2)
            >>> images = torch.rand(4, 3, 16, 16)
            >>> for mode in ("sample", "argmax", "compose"):
            ...     plain = policy.export(mode)
            ...     print(mode, type(plain).__name__, len(list(plain.parameters())), tuple(plain(images).shape))
            sample Policy 0 (4, 3, 16, 16)
            argmax Policy 0 (4, 3, 16, 16)
            compose RandomChoice 0 (4, 3, 16, 16)
        """
        if mode not in _EXPORT_MODES:
            raise ValueError(f"mode must be one of {_EXPORT_MODES}, got {mode!r}")
        if mode == "argmax":
            return self._hardened(lambda stage: int(stage.probabilities().argmax()))
        if mode == "compose":
            return self._composed()
        plain = freeze(self)
        assert isinstance(plain, Policy)
        for stages in plain.stages():
            for stage in stages:
                if stage.logits is not None:
                    logits = stage.logits.detach().clone()
                    del stage.logits
                    stage.register_buffer("logits", logits)
                stage.hard = True
        return plain

    def _composed(self) -> nn.Module:
        from diffaug.transforms.compose import Compose
        from diffaug.transforms.containers import RandomChoice

        if self.size is not None:
            raise ValueError(f"export(mode='compose') needs a policy without size (got size={self.size}); resize after it")
        frozen = freeze(self)
        assert isinstance(frozen, Policy)
        for index, op in enumerate(frozen.subpolicies[0][0].ops):  # type: ignore[index]
            if tuple(getattr(op.make_params(torch.zeros(1, 3, 4, 6)), "size", (4, 6))) != (4, 6):
                raise ValueError(f"export(mode='compose'): op {self.names[index]!r} sets its own output size; use mode='sample'")
        rows = []
        for stages in frozen.stages():
            steps = [
                RandomChoice(list(stage.ops), p=stage.probabilities().tolist()) if len(stage.ops) > 1 else stage.ops[0]
                for stage in stages
            ]
            rows.append(Compose(steps))
        return RandomChoice(rows) if len(rows) > 1 else rows[0]

    def sample_policy(self, generator: torch.Generator | None = None) -> Policy:
        """Like ``export(mode="argmax")``, but each stage's one operation is drawn once from its learned probabilities."""
        return self._hardened(lambda stage: int(torch.multinomial(stage.probabilities(), 1, generator=generator)))

    def describe(self) -> list[list[list[dict[str, object]]]]:
        """The policy as plain data: per sub-policy, per stage, each operation's kind, choice probability, ``p`` and ranges.

        Examples:
            >>> policy = Policy(num_subpolicies=1, depth=1)
            >>> sorted(policy.describe()[0][0][0])
            ['kind', 'op', 'p', 'ranges', 'weight']
        """
        out = []
        for stages in self.stages():
            rows = []
            for stage in stages:
                names = [getattr(stage, "chosen", None)] if len(stage.ops) == 1 and hasattr(stage, "chosen") else self.names
                ops = []
                for name, op, kind, weight in zip(names, stage.ops, stage.kinds, stage.probabilities().tolist(), strict=True):
                    ranges = {key: [round(v, 4) for v in _bounds(c)] for key, c in op.named_children() if isinstance(c, Range)}
                    ops.append(
                        {
                            "op": name,
                            "kind": kind,
                            "weight": round(weight, 4),
                            "p": round(float(torch.as_tensor(op.p).detach()), 4),
                            "ranges": ranges,
                        }
                    )
                rows.append(ops)
            out.append(rows)
        return out


def _build(ops: dict[str, OpFactory]) -> list[RandomTransform]:
    built = []
    for name, factory in ops.items():
        op = factory()
        op_kind(op, f"ops[{name!r}]()")
        built.append(op)
    return built


def _check_colour_steps(steps: Sequence[Any], kinds: Sequence[str], channels: int) -> None:
    """Colour candidates must give one colour matrix that keeps the channels and the dtype."""
    for params, kind in zip(steps, kinds, strict=True):
        if kind != COLOUR:
            continue
        colour = getattr(params, "colour", None)
        if colour is None or colour.shape[-2] != channels or getattr(params, "dtype", None) is not None:
            raise ValueError(
                "a policy's colour candidates must give one colour matrix that keeps the channels and the dtype "
                "(not ToDtype, Grayscale(1) on RGB, or ColorJitter without fused=True)"
            )


def _thetas(steps: Sequence[Any], kinds: Sequence[str]) -> list[Tensor | None]:
    return [s.theta if kind == GEOMETRIC else None for s, kind in zip(steps, kinds, strict=True)]


def _candidates(stages: Sequence[Stage]) -> list[tuple[Any, str]]:
    """``(op, kind)`` of every candidate of ``stages``, in the order of :attr:`LearnablePolicyParams.steps`."""
    return [(op, kind) for stage in stages for op, kind in zip(stage.ops, stage.kinds, strict=True)]


def _photometric_stage(
    images: Tensor, weights: Tensor, colour: Tensor, pixel_ops: Sequence[tuple[int, Any]], steps: Sequence[Any], clamp: bool
) -> Tensor:
    """``apply_colour(x, colour) + sum_k weights[:, k] P_k(x)`` over the pixel candidates ``(index, op)`` (module docstring)."""
    out = daf.apply_colour(images, colour)
    for index, op in pixel_ops:
        out = out + weights[:, index].to(out.dtype).reshape(-1, 1, 1, 1) * op.transform(images, steps[index])
    return out.clamp(0.0, 1.0) if clamp else out
