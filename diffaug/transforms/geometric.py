"""Flips, affine warps, rotations, centre/random crops and resizing, each as one matrix per sample.

Every transform here draws its parameters on the images' device, replaces them by the identity
parameters (angle 0, scale 1, no flip, ...) for the samples it does not apply to, and builds
``theta`` from them in one place: crops with :func:`diffaug.functional.boxes_to_theta`, flips with
:func:`diffaug.functional.flip_matrix`, affine warps and rotations with :func:`affine_matrix`, the
closed form of a product of the pixel-space helpers of :mod:`diffaug.functional.geometry` (angles
and shears are defined in pixel space, since normalised coordinates stretch non-square images)
moved to normalised space as :func:`diffaug.functional.normalized_from_pixel_matrix` does. The
images are resampled by :func:`diffaug.functional.warp`, once per transform, or once per pipeline
inside :class:`diffaug.Compose`.

Arguments, their positional order and defaults follow ``torchvision.transforms.v2`` (so
``RandomRotation`` and ``RandomAffine`` interpolate with nearest by default; pass
``interpolation=InterpolationMode.BILINEAR`` for gradients); what diffaug adds is keyword-only
(see :class:`~diffaug.transforms.base.GeometricTransform`). The differences: every sample gets
its own parameters; parameters are continuous (not rounded to pixels), so gradients reach them;
outside the image shows ``fill`` (``padding_mode="constant"``) or the image's own edge
(``"edge"``) or mirror image (``"reflect"``, ``"symmetric"``), interpolated like the inside.
"""

from __future__ import annotations

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
from diffaug.transforms.base import GeometricTransform, Params, batch_shape, output_size, param_dtype, where_applied
from diffaug.transforms.crop import CropParams, box_params, shrink_inside

__all__ = [
    "AffineParams",
    "RotationParams",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomAffine",
    "RandomRotation",
    "CenterCrop",
    "RandomCrop",
    "Resize",
    "affine_matrix",
]


@dataclasses.dataclass
class AffineParams(Params):
    """:class:`Params` of :class:`RandomAffine`, as ``torchvision.transforms.v2.functional.affine`` takes them.

    Attributes:
        angle: ``(B,)`` degrees, clockwise on screen (torchvision's ``affine`` convention).
        translate: ``(B, 2)`` pixels ``(tx, ty)``; positive moves the content right / down.
        scale: ``(B,)`` zoom factor (``> 1`` enlarges the content).
        shear: ``(B, 2)`` degrees ``(sx, sy)``.
        center: ``(B, 2)`` pixel centre of rotation, scale and shear.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.RandomAffine(degrees=(30, 30), scale=(2, 2)).make_params(torch.rand(2, 3, 8, 8))
        >>> params.angle.tolist(), params.scale.tolist(), params.center.tolist()
        ([30.0, 30.0], [2.0, 2.0], [[4.0, 4.0], [4.0, 4.0]])
    """

    angle: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    translate: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0, 2))
    scale: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    shear: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0, 2))
    center: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0, 2))


@dataclasses.dataclass
class RotationParams(Params):
    """:class:`Params` of :class:`RandomRotation`.

    Attributes:
        angle: ``(B,)`` degrees, counter-clockwise on screen (torchvision's ``rotate`` convention).
        center: ``(B, 2)`` pixel centre of rotation.

    Examples:
        >>> import torch, diffaug as da
        >>> params = da.RandomRotation(degrees=(90, 90), p=0.0).make_params(torch.rand(2, 3, 8, 8))
        >>> params.angle.tolist(), params.applied.tolist()
        ([0.0, 0.0], [0.0, 0.0])
    """

    angle: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0))
    center: Tensor = dataclasses.field(default_factory=lambda: torch.empty(0, 2))


