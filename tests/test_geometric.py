"""Geometric transforms against torchvision's functional ops on the same parameters."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as F
from hypothesis import given
from hypothesis import strategies as st

import diffaug as da
from diffaug.transforms.geometric import affine_matrix

BILINEAR = F.InterpolationMode.BILINEAR


def smooth(height: int, width: int, channels: int = 2, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A band-limited test image (a few low-frequency sinusoids), so bilinear sampling is near exact."""
    y = (torch.arange(height, dtype=dtype) + 0.5)[:, None] / height
    x = (torch.arange(width, dtype=dtype) + 0.5)[None, :] / width
    planes = [
        torch.sin(2 * math.pi * (1.3 * x + 0.7 * y) + c) + torch.cos(2 * math.pi * (0.4 * x - 1.1 * y) + 2 * c)
        for c in range(channels)
    ]
    return torch.stack(planes)


@given(
    angle=st.floats(-180, 180),
    tx=st.floats(-6, 6),
    ty=st.floats(-6, 6),
    scale=st.floats(0.5, 2.0),
    shear_x=st.floats(-40, 40),
    shear_y=st.floats(-40, 40),
    height=st.integers(5, 24),
    width=st.integers(5, 24),
    center=st.none() | st.tuples(st.floats(0, 20), st.floats(0, 20)),
)
def test_affine_matrix_matches_torchvision_affine(angle, tx, ty, scale, shear_x, shear_y, height, width, center):
    image = smooth(height, width)
    expected = F.affine(
        image, angle=angle, translate=[tx, ty], scale=scale, shear=[shear_x, shear_y], interpolation=BILINEAR, center=center
    )
    c = torch.tensor([[width / 2, height / 2] if center is None else list(center)], dtype=torch.float64)
    m = affine_matrix(
        torch.tensor([angle], dtype=torch.float64),
        torch.tensor([[tx, ty]], dtype=torch.float64),
        torch.tensor([scale], dtype=torch.float64),
        torch.tensor([[shear_x, shear_y]], dtype=torch.float64),
        c,
        (height, width),
    )
    out = da.functional.warp(image[None], m[:, :2], (height, width))[0]
    # torchvision builds its grid in float32: agreement to float32 rounding of the sample positions.
    assert (out - expected).abs().max() < 1e-4


@given(
    degrees=st.floats(-180, 180),
    height=st.integers(4, 20),
    width=st.integers(4, 20),
    center=st.none() | st.tuples(st.floats(0, 20), st.floats(0, 20)),
)
def test_rotation_matches_torchvision_rotate(degrees, height, width, center):
    image = smooth(height, width)
    expected = F.rotate(image, degrees, interpolation=BILINEAR, center=None if center is None else list(center))
    out = da.RandomRotation((degrees, degrees), BILINEAR, center=center)(image[None])[0]
    assert (out - expected).abs().max() < 1e-4


@given(
    degrees=st.floats(0, 90),
    translate=st.tuples(st.floats(0, 0.3), st.floats(0, 0.3)),
    scale=st.tuples(st.floats(0.6, 1.0), st.floats(1.0, 1.5)),
    shear=st.tuples(st.floats(-30, 0), st.floats(0, 30), st.floats(-20, 0), st.floats(0, 20)),
    seed=st.integers(0, 2**31),
)
def test_random_affine_samples_follow_their_params(degrees, translate, scale, shear, seed):
    """Each sample equals torchvision's affine with that sample's drawn params, and they lie in range."""
    t = da.RandomAffine(degrees, translate=translate, scale=scale, shear=shear, interpolation=BILINEAR, antialias=False)
    images = smooth(12, 16)[None].expand(3, -1, -1, -1)
    params = t.make_params(images, generator=torch.Generator().manual_seed(seed))
    assert ((params.angle >= -degrees - 1e-9) & (params.angle <= degrees + 1e-9)).all()
    assert (params.translate[:, 0].abs() <= translate[0] * 16 + 1e-9).all()
    assert (params.translate[:, 1].abs() <= translate[1] * 12 + 1e-9).all()
    assert ((params.scale >= scale[0] - 1e-9) & (params.scale <= scale[1] + 1e-9)).all()
    assert ((params.shear[:, 0] >= shear[0] - 1e-9) & (params.shear[:, 0] <= shear[1] + 1e-9)).all()
    assert ((params.shear[:, 1] >= shear[2] - 1e-9) & (params.shear[:, 1] <= shear[3] + 1e-9)).all()
    out = t.transform(images, params)
    for b in range(3):
        expected = F.affine(
            images[b],
            angle=float(params.angle[b]),
            translate=params.translate[b].tolist(),
            scale=float(params.scale[b]),
            shear=params.shear[b].tolist(),
            interpolation=BILINEAR,
        )
        assert (out[b] - expected).abs().max() < 1e-4


