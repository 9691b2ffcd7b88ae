"""What is seen outside the image: reflect padding, constant fill, and the expanded rotation canvas.

References: ``numpy.pad`` (reflect / constant) of a wide margin, sampled through the same matrix
moved into the padded frame; torchvision's ``pad``, ``rotate`` and ``affine``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from torchvision.transforms.v2 import InterpolationMode

import diffaug as da
import diffaug.functional as daf
from diffaug.transforms.geometric import expanded_size
from tests._slicing import slices

MARGIN = 48


@st.composite
def warps(draw, max_side=9):
    """Images (B, C, H, W) float64 and random theta (B, 2, 3) that may reach well outside the image."""
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, channels, height, width, dtype=torch.float64, generator=generator)
    theta = torch.randn(batch, 2, 3, dtype=torch.float64, generator=generator)
    theta[:, :, 2] *= 2.0  # shifts up to a few image widths
    out_size = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    return images, theta, out_size


def in_padded_frame(theta, size, margin):
    """theta of the same warp, read from an image padded by ``margin`` pixels on every side."""
    height, width = size
    padded_h, padded_w = height + 2 * margin, width + 2 * margin
    # u_padded = (x + margin) * 2 / W_padded - 1 with x = (u + 1) W / 2.
    to_padded = torch.tensor(
        [
            [width / padded_w, 0.0, (width + 2 * margin) / padded_w - 1.0],
            [0.0, height / padded_h, (height + 2 * margin) / padded_h - 1.0],
            [0.0, 0.0, 1.0],
        ],
        dtype=theta.dtype,
    )
    return (to_padded @ daf.to_square(theta))[:, :2]


def reach(theta, size):
    """How far (pixels) beyond the image the output's sample points reach: they must stay inside the margin."""
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=theta.dtype)
    points = daf.apply_to_points(daf.to_square(theta), corners.expand(theta.shape[0], 4, 2))
    height, width = size
    beyond = torch.maximum(points.abs() - 1.0, torch.zeros(())) * torch.tensor([width / 2.0, height / 2.0], dtype=theta.dtype)
    return float(beyond.max())


@given(warps(), st.sampled_from(["bilinear", "nearest", "bicubic"]))
def test_reflect_equals_sampling_the_numpy_reflect_padded_image(case, mode):
    images, theta, out_size = case
    size = tuple(images.shape[-2:])
    if reach(theta, size) > MARGIN - 4:
        theta = theta * 0.25
    padded = torch.from_numpy(np.pad(images.numpy(), ((0, 0), (0, 0), (MARGIN, MARGIN), (MARGIN, MARGIN)), mode="reflect"))
    out = daf.warp(images, theta, out_size, mode=mode, padding_mode="reflect")
    expected = daf.warp(padded, in_padded_frame(theta, size, MARGIN), out_size, mode=mode, padding_mode="zeros")
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


@given(warps(), st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=3), st.sampled_from(["bilinear", "nearest", "bicubic"]))
def test_fill_equals_sampling_the_constant_padded_image(case, fill, mode):
    images, theta, out_size = case
    fill = fill[: images.shape[1]] if len(fill) >= images.shape[1] else fill[:1]
    size = tuple(images.shape[-2:])
    if reach(theta, size) > MARGIN - 4:
        theta = theta * 0.25
    values = torch.tensor(fill, dtype=images.dtype).expand(images.shape[1])
    padded = torch.stack(
        [torch.nn.functional.pad(images[:, c], (MARGIN,) * 4, value=float(values[c])) for c in range(images.shape[1])], dim=1
    )
    out = daf.warp(images, theta, out_size, mode=mode, fill=fill)
    expected = daf.warp(padded, in_padded_frame(theta, size, MARGIN), out_size, mode=mode)
    if mode == "bicubic":
        inside = (daf.warp(torch.ones_like(images[:, :1]), theta, out_size) > 1 - 1e-9).expand_as(out)
        torch.testing.assert_close(out[inside], expected[inside], rtol=0, atol=1e-9)
    else:
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


