"""Constructors against torchvision v2's: the same positional parameters (names, order, kinds,
defaults), diffaug's additions keyword-only, one antialias rule, and torchvision's positional
call forms giving torchvision's result (images, boxes, keypoints)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode

import diffaug as da

NEAREST, BILINEAR, BICUBIC = InterpolationMode.NEAREST, InterpolationMode.BILINEAR, InterpolationMode.BICUBIC

# The deliberate differences from torchvision's signatures; everything not listed must equal torchvision's.
#
# Defaults that differ, (class, parameter) -> diffaug's default:
DEFAULTS: dict[tuple[str, str], object] = {
    # None means on unless interpolation is nearest: torchvision's True, which it ignores for nearest. Here an
    # explicit True with nearest is a ValueError instead of being ignored (see GeometricTransform).
    ("RandomResizedCrop", "antialias"): None,
    ("Resize", "antialias"): None,
}
# diffaug's additions, all keyword-only (after the `*`), in order. `p` where torchvision has none (it draws
# per sample, so p=1.0 is torchvision's "always"); `learnable`/`temperature` for learnable ranges and p;
# `padding_mode` on the warps (torchvision's affine/rotate only fill); `antialias` on RandomAffine (it can
# shrink; torchvision's cannot filter); `interpolation` on the crops, which matters only inside Compose
# (a fused warp); CenterCrop's `padding_mode` likewise.
EXTRAS: dict[str, list[str]] = {
    "RandomResizedCrop": ["p", "learnable", "padding_mode", "temperature"],
    "Resize": [],
    "RandomRotation": ["p", "learnable", "padding_mode", "temperature"],
    "RandomAffine": ["p", "learnable", "padding_mode", "antialias", "temperature"],
    "RandomHorizontalFlip": ["learnable", "temperature"],
    "RandomVerticalFlip": ["learnable", "temperature"],
    "RandomCrop": ["interpolation"],
    "CenterCrop": ["interpolation", "padding_mode"],
}
# Not compared parameter by parameter: Compose (torchvision's takes one list; diffaug's takes that list, or
# the modules as separate arguments like nn.Sequential, plus keyword-only warp overrides).


def same_default(name: str, ours: object, theirs: object) -> bool:
    if name == "interpolation":  # torchvision spells its defaults as the enum's value
        return InterpolationMode(getattr(ours, "value", ours)) == InterpolationMode(getattr(theirs, "value", theirs))
    return type(ours) is type(theirs) and ours == theirs


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_positional_parameters_are_torchvisions(name):
    ours = list(inspect.signature(getattr(da, name)).parameters.values())
    theirs = list(inspect.signature(getattr(T, name)).parameters.values())
    positional = [p for p in ours if p.kind is not p.KEYWORD_ONLY]
    assert [(p.name, p.kind) for p in positional] == [(p.name, p.kind) for p in theirs]
    for mine, tv in zip(positional, theirs, strict=True):
        expected = DEFAULTS.get((name, mine.name), tv.default)
        assert same_default(mine.name, mine.default, expected), (name, mine.name, mine.default, expected)
        if (name, mine.name) in DEFAULTS:  # the list stays honest: a listed difference is a difference
            assert not same_default(mine.name, mine.default, tv.default)
    assert [p.name for p in ours if p.kind is p.KEYWORD_ONLY] == EXTRAS[name]


def geometric_classes() -> list[type]:
    found = [getattr(da, name) for name in da.__all__]
    return [c for c in found if inspect.isclass(c) and issubclass(c, da.GeometricTransform) and c is not da.GeometricTransform]


def test_no_constructor_keeps_the_old_mode_keyword():
    constructors: list[Callable[..., object]] = [*geometric_classes(), da.Compose, da.MultiCrop.dino]
    for constructor in constructors:
        assert "mode" not in inspect.signature(constructor).parameters, constructor


@pytest.mark.parametrize("cls", [da.ZoomCrop, da.BoxCrop])
def test_diffaug_only_transforms_use_torchvisions_names(cls):
    params = inspect.signature(cls).parameters
    for name, default in {"interpolation": "bilinear", "padding_mode": "constant", "fill": 0, "antialias": None}.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and same_default(name, params[name].default, default)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name in ("p", "learnable", "temperature"))


# --------------------------------------------------------------------------- one antialias rule
REQUIRED = {"size": 8, "degrees": 10.0}
NEVER_SHRINK = {"RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "CenterCrop", "RandomCrop"}


@pytest.mark.parametrize("cls", geometric_classes(), ids=lambda c: c.__name__)
def test_one_antialias_rule_for_every_transform(cls):
    params = inspect.signature(cls).parameters
    required = {name: REQUIRED[name] for name, p in params.items() if p.default is p.empty}

    def build(**kwargs: object) -> da.GeometricTransform:
        return cls(**required, **kwargs)

    if "antialias" not in params:  # it must be one that never shrinks, and then it never filters
        assert cls.__name__ in NEVER_SHRINK
        assert build().antialias is False
        return
    assert params["antialias"].default is None
    default = build()
    assert default.antialias is (default.mode != "nearest")
    for interpolation in ("bilinear", BILINEAR, "bicubic", BICUBIC):
        assert build(interpolation=interpolation).antialias is True
        assert build(interpolation=interpolation, antialias=False).antialias is False
    for interpolation in ("nearest", NEAREST):
        assert build(interpolation=interpolation).antialias is False
        assert build(interpolation=interpolation, antialias=False).antialias is False
        with pytest.raises(ValueError, match="antialias"):
            build(interpolation=interpolation, antialias=True)


def test_multicrop_and_compose_follow_the_rule():
    assert inspect.signature(da.MultiCrop.dino).parameters["antialias"].default is None
    assert inspect.signature(da.Compose).parameters["antialias"].default is None  # None: as the fused steps ask
    crops = [m for m in da.MultiCrop.dino(32, 16, 1, 1).modules() if isinstance(m, da.RandomResizedCrop)]
    assert len(crops) == 2 and all(c.antialias for c in crops)
    crops = [m for m in da.MultiCrop.dino(32, 16, 1, 1, antialias=False).modules() if isinstance(m, da.RandomResizedCrop)]
    assert not any(c.antialias for c in crops)


@pytest.mark.parametrize("cls", [da.RandomRotation, da.RandomAffine, da.RandomResizedCrop, da.ZoomCrop])
def test_learnable_with_nearest_is_refused_early(cls):
    required = {name: REQUIRED[name] for name, p in inspect.signature(cls).parameters.items() if p.default is p.empty}
    with pytest.raises(ValueError, match="interpolation=InterpolationMode.BILINEAR"):
        cls(**required, interpolation=NEAREST, learnable=True)
    assert cls(**required, interpolation=BILINEAR, learnable=True).mode == "bilinear"


def test_padding_modes_take_torchvisions_names():
    for tv_name, warp_name in {"constant": "zeros", "edge": "border", "reflect": "reflect", "symmetric": "reflection"}.items():
        assert da.RandomAffine(10, padding_mode=tv_name).padding_mode == warp_name
        assert da.RandomAffine(10, padding_mode=warp_name).padding_mode == warp_name
    with pytest.raises(ValueError, match="padding_mode"):
        da.RandomRotation(10, padding_mode="wrap")
    with pytest.raises(ValueError, match="interpolation"):
        da.RandomRotation(10, InterpolationMode.LANCZOS)


# --------------------------------------------------------------------------- torchvision's call forms
def smooth(height: int, width: int) -> torch.Tensor:
    """A band-limited float64 image (C, H, W), so resampling differences stay small."""
    y = (torch.arange(height, dtype=torch.float64) + 0.5)[:, None] / height
    x = (torch.arange(width, dtype=torch.float64) + 0.5)[None, :] / width
    planes = [torch.sin(2 * math.pi * (1.3 * x + 0.7 * y) + c) + torch.cos(2 * math.pi * (0.4 * x - 1.1 * y)) for c in range(2)]
    return torch.stack(planes) * 0.25 + 0.5


def targets(canvas: tuple[int, int]) -> tuple[tv_tensors.BoundingBoxes, tv_tensors.KeyPoints]:
    """Boxes and keypoints well inside the canvas (no clamping on either side)."""
    h, w = canvas
    boxes = tv_tensors.BoundingBoxes(
        [[0.35 * w, 0.35 * h, 0.6 * w, 0.55 * h], [0.4 * w, 0.45 * h, 0.65 * w, 0.6 * h]], format="XYXY", canvas_size=canvas
    )
    points = tv_tensors.KeyPoints([[0.4 * w, 0.5 * h], [0.6 * w, 0.45 * h]], canvas_size=canvas)
    return boxes, points


def plain(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.as_subclass(torch.Tensor)


def pure(outside_of_ones: torch.Tensor) -> torch.Tensor:
    """Pixels where torchvision's warp of a white image is fully inside or fully outside the image.

    torchvision blends the fill in with a warped mask after sampling with zeros, so the one-pixel
    band where the image edge meets the fill differs from diffaug's single blend by design
    (docs/migration.md); everywhere else the outputs agree.
    """
    inside = (outside_of_ones > 1 - 1e-9).all(0)
    outside = (outside_of_ones < 1e-9).all(0)
    assert (inside | outside).float().mean() > 0.6  # the band is thin: the comparison is not vacuous
    return inside | outside


def check_targets(
    ours: da.GeometricTransform, theirs: Callable[..., object], image: torch.Tensor, atol: float, *, indices: bool = False
) -> None:
    """Boxes equal torchvision's; keypoints too, up to the half pixel of their conventions.

    diffaug's keypoint ``(x, y)`` is a pixel index, its centre at ``x + 0.5`` in the boxes' continuous
    coordinates (so a keypoint follows the pixel it marks in the image). torchvision moves keypoints
    as continuous coordinates, like boxes, except in its flips (``indices``: ``x -> W - 1 - x``, as
    diffaug). Shifted by that half pixel where torchvision's convention is continuous, the two agree.
    """
    boxes, points = targets((image.shape[-2], image.shape[-1]))
    _, our_boxes, our_points = da.Compose([ours])(tv_tensors.Image(image), boxes, points)
    shift = 0.0 if indices else 0.5
    _, their_boxes, their_centres = theirs(tv_tensors.Image(image), boxes, tv_tensors.wrap(points + shift, like=points))  # type: ignore[misc]
    assert our_boxes.canvas_size == their_boxes.canvas_size and our_points.canvas_size == their_centres.canvas_size
    torch.testing.assert_close(plain(our_boxes), plain(their_boxes), rtol=0, atol=atol)
    torch.testing.assert_close(plain(our_points) + shift, plain(their_centres), rtol=0, atol=atol)


@pytest.mark.parametrize(
    "args",
    [
        ((30, 30), BILINEAR),  # interpolation second, as torchvision (not expand)
        ((30, 30), BILINEAR, True),  # expand third
        ((-20, -20), BILINEAR, False, [9.0, 6.0]),  # center fourth
        ((25, 25), BILINEAR, False, None, 0.5),  # fill fifth (torchvision rotates tensors without bicubic)
    ],
)
def test_rotation_call_forms(args):
    image = smooth(20, 28)
    ours, theirs = da.RandomRotation(*args), T.RandomRotation(*args)
    out, expected = ours(image), theirs(image)
    assert out.shape == expected.shape
    mask = pure(T.RandomRotation(*args[:4])(torch.ones_like(image)))
    torch.testing.assert_close(out[:, mask], expected[:, mask], rtol=0, atol=2e-4)
    if len(args) < 3 or not args[2]:
        # With expand, torchvision's own outputs disagree: its image canvas is (32, 36) here, its boxes' (32, 35).
        check_targets(ours, theirs, image, atol=1e-3)


def test_rotation_defaults_to_nearest_as_torchvision():
    image = smooth(20, 28)
    out, expected = da.RandomRotation((30, 30))(image), T.RandomRotation((30, 30))(image)
    mask = pure(T.RandomRotation((30, 30))(torch.ones_like(image)))
    # Nearest picks the same pixel except where a sample lands within rounding of a pixel boundary.
    assert (out[:, mask] != expected[:, mask]).float().mean() < 0.01


def test_affine_degenerate_call_form_is_torchvisions():
    image = smooth(20, 28)
    args = ((20, 20), (0.0, 0.0), (0.8, 0.8), (5, 5), BILINEAR, 0.5)  # shear (5, 5): x-shear of 5 degrees
    ours, theirs = da.RandomAffine(*args), T.RandomAffine(*args)
    out, expected = ours(image), theirs(image)
    coverage = T.RandomAffine(*args[:5])(torch.ones_like(image))
    mask = pure(coverage)
    torch.testing.assert_close(out[:, mask], expected[:, mask], rtol=0, atol=2e-4)
    outside = (coverage == 0).all(0)
    assert outside.any() and (out[:, outside] == 0.5).all()  # fill, sixth
    check_targets(ours, theirs, image, atol=1e-3)


def test_affine_call_form_with_ranges_is_torchvisions_on_each_samples_params():
    images = smooth(20, 28).expand(3, -1, -1, -1)
    ours = da.RandomAffine(20, (0.1, 0.1), (0.9, 1.1), 5, BILINEAR, 0.5)
    params = ours.make_params(images, generator=torch.Generator().manual_seed(0))
    out = ours.transform(images, params)
    for b in range(3):
        # torchvision rounds its drawn translation to whole pixels; F.affine takes any.
        kwargs = dict(
            angle=float(params.angle[b]),
            translate=params.translate[b].tolist(),
            scale=float(params.scale[b]),
            shear=params.shear[b].tolist(),
            interpolation=BILINEAR,
        )
        expected = F.affine(images[b], **kwargs, fill=0.5)
        mask = pure(F.affine(torch.ones_like(images[b]), **kwargs))
        torch.testing.assert_close(out[b][:, mask], expected[:, mask], rtol=0, atol=2e-4)


def test_resized_crop_call_form_is_torchvisions():
    image = smooth(16, 20)
    whole = (20 / 16, 20 / 16)  # scale 1 at the image's own ratio: torchvision's crop is the whole image
    args = (24, (1.0, 1.0), whole, BICUBIC)
    ours, theirs = da.RandomResizedCrop(*args), T.RandomResizedCrop(*args)
    out = ours(image)
    # torchvision's antialiased bicubic (its default antialias=True) is PIL's cubic (a = -0.5) even where it
    # enlarges; diffaug's is grid_sample's (a = -0.75), torchvision's with antialias=False. An enlargement is
    # never filtered, so that is the reference.
    expected = T.RandomResizedCrop(*args, False)(image)
    # diffaug samples outside the crop as padding_mode says ("constant" by default, zeros): the two output
    # pixels on each side whose bicubic taps reach beyond the image differ; "edge" repeats it as torchvision.
    torch.testing.assert_close(out[:, 2:-2, 2:-2], expected[:, 2:-2, 2:-2], rtol=0, atol=1e-6)
    torch.testing.assert_close(da.RandomResizedCrop(*args, padding_mode="edge")(image), expected, rtol=0, atol=1e-6)
    check_targets(ours, theirs, image, atol=1e-4)


def aliasing_image() -> torch.Tensor:
    return torch.rand(3, 64, 48, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(
    "ours, plain_warp, theirs",
    [
        (
            lambda: da.RandomResizedCrop(16, (1.0, 1.0), (0.75, 0.75), BILINEAR, True),
            lambda: da.RandomResizedCrop(16, (1.0, 1.0), (0.75, 0.75), BILINEAR, False),
            lambda: T.RandomResizedCrop(16, (1.0, 1.0), (0.75, 0.75), BILINEAR, True),
        ),
        (
            lambda: da.Resize(12, BILINEAR, None, True),
            lambda: da.Resize(12, BILINEAR, None, False),
            lambda: T.Resize(12, BILINEAR, None, True),
        ),
    ],
)
def test_positional_antialias_filters_as_torchvisions(ours, plain_warp, theirs):
    """A 4x shrink of noise: diffaug's filter is its pyramid, not torchvision's resize weights, so values
    differ (docs/antialias.md), but the filtered result is far nearer torchvision's than the plain warp."""
    image = aliasing_image()
    expected = theirs()(image)
    filtered, unfiltered = ours()(image), plain_warp()(image)
    assert filtered.shape == expected.shape
    assert (filtered - expected).abs().mean() < 0.5 * (unfiltered - expected).abs().mean()