def test_flips_are_exact_and_per_sample():
    images = torch.rand(64, 2, 5, 7)
    for cls, dim, tv in ((da.RandomHorizontalFlip, -1, F.horizontal_flip), (da.RandomVerticalFlip, -2, F.vertical_flip)):
        t = cls()
        params = t.make_params(images, generator=torch.Generator().manual_seed(1))
        flipped = params.applied.bool()
        assert 0 < int(flipped.sum()) < 64  # p = 0.5 per sample
        out = t.transform(images, params)
        expected = torch.where(flipped[:, None, None, None], tv(images), images)
        assert torch.allclose(out, expected, atol=1e-6)
        assert torch.equal(images.flip(dim)[flipped], tv(images)[flipped])


def test_p_zero_gives_identity_params():
    images = smooth(10, 14)[None].expand(4, -1, -1, -1)
    t = da.RandomAffine(30, translate=(0.2, 0.2), scale=(0.5, 2.0), shear=20, p=0.0)
    params = t.make_params(images)
    assert torch.equal(params.angle, torch.zeros(4, dtype=torch.float64))
    assert torch.equal(params.scale, torch.ones(4, dtype=torch.float64))
    assert torch.allclose(t.transform(images, params), images, atol=1e-12)
    r = da.RandomRotation(45, p=0.0)
    assert torch.allclose(r(images), images, atol=1e-12)


@given(crop_h=st.integers(1, 20), crop_w=st.integers(1, 20), height=st.integers(3, 15), width=st.integers(3, 15))
def test_center_crop_matches_torchvision(crop_h, crop_w, height, width):
    image = torch.rand(3, height, width, dtype=torch.float64)
    expected = F.center_crop(image, [crop_h, crop_w])
    assert torch.allclose(da.CenterCrop((crop_h, crop_w))(image), expected, atol=1e-9)


@given(
    size=st.integers(2, 12),
    padding=st.none() | st.integers(0, 3) | st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    mode=st.sampled_from(["constant", "edge", "symmetric"]),
    seed=st.integers(0, 2**31),
)
def test_random_crop_equals_torchvision_pad_then_slice(size, padding, mode, seed):
    images = torch.rand(4, 2, 9, 10, dtype=torch.float64)
    t = da.RandomCrop(size, padding=padding, pad_if_needed=True, padding_mode=mode)
    params = t.make_params(images, generator=torch.Generator().manual_seed(seed))
    out = t.transform(images, params)
    left, top, right, bottom = t.padding
    # pad_if_needed: torchvision pads both sides of a too-short axis by the shortfall.
    short_h = max(0, size - (9 + top + bottom))
    short_w = max(0, size - (10 + left + right))
    pad = [left + short_w, top + short_h, right + short_w, bottom + short_h]
    padded = F.pad(images, pad, padding_mode=mode)
    boxes = params.boxes
    assert torch.equal(boxes, boxes.round())  # whole-pixel positions, as torchvision's randint
    for b in range(4):
        x0 = int(boxes[b, 0]) + pad[0]
        y0 = int(boxes[b, 1]) + pad[1]
        assert 0 <= x0 <= padded.shape[-1] - size and 0 <= y0 <= padded.shape[-2] - size
        assert torch.allclose(out[b], padded[b, :, y0 : y0 + size, x0 : x0 + size], atol=1e-9)


@given(size=st.integers(1, 40), height=st.integers(2, 30), width=st.integers(2, 30), max_extra=st.none() | st.integers(1, 20))
def test_resize_output_size_matches_torchvision(size, height, width, max_extra):
    max_size = None if max_extra is None else size + max_extra
    image = torch.rand(1, height, width)
    try:
        expected = F.resize(image, [size], max_size=max_size, antialias=False)
    except RuntimeError:  # torchvision computes an empty side: diffaug refuses it up front
        with pytest.raises(ValueError, match="max_size"):
            da.Resize(size, max_size=max_size)(image[None])
        return
    out = da.Resize(size, max_size=max_size)(image[None])
    assert out.shape[-2:] == expected.shape[-2:]


def test_resize_content_matches_interpolate_when_enlarging():
    image = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    out = da.Resize((15, 20))(image)
    expected = torch.nn.functional.interpolate(image, size=(15, 20), mode="bilinear", align_corners=False)
    assert torch.allclose(out, expected, atol=1e-9)


def test_learnable_ranges_and_probability_get_gradients():
    t = da.RandomAffine(10, translate=(0.1, 0.2), scale=(0.9, 1.1), shear=5, interpolation=BILINEAR, p=0.7, learnable=True)
    images = smooth(16, 16)[None].expand(8, -1, -1, -1).float() + 0.1
    out = t(images)
    (out * torch.linspace(0, 1, 16)).sum().backward()
    for name, param in t.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name

    flip = da.RandomHorizontalFlip(p=0.5, learnable=True)
    ramp = torch.linspace(0, 1, 8).expand(4, 1, 8, 8).contiguous()
    (flip(ramp) * ramp).sum().backward()
    assert flip.p_logit is not None and flip.p_logit.grad is not None and flip.p_logit.grad != 0


