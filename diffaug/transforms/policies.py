"""AutoAugment, RandAugment, TrivialAugmentWide and AugMix with every sample drawing its own operations.

torchvision's policies pick one operation and one magnitude per call. Here each sample of the
batch draws its own (operation, magnitude bin, sign) in each *slot* (RandAugment's ``num_ops``,
AutoAugment's two sub-policy steps, AugMix's chain steps), with torchvision's operation sets,
magnitude bins, signs (a random sign per application of a signed operation) and probabilities.

A slot is applied to the whole batch by *stages*, one per family of operations; a sample uses
exactly one operation per slot, so every stage is the identity for the samples that do not use
it and the order of the stages does not matter:

* geometric (ShearX/Y, TranslateX/Y, Rotate): one per-sample ``theta``
  (:func:`diffaug.transforms.geometric.affine_matrix`, torchvision's ``affine``: shears about
  the top-left corner, translations truncated to whole pixels, rotations about the centre) and
  ONE warp;
* colour (Brightness, Color, Contrast, AutoContrast, Invert): one per-sample colour matrix
  (:mod:`diffaug.functional.colour`; AutoContrast is a per-channel gain and offset from the
  sample's minimum and maximum) applied in ONE pass with torchvision's clamp;
* posterize, solarize, sharpness, equalize: the batched ops of :mod:`diffaug.functional.pixel`
  with per-sample bits, threshold and factor.

Two ways to run a stage, chosen by the keyword-only ``grouped``:

* ``grouped=True`` (default): the discrete draws (operations, bins, signs, sub-policies, depths)
  are made on the host, like torchvision's, and each stage runs only on the samples that use it:
  one gather sorts a slot's samples by stage (the counts are known on the host), each stage
  transforms its run of samples (a few at a time on a CPU) and writes it back in place, one
  gather restores the order. A stage costs what its samples cost. With a CUDA generator the
  draws are made on the device and copied to the host (one synchronisation).
* ``grouped=False``: every draw on the images' device, every stage over the whole batch with
  identity magnitudes (or a ``torch.where``) for the samples that do not use it: no host work
  and no data-dependent shapes, for ``torch.compile(fullgraph=True)``; slower on a CPU.

Both give the same images for the same params values. Gradients: geometric ops (with a blending
interpolation), colour ops, sharpness and solarize (``+1``/``-1``) are differentiable in the
images; posterize and equalize pass the gradient straight through (forward exact, backward the
identity), as :mod:`diffaug.transforms.pixel` does.
"""

from __future__ import annotations

import abc
import bisect
import dataclasses
import enum
import itertools
import math
from typing import Any

import torch
from torch import Tensor

from diffaug import distributions
from diffaug import functional as daf
from diffaug.functional import _checks, _cpu_kernels, gather, pixel
from diffaug.functional import _constants as _const
from diffaug.functional import colour as _colour
from diffaug.functional.warp import nearest_uint8_levels
from diffaug.transforms.base import RandomTransform, batch_shape, interpolation_name
from diffaug.transforms.geometric import affine_matrix

__all__ = [
    "OPERATIONS",
    "AutoAugmentPolicy",
    "PolicyParams",
    "PolicyTransform",
    "AutoAugment",
    "RandAugment",
    "TrivialAugmentWide",
    "AugMix",
    "magnitude_table",
]

# Every operation of the four policies; an op id is an index into this tuple (0 is Identity).
OPERATIONS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
    "Invert",
)
_ID = {name: index for index, name in enumerate(OPERATIONS)}
_SIGNED = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"})

# Stages: the families of operations a slot runs, each the identity for samples of another family.
_IDENTITY, _GEOMETRIC, _COLOUR, _POSTERIZE, _SOLARIZE, _SHARPNESS, _EQUALIZE = range(7)
_STAGE = (
    _IDENTITY,
    *(_GEOMETRIC,) * 5,
    *(_COLOUR,) * 3,
    _SHARPNESS,
    _POSTERIZE,
    _SOLARIZE,
    _COLOUR,
    _EQUALIZE,
    _COLOUR,
)
_STAGES = 7
_CPU_BLOCK = 4  # samples per block of a stage on a CPU (see PolicyTransform._block)
_TRANSLATIONS = ("TranslateX", "TranslateY")
# Ops of a stage with a kernel of their own, a contiguous range of op ids: blocks do not mix them with the others.
_OWN_KERNEL = {_GEOMETRIC: (_ID["TranslateX"], _ID["TranslateY"]), _COLOUR: (_ID["Color"], _ID["Color"])}
assert _ID["TranslateY"] == _ID["TranslateX"] + 1  # whole-pixel translations (row copies); Color's full matrix

# torchvision's operation sets, in its order (the order decides which op a drawn index means).
_WIDE_OPS = OPERATIONS[:14]  # TrivialAugmentWide and RandAugment: Identity .. Equalize
_AUGMIX_PARTIAL = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize", "Solarize", "AutoContrast", "Equalize")
_AUGMIX_ALL = (*_AUGMIX_PARTIAL, "Brightness", "Color", "Contrast", "Sharpness")