def test_resize_call_forms():
    image = smooth(16, 24)
    ours, theirs = da.Resize(32, BILINEAR, None, True), T.Resize(32, BILINEAR, None, True)
    torch.testing.assert_close(ours(image), theirs(image), rtol=0, atol=1e-6)  # an enlargement: no filter
    check_targets(ours, theirs, image, atol=1e-4)
    assert da.Resize(16, BILINEAR, 20)(image).shape == T.Resize(16, BILINEAR, 20)(image).shape == (2, 13, 20)


@pytest.mark.parametrize("fill, padding_mode", [(0, "reflect"), (0.5, "constant"), (0, "edge"), (0, "symmetric")])
def test_random_crop_call_forms(fill, padding_mode):
    image = smooth(16, 16)
    # The padded image is as large as the crop: one position, the same for both.
    ours, theirs = da.RandomCrop(24, 4, False, fill, padding_mode), T.RandomCrop(24, 4, False, fill, padding_mode)
    torch.testing.assert_close(ours(image), theirs(image), rtol=0, atol=1e-6)
    if padding_mode == "constant":  # torchvision pads boxes only with a constant
        check_targets(ours, theirs, image, atol=1e-4)
    # A smaller crop: diffaug draws each sample's position; torchvision's pad-then-crop at that position.
    crop = da.RandomCrop(12, 4, False, fill, padding_mode)
    images = image.expand(4, -1, -1, -1)
    params = crop.make_params(images, generator=torch.Generator().manual_seed(1))
    padded = F.pad(image, [4], fill=fill, padding_mode=padding_mode)
    out = crop.transform(images, params)
    for b in range(4):
        left, top = (int(v) + 4 for v in params.boxes[b, :2])
        torch.testing.assert_close(out[b], F.crop(padded, top, left, 12, 12), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: da.RandomHorizontalFlip(1.0), lambda: T.RandomHorizontalFlip(1.0)),
        (lambda: da.RandomVerticalFlip(1.0), lambda: T.RandomVerticalFlip(1.0)),
        (lambda: da.CenterCrop(10), lambda: T.CenterCrop(10)),
    ],
)
def test_flip_and_center_crop_call_forms(ours, theirs):
    image = smooth(16, 20)
    torch.testing.assert_close(ours()(image), theirs()(image), rtol=0, atol=1e-6)
    check_targets(
        ours(), theirs(), image, atol=1e-4, indices=isinstance(ours(), (da.RandomHorizontalFlip, da.RandomVerticalFlip))
    )