@given(st.integers(0, 2**31 - 1), st.floats(-180.0, 180.0), st.integers(0, 255))
def test_fill_agrees_with_torchvision_affine_where_its_coverage_is_whole_or_none(seed, angle, fill):
    """torchvision blends with its warped coverage mask; where that is 0 or 1 the two definitions agree."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(1, 3, 13, 17, dtype=torch.float64, generator=generator) * 255
    translate = [int(v) for v in torch.randint(-6, 7, (2,), generator=generator)]
    expected = TF.affine(
        images,
        angle=angle,
        translate=translate,
        scale=0.8,
        shear=[5.0, 0.0],
        fill=float(fill),
        interpolation=InterpolationMode.BILINEAR,
    )
    coverage = TF.affine(
        torch.ones_like(images[:, :1]),
        angle=angle,
        translate=translate,
        scale=0.8,
        shear=[5.0, 0.0],
        interpolation=InterpolationMode.BILINEAR,
    )
    t = da.RandomAffine((angle, angle), None, (0.8, 0.8), (5.0, 5.0), "bilinear", float(fill))
    params = t.make_params(images)
    params.theta = daf.to_theta(
        da.transforms.geometric.affine_matrix(
            torch.tensor([angle], dtype=torch.float64),
            torch.tensor([translate], dtype=torch.float64),
            torch.tensor([0.8], dtype=torch.float64),
            torch.tensor([[5.0, 0.0]], dtype=torch.float64),
            torch.tensor([[17 / 2.0, 13 / 2.0]], dtype=torch.float64),
            (13, 17),
        )
    )
    out = t.transform(images, params)
    decided = ((coverage < 1e-9) | (coverage > 1 - 1e-9)).expand_as(out)
    torch.testing.assert_close(out[decided], expected[decided], rtol=0, atol=1e-6)
    assert (coverage < 1e-9).any()  # the comparison covers filled pixels, not only the inside


@pytest.mark.parametrize("padding_mode", ["constant", "edge", "reflect", "symmetric"])
@given(
    seed=st.integers(0, 2**31 - 1),
    height=st.integers(2, 9),
    width=st.integers(2, 9),
    padding=st.tuples(*[st.integers(0, 5)] * 4),
    fill=st.floats(-1.0, 2.0),
)
def test_random_crop_equals_torchvision_pad_then_crop(padding_mode, seed, height, width, padding, fill):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(3, 2, height, width, dtype=torch.float64, generator=generator)
    left, top, right, bottom = padding
    crop = (height + top + bottom - 1, width + left + right - 1)
    if padding_mode in ("reflect", "symmetric"):  # torchvision mirrors once at most: reflect < size, symmetric <= size
        limit = 1 if padding_mode == "reflect" else 0
        left, top, right, bottom = (min(p, n - limit) for p, n in zip(padding, (width, height, width, height), strict=True))
        crop = (height + top + bottom - 1, width + left + right - 1)
    t = da.RandomCrop(
        crop, padding=[left, top, right, bottom], padding_mode=padding_mode, fill=fill if padding_mode == "constant" else 0
    )
    params = t.make_params(images, generator=torch.Generator().manual_seed(seed))
    out = t.transform(images, params)
    padded = TF.pad(images, [left, top, right, bottom], padding_mode=padding_mode, fill=fill if padding_mode == "constant" else 0)
    expected = slices(padded, params.boxes + torch.tensor([left, top, left, top]), crop)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


def test_random_crop_reflects_beyond_the_image_width():
    """Padding wider than the image keeps mirroring (numpy's reflect), where F.pad would refuse."""
    images = torch.rand(2, 1, 3, 4, dtype=torch.float64)
    t = da.RandomCrop((11, 14), padding=5, padding_mode="reflect")
    params = t.make_params(images)
    padded = torch.from_numpy(np.pad(images.numpy(), ((0, 0), (0, 0), (5, 5), (5, 5)), mode="reflect"))
    expected = slices(padded, params.boxes + 5, (11, 14))
    torch.testing.assert_close(t.transform(images, params), expected, rtol=0, atol=1e-9)


@given(st.integers(1, 70), st.integers(1, 70), st.one_of(st.floats(-400.0, 400.0), st.integers(-8, 8).map(lambda k: 45.0 * k)))
def test_expanded_size_is_torchvision_for_one_angle(height, width, angle):
    expected = TF.rotate(torch.zeros(1, height, width), angle, expand=True).shape[-2:]
    assert expanded_size((angle, angle), height, width) == tuple(expected)


@given(st.integers(1, 50), st.integers(1, 50), st.floats(-200.0, 200.0), st.floats(0.0, 200.0))
def test_expanded_size_over_a_range_is_the_largest_canvas_of_its_angles(height, width, low, span):
    high = low + span
    size = expanded_size((low, high), height, width)
    dense = [expanded_size((a, a), height, width) for a in np.linspace(low, high, 721).tolist()]
    assert size[0] >= max(h for h, _ in dense) and size[1] >= max(w for _, w in dense)
    # ... and no larger than the exact peak of the continuous half-extents allows (+1 for rounding outwards).
    peak_w = max(
        width * abs(math.cos(math.radians(a))) + height * abs(math.sin(math.radians(a))) for a in np.linspace(low, high, 20001)
    )
    peak_h = max(
        width * abs(math.sin(math.radians(a))) + height * abs(math.cos(math.radians(a))) for a in np.linspace(low, high, 20001)
    )
    assert size[1] <= math.ceil(peak_w) + 2 and size[0] <= math.ceil(peak_h) + 2


@given(st.integers(0, 2**31 - 1), st.integers(3, 24), st.integers(3, 24), st.floats(-180.0, 180.0))
def test_expand_equals_torchvision_rotate_for_a_fixed_angle(seed, height, width, angle):
    images = torch.rand(2, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    out = da.RandomRotation((angle, angle), "bilinear", expand=True)(images)
    expected = TF.rotate(images, angle, interpolation=InterpolationMode.BILINEAR, expand=True)
    assert out.shape == expected.shape
    # torchvision's quarter turns are rot90 (exact); elsewhere compare where its coverage mask is whole.
    coverage = TF.rotate(torch.ones_like(images[:, :1]), angle, interpolation=InterpolationMode.BILINEAR, expand=True)
    whole = (coverage > 1 - 1e-9).expand_as(out)
    torch.testing.assert_close(out[whole], expected[whole], rtol=0, atol=1e-9)
    assert whole.any()


def test_expand_keeps_every_sample_whole_and_centred():
    """Every angle of the range fits: the image's mass is all there, and its centroid sits in the middle."""
    height, width = 12, 30
    images = torch.zeros(64, 1, height, width, dtype=torch.float64)
    images[..., 1:-1, 1:-1] = 1.0  # a frame of zeros keeps the border's half pixel out of the sum
    t = da.RandomRotation((-70, 70), "bilinear", expand=True)
    params = t.make_params(images, generator=torch.Generator().manual_seed(0))
    out = t.transform(images, params)
    assert params.size == expanded_size((-70.0, 70.0), height, width)
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)), rtol=2e-2, atol=0)
    rows = torch.arange(out.shape[-2], dtype=torch.float64) + 0.5
    cols = torch.arange(out.shape[-1], dtype=torch.float64) + 0.5
    mass = out.sum(dim=(1, 2, 3))
    centre_y = (out.sum(dim=(1, 3)) * rows).sum(-1) / mass
    centre_x = (out.sum(dim=(1, 2)) * cols).sum(-1) / mass
    torch.testing.assert_close(centre_y, torch.full_like(centre_y, out.shape[-2] / 2.0), rtol=0, atol=0.05)
    torch.testing.assert_close(centre_x, torch.full_like(centre_x, out.shape[-1] / 2.0), rtol=0, atol=0.05)