def test_affine_matrix_gradcheck():
    size = (6, 9)

    def fn(angle, translate, scale, shear):
        return affine_matrix(angle, translate, scale, shear, torch.tensor([[4.5, 3.0]], dtype=torch.float64), size)

    args = (
        torch.tensor([12.0], dtype=torch.float64, requires_grad=True),
        torch.tensor([[0.3, -1.2]], dtype=torch.float64, requires_grad=True),
        torch.tensor([1.3], dtype=torch.float64, requires_grad=True),
        torch.tensor([[7.0, -4.0]], dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(fn, args)


@pytest.mark.parametrize("out_size", [None, (11, 7)])
def test_affine_matrix_is_the_product_of_the_pixel_space_helpers(out_size):
    # affine_matrix is a closed form; this is the product its docstring says it equals.
    g = torch.Generator().manual_seed(0)
    n, size, rad = 64, (6, 9), math.pi / 180.0

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    angle, translate, scale = draw(n) * 360 - 180, (draw(n, 2) - 0.5) * 8, draw(n) * 1.5 + 0.3
    shear, center = (draw(n, 2) - 0.5) * 80, draw(n, 2) * 9
    (cx, cy), (tx, ty), (sx, sy), zero = center.unbind(-1), translate.unbind(-1), (shear * rad).unbind(-1), torch.zeros(n)
    content = (
        da.functional.translate_matrix(cx + tx, cy + ty)
        @ da.functional.rotate_matrix(-angle * rad)
        @ da.functional.scale_matrix(scale, scale)
        @ da.functional.shear_matrix(zero.double(), -sy)
        @ da.functional.shear_matrix(-sx, zero.double())
        @ da.functional.translate_matrix(-cx, -cy)
    )
    product = da.functional.normalized_from_pixel_matrix(da.functional.invert(content), size, out_size or size)
    closed = affine_matrix(angle, translate, scale, shear, center, size, out_size)
    torch.testing.assert_close(closed, product, rtol=0, atol=1e-12)


def test_relaxed_flip_blends_the_matrix():
    flip = da.RandomHorizontalFlip(p=0.5, learnable=True, temperature=0.5)
    flip.train()
    params = flip.make_params(torch.rand(256, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    scale_x = params.theta[:, 0, 0]
    assert torch.allclose(scale_x, 1 - 2 * params.applied)
    assert ((params.applied > 0.05) & (params.applied < 0.95)).any()  # relaxed in training mode
    flip.eval()
    hard = flip.make_params(torch.rand(256, 1, 4, 4), generator=torch.Generator().manual_seed(0)).applied
    assert ((hard == 0) | (hard == 1)).all()  # hard draws in eval mode: exactly 0 or 1, not within rounding
    assert 0 < hard.sum() < 256
    (gradient,) = torch.autograd.grad(hard.sum(), flip.p_logit)
    assert gradient.abs() > 0  # and still the relaxed draw's gradient (straight-through)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: da.RandomAffine((1, 2, 3)), "degrees"),
        (lambda: da.RandomAffine(-5), "degrees"),
        (lambda: da.RandomAffine((10, -10)), "degrees"),
        (lambda: da.RandomAffine(0, scale=(-1.0, 2.0)), "scale"),
        (lambda: da.RandomAffine(0, scale=(0.0, 2.0)), "scale"),
        (lambda: da.RandomAffine(0, translate=(0.5, 1.5)), "translate"),
        (lambda: da.RandomAffine(0, translate=(0.5,)), "translate"),
        (lambda: da.RandomAffine(0, shear=(1, 2, 3)), "shear"),
        (lambda: da.RandomAffine(0, shear=95), "shear"),
        (lambda: da.RandomAffine(0, center=(1, 2, 3)), "center"),
        (lambda: da.RandomRotation(10, BILINEAR, expand=True, learnable=True), "expand"),
        (lambda: da.RandomRotation(10, expand=True, center=(1.0, 2.0)), "expand"),
        (lambda: da.RandomCrop(4, padding_mode="wrap"), "padding_mode"),
        (lambda: da.RandomCrop(4, fill=1, padding_mode="edge"), "fill"),
        (lambda: da.RandomAffine(10, fill=0.5, padding_mode="border"), "fill"),
        (lambda: da.RandomCrop(4, padding=(1, 2, 3)), "padding"),
        (lambda: da.Resize(-3), "size"),
        (lambda: da.Resize((4, 5), max_size=10), "max_size"),
        (lambda: da.RandomHorizontalFlip(p=1.5), "p"),
    ],
)
def test_bad_arguments_raise_early(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_bad_images_raise():
    with pytest.raises(TypeError, match="images"):
        da.RandomAffine(10).make_params([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="larger than"):
        da.RandomCrop(20).make_params(torch.rand(1, 3, 8, 8))