def affine_matrix(
    angle: Tensor,
    translate: Tensor,
    scale: Tensor,
    shear: Tensor,
    center: Tensor,
    size: Sequence[int],
    out_size: Sequence[int] | None = None,
) -> Tensor:
    """The normalised ``(B, 3, 3)`` matrix (output -> input) of torchvision's ``affine``.

    The content moves by ``T(center + translate) R(angle) S(scale) SHy(sy) SHx(sx) T(-center)``
    in pixel space (y down; ``angle`` clockwise; ``SHx`` moves ``x`` by ``-tan(sx) y``), the
    definition of ``torchvision.transforms.v2.functional.affine``; ``theta`` is its inverse,
    converted to normalised coordinates of the ``size`` canvas (input and output alike, unless
    ``out_size`` is given: an output canvas of another size whose pixel grid is the input's, so
    the content lands at the same pixel positions). With the helpers of
    :mod:`diffaug.functional.geometry` (angles in radians, ``zero`` a tensor of zeros) it is the
    product::

        content = (translate_matrix(cx + tx, cy + ty) @ rotate_matrix(-angle) @ scale_matrix(scale, scale)
                   @ shear_matrix(zero, -sy) @ shear_matrix(-sx, zero) @ translate_matrix(-cx, -cy))
        normalized_from_pixel_matrix(invert(content), size, out_size or size)

    written here in closed form: this runs on every affine and rotation draw, and the product is
    about 60 more small ops (on a 2-core CPU 2 to 2.5x this function's time, +0.1 to 0.2 ms a call;
    on a GPU as many more kernel launches). The test suite checks the two agree.

    Args:
        angle: ``(B,)`` degrees. translate: ``(B, 2)`` pixels. scale: ``(B,)``.
        shear: ``(B, 2)`` degrees. center: ``(B, 2)`` pixels.
        size: canvas ``(H, W)``. out_size: output canvas ``(h, w)``, default ``size``.

    Examples:
        >>> import torch
        >>> zero = torch.zeros(1)
        >>> m = affine_matrix(zero, torch.zeros(1, 2), torch.ones(1), torch.zeros(1, 2), torch.tensor([[4.0, 2.0]]), (4, 8))
        >>> torch.allclose(m, torch.eye(3))
        True
    """
    rad = math.pi / 180.0
    # With a = angle, t_x = tan(sx), t_y = tan(sy), the content map's linear part is
    # M = scale R(a) [[1, -t_x], [-t_y, 1 + t_x t_y]], where R(a) = [[cos a, -sin a], [sin a, cos a]]
    # (clockwise on screen, y down); det M = scale^2, so M^-1 = adj(M) / scale^2 and an output pixel p
    # samples M^-1 (p - center - translate) + center.
    cos, sin = torch.cos(angle * rad), torch.sin(angle * rad)
    tan_x, tan_y = torch.tan(shear * rad).unbind(-1)
    inv_scale = scale.reciprocal()
    one_plus = 1.0 + tan_x * tan_y
    inverse = torch.stack(
        [
            cos * one_plus - sin * tan_x,
            cos * tan_x + sin * one_plus,
            cos * tan_y - sin,
            cos + sin * tan_y,
        ],
        dim=-1,
    ) * inv_scale.unsqueeze(-1)
    inverse = inverse.unflatten(-1, (2, 2))  # (B, 2, 2) pixel-space linear part, output -> input
    height, width = size
    out_height, out_width = size if out_size is None else out_size
    # The output's centre pixel position m samples M^-1 (m - center - translate) + center.
    middle = center.new_tensor([out_width / 2.0, out_height / 2.0])
    source = (inverse * (middle - center - translate).unsqueeze(-2)).sum(-1) + center
    # Normalised coordinates: u = 2 x / W - 1 (see diffaug.functional.geometry), per canvas.
    extent = center.new_tensor([float(width), float(height)])
    out_extent = center.new_tensor([float(out_width), float(out_height)])
    linear = inverse * (out_extent.unsqueeze(0) / extent.unsqueeze(-1))  # [i][j] * out_size_j / size_i
    shift = 2.0 * source / extent - 1.0
    return daf.to_square(torch.cat([linear, shift.unsqueeze(-1)], dim=-1))