def test_expand_targets_follow_the_image():
    """A keypoint rendered as a bright pixel lands where the transformed keypoint says, on the larger canvas."""
    images = torch.zeros(8, 1, 21, 33, dtype=torch.float64)
    points = torch.tensor([[[6.5, 4.5], [25.5, 15.5]]], dtype=torch.float64).expand(8, 2, 2)
    for k in range(2):
        images[:, 0, int(points[0, k, 1]), int(points[0, k, 0])] = 1.0
    pipe = da.Compose([da.RandomRotation(degrees=(-120, 120), expand=True), da.RandomHorizontalFlip()])
    out = pipe(images, keypoints=points)
    picture, moved = out["images"], out["keypoints"]
    rows = torch.arange(picture.shape[-2], dtype=torch.float64) + 0.5  # pixel centres
    cols = torch.arange(picture.shape[-1], dtype=torch.float64) + 0.5
    for b in range(8):
        for k in range(2):
            x, y = moved[b, k].tolist()
            near = ((rows[:, None] - y).abs() < 2.5) & ((cols[None, :] - x).abs() < 2.5)
            window = picture[b, 0] * near
            mass = window.sum()
            assert mass > 0.8  # the pixel's mass is near the keypoint ...
            centre = ((window.sum(1) * rows).sum() / mass, (window.sum(0) * cols).sum() / mass)
            assert abs(centre[0] - y) < 0.5 and abs(centre[1] - x) < 0.5  # ... centred on it to within half a pixel


@given(warps(max_side=6))
def test_gradients_through_reflect_and_fill(case):
    images, theta, out_size = case
    theta = theta.clone() * 0.7 + 0.013  # off pixel centres and mirror lines
    images.requires_grad_(True)
    theta.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda i, t: daf.warp(i, t, out_size, padding_mode="reflect"), (images, theta))
    assert torch.autograd.gradcheck(lambda i, t: daf.warp(i, t, out_size, fill=0.7), (images, theta))


