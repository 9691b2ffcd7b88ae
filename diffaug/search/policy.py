"""A learnable augmentation policy in the shape of Faster AutoAugment, geometric ops fused into one warp.

A :class:`Policy` holds ``K`` sub-policies; a sub-policy is a sequence of ``depth`` stages; a
stage chooses one of several candidate operations. Every (sub-policy, stage, operation) has its
own learnable magnitude ranges and application probability (the transforms' ``learnable=True``),
and every stage has learnable choice logits. Per call:

* each sample gets a sub-policy, uniformly at random (a one-hot mask, no loop);
* each stage draws its operation per sample with a Gumbel-softmax
  (:func:`diffaug.distributions.relaxed_one_hot`): hard (exactly one op, straight-through
  gradient) by default, or a soft mixture with ``hard=False``;
* each operation's parameters become a 3x3 matrix; the chosen (or mixed) matrices are multiplied
  through the stages and selected per sample, and the images are resampled **once**.

All operations are drawn on the input canvas (each intermediate image has the input size) and
the result is resampled to ``size``. :meth:`Policy.export` and :meth:`Policy.sample_policy`
return a plain copy with the learned values fixed (no parameters) for ordinary training.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from diffaug import distributions
from diffaug import functional as daf
from diffaug.distributions import Range
from diffaug.functional import _checks
from diffaug.functional.geometry import pipeline_theta
from diffaug.search._fuse import check_gradient_path
from diffaug.transforms.base import GeometricTransform, Params, batch_shape, param_dtype, stand_in

__all__ = ["Policy", "Stage", "default_ops", "freeze"]

OpFactory = Callable[[], GeometricTransform]


def default_ops() -> dict[str, OpFactory]:
    """The default candidate operations, by name: each call builds a fresh learnable transform.

    ``zoom`` (:class:`~diffaug.ZoomCrop`, zoom in ``[1.05, 1.5]``: not from 1, the identity warp,
    where bilinear gradients are one-sided), ``rotate`` (+-20 degrees),
    ``translate`` (10 % of each side), ``shear`` (+-10 degrees) and ``hflip``; all with a
    learnable probability starting at 0.5. Output sizes are irrelevant here: a policy warps once,
    to its own ``size``.

    Examples:
        >>> sorted(default_ops())
        ['hflip', 'rotate', 'shear', 'translate', 'zoom']
    """
    from diffaug.transforms.crop import ZoomCrop
    from diffaug.transforms.geometric import RandomAffine, RandomHorizontalFlip, RandomRotation

    def affine_only(**kwargs: object) -> OpFactory:
        def build() -> GeometricTransform:
            op = RandomAffine(degrees=0.0, interpolation="bilinear", p=0.5, learnable=True, **kwargs)  # type: ignore[arg-type]
            # A translate/shear op: its angle stays 0 (fixed, not learned).
            op.degrees = Range((0.0, 0.0), domain=(-math.inf, math.inf))
            return op

        return build

    return {
        "zoom": lambda: ZoomCrop(1, zoom=(1.05, 1.5), p=0.5, learnable=True),
        "rotate": lambda: RandomRotation(20.0, interpolation="bilinear", p=0.5, learnable=True),
        "translate": affine_only(translate=(0.1, 0.1)),
        "shear": affine_only(shear=10.0),
        "hflip": lambda: RandomHorizontalFlip(p=0.5, learnable=True),
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
                low, high = (float(v.detach()) for v in child.bounds())
                setattr(sub, name, Range((low, min(max(high, low), child.domain[1])), domain=child.domain, log=child.log))
        if isinstance(sub, GeometricTransform) and sub.p_logit is not None:
            sub.p_fixed = float(torch.sigmoid(sub.p_logit.detach()))
            sub.p_logit = None
    return frozen


class Stage(nn.Module):
    """One stage of a sub-policy: a learnable choice among candidate operations.

    Args:
        ops: the candidate transforms (at least one).
        temperature: Gumbel-softmax temperature, ``> 0``.
        hard: one operation per sample in the forward pass (straight-through gradient); with
            ``False`` the operations' matrices are mixed with the relaxed weights.

    Examples:
        >>> import torch, diffaug as da
        >>> stage = Stage([da.RandomRotation(10, "bilinear", learnable=True), da.RandomHorizontalFlip(p=1.0)])
        >>> stage.matrix(torch.zeros(4, 1, 8, 8)).shape, stage.probabilities().tolist()
        (torch.Size([4, 3, 3]), [0.5, 0.5])
    """

    def __init__(self, ops: Sequence[GeometricTransform], temperature: float = 0.5, hard: bool = True) -> None:
        super().__init__()
        if len(ops) == 0:
            raise ValueError("a stage needs at least one candidate operation, got none")
        for op in ops:
            if not isinstance(op, GeometricTransform):
                raise TypeError(f"policy operations must be diffaug geometric transforms, got {type(op).__name__}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.ops = nn.ModuleList(ops)
        self.logits: nn.Parameter | None = nn.Parameter(torch.zeros(len(ops))) if len(ops) > 1 else None
        self.temperature = float(temperature)
        self.hard = bool(hard)

    def weights(self, batch: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``(B, n_ops)`` per-sample choice weights (one-hot when ``hard``)."""
        if self.logits is None:
            return torch.ones(batch, 1, device=device, dtype=dtype)
        noise = distributions.uniform((batch, len(self.ops)), generator, device, dtype)
        return distributions.relaxed_one_hot(self.logits.to(device=device, dtype=dtype), noise, self.temperature, self.hard)

    def matrix(self, canvas: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, 3, 3)``: each sample's chosen (or mixed) operation matrix on ``canvas``'s size."""
        dtype = param_dtype(canvas)
        ops: list[GeometricTransform] = list(self.ops)  # type: ignore[arg-type]
        mats = torch.stack([daf.to_square(op.make_params(canvas, generator=generator).theta) for op in ops], dim=1)
        weights = self.weights(canvas.shape[0], generator, canvas.device, dtype)
        return torch.einsum("bk,bkij->bij", weights, mats.to(dtype))

    def probabilities(self) -> Tensor:
        """``softmax(logits)``: the probability of choosing each operation."""
        if self.logits is None:
            return torch.ones(1)
        return torch.softmax(self.logits.detach(), dim=0)


class Policy(GeometricTransform):
    """Faster-AutoAugment-shaped learnable policy over geometric operations, one resample per call.

    Args:
        ops: candidate operations as ``{name: factory}`` (each factory builds a fresh transform,
            learnable or not); default :func:`default_ops`.
        num_subpolicies: ``K >= 1`` sub-policies.
        depth: stages per sub-policy, ``>= 1``.
        size: output ``(h, w)``; ``None`` keeps the input size.
        temperature: Gumbel-softmax temperature of the operation choice, ``> 0``.
        hard: one operation per sample per stage (straight-through); ``False`` mixes matrices.
        interpolation, padding_mode: of the single warp (see
            :class:`~diffaug.transforms.base.GeometricTransform`); nearest is refused when anything
            is learnable (no gradient reaches the warp parameters).

    Raises:
        ValueError: empty ``ops``, ``num_subpolicies`` or ``depth`` below 1, ``temperature <= 0``,
            nearest sampling with learnable operations. TypeError: a factory that does not
            build a geometric transform.

    Shapes:
        ``(B, C, H, W) -> (B, C, h, w)``; ``(C, H, W) -> (C, h, w)``.

    Examples:
        >>> import torch
        >>> policy = Policy(num_subpolicies=2, depth=2)
        >>> images = torch.rand(4, 3, 16, 16)
        >>> out = policy(images)
        >>> out.mean().backward()
        >>> out.shape, policy.subpolicies[0][0].logits.grad.shape
        (torch.Size([4, 3, 16, 16]), torch.Size([5]))
        >>> plain = policy.export()
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
        for name, value in (("num_subpolicies", num_subpolicies), ("depth", depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"empty policy: {name} must be an int >= 1, got {value!r}")
        self.names = list(ops)
        self.size = None if size is None else _checks.check_size(size)
        self.subpolicies = nn.ModuleList(
            nn.ModuleList(Stage([factory() for factory in ops.values()], temperature, hard) for _ in range(depth))
            for _ in range(num_subpolicies)
        )
        check_gradient_path(self)

    def stages(self) -> list[list[Stage]]:
        """The stages, per sub-policy."""
        return [list(stages) for stages in self.subpolicies]  # type: ignore[call-overload]

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> Params:
        batch, height, width = batch_shape(images)
        dtype = param_dtype(images)
        canvas = stand_in(images, batch, (height, width))
        thetas = [pipeline_theta([daf.to_theta(stage.matrix(canvas, generator)) for stage in stages]) for stages in self.stages()]
        # Each sample follows one sub-policy, chosen uniformly: a one-hot selection of thetas.
        pick = distributions.integers(len(self.subpolicies), (batch,), generator, images.device)
        # A comparison, not F.one_hot: one_hot reads the indices to check their range (a host read).
        chosen = (pick.unsqueeze(-1) == torch.arange(len(self.subpolicies), device=pick.device)).to(dtype)
        theta = torch.einsum("bk,kbij->bij", chosen, torch.stack(thetas))
        applied = torch.ones(batch, device=images.device, dtype=dtype)
        return Params(theta=theta, size=self.size or (height, width), in_size=(height, width), applied=applied)

    def _hardened(self, choose: Callable[[Stage], int]) -> Policy:
        plain = freeze(self)
        assert isinstance(plain, Policy)
        for stages in plain.stages():
            for stage in stages:
                keep = choose(stage)
                stage.ops = nn.ModuleList([stage.ops[keep]])
                stage.logits = None
                stage.chosen = self.names[keep]  # type: ignore[assignment]
        return plain

    def export(self) -> Policy:
        """A plain policy: each stage keeps its most likely operation, every value fixed; no parameters."""
        return self._hardened(lambda stage: int(stage.probabilities().argmax()))

    def sample_policy(self, generator: torch.Generator | None = None) -> Policy:
        """Like :meth:`export`, but each stage's operation is drawn from its learned choice probabilities."""
        return self._hardened(lambda stage: int(torch.multinomial(stage.probabilities(), 1, generator=generator)))

    def describe(self) -> list[list[list[dict[str, object]]]]:
        """The policy as plain data: per sub-policy, per stage, each operation's choice probability, ``p`` and ranges.

        Examples:
            >>> policy = Policy(num_subpolicies=1, depth=1)
            >>> sorted(policy.describe()[0][0][0])
            ['op', 'p', 'ranges', 'weight']
        """
        out = []
        for stages in self.stages():
            rows = []
            for stage in stages:
                names = [getattr(stage, "chosen", None)] if len(stage.ops) == 1 and hasattr(stage, "chosen") else self.names
                ops = []
                for name, op, weight in zip(names, stage.ops, stage.probabilities().tolist(), strict=True):
                    ranges = {
                        key: [round(float(v.detach()), 4) for v in child.bounds()]
                        for key, child in op.named_children()
                        if isinstance(child, Range)
                    }
                    ops.append(
                        {
                            "op": name,
                            "weight": round(weight, 4),
                            "p": round(float(torch.as_tensor(op.p).detach()), 4),
                            "ranges": ranges,
                        }
                    )
                rows.append(ops)
            out.append(rows)
        return out