def _symmetric(value: object, name: str) -> tuple[float, float]:
    """A number ``d >= 0`` -> ``(-d, d)``; a pair -> itself (ordered)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 when given as a single number, got {value!r}")
        return -float(value), float(value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{name} must be a number or a pair (min, max), got {value!r}")
    return _checks.check_range(tuple(value), name)


def _center(center: tuple[float, float] | None, batch: int, height: int, width: int, like: Tensor) -> Tensor:
    if center is None:
        return like.new_tensor([width / 2.0, height / 2.0]).expand(batch, 2)
    return like.new_tensor(list(center)).expand(batch, 2)


def _check_center(center: object) -> tuple[float, float] | None:
    if center is None:
        return None
    if not isinstance(center, Sequence) or len(center) != 2 or not all(isinstance(c, numbers.Real) for c in center):
        raise ValueError(f"center must be None or a pair (x, y) of pixel coordinates, got {center!r}")
    return float(center[0]), float(center[1])


def expanded_size(degrees: tuple[float, float], height: int, width: int) -> tuple[int, int]:
    """The canvas ``(h, w)`` that holds an ``height x width`` image rotated by any angle in ``degrees``.

    For one angle it is torchvision's ``rotate(..., expand=True)`` size: the rotated image's
    bounding box, its ends truncated to 1e-4 pixel and rounded outwards. Over a range,
    each side is its largest value: at an end of the range or where the half-extent
    ``(W |cos a| + H |sin a|) / 2`` (or ``(W |sin a| + H |cos a|) / 2``) peaks, at
    ``a = +-atan(H / W)`` (``+-atan(W / H)``) mod 180. Shapes only: no tensor data is read.

    Examples:
        >>> expanded_size((90.0, 90.0), 10, 20), expanded_size((-45.0, 45.0), 10, 10)
        ((20, 10), (16, 16))
    """
    low, high = degrees
    angles = [low, high]
    for base in (math.atan2(height, width), math.atan2(width, height)):
        for peak in (math.degrees(base), -math.degrees(base)):
            angles += [peak + 180.0 * k for k in range(math.ceil((low - peak) / 180.0), math.floor((high - peak) / 180.0) + 1)]
    # Quarter turns are exact (torchvision rotates them with rot90: the sides swap).
    quarter = [(width, height) if a % 180.0 == 0 else (height, width) for a in angles if a % 90.0 == 0]
    angles = [a for a in angles if a % 90.0 != 0]
    if not angles:
        return max(h for _, h in quarter), max(w for w, _ in quarter)

    def side(half_along: float, half_across: float, angle: float) -> int:
        rad = math.radians(angle % 360.0)
        reach = half_along * abs(math.cos(rad)) + half_across * abs(math.sin(rad))
        # torchvision truncates the corners' positions to 1e-4 pixel, then rounds them outwards.
        upper = math.trunc((half_along + reach) * 1e4) * 1e-4
        lower = math.trunc((half_along - reach) * 1e4) * 1e-4
        return math.ceil(upper) - math.floor(lower)

    # Plain Python arithmetic: shapes only, so torch.compile folds it to constants.
    sides = [max(side(width / 2.0, height / 2.0, a) for a in angles), max(side(height / 2.0, width / 2.0, a) for a in angles)]
    out_w = max([sides[0]] + [w for w, _ in quarter])
    out_h = max([sides[1]] + [h for _, h in quarter])
    return out_h, out_w


class _Flip(GeometricTransform):
    """Flip along one axis with probability ``p``: ``theta`` negates that normalised axis."""

    horizontal = True  # negate x (left-right); False: negate y (upside down)

    def __init__(self, p: float = 0.5, *, learnable: bool = False, temperature: float = 0.1) -> None:
        super().__init__(p=p, learnable=learnable, temperature=temperature, antialias=False)  # a flip never shrinks

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> Params:
        batch, height, width = batch_shape(images)
        dtype = param_dtype(images)
        applied = self.draw_applied(batch, generator, images.device, dtype)
        zero = torch.zeros_like(applied)
        # A relaxed (fractional) draw blends the matrix: u -> (1 - 2 a) u.
        flips = (applied, zero) if self.horizontal else (zero, applied)
        theta = daf.to_theta(daf.flip_matrix(*flips))
        return Params(theta=theta, size=(height, width), in_size=(height, width), applied=applied)


class RandomHorizontalFlip(_Flip):
    """Flip each sample left-right with probability ``p`` (torchvision's default ``p=0.5``).

    A flipped sample equals ``images.flip(-1)`` (to float rounding of the sampling grid). With
    ``learnable=True`` and ``p < 1`` (as for every transform) the probability is a parameter;
    the draw is a relaxed Bernoulli in training mode (the matrix ``u -> (1 - 2a) u`` blends,
    ``a`` in ``[0, 1]``) and hard with a straight-through gradient in eval mode.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 3, 4, 5)
        >>> torch.allclose(da.RandomHorizontalFlip(p=1.0)(images), images.flip(-1), atol=1e-6)
        True
    """

    horizontal = True


class RandomVerticalFlip(_Flip):
    """Flip each sample upside down with probability ``p`` (default 0.5); see :class:`RandomHorizontalFlip`.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 3, 4, 5)
        >>> torch.allclose(da.RandomVerticalFlip(p=1.0)(images), images.flip(-2), atol=1e-6)
        True
    """

    horizontal = False


class RandomAffine(GeometricTransform):
    """Random rotation, translation, scale and shear per sample, as torchvision's ``RandomAffine``.

    Args:
        degrees: ``d`` (angles in ``[-d, d]``) or ``(min, max)``; clockwise on screen, like
            ``torchvision.transforms.v2.functional.affine``.
        translate: ``(a, b)`` fractions in ``[0, 1]``: ``tx`` is uniform in ``[-a W, a W]``
            pixels and ``ty`` in ``[-b H, b H]`` (continuous, not rounded as torchvision does).
        scale: ``(min, max)`` zoom factors, ``0 < min``; ``None`` keeps the scale.
        shear: ``s`` (x-shear in ``[-s, s]``), ``(min, max)`` (x-shear), or
            ``(xmin, xmax, ymin, ymax)``, degrees in ``(-90, 90)``; ``None`` for none.
        interpolation: ``InterpolationMode.NEAREST`` by default (torchvision's); ``learnable``
            needs ``BILINEAR`` or ``BICUBIC``.
        fill: the constant shown outside the image, a number or one per channel.
        center: pixel ``(x, y)`` of the centre of rotation; default the image centre.
        p: keyword-only: probability of transforming a sample (the others get the identity parameters).
        learnable: keyword-only: make every range above (and ``p`` when ``p < 1``) trainable.
        padding_mode, antialias, temperature: keyword-only, see
            :class:`~diffaug.transforms.base.GeometricTransform` (``antialias`` filters samples the
            warp shrinks, e.g. at ``scale < 1``: on by default unless ``interpolation`` is nearest).

    Raises:
        ValueError, TypeError: for malformed ranges (wrong length, unordered, negative scale,
            translate outside ``[0, 1]``, shear beyond 90 degrees).

    Examples:
        >>> import torch, diffaug as da
        >>> t = da.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), interpolation="bilinear", learnable=True)
        >>> images = torch.rand(4, 3, 32, 48)
        >>> params = t.make_params(images)
        >>> params.angle.shape, params.translate.shape
        (torch.Size([4]), torch.Size([4, 2]))
        >>> t.transform(images, params).shape
        torch.Size([4, 3, 32, 48])
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        translate: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        shear: float | Sequence[float] | None = None,
        interpolation: object = "nearest",
        fill: float | Sequence[float] = 0,
        center: Sequence[float] | None = None,
        *,
        p: float = 1.0,
        learnable: bool = False,
        padding_mode: str = "constant",
        antialias: bool | None = None,
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
        self.degrees = Range(_symmetric(degrees, "degrees"), domain=(-math.inf, math.inf), learnable=learnable)
        self.translate_x: Range | None = None
        self.translate_y: Range | None = None
        if translate is not None:
            if not isinstance(translate, Sequence) or isinstance(translate, str) or len(translate) != 2:
                raise ValueError(f"translate must be a pair (a, b) of fractions in [0, 1], got {translate!r}")
            for value in translate:
                if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
                    raise ValueError(f"translate values must be fractions in [0, 1], got {translate!r}")
            a, b = (float(v) for v in translate)
            self.translate_x = Range((-a, a), domain=(-1.0, 1.0), learnable=learnable)
            self.translate_y = Range((-b, b), domain=(-1.0, 1.0), learnable=learnable)
        self.scale: Range | None = None
        if scale is not None:
            low, high = _checks.check_range(scale, "scale", low=0.0, strict_low=True)
            self.scale = Range((low, high), domain=(0.0, max(10.0, 2.0 * high)), learnable=learnable)
        self.shear_x: Range | None = None
        self.shear_y: Range | None = None
        if shear is not None:
            if isinstance(shear, Sequence) and not isinstance(shear, str) and len(shear) == 4:
                x_range = _checks.check_range(tuple(shear[:2]), "shear")
                y_range: tuple[float, float] | None = _checks.check_range(tuple(shear[2:]), "shear")
            else:
                x_range, y_range = _symmetric(shear, "shear"), None
            for bound in (*x_range, *(y_range or ())):
                if not -90.0 < bound < 90.0:
                    raise ValueError(f"shear angles must lie in (-90, 90) degrees, got {shear!r}")
            self.shear_x = Range(x_range, domain=(-90.0, 90.0), learnable=learnable)
            if y_range is not None:
                self.shear_y = Range(y_range, domain=(-90.0, 90.0), learnable=learnable)
        self.center = _check_center(center)

    def max_shrink(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> float | None:
        # Rotations and translations keep lengths: without scale or shear ranges nothing shrinks, and
        # a fixed scale range shrinks by at most 1 / min; otherwise (shear, learnable scale) unbounded.
        if self.shear_x is None and self.shear_y is None:
            if self.scale is None:
                return 1.0
            if self.scale.fixed_values is not None:
                return 1.0 / self.scale.fixed_values[0]
        return None

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> AffineParams:
        batch, height, width = batch_shape(images)
        device, dtype = images.device, param_dtype(images)
        noise = distributions.uniform((batch, 6), generator, device, dtype)
        applied = self.draw_applied(batch, generator, device, dtype)

        always = self.always  # applied is all ones: no blend needed

        def draw(rng: Range | None, column: int, identity: float) -> Tensor:
            if rng is None:
                return torch.full_like(applied, identity)
            value = rng.sample(noise[:, column])
            return value if always else where_applied(applied, value, identity)

        # Few ops for the ranges not given (small batches cost per op): zeros in one go.
        angle = draw(self.degrees, 0, 0.0)
        if self.translate_x is None and self.translate_y is None:
            translate = applied.new_zeros(batch, 2)
        else:
            translate = torch.stack([draw(self.translate_x, 1, 0.0) * width, draw(self.translate_y, 2, 0.0) * height], dim=-1)
        scale = draw(self.scale, 3, 1.0)
        if self.shear_x is None and self.shear_y is None:
            shear = applied.new_zeros(batch, 2)
        else:
            shear = torch.stack([draw(self.shear_x, 4, 0.0), draw(self.shear_y, 5, 0.0)], dim=-1)
        center = _center(self.center, batch, height, width, angle)
        theta = daf.to_theta(affine_matrix(angle, translate, scale, shear, center, (height, width)))
        return AffineParams(
            theta=theta,
            size=(height, width),
            in_size=(height, width),
            applied=applied,
            angle=angle,
            translate=translate,
            scale=scale,
            shear=shear,
            center=center,
        )


class RandomRotation(GeometricTransform):
    """Rotate each sample by a random angle, as torchvision's ``RandomRotation``.

    Args:
        degrees: ``d`` (angles in ``[-d, d]``) or ``(min, max)``, counter-clockwise on screen
            like ``torchvision.transforms.v2.functional.rotate``.
        expand: enlarge the output to hold the whole rotated image. The batch shares one
            output size, so it is the canvas of the worst angle of ``degrees``
            (:func:`expanded_size`); every sample is rotated about the image centre and centred
            in it. With a fixed angle (``degrees=(a, a)``) this is torchvision's ``expand=True``.
            It needs fixed ``degrees`` (not ``learnable``: the size must not depend on a
            parameter) and no ``center`` (as torchvision, which assumes the image centre).
        interpolation: ``InterpolationMode.NEAREST`` by default (torchvision's); ``learnable``
            needs ``BILINEAR`` or ``BICUBIC``.
        center: pixel ``(x, y)`` centre of rotation; default the image centre.
        fill: the constant shown outside the image, a number or one per channel.
        p: keyword-only: probability of rotating a sample; the others get angle 0.
        learnable: keyword-only: make the angle range (and ``p`` when ``p < 1``) trainable.
        padding_mode, temperature: keyword-only, see :class:`~diffaug.transforms.base.GeometricTransform`.
            A rotation never shrinks, so there is no ``antialias``.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 1, 6, 6)
        >>> out = da.RandomRotation(degrees=(90, 90), interpolation="bilinear")(images)
        >>> torch.allclose(out, images.rot90(1, dims=(-2, -1)), atol=1e-5)
        True
        >>> # 20 x 40 turned 30 degrees spans 40 cos 30 + 20 sin 30 = 44.6 px across, rounded outwards at both ends
        >>> da.RandomRotation(degrees=30, expand=True)(torch.rand(2, 1, 20, 40)).shape
        torch.Size([2, 1, 38, 46])
    """

    def __init__(
        self,
        degrees: float | Sequence[float],
        interpolation: object = "nearest",
        expand: bool = False,
        center: Sequence[float] | None = None,
        fill: float | Sequence[float] = 0,
        *,
        p: float = 1.0,
        learnable: bool = False,
        padding_mode: str = "constant",
        temperature: float = 0.1,
    ) -> None:
        super().__init__(
            interpolation=interpolation,
            padding_mode=padding_mode,
            antialias=False,  # lengths are kept: nothing to filter
            fill=fill,
            p=p,
            learnable=learnable,
            temperature=temperature,
        )
        self.degrees = Range(_symmetric(degrees, "degrees"), domain=(-math.inf, math.inf), learnable=learnable)
        self.center = _check_center(center)
        if expand and (learnable or center is not None):
            raise ValueError(
                "expand=True needs fixed degrees and center=None: the batch's output size comes from the degrees "
                f"range and the image centre; got learnable={learnable!r}, center={center!r}"
            )
        self.expand = bool(expand)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> RotationParams:
        batch, height, width = batch_shape(images)
        device, dtype = images.device, param_dtype(images)
        noise = distributions.uniform((batch,), generator, device, dtype)
        applied = self.draw_applied(batch, generator, device, dtype)
        angle = self.degrees.sample(noise)
        angle = angle if self.always else where_applied(applied, angle, 0.0)
        center = _center(self.center, batch, height, width, angle)
        zero2 = torch.zeros_like(center)
        out_size = (height, width)
        shift = zero2
        if self.expand:
            low, high = self.degrees.fixed_values or (0.0, 0.0)
            out_size = expanded_size((low, high), height, width)
            # Centre the image in the larger canvas: move the content by half the growth.
            shift = center.new_tensor([(out_size[1] - width) / 2.0, (out_size[0] - height) / 2.0]).expand(batch, 2)
        # torchvision's rotate is its affine with the angle negated.
        matrix = affine_matrix(-angle, shift, torch.ones_like(angle), zero2, center, (height, width), out_size)
        return RotationParams(
            theta=daf.to_theta(matrix), size=out_size, in_size=(height, width), applied=applied, angle=angle, center=center
        )


class CenterCrop(GeometricTransform):
    """Crop the centre of each sample, as torchvision's ``CenterCrop`` (zeros where the crop is larger).

    The crop's corner is torchvision's (rounded to whole pixels), so the output equals
    ``torchvision.transforms.v2.functional.center_crop`` (to float rounding). ``interpolation``
    and ``padding_mode`` (keyword-only) matter only inside :class:`diffaug.Compose`, where the
    crop joins a fused warp.

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.rand(2, 3, 10, 12)
        >>> torch.allclose(da.CenterCrop(4)(images), images[..., 3:7, 4:8], atol=1e-5)
        True
    """

    def __init__(self, size: int | Sequence[int], *, interpolation: object = "bilinear", padding_mode: str = "constant") -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, antialias=False)  # never shrinks
        self.size = output_size(size)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> CropParams:
        batch, height, width = batch_shape(images)
        crop_h, crop_w = self.size

        def corner(crop: int, full: int) -> int:
            # torchvision pads a too-small image by (crop - full) // 2 before, then centres with round().
            before = (crop - full) // 2 if crop > full else 0
            after = (crop - full + 1) // 2 if crop > full else 0
            return int(round((full + before + after - crop) / 2.0)) - before

        top, left = corner(crop_h, height), corner(crop_w, width)
        box = torch.tensor([left, top, left + crop_w, top + crop_h], device=images.device, dtype=param_dtype(images))
        return box_params(box.expand(batch, 4), self.size, (height, width))