class AutoAugmentPolicy(enum.Enum):
    """The three AutoAugment policies (the values of torchvision's ``AutoAugmentPolicy``, which is accepted too).

    Examples:
        >>> import diffaug as da
        >>> from torchvision.transforms import AutoAugmentPolicy
        >>> da.AutoAugment(AutoAugmentPolicy.SVHN).policy, da.AutoAugment("cifar10").policy
        (<AutoAugmentPolicy.SVHN: 'svhn'>, <AutoAugmentPolicy.CIFAR10: 'cifar10'>)
    """

    IMAGENET = "imagenet"
    CIFAR10 = "cifar10"
    SVHN = "svhn"


# torchvision's sub-policies: ((op, probability, magnitude bin), (op, probability, magnitude bin)), 10 bins.
_Step = tuple[str, float, int | None]
_POLICIES: dict[str, tuple[tuple[_Step, _Step], ...]] = {
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
    "cifar10": (
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ),
}


def magnitude_table(space: str, num_bins: int, height: int, width: int) -> Tensor:
    """``(len(OPERATIONS), num_bins)`` float64: torchvision's magnitude of each operation at each bin (unsigned).

    ``space`` is ``"wide"`` (TrivialAugmentWide), ``"standard"`` (RandAugment and AutoAugment)
    or ``"augmix"``. The values are torchvision's float32 ``linspace`` values (so a magnitude
    equals the one torchvision passes); operations without a magnitude get 0. Units: shear as
    the shear factor, translation in pixels, rotation in degrees, Brightness/Color/Contrast/
    Sharpness as ``factor - 1``, Posterize in bits, Solarize as a fraction of the value range.

    Examples:
        >>> table = magnitude_table("wide", 31, 224, 224)
        >>> [round(float(table[OPERATIONS.index(name), 30]), 4) for name in ("Rotate", "TranslateX", "Posterize")]
        [135.0, 32.0, 2.0]
    """
    wide, augmix = space == "wide", space == "augmix"
    if space not in ("wide", "standard", "augmix"):
        raise ValueError(f"space must be 'wide', 'standard' or 'augmix', got {space!r}")
    shear, rotate, colour = (0.99, 135.0, 0.99) if wide else (0.3, 30.0, 0.9)
    if wide:
        translate_x = translate_y = 32.0
    elif augmix:
        translate_x, translate_y = width / 3.0, height / 3.0
    else:
        translate_x, translate_y = 150.0 / 331.0 * width, 150.0 / 331.0 * height
    top, steps = (8, 6) if wide else (4, 4) if augmix else (8, 4)
    maxima = {"ShearX": shear, "ShearY": shear, "TranslateX": translate_x, "TranslateY": translate_y, "Rotate": rotate}
    maxima.update(dict.fromkeys(("Brightness", "Color", "Contrast", "Sharpness"), colour))
    table = torch.zeros(len(OPERATIONS), num_bins, dtype=torch.float64)
    for name, top_value in maxima.items():
        table[_ID[name]] = torch.linspace(0.0, top_value, num_bins).double()
    divisor = (num_bins - 1) / steps if num_bins > 1 else 1.0
    table[_ID["Posterize"]] = (top - (torch.arange(num_bins) / divisor)).round().int().double()
    table[_ID["Solarize"]] = torch.linspace(1.0, 0.0, num_bins).double()
    return table


@dataclasses.dataclass
class PolicyParams:
    """Per-call parameters of a policy: each sample's operation and magnitude in each slot.

    Attributes:
        op: ``(B, S)`` long, an index into :data:`OPERATIONS` per sample and slot (0: Identity,
            also for a step that was not applied); slots are applied in order (AugMix: chain by chain).
        magnitude: ``(B, S)`` torchvision's magnitude argument, signed (0 for operations without one).
        groups: ``grouped=True``: per slot, ``(order, ops, counts)``: the ``(B,)`` order that sorts
            the samples by stage (then by op), each sample's op id in that order and the number of
            samples of each stage (Python ints, read on the host); ``None`` for the masked way.
        weights: AugMix only: ``(B, width + 1)``, the weight of the original image, then of each chain.
        width: AugMix's number of chains (the slots are ``width`` chains of ``S // width`` steps); 1 otherwise.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.TrivialAugmentWide().make_params(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
        >>> params.op.shape, params.magnitude.shape, params.weights
        (torch.Size([4, 1]), torch.Size([4, 1]), None)
    """

    op: Tensor
    magnitude: Tensor
    groups: tuple[tuple[Tensor, tuple[int, ...], tuple[int, ...]], ...] | None = None
    weights: Tensor | None = None
    width: int = 1


def _policy_fill(fill: object) -> float | tuple[float, ...]:
    """torchvision's ``fill``: ``None`` (zeros), a number or one per channel (a dict per type is not supported)."""
    if fill is None:
        return 0.0
    if isinstance(fill, dict):
        raise TypeError("fill must be None, a number or a sequence of numbers (a dict of fills per type is not supported)")
    values = _checks.check_fill(fill, "zeros")
    return 0.0 if values is None else values


def _check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