def test_compose_fuses_with_the_first_steps_fill_and_padding():
    images = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    pipe = da.Compose([da.RandomAffine(degrees=40, scale=(0.5, 0.7), fill=(0.1, 0.5, 0.9)), da.RandomHorizontalFlip()])
    params = pipe.make_params(images)
    out = pipe.transform(images, params)
    torch.testing.assert_close(out, daf.warp(images, params.theta, (16, 16), fill=(0.1, 0.5, 0.9)), rtol=0, atol=1e-12)
    corner = out[:, :, 0, 0]  # shrunk to at most 0.7 and rotated about the centre: the corner is outside
    torch.testing.assert_close(corner, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).expand(4, 3), rtol=0, atol=1e-12)
    reflected = da.Compose([da.RandomRotation(30, padding_mode="reflect"), da.RandomVerticalFlip()])
    params = reflected.make_params(images)
    expected = daf.warp(images, params.theta, (16, 16), padding_mode="reflect")
    torch.testing.assert_close(reflected.transform(images, params), expected, rtol=0, atol=1e-12)


def test_uint8_images_take_a_fill_per_channel():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    theta = torch.tensor([[[1.0, 0.0, 1.5], [0.0, 1.0, 0.0]]]).expand(2, 2, 3)  # right half of the output is outside
    out = daf.warp(images, theta, (8, 8), fill=[255, 0, 128])
    assert out.dtype == torch.uint8
    assert out[:, :, :, -2:].eq(torch.tensor([255, 0, 128], dtype=torch.uint8).view(1, 3, 1, 1)).all()


def test_antialias_with_reflect_changes_nothing_where_nothing_shrinks():
    images = torch.rand(2, 3, 10, 12)
    theta = torch.tensor([[[0.8, 0.3, 0.9], [-0.2, 0.9, -1.2]]]).expand(2, 2, 3)
    plain = daf.warp(images, theta, (16, 16), padding_mode="reflect")
    assert torch.equal(daf.warp(images, theta, (16, 16), padding_mode="reflect", antialias=True), plain)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fill": 1.0, "padding_mode": "border"}, ValueError, "fill"),
        ({"fill": [0.1, 0.2]}, ValueError, "fill"),
        ({"fill": "white"}, TypeError, "fill"),
        ({"fill": [0.1, None, 0.3]}, TypeError, "fill"),
        ({"padding_mode": "wrap"}, ValueError, "padding_mode"),
    ],
)
def test_bad_fill_and_padding_raise_early(kwargs, error, match):
    with pytest.raises(error, match=match):
        daf.warp(torch.rand(1, 3, 4, 4), torch.eye(2, 3).unsqueeze(0), 4, **kwargs)


def test_expand_inverts_back_to_the_input_frame():
    """The inverse of an expanded rotation crops the canvas back to the input (smooth image: interpolation error only)."""
    height, width = 32, 48
    rows, cols = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    smooth = (torch.sin(2 * math.pi * cols / 40) * torch.cos(2 * math.pi * rows / 30)).to(torch.float64)
    images = smooth.expand(4, 1, height, width)
    pipe = da.Compose([da.RandomRotation((-40, 40), "bilinear", expand=True)])
    params = pipe.make_params(images, generator=torch.Generator().manual_seed(0))
    out = pipe.transform(images, params)
    assert out.shape[-2:] == expanded_size((-40.0, 40.0), height, width) != (height, width)
    back = pipe.inverse(out, params)
    assert back.shape == images.shape
    error = (back - images)[..., 1:-1, 1:-1].abs()  # the outermost pixels blend with the padding twice
    assert error.mean() < 1e-2 and error.max() < 5e-2  # a one-pixel shift would leave about 0.15


def test_zoom_out_shows_the_fill_around_the_image():
    images = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    t = da.ZoomCrop(16, zoom=(0.5, 0.5), fill=(0.1, 0.5, 0.9), antialias=False)
    out = t(images, zoom=torch.full((2,), 0.5, dtype=torch.float64), center=torch.zeros(2, 2, dtype=torch.float64))
    # Zoomed out by 2 about the centre: the image fills the middle 8 x 8, the fill the rest.
    torch.testing.assert_close(
        out[..., 4:12, 4:12], daf.crop(images, torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 2, dtype=torch.float64), 8)
    )
    fill = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).view(1, 3, 1)
    torch.testing.assert_close(out[..., :3, :], fill.expand(2, 3, 3 * 16).view(2, 3, 3, 16), rtol=0, atol=1e-12)