class RandomCrop(GeometricTransform):
    """Crop a random window of ``size`` from each sample, as torchvision's ``RandomCrop``.

    Positions are whole pixels drawn uniformly per sample (so crops are exact slices, as in
    torchvision); ``padding`` virtually pads the image first and ``pad_if_needed`` pads a side
    shorter than the crop by the difference on both ends (torchvision's rule).

    Args:
        size: output ``(h, w)`` or an int.
        padding: ``None``, an int (all sides), ``(lr, tb)`` or ``(left, top, right, bottom)``.
        pad_if_needed: pad sides shorter than the crop.
        fill: what ``padding_mode="constant"`` pads with: a number or one per channel.
        padding_mode: torchvision's ``"constant"``, ``"edge"``, ``"reflect"`` (mirror without
            repeating the edge pixel) or ``"symmetric"`` (mirror repeating it), or the warp's
            names (``"zeros"``, ``"border"``, ``"reflection"`` = symmetric). Crops are whole
            pixels, so the output equals torchvision's pad-then-crop, also far beyond the image
            (where ``torch.nn.functional.pad`` would refuse a reflection wider than the image).
        interpolation: keyword-only; matters only inside :class:`diffaug.Compose` (whole-pixel
            crops sample pixel centres).

    Examples:
        >>> import torch, diffaug as da
        >>> images = torch.arange(36.0).reshape(1, 1, 6, 6)
        >>> t = da.RandomCrop(3)
        >>> params = t.make_params(images)
        >>> l, tp = params.boxes[0, :2].long().tolist()
        >>> torch.allclose(t.transform(images, params), images[..., tp:tp + 3, l:l + 3], atol=1e-4)
        True
    """

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: float | Sequence[float] = 0,
        padding_mode: str = "constant",
        *,
        interpolation: object = "bilinear",
    ) -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, antialias=False, fill=fill)  # never shrinks
        self.size = output_size(size)
        self.padding = self._parse_padding(padding)
        self.pad_if_needed = bool(pad_if_needed)

    @staticmethod
    def _parse_padding(padding: object) -> tuple[int, int, int, int]:
        """-> ``(left, top, right, bottom)``."""
        if padding is None:
            return 0, 0, 0, 0
        values = [padding] if isinstance(padding, int) else padding
        if (
            not isinstance(values, Sequence)
            or len(values) not in (1, 2, 4)
            or not all(isinstance(v, int) and v >= 0 for v in values)
        ):
            raise ValueError(f"padding must be None, an int >= 0 or a sequence of 1, 2 or 4 ints >= 0, got {padding!r}")
        if len(values) == 1:
            return values[0], values[0], values[0], values[0]
        if len(values) == 2:
            return values[0], values[1], values[0], values[1]
        return values[0], values[1], values[2], values[3]

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> CropParams:
        batch, height, width = batch_shape(images)
        left_pad, top_pad, right_pad, bottom_pad = self.padding
        padded_h, padded_w = height + top_pad + bottom_pad, width + left_pad + right_pad
        crop_h, crop_w = self.size
        if self.pad_if_needed and padded_h < crop_h:
            top_pad += crop_h - padded_h
            padded_h += 2 * (crop_h - padded_h)
        if self.pad_if_needed and padded_w < crop_w:
            left_pad += crop_w - padded_w
            padded_w += 2 * (crop_w - padded_w)
        if padded_h < crop_h or padded_w < crop_w:
            raise ValueError(f"crop size {(crop_h, crop_w)} is larger than the (padded) image {(padded_h, padded_w)}")
        dtype = param_dtype(images)
        noise = distributions.uniform((batch, 2), generator, images.device, dtype)
        # randint(0, n + 1) as floor(u * (n + 1)), clamped against u rounding up to 1.
        slack = noise.new_tensor([padded_w - crop_w + 1.0, padded_h - crop_h + 1.0])
        offset = torch.minimum(torch.floor(noise * slack), slack - 1)
        left = offset[:, 0] - left_pad
        top = offset[:, 1] - top_pad
        boxes = torch.stack([left, top, left + crop_w, top + crop_h], dim=-1)
        return box_params(boxes, self.size, (height, width))