class _Draws:
    """The random numbers a policy draws: uniform noise and Dirichlet weights, on one device, from one generator."""

    def __init__(self, batch: int, generator: torch.Generator | None, device: torch.device) -> None:
        self.batch, self.generator, self.device = batch, generator, device

    def uniform(self, *shape: int) -> Tensor:
        return distributions.uniform(shape, self.generator, self.device, torch.float64)

    def dirichlet(self, alpha: float, count: int) -> Tensor:
        return distributions.dirichlet(alpha, (self.batch, count), self.generator, self.device, torch.float64)


class PolicyTransform(RandomTransform):
    """Base of the four policies: the draws' devices, the stages and the per-slot application.

    Subclasses define ``operations`` (names, in torchvision's order) and :meth:`draw`, which
    returns each sample's op ids, signed magnitudes and (AugMix) weights from uniform noise.

    Args:
        interpolation: of the geometric operations, a torchvision ``InterpolationMode`` or its value.
        fill: what the geometric operations show outside the image (``None``: 0).
        grouped: run each stage on the samples that use it (host draws) or on the whole batch
            with masks (device draws, ``torch.compile``-friendly); see the module docstring.

    Examples:
        >>> import dataclasses, torch, diffaug as da
        >>> images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
        >>> grouped, masked = da.TrivialAugmentWide(), da.TrivialAugmentWide(grouped=False)
        >>> params = grouped.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(grouped.transform(images, params), masked.transform(images, dataclasses.replace(params, groups=None)))
        True
    """

    operations: tuple[str, ...] = ()

    def __init__(self, *, interpolation: object, fill: object, grouped: bool) -> None:
        super().__init__(p=1.0)
        self.interpolation = interpolation
        self.mode = interpolation_name(interpolation)
        self.fill = _policy_fill(fill)
        self.grouped = bool(grouped)
        # Whole-pixel translations of uint8 images are row copies when nothing is interpolated or filled.
        self._row_copies = self.mode == "nearest" and self.fill == 0.0
        self._op_ids = torch.tensor([_ID[name] for name in self.operations], dtype=torch.long)
        used = {_ID[name] for name in self.operations}
        self._uses_mean = _ID["Contrast"] in used
        self._uses_autocontrast = _ID["AutoContrast"] in used
        self._uses_geometric = bool(used & {_ID[name] for name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")})
        self._uses_colour = bool(used & {_ID[name] for name in ("Brightness", "Color", "Contrast", "AutoContrast", "Invert")})

    # ------------------------------------------------------------------ draws
    @abc.abstractmethod
    def draw(self, draws: _Draws, height: int, width: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(op, magnitude, weights)``: op ids ``(B, S)``, signed magnitudes ``(B, S)``, AugMix's weights or ``None``."""

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> PolicyParams:
        """Each sample's operations and magnitudes (and AugMix's weights); reads only the images' shape, dtype, device."""
        batch, height, width = batch_shape(images)
        _colour.check_colour_channels(images)
        # Grouped: the discrete draws on the host, as torchvision's; a given generator decides where.
        host_or_images = torch.device("cpu") if self.grouped else images.device
        device = generator.device if generator is not None else host_or_images
        op, magnitude, weights = self.draw(_Draws(batch, generator, device), height, width)
        # Grouping reads the op ids: on the host already unless a device generator drew them (then one copy).
        groups = _groups(op.cpu(), images.device) if self.grouped else None
        dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
        op, magnitude = op.to(images.device), magnitude.to(device=images.device, dtype=dtype)
        weights = None if weights is None else weights.to(device=images.device, dtype=dtype)
        return PolicyParams(op=op, magnitude=magnitude, groups=groups, weights=weights, width=self.width)

    @property
    def width(self) -> int:
        """The number of chains whose results are mixed (AugMix); 1: the slots follow one another."""
        return 1

    def _pick_ops(self, u_op: Tensor, table: Tensor, bins: Tensor, u_sign: Tensor) -> tuple[Tensor, Tensor]:
        """Op ids uniform over ``operations`` from ``u_op``, and their signed magnitudes at ``bins``."""
        ids = self._op_ids.to(u_op.device)
        op = ids[(u_op * len(ids)).long().clamp(max=len(ids) - 1)]
        return op, _signed(table.to(u_op.device), op, bins, u_sign)

    # ------------------------------------------------------------------ application
    def transform(self, images: Tensor, params: PolicyParams) -> Tensor:
        """Apply ``params`` to ``images`` (pure: the same params give the same output)."""
        _checks.check_images(images)
        if images.ndim == 3:
            return self.transform(images.unsqueeze(0), params).squeeze(0)
        _colour.check_colour_channels(images)
        if not isinstance(params, PolicyParams):
            raise TypeError(f"params must be the PolicyParams of make_params, got {type(params).__name__}")
        if params.op.shape[0] != images.shape[0]:
            raise ValueError(
                f"params were drawn for {params.op.shape[0]} samples but images have {images.shape[0]}; "
                "draw them with make_params(images)"
            )
        out = self._chain(images, params, range(params.op.shape[1])) if params.weights is None else self._mix(images, params)
        # The grouped way writes samples into a new contiguous batch: channels-last images come back channels-last.
        channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out

    def _chain(self, images: Tensor, params: PolicyParams, slots: range) -> Tensor:
        """The slots one after the other."""
        out = images
        for slot in slots:
            # After a slot that made a new batch, the next one writes into it (no further batch to allocate).
            out = self.apply_slot(out, params, slot, in_place=out is not images and not out.requires_grad)
        return out

    def _mix(self, images: Tensor, params: PolicyParams) -> Tensor:
        """AugMix: the weighted sum of the image and of each chain's result (float, truncated back for uint8)."""
        assert params.weights is not None
        work = images if images.is_floating_point() else images.to(torch.float32)
        weights = params.weights.to(work.dtype)
        mix = weights[:, 0].view(-1, 1, 1, 1) * work
        depth = params.op.shape[1] // params.width
        for chain in range(params.width):
            out = self._chain(images, params, range(chain * depth, (chain + 1) * depth))
            # In place on the sum this call made: no batch-sized temporary per chain.
            mix = mix.addcmul_(out, weights[:, chain + 1].view(-1, 1, 1, 1))
        # The weights sum to 1: uint8 sums stay within [0, 255] and are truncated.
        return _colour.to_uint8(mix) if images.dtype == torch.uint8 else mix.to(images.dtype)

    def apply_slot(self, images: Tensor, params: PolicyParams, slot: int, *, in_place: bool = False) -> Tensor:
        """One slot: each sample's operation of that slot, every stage once.

        ``in_place`` (grouped only): write the results into ``images``, a contiguous batch the caller
        owns and no autograd graph holds, instead of a new batch.
        """
        height, width = images.shape[-2:]
        values = self._slot_values(params.op[:, slot], params.magnitude[:, slot], images.dtype, height, width, images.shape[1])
        if params.groups is None:
            out = images
            for stage in range(1, _STAGES):
                out = self._stage(stage, out, values, select=True)
            return out
        # Each stage's samples (a contiguous run of `order`, which sorts the samples by stage) are taken a few at a
        # time, transformed and written into their places of the output; Identity samples are copied (or, in place,
        # left). No gather of the whole batch: on a CPU every fresh batch costs its page faults (several ms).
        order, ops, counts = params.groups[slot]
        if counts[_IDENTITY] == images.shape[0]:
            return images  # every sample's step is Identity (or was not applied): nothing to copy
        values = values.take(order)  # in stage order, sliced per block below
        if in_place and images.is_contiguous():
            out = images
        else:
            out = torch.empty(images.shape, dtype=images.dtype, device=images.device)
            kept = order[: counts[_IDENTITY]]
            _put_samples(out, kept, images.index_select(0, kept))
        start = counts[_IDENTITY]
        for stage in range(1, _STAGES):
            end = start + counts[stage]
            block = self._block(stage, images)
            # The stage's ops are sorted: those with a kernel of their own are one run (found by bisection).
            low, high = _OWN_KERNEL.get(stage, (0, -1))
            cuts = (start, bisect.bisect_left(ops, low, start, end), bisect.bisect_right(ops, high, start, end), end)
            for first, last in itertools.pairwise(cuts):
                for head in range(first, last, block):
                    run = slice(head, min(head + block, last))
                    index = order[run]
                    block_images, block_values = images.index_select(0, index), values.take(run)
                    part = self._stage(stage, block_images, block_values, select=False, ops=frozenset(ops[run]))
                    _put_samples(out, index, part)
            start = end
        return out

    def _block(self, stage: int, images: Tensor) -> int:
        """How many samples of ``stage`` one call transforms.

        On a CPU a stage works through its samples a few at a time: its float temporaries then stay
        in cache and reuse memory, where batch-sized ones page-fault (2 to 3 times the time per
        sample, measured). The uint8 kernels (nearest warp, equalize, sharpness) make no such
        temporaries: their stages take all their samples in one call, saving the calls' overhead.
        """
        if images.device.type != "cpu":
            return images.shape[0]
        if stage == _GEOMETRIC:
            fill = self.fill if isinstance(self.fill, tuple) else (self.fill,)
            kernel = nearest_uint8_levels(images, self.mode, "zeros", False, fill) is not None
        else:
            kernel = stage in (_EQUALIZE, _SHARPNESS) and _cpu_kernels.serves_uint8(images)
        return images.shape[0] if kernel else _CPU_BLOCK

    def _slot_values(
        self, op: Tensor, magnitude: Tensor, dtype: torch.dtype, height: int, width: int, channels: int
    ) -> _SlotValues:
        """Each sample's theta, colour matrix, bits, threshold and factor from its op and magnitude (no pixel is read)."""
        work = torch.float64 if dtype == torch.float64 else torch.float32
        magnitude = magnitude.to(work)
        theta = matrix = shift = None
        if self._uses_geometric:
            # Translations are whole pixels (torchvision truncates): (dx, dy), 0 for the other ops.
            translate = torch.stack([torch.where(op == _ID[name], torch.trunc(magnitude), 0.0) for name in _TRANSLATIONS], -1)
            theta = _theta(op, magnitude, translate, height, width)
            shift = translate.long()
        if self._uses_colour:
            matrix = self._colour_matrix(op, 1.0 + magnitude, channels)
        bits = torch.where(op == _ID["Posterize"], magnitude, 8.0).long()
        threshold = torch.where(op == _ID["Solarize"], _colour.value_range(dtype) * magnitude, math.inf)
        factor = torch.where(op == _ID["Sharpness"], 1.0 + magnitude, 1.0)
        return _SlotValues(op, theta, matrix, bits, threshold, factor, shift)

    def _colour_matrix(self, op: Tensor, factor: Tensor, channels: int) -> Tensor:
        """Brightness, Color, Invert (and Contrast: then the mean form) per sample; identity for the others."""
        batch = op.shape[0]
        out = _colour.colour_identity(batch, channels, op.device, factor.dtype)
        choices = [
            ("Brightness", _colour.brightness_matrix(factor, channels)),
            ("Color", _colour.saturation_matrix(factor, channels)),
            ("Invert", _colour.invert_matrix(batch, channels, like=factor)),
        ]
        for name, matrix in choices:
            out = torch.where((op == _ID[name]).view(-1, 1, 1), matrix, out)
        if self._uses_mean:
            out = daf.mean_form(out, channels)
            out = torch.where((op == _ID["Contrast"]).view(-1, 1, 1), _colour.contrast_matrix(factor, channels), out)
        return out

    def _stage(self, stage: int, images: Tensor, values: _SlotValues, select: bool, ops: frozenset[int] | None = None) -> Tensor:
        """One family of operations; the identity for samples whose op is not in it (``select``: exactly).

        ``ops``: the op ids of these samples, when known on the host (grouped), for cheaper kernels.
        With ``select`` (the masked way) the other samples are kept as they came, values and
        gradients alike: a stage's identity values (factor 1, bits 8, ...) still pass through its
        clamps, whose gradient is 0 at the ends of the range.
        """
        out = self._stage_output(stage, images, values, ops)
        return torch.where(_in_stage(values.op, stage), out, images) if select else out

    def _stage_output(self, stage: int, images: Tensor, values: _SlotValues, ops: frozenset[int] | None) -> Tensor:
        if stage == _GEOMETRIC:
            return self._geometric(images, values, ops)
        if stage == _COLOUR:
            assert values.matrix is not None
            return self._colour(images, values.op, values.matrix, ops)
        if stage == _POSTERIZE:
            return distributions.straight_through(images, pixel.posterize(images, values.bits))
        if stage == _SOLARIZE:
            return pixel.solarize(images, values.threshold)
        if stage == _SHARPNESS:
            return pixel.adjust_sharpness(images, values.factor)
        return distributions.straight_through(images, pixel.equalize(images))

    def _geometric(self, images: Tensor, values: _SlotValues, ops: frozenset[int] | None) -> Tensor:
        theta = values.theta
        assert theta is not None and values.shift is not None
        size = (images.shape[-2], images.shape[-1])
        translations = ops is not None and ops <= {_ID[name] for name in _TRANSLATIONS}
        if images.dtype == torch.uint8 and self._row_copies and translations:
            # Whole-pixel translations sample pixels exactly: a row gather gives the nearest warp's values.
            out = gather.shift_images(images, values.shift)
        else:
            out = daf.warp(images, theta, size, self.mode, "zeros", fill=self.fill)
        return out

    def _colour(self, images: Tensor, op: Tensor, matrix: Tensor, ops: frozenset[int] | None = None) -> Tensor:
        """The colour pass; with the samples' op ids known on the host (``ops``), only what they need.

        Without AutoContrast no minimum and maximum, without Contrast no mean, without Color every
        matrix is diagonal (a scale per channel instead of a matrix product): the same values.
        """
        channels = images.shape[1]
        if self._uses_autocontrast and (ops is None or _ID["AutoContrast"] in ops):
            # AutoContrast per channel: (x - low) / (high - low) in unit range; a flat channel is kept.
            bound = _colour.value_range(images.dtype)
            low = images.amin(dim=(-2, -1)).to(matrix.dtype) / bound
            high = images.amax(dim=(-2, -1)).to(matrix.dtype) / bound
            flat = high == low
            gain = torch.where(flat, 1.0, 1.0 / torch.where(flat, 1.0, high - low))
            offset = torch.where(flat, 0.0, -low * gain)
            stretch = torch.cat([torch.diag_embed(gain), offset.unsqueeze(-1)], -1)
            stretch = daf.mean_form(stretch, channels) if self._uses_mean else stretch
            matrix = torch.where((op == _ID["AutoContrast"]).view(-1, 1, 1), stretch, matrix)
        if ops is not None and self._uses_mean and _ID["Contrast"] not in ops:
            matrix = daf.plain_form(matrix, channels)  # the mean's columns are 0
        return daf.apply_colour(images, matrix, clamp=True, diagonal=ops is not None and _ID["Color"] not in ops)

    def forward(self, images: Tensor, *tv_targets: Any, generator: torch.Generator | None = None, **targets: Any) -> Any:
        """``transform(images, make_params(images))``. Targets are refused, as torchvision's policies refuse them."""
        if tv_targets or targets:
            raise TypeError(f"{type(self).__name__} transforms images only (as torchvision's); got targets besides the images")
        return self.transform(images, self.make_params(images, generator=generator))


def _in_stage(op: Tensor, stage: int) -> Tensor:
    """``(B, 1, 1, 1)`` bool: whether each sample's op belongs to ``stage`` (comparisons: no table copied to the device)."""
    first, *others = (index for index, family in enumerate(_STAGE) if family == stage)
    chosen = op == first
    for index in others:
        chosen = chosen | (op == index)
    return chosen.view(-1, 1, 1, 1)


def _signed(table: Tensor, op: Tensor, bins: Tensor, u_sign: Tensor) -> Tensor:
    """``table[op, bin]``, negated where the op is signed and ``u_sign <= 0.5`` (torchvision's draw)."""
    signed = torch.tensor([name in _SIGNED for name in OPERATIONS], device=op.device)
    value = table[op, bins]
    return torch.where(signed[op] & (u_sign <= 0.5), -value, value)


def _groups(op: Tensor, device: torch.device) -> tuple[tuple[Tensor, tuple[int, ...], tuple[int, ...]], ...]:
    """Per slot: the order that sorts the samples by stage then op, the op ids in that order, each stage's count.

    Computed on the host (the order then moved to ``device``). Sorting by op within a stage makes a
    stage's blocks mostly of one op, whose kernel can then be cheaper (a diagonal colour matrix).
    """
    stage_of = torch.tensor(_STAGE)
    out = []
    for slot in range(op.shape[1]):
        stages = stage_of[op[:, slot]]
        counts = tuple(torch.bincount(stages, minlength=_STAGES).tolist())
        order = torch.argsort(stages * len(OPERATIONS) + op[:, slot], stable=True)
        out.append((order.to(device), tuple(op[order, slot].tolist()), counts))
    return tuple(out)


def _put_samples(out: Tensor, index: Tensor, samples: Tensor) -> None:
    """``out[index] = samples`` for a contiguous ``out``; on a CPU and without autograd, in 16-byte words.

    ``index_put_`` moves one element a step: the samples' bytes viewed as the widest word that
    divides a sample (complex128, else int64) take 16 or 8 times fewer steps than uint8 (4 samples
    of 3 x 224 x 224 into a batch of 64, one thread: 721 us as bytes, 58 us as int64, 23 us as
    complex128, about a memcpy). A copy moves the bits unchanged, whatever they mean as words.
    """
    per_sample = out[0].numel() * out.element_size()
    samples = samples.contiguous()
    offset = samples.storage_offset() * samples.element_size()
    words = ((torch.complex128, 16), (torch.int64, 8))
    word = next((dtype for dtype, size in words if per_sample % size == offset % size == 0), None)
    if word is None or out.device.type != "cpu" or out.requires_grad or samples.requires_grad:
        out[index] = samples
        return
    rows = out.view(out.shape[0], -1)
    rows.view(word)[index] = samples.view(-1, rows.shape[1]).view(word)


def _theta(op: Tensor, magnitude: Tensor, translate: Tensor, height: int, width: int) -> Tensor:
    """``(B, 2, 3)``: each sample's geometric op as torchvision's ``affine`` (identity for the other ops).

    Shear: ``atan(m)`` degrees about the top-left corner; translation: ``translate`` ``(B, 2)``,
    ``int(m)`` pixels along its axis; rotation: ``rotate(m)``, which is ``affine(-m)`` about the centre.
    """
    zero = torch.zeros_like(magnitude)
    is_shear_x, is_shear_y = op == _ID["ShearX"], op == _ID["ShearY"]
    shear_deg = torch.rad2deg(torch.atan(magnitude))
    shear = torch.stack([torch.where(is_shear_x, shear_deg, zero), torch.where(is_shear_y, shear_deg, zero)], -1)
    angle = torch.where(op == _ID["Rotate"], -magnitude, zero)
    corner = (is_shear_x | is_shear_y).unsqueeze(-1)
    center = torch.where(corner, 0.0, _const.values((width / 2.0, height / 2.0), magnitude))
    return daf.to_theta(affine_matrix(angle, translate, torch.ones_like(magnitude), shear, center, (height, width)))


@dataclasses.dataclass
class _SlotValues:
    """One slot's per-sample values, from the draws alone: computed once for the batch, taken per block."""

    op: Tensor
    theta: Tensor | None
    matrix: Tensor | None
    bits: Tensor
    threshold: Tensor
    factor: Tensor
    shift: Tensor | None = None  # (B, 2) whole pixels (dx, dy) of TranslateX / TranslateY, 0 for the other ops

    def take(self, index: Tensor | slice) -> _SlotValues:
        def part(value: Tensor | None) -> Tensor | None:
            return None if value is None else value[index]

        return _SlotValues(
            self.op[index],
            part(self.theta),
            part(self.matrix),
            self.bits[index],
            self.threshold[index],
            self.factor[index],
            part(self.shift),
        )


class TrivialAugmentWide(PolicyTransform):
    """TrivialAugment Wide, per sample: each sample draws one operation, a magnitude bin and a sign.

    torchvision's ``TrivialAugmentWide(num_magnitude_bins=31, interpolation=NEAREST, fill=None)``:
    14 operations (Identity, ShearX/Y, TranslateX/Y, Rotate, Brightness, Color, Contrast,
    Sharpness, Posterize, Solarize, AutoContrast, Equalize) drawn uniformly, a bin uniform in
    ``[0, num_magnitude_bins)``, signed operations negated with probability 1/2; torchvision's
    wide magnitudes (:func:`magnitude_table` ``"wide"``).

    Args:
        num_magnitude_bins: number of magnitude bins (at least 2 for the ops that have one).
        interpolation: of the geometric operations (torchvision's ``InterpolationMode`` or its value).
        fill: outside the image after a geometric operation: ``None`` (0), a number or one per channel.
        grouped: keyword-only; see :class:`PolicyTransform`.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
        >>> t = da.TrivialAugmentWide()
        >>> params = t.make_params(images, generator=torch.Generator().manual_seed(0))
        >>> out = t.transform(images, params)
        >>> out.shape, out.dtype, params.op.shape
        (torch.Size([8, 3, 32, 32]), torch.uint8, torch.Size([8, 1]))
    """

    operations = _WIDE_OPS

    def __init__(
        self, num_magnitude_bins: int = 31, interpolation: object = "nearest", fill: object = None, *, grouped: bool = True
    ) -> None:
        self.num_magnitude_bins = _check_int(num_magnitude_bins, "num_magnitude_bins", 1)
        super().__init__(interpolation=interpolation, fill=fill, grouped=grouped)

    def draw(self, draws: _Draws, height: int, width: int) -> tuple[Tensor, Tensor, None]:
        table = magnitude_table("wide", self.num_magnitude_bins, height, width)
        u = draws.uniform(3, draws.batch, 1)
        bins = (u[1] * self.num_magnitude_bins).long().clamp(max=self.num_magnitude_bins - 1)
        op, magnitude = self._pick_ops(u[0], table, bins, u[2])
        return op, magnitude, None


class RandAugment(PolicyTransform):
    """RandAugment, per sample: ``num_ops`` operations drawn independently for every sample, one fixed magnitude.

    torchvision's ``RandAugment(num_ops=2, magnitude=9, num_magnitude_bins=31, interpolation=NEAREST,
    fill=None)``: the same 14 operations as TrivialAugmentWide, uniformly, with the bin
    ``magnitude`` of the standard table (:func:`magnitude_table` ``"standard"``) and a random sign
    per application of a signed operation.

    Args:
        num_ops: operations per sample, applied one after the other (``>= 0``).
        magnitude: the bin, in ``[0, num_magnitude_bins)``.
        num_magnitude_bins: number of bins.
        interpolation, fill, grouped: as :class:`TrivialAugmentWide`.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(4, 3, 32, 32)
        >>> params = da.RandAugment(num_ops=3).make_params(images, generator=torch.Generator().manual_seed(0))
        >>> params.op.shape, da.RandAugment()(images).dtype
        (torch.Size([4, 3]), torch.float32)
    """

    operations = _WIDE_OPS

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        interpolation: object = "nearest",
        fill: object = None,
        *,
        grouped: bool = True,
    ) -> None:
        self.num_ops = _check_int(num_ops, "num_ops", 0)
        self.num_magnitude_bins = _check_int(num_magnitude_bins, "num_magnitude_bins", 1)
        self.magnitude = _check_int(magnitude, "magnitude", 0, self.num_magnitude_bins - 1)
        super().__init__(interpolation=interpolation, fill=fill, grouped=grouped)

    def draw(self, draws: _Draws, height: int, width: int) -> tuple[Tensor, Tensor, None]:
        table = magnitude_table("standard", self.num_magnitude_bins, height, width)
        u = draws.uniform(2, draws.batch, self.num_ops)
        bins = torch.full_like(u[0], self.magnitude, dtype=torch.long)
        op, magnitude = self._pick_ops(u[0], table, bins, u[1])
        return op, magnitude, None


class AutoAugment(PolicyTransform):
    """AutoAugment, per sample: each sample draws a sub-policy and whether each of its two steps applies.

    torchvision's ``AutoAugment(policy=AutoAugmentPolicy.IMAGENET, interpolation=NEAREST, fill=None)``
    with its ImageNet, CIFAR10 and SVHN tables: a sub-policy uniform among 25, each step applied
    with its probability, its magnitude bin out of 10 of the standard table, signed operations
    negated with probability 1/2.

    Args:
        policy: :class:`AutoAugmentPolicy`, torchvision's ``AutoAugmentPolicy``, or its value ``"imagenet"`` etc.
        interpolation, fill, grouped: as :class:`TrivialAugmentWide`.

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.AutoAugment(da.AutoAugmentPolicy.CIFAR10)
        >>> images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
        >>> t(images, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(
        self,
        policy: object = AutoAugmentPolicy.IMAGENET,
        interpolation: object = "nearest",
        fill: object = None,
        *,
        grouped: bool = True,
    ) -> None:
        value = getattr(policy, "value", policy)
        if value not in _POLICIES:
            raise ValueError(f"policy must be an AutoAugmentPolicy (IMAGENET, CIFAR10, SVHN) or its value, got {policy!r}")
        self.policy = AutoAugmentPolicy(value)
        self.subpolicies = _POLICIES[value]
        self.operations = tuple(dict.fromkeys(step[0] for sub in self.subpolicies for step in sub))
        super().__init__(interpolation=interpolation, fill=fill, grouped=grouped)

    def draw(self, draws: _Draws, height: int, width: int) -> tuple[Tensor, Tensor, None]:
        device = draws.device
        table = magnitude_table("standard", 10, height, width).to(device)
        ops = torch.tensor([[_ID[step[0]] for step in sub] for sub in self.subpolicies], device=device)
        probability = torch.tensor([[step[1] for step in sub] for sub in self.subpolicies], device=device, dtype=torch.float64)
        bins = torch.tensor([[step[2] or 0 for step in sub] for sub in self.subpolicies], device=device)
        u = draws.uniform(3, draws.batch, 2)
        choice = (u[0, :, 0] * len(self.subpolicies)).long().clamp(max=len(self.subpolicies) - 1)
        applied = u[1] <= probability[choice]
        op = torch.where(applied, ops[choice], _ID["Identity"])
        magnitude = _signed(table, op, bins[choice], u[2])
        return op, magnitude, None


class AugMix(PolicyTransform):
    """AugMix, per sample: each sample mixes ``mixture_width`` chains of its own operations with its own weights.

    torchvision's ``AugMix(severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=True,
    interpolation=BILINEAR, fill=None)``: a chain has ``chain_depth`` steps (a negative value: 1 to
    3, uniformly, per chain and sample), each an operation uniform over the AugMix set (9, or 13
    with ``all_ops``), a bin uniform in ``[0, severity)`` of 10 (:func:`magnitude_table`
    ``"augmix"``), a random sign. The result is ``m_0 x + m_1 sum_i w_i chain_i(x)`` with
    ``(m_0, m_1) ~ Dirichlet(alpha, alpha)`` and ``w ~ Dirichlet(alpha, ..., alpha)`` per sample
    (``uint8`` truncated back, as torchvision). Every image is differentiable through the mixture.

    Args:
        severity: in ``[1, 10]``. mixture_width: chains (``>= 1``). chain_depth: steps per chain, or negative.
        alpha: Dirichlet concentration (``> 0``). all_ops: include Brightness, Color, Contrast, Sharpness.
        interpolation, fill, grouped: as :class:`TrivialAugmentWide` (bilinear by default, as torchvision).

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(4, 3, 32, 32)
        >>> params = da.AugMix().make_params(images, generator=torch.Generator().manual_seed(0))
        >>> params.op.shape, params.weights.shape, bool(torch.allclose(params.weights.sum(1), torch.ones(4)))
        (torch.Size([4, 9]), torch.Size([4, 4]), True)
    """

    def __init__(
        self,
        severity: int = 3,
        mixture_width: int = 3,
        chain_depth: int = -1,
        alpha: float = 1.0,
        all_ops: bool = True,
        interpolation: object = "bilinear",
        fill: object = None,
        *,
        grouped: bool = True,
    ) -> None:
        self.severity = _check_int(severity, "severity", 1, 10)
        self.mixture_width = _check_int(mixture_width, "mixture_width", 1)
        if not isinstance(chain_depth, int) or isinstance(chain_depth, bool) or chain_depth == 0:
            raise ValueError(f"chain_depth must be a positive int, or negative for a random depth in [1, 3], got {chain_depth!r}")
        self.chain_depth = chain_depth
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)
        self.all_ops = bool(all_ops)
        self.operations = _AUGMIX_ALL if self.all_ops else _AUGMIX_PARTIAL
        super().__init__(interpolation=interpolation, fill=fill, grouped=grouped)

    @property
    def width(self) -> int:
        return self.mixture_width

    def draw(self, draws: _Draws, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        table = magnitude_table("augmix", 10, height, width)
        depth = self.chain_depth if self.chain_depth > 0 else 3
        u = draws.uniform(4, draws.batch, self.mixture_width, depth)
        if self.chain_depth > 0:
            active = torch.ones_like(u[0], dtype=torch.bool)
        else:
            drawn = (u[3, :, :, :1] * 3).long().clamp(max=2) + 1  # (B, width, 1): each chain's depth
            active = torch.arange(depth, device=draws.device) < drawn
        bins = (u[1] * self.severity).long().clamp(max=self.severity - 1)
        op, magnitude = self._pick_ops(u[0], table, bins, u[2])
        op = torch.where(active, op, _ID["Identity"])
        magnitude = torch.where(active, magnitude, 0.0)
        mix = draws.dirichlet(self.alpha, 2)
        chains = draws.dirichlet(self.alpha, self.mixture_width) * mix[:, 1:]
        weights = torch.cat([mix[:, :1], chains], -1)
        return op.flatten(1), magnitude.flatten(1), weights