class Resize(GeometricTransform):
    """Resize every sample, as torchvision's ``Resize``.

    Args:
        size: ``(h, w)``; or an int / ``[s]``: the smaller edge becomes ``s`` and the other
            keeps the aspect ratio (``int(s * long / short)``, torchvision's rounding).
        interpolation: ``InterpolationMode.BILINEAR`` by default.
        max_size: with an int ``size``, the longer edge is capped at ``max_size``.
        antialias: low-pass filter when shrinking; ``None`` (the default): on unless
            ``interpolation`` is nearest, see :class:`~diffaug.transforms.base.GeometricTransform`.

    Examples:
        >>> import torch, diffaug as da
        >>> da.Resize(16)(torch.rand(2, 3, 32, 48)).shape
        torch.Size([2, 3, 16, 24])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: object = "bilinear",
        max_size: int | None = None,
        antialias: bool | None = None,
    ) -> None:
        # Edge padding: the edge pixels' outer halves sample beyond the image when enlarging;
        # repeating the edge there is what F.interpolate and torchvision's resize do.
        super().__init__(interpolation=interpolation, padding_mode="edge", antialias=antialias)
        if isinstance(size, int) and not isinstance(size, bool):
            size = [size]
        if not isinstance(size, Sequence) or len(size) not in (1, 2) or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"size must be a positive int, [s] or (h, w), got {size!r}")
        if max_size is not None and (len(size) != 1 or max_size <= size[0]):
            raise ValueError(f"max_size needs an int size smaller than it, got size={size!r}, max_size={max_size!r}")
        self.size_arg = tuple(size)
        self.max_size = max_size

    def max_shrink(self, in_size: tuple[int, int], out_size: tuple[int, int]) -> float:
        return shrink_inside(in_size, out_size)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """The output ``(h, w)`` for an input of ``(height, width)``."""
        if len(self.size_arg) == 2:
            return int(self.size_arg[0]), int(self.size_arg[1])
        short, long = min(height, width), max(height, width)
        new_short, new_long = int(self.size_arg[0]), int(self.size_arg[0] * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        if new_short < 1:
            raise ValueError(f"max_size={self.max_size} leaves no pixel on the short side of a {height}x{width} image")
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def make_params(self, images: Tensor, generator: torch.Generator | None = None) -> Params:
        batch, height, width = batch_shape(images)
        dtype = param_dtype(images)
        theta = daf.to_theta(daf.identity(batch, images.device, dtype))
        applied = torch.ones(batch, device=images.device, dtype=dtype)
        return Params(theta=theta, size=self.resized_size(height, width), in_size=(height, width), applied=applied)
