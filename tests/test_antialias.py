"""Antialiased warps and crops: no change without shrinking, aliasing bounds, fidelity, gradients."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torchvision.transforms.v2 import functional as TF

import diffaug as da
from diffaug import functional as daf
from diffaug.functional.antialias import antialiased_sample, level_weights, pyramid_sizes


def sinusoid(n: int, frequency: float = 0.3, phase: float = 0.0, angle: float = 0.0) -> torch.Tensor:
    """``0.5 + 0.5 sin(2 pi f (x cos a + y sin a) + phase)`` at pixel centres, ``(1, 1, n, n)`` float64."""
    y, x = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    along = x * math.cos(angle) + y * math.sin(angle)
    return (0.5 + 0.5 * torch.sin(2 * math.pi * frequency * along + phase)).double().view(1, 1, n, n)


def zone_plate(n: int, low: float = 0.25, high: float = 0.5) -> torch.Tensor:
    """Rings from ``low`` to ``high`` cycles/pixel: all above the Nyquist limit once shrunk 2x or more."""
    y, x = torch.meshgrid(torch.arange(n) + 0.5 - n / 2, torch.arange(n) + 0.5 - n / 2, indexing="ij")
    r = torch.sqrt(x * x + y * y)
    phase = 2 * math.pi * (low * r + (high - low) * r * r / (2 * n / math.sqrt(2)))
    return (0.5 + 0.5 * torch.cos(phase)).double().view(1, 1, n, n)


def residual(out: torch.Tensor, margin: int = 2) -> float:
    """Root mean square distance to the ideal flat 0.5, away from the border."""
    return (out[..., margin:-margin, margin:-margin] - 0.5).square().mean().sqrt().item()


def whole(n: int) -> torch.Tensor:
    return torch.tensor([[0.0, 0.0, float(n), float(n)]], dtype=torch.float64)


# --------------------------------------------------------------------------- no change when not shrinking
@st.composite
def non_shrinking(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """Images and an affine theta (rotation, scale, shear, shift) whose output pixels span <= 1 input pixel."""
    height, width = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    out = (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
    angle = draw(st.floats(-math.pi, math.pi))
    shear = draw(st.floats(-0.5, 0.5))
    shift = (draw(st.floats(-4.0, 4.0)), draw(st.floats(-4.0, 4.0)))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(draw(st.integers(1, 3)), draw(st.integers(1, 3)), height, width, generator=g, dtype=torch.float64)
    pixel = daf.translate_matrix(torch.tensor(shift[0]), torch.tensor(shift[1]))
    pixel = pixel @ daf.rotate_matrix(torch.tensor(angle)) @ daf.shear_matrix(torch.tensor(shear), torch.tensor(0.0))
    pixel = pixel.double()
    theta = daf.normalized_from_pixel_matrix(pixel, (height, width), out)[:2].expand(images.shape[0], 2, 3)
    # Rescale so that the larger per-axis footprint is at most one input pixel.
    span = daf.output_pixel_scale(theta, (height, width), out).amax(-1)
    factor = draw(st.floats(0.2, 1.0)) / span.clamp(min=1e-6)
    theta = torch.cat([theta[..., :2] * factor.view(-1, 1, 1), theta[..., 2:]], dim=-1)
    return images, theta.contiguous(), out


@given(non_shrinking(), st.sampled_from(["bilinear", "bicubic"]), st.sampled_from(["zeros", "border", "reflection"]))
def test_no_shrink_gives_exactly_the_plain_warp(case, mode, padding_mode):
    images, theta, out = case
    plain = daf.warp(images, theta, out, mode=mode, padding_mode=padding_mode)
    aa = daf.warp(images, theta, out, mode=mode, padding_mode=padding_mode, antialias=True)
    assert torch.equal(aa, plain)


@given(st.integers(1, 20), st.integers(1, 20), st.integers(0, 10), st.integers(0, 10), st.integers(0, 8), st.integers(0, 8))
def test_crops_resized_up_or_kept_are_unchanged(crop_h, crop_w, top, left, extra_h, extra_w):
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    boxes = torch.tensor([[left, top, left + crop_w, top + crop_h]] * 2, dtype=torch.float64)
    size = (crop_h + extra_h, crop_w + extra_w)  # at least as large as the crop
    assert torch.equal(daf.crop(images, boxes, size, antialias=True), daf.crop(images, boxes, size))


def test_per_sample_amounts_in_one_batch():
    """A 0.9x crop (enlarged) and a 0.1x crop (shrunk 10x) in one batch: each as if alone."""
    images = torch.rand(2, 3, 320, 320, dtype=torch.float64)
    boxes = torch.tensor([[10.0, 20.0, 38.8, 48.8], [0.0, 0.0, 320.0, 320.0]], dtype=torch.float64)
    together = daf.crop(images, boxes, 32, antialias=True)
    for i in range(2):
        alone = daf.crop(images[i : i + 1], boxes[i : i + 1], 32, antialias=True)
        torch.testing.assert_close(together[i : i + 1], alone, rtol=0, atol=1e-12)
    assert torch.equal(together[0], daf.crop(images[:1], boxes[:1], 32)[0])
    # The shrunk one is filtered: far smoother than plain sampling of a noise image.
    assert together[1].std() < 0.5 * daf.crop(images[1:], boxes[1:], 32).std()


# --------------------------------------------------------------------------- aliasing
@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("pattern", ["sinusoid", "zone plate"])
def test_aliasing_within_twice_an_antialiased_resize(pattern, factor):
    n = 512
    image = sinusoid(n) if pattern == "sinusoid" else zone_plate(n)
    size = n // factor
    aa = residual(daf.crop(image, whole(n), size, antialias=True))
    reference = residual(F.interpolate(image, size=(size, size), mode="bilinear", antialias=True))
    plain = residual(daf.crop(image, whole(n), size))
    assert aa <= 2.0 * reference
    if factor == 4:
        assert aa <= plain / 10


# The top band's worst residual over the sweep below, as a fraction of 2 x the antialiased resize's
# + 0.005, per shrink: what the shipped levels give (``python benchmarks/antialias.py --only
# topband``). The bar (at most 1) holds at 2x and 2.5x (it was 11.7 and 1.95 before odd levels got
# the half-band filter) but not everywhere: near the resize's nulls (1/3 c/px at 3x, 1/4 at 4x, 1/6
# at 6x) it removes the band exactly and a pyramid of intermediate levels cannot, and 1.5x is
# hardly filtered; no deeper level map or cubic level filter met it without giving up the fidelity
# bar (docs/antialias.md, "The top band"). Pinned, so that a change that lets more of the band
# through fails here.
TOP_BAND_WORST = {1.5: 1.93, 2: 0.51, 2.5: 0.88, 3: 6.81, 4: 3.44, 5: 1.85, 6: 4.48, 8: 1.65}


@pytest.mark.parametrize("factor", sorted(TOP_BAND_WORST))
def test_top_band_residual_is_pinned_at_the_documented_trade_off(factor):
    """Every frequency from the new Nyquist limit to 0.5 c/px (six per shrink), whole image shrunk."""
    n = 240
    size = (round(n / factor),) * 2
    nyquist = 0.5 * size[0] / n
    theta = torch.eye(2, 3, dtype=torch.float64).unsqueeze(0)
    worst = 0.0
    for k in range(1, 7):
        wave = sinusoid(n, nyquist + k * (0.5 - nyquist) / 6, 0.3)
        bound = 2 * residual(F.interpolate(wave, size=size, mode="bilinear", antialias=True)) + 0.005
        worst = max(worst, residual(daf.warp(wave, theta, size, antialias=True)) / bound)
    assert worst <= TOP_BAND_WORST[factor] * 1.02
    if factor in (2, 2.5):  # the acceptance bar itself
        assert worst <= 1.0
    if factor in (1.5, 5, 8):  # away from the resize's nulls: within twice the bar
        assert worst <= 2.0


@settings(max_examples=25, deadline=None)
@given(st.floats(2.0, 8.0), st.floats(0.0, 2 * math.pi), st.floats(0.0, math.pi / 2), st.floats(0.0, 8.0), st.floats(0.0, 8.0))
def test_sinusoid_bound_over_shrink_factors_and_phases(factor, phase, angle, left, top):
    """Close to an antialiased resize of the same crop; where the resize's tent has a null the
    pyramid cannot follow it, so the bound adds a term that shrinks with the factor: 0.3 of plain
    sampling's residual times 2 / factor, that residual taken as at least 0.2 (its value at 2x,
    4x and 8x): with some phases it dips far lower, 0.105 at 3.34x, phase 0, where the pyramid's
    0.030 would otherwise fail a bound of 0.026 that says nothing about filtering."""
    n, out = 256, 24
    image = sinusoid(n, 0.3, phase, angle)
    side = out * factor
    box = torch.tensor([[left, top, left + side, top + side]], dtype=torch.float64)
    aa = residual(daf.crop(image, box, out, antialias=True), 1)
    plain = residual(daf.crop(image, box, out), 1)
    l0, t0, s = round(left), round(top), round(side)
    reference = residual(F.interpolate(image[..., t0 : t0 + s, l0 : l0 + s], size=(out, out), mode="bilinear", antialias=True), 1)
    assert aa <= 2.0 * reference + 0.3 * max(plain, 0.2) * 2.0 / factor


def test_rotated_warp_is_filtered_by_its_jacobian():
    """A 30 degree rotation that shrinks 4x: the footprint comes from the Jacobian, not a box."""
    n, out = 256, 64
    image = sinusoid(n, 0.3, 0.0, angle=0.4)
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    theta = torch.tensor([[[c, s, 0.0], [-s, c, 0.0]]], dtype=torch.float64)  # whole image, rotated
    torch.testing.assert_close(daf.output_pixel_scale(theta, (n, n), (out, out)), torch.full((1, 2), 4.0, dtype=torch.float64))
    # 0.7 of the extent keeps the rotated window inside the image; 44 outputs: 4.07 input pixels each.
    aa = daf.warp(image, theta * 0.7, (44, 44), antialias=True)
    plain = daf.warp(image, theta * 0.7, (44, 44))
    assert residual(aa, 4) < residual(plain, 4) / 10


def test_per_axis_filters_only_the_axis_that_shrinks():
    """Shrinking x by 4 and keeping y: with per_axis, a pattern constant along x is untouched;
    the default (one level from the more shrunk axis) blurs y too."""
    n = 64
    y = torch.arange(n, dtype=torch.float64) + 0.5
    rows = (0.5 + 0.5 * torch.sin(2 * math.pi * 0.2 * y)).view(1, 1, n, 1).expand(1, 1, n, n).contiguous()
    theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    size = (n, n // 4)
    plain = daf.warp(rows, theta, size)
    per_axis = antialiased_sample(rows, theta, size, per_axis=True)
    torch.testing.assert_close(per_axis[..., 2:-2, :], plain[..., 2:-2, :], rtol=0, atol=1e-6)
    isotropic = antialiased_sample(rows, theta, size)
    assert (isotropic - plain)[..., 2:-2, :].abs().max() > 0.05


@settings(max_examples=15, deadline=None)
@given(st.floats(0.0, 60.0), st.floats(0.0, 60.0), st.floats(80.0, 190.0), st.floats(0.7, 1.4), st.integers(8, 40))
def test_levels_stay_aligned_a_ramp_is_preserved(left, top, width, aspect, out):
    """Every filter is symmetric, so a linear ramp must come out as plain sampling gives it:
    a level shifted by any fraction of a pixel would show here."""
    n = 256
    y, x = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    ramp = (x / n + 2 * y / n).double().view(1, 1, n, n)
    box = torch.tensor([[left, top, left + width, top + min(width * aspect, 190.0)]], dtype=torch.float64)
    aa = daf.crop(ramp, box, out, antialias=True)
    plain = daf.crop(ramp, box, out)
    torch.testing.assert_close(aa[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], rtol=0, atol=2e-3)


# --------------------------------------------------------------------------- fidelity
def _astronaut() -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.astronaut().copy()).permute(2, 0, 1).unsqueeze(0).double() / 255.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(1.0 / (a - b).square().mean())).item()


@pytest.mark.parametrize("factor", [1.6, 1.8, 2, 2.5, 3, 4, 5, 6, 8])
def test_photo_fidelity_close_to_torchvision_against_lanczos(factor):
    """PSNR against Pillow's Lanczos resize of the integer crop, within 1 dB of torchvision's
    antialiased resize of the same crop (3x is the tightest: there both references sample on
    input pixel centres, which lifts them about 1 dB over 2.95x and 3.05x; see the docs)."""
    from PIL import Image

    image = _astronaut()
    pil = Image.fromarray(np.ascontiguousarray((image[0].permute(1, 2, 0) * 255).round().byte().numpy()))
    out = 56
    side = round(out * factor)
    left, top = (512 - side) // 3, (512 - side) // 2
    reference = np.asarray(pil.crop((left, top, left + side, top + side)).resize((out, out), Image.LANCZOS)).copy()
    reference = torch.from_numpy(reference).permute(2, 0, 1).unsqueeze(0).double() / 255.0
    box = torch.tensor([[left, top, left + side, top + side]], dtype=torch.float64)
    ours = _psnr(daf.crop(image, box, out, antialias=True), reference)
    torchvision = _psnr(TF.resize(image[..., top : top + side, left : left + side], [out, out], antialias=True), reference)
    assert ours >= torchvision - 1.0


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("per_axis", [False, True])
def test_gradcheck_images_and_theta(per_axis):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 2, 14, 13, generator=g, dtype=torch.float64, requires_grad=True)
    # Shrinks of about 2.6 and 1.8 (x) / 3.1 and 2.2 (y): between levels, away from the tent's kinks.
    theta = torch.tensor(
        [[[0.93, 0.05, 0.03], [-0.04, 0.87, -0.02]], [[0.62, -0.03, 0.1], [0.02, 0.68, 0.05]]], dtype=torch.float64
    ).requires_grad_()

    def fn(images, theta):
        return antialiased_sample(images, theta, (4, 5), per_axis=per_axis)

    assert torch.autograd.gradcheck(fn, (images, theta), atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.floats(0.5, 9.0), st.floats(0.5, 9.0), st.booleans(), st.integers(0, 2**31 - 1))
def test_blend_is_the_weighted_sum_of_the_level_samples(sx, sy, per_axis, seed):
    """The blend (a chain of lerps) equals sum_j w_j grid_sample(level_j) with the documented
    tent weights on l = 2 (log2 s - 0.55) - 0.4 clamp(log2 s - 1, 0, 0.5), level 0's being
    (1 - l) ** 1.5 (the rest to level 1), over every level the static shapes give; odd levels
    are resized after the half-band filter."""
    g = torch.Generator().manual_seed(seed)
    in_size, out = (37, 41), (5, 4)
    images = torch.rand(3, 2, *in_size, generator=g, dtype=torch.float64)
    shrinks = torch.tensor([[sx, sy], [sy, sx], [0.7, 0.7]], dtype=torch.float64)  # (x, y) per sample
    theta = torch.zeros(3, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = shrinks[:, 0] * out[1] / in_size[1]
    theta[:, 1, 1] = shrinks[:, 1] * out[0] / in_size[0]
    theta[:, :, 2] = torch.rand(3, 2, generator=g, dtype=torch.float64) * 0.4 - 0.2
    sizes = pyramid_sizes(in_size, out)
    depth = len(sizes) - 1

    def tent(s):
        octaves = torch.log2(s.clamp(min=1.0))
        level = (2 * (octaves - 0.55) - 0.4 * (octaves - 1).clamp(0, 0.5)).clamp(0, depth)
        weights = [(1 - (level - j).abs()).clamp(min=0) for j in range(depth + 1)]
        fading = (1 - level).clamp(min=0) ** 1.5
        weights[1] = weights[1] + weights[0] - fading
        weights[0] = fading
        return torch.stack(weights, -1)

    def resize(x, size):
        return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear", antialias=True)

    def halfband(x, odd, axis):
        """Odd levels: [-1, 4, 10, 4, -1] / 16 along ``axis`` first, edge pixels repeated."""
        if not odd:
            return x
        n = x.shape[axis]
        padded = torch.cat([x.narrow(axis, 0, 1)] * 2 + [x] + [x.narrow(axis, n - 1, 1)] * 2, dim=axis)
        return sum(c / 16 * padded.narrow(axis, k, n) for k, c in enumerate([-1, 4, 10, 4, -1]))

    grid = F.affine_grid(theta, [3, 2, *out], align_corners=False)
    expected = torch.zeros(3, 2, *out, dtype=torch.float64)
    if per_axis:
        wx, wy = tent(shrinks[:, 0]), tent(shrinks[:, 1])
        for jx in range(depth + 1):
            column = resize(halfband(images, jx % 2, -1), (in_size[0], sizes[jx][1]))
            for jy in range(depth + 1):
                level = resize(halfband(column, jy % 2, -2), (sizes[jy][0], sizes[jx][1]))
                expected += (wx[:, jx] * wy[:, jy]).view(-1, 1, 1, 1) * F.grid_sample(level, grid, align_corners=False)
    else:
        w = tent(shrinks.amax(-1))
        for j in range(depth + 1):
            level = resize(halfband(halfband(images, j % 2, -1), j % 2, -2), sizes[j])
            expected += w[:, j].view(-1, 1, 1, 1) * F.grid_sample(level, grid, align_corners=False)
    torch.testing.assert_close(antialiased_sample(images, theta, out, per_axis=per_axis), expected, rtol=0, atol=1e-12)


def test_theta_gradient_includes_the_amount_of_filtering():
    """Detaching the level weights changes d/dtheta: the blend between levels is differentiable."""
    g = torch.Generator().manual_seed(1)
    images = torch.rand(1, 1, 40, 40, generator=g, dtype=torch.float64)
    theta = torch.tensor([[[0.8, 0.0, 0.05], [0.0, 0.8, -0.05]]], dtype=torch.float64, requires_grad=True)
    (grad_full,) = torch.autograd.grad(antialiased_sample(images, theta, (8, 8)).square().sum(), theta)

    import diffaug.functional.antialias as module

    original = module.level_weights
    try:
        module.level_weights = lambda scale, depth: original(scale.detach(), depth)
        (grad_fixed,) = torch.autograd.grad(antialiased_sample(images, theta, (8, 8)).square().sum(), theta)
    finally:
        module.level_weights = original
    assert (grad_full - grad_fixed).abs().max() > 1e-6


def test_gradients_reach_rrc_scale_and_zoomcrop_zoom_with_antialias():
    images = torch.rand(4, 3, 64, 64)
    rrc = da.RandomResizedCrop(16, scale=(0.3, 0.9), learnable=True, antialias=True)
    rrc(images).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rrc.scale.parameters())
    zoom = torch.tensor([0.5, 0.8, 1.0, 1.5], requires_grad=True)
    da.ZoomCrop(32, antialias=True)(images, zoom=zoom, center=torch.zeros(4, 2)).sum().backward()
    assert zoom.grad is not None and torch.isfinite(zoom.grad).all() and zoom.grad.abs().sum() > 0


# --------------------------------------------------------------------------- dtypes, shapes, transforms
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8])
def test_dtypes_come_back_and_match_a_float64_pyramid(dtype):
    """Against an independent reference: the same values in float64 through the pure PyTorch
    pyramid (on the CPU, float32 and float64 run the compiled kernel)."""
    from diffaug.functional import _cpu_kernels

    g = torch.Generator().manual_seed(2)
    base = torch.rand(2, 3, 48, 40, generator=g)
    images = (base * 255).round().to(torch.uint8) if dtype == torch.uint8 else base.to(dtype)
    boxes = torch.tensor([[1.5, 2.0, 39.0, 45.5], [0.0, 0.0, 20.0, 30.0]])
    out = daf.crop(images, boxes, (12, 10), antialias=True)
    assert out.dtype == dtype and out.shape == (2, 3, 12, 10)
    with _cpu_kernels.disabled():
        expected = daf.crop(images.double(), boxes.double(), (12, 10), antialias=True)
    assert not torch.equal(expected, daf.crop(images.double(), boxes.double(), (12, 10)))  # the filter acts here
    # half precision: sampled in float32, rounded back; uint8: rounded to the nearest integer.
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 1e-5, torch.float64: 1e-12, torch.uint8: 0.5 + 1e-3}
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=tolerance[dtype])


def test_single_image_batch_index_and_empty_batch():
    images = torch.rand(3, 3, 40, 40)
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [5.0, 5.0, 35.0, 25.0]])
    index = torch.tensor([2, 0])
    gathered = daf.crop(images, boxes, 10, batch_index=index, antialias=True)
    torch.testing.assert_close(gathered, daf.crop(images[index], boxes, 10, antialias=True))
    single = daf.crop(images[0], boxes[0], 10, antialias=True)
    torch.testing.assert_close(single, daf.crop(images[:1], boxes[:1], 10, antialias=True)[0])
    empty = daf.crop(images[:0], boxes[:0], 10, antialias=True)
    assert empty.shape == (0, 3, 10, 10)


def test_transforms_pass_antialias_to_the_warp():
    images = torch.rand(3, 3, 96, 80)
    g = torch.Generator().manual_seed(3)
    rrc = da.RandomResizedCrop(24)
    assert rrc.antialias is True  # torchvision's default, within the measured cost budget (docs/antialias.md)
    params = rrc.make_params(images, generator=g)
    torch.testing.assert_close(rrc.transform(images, params), daf.crop(images, params.boxes, 24, antialias=True))
    plain = da.RandomResizedCrop(24, antialias=False)
    torch.testing.assert_close(plain.transform(images, params), daf.crop(images, params.boxes, 24))
    boxes = torch.tensor([[0.0, 0.0, 80.0, 96.0]] * 3)
    torch.testing.assert_close(da.BoxCrop(12, antialias=True)(images, boxes), daf.crop(images, boxes, 12, antialias=True))
    zoom = da.ZoomCrop(20, zoom=(0.5, 0.5), antialias=True)
    zparams = zoom.make_params(images, generator=g)
    torch.testing.assert_close(zoom.transform(images, zparams), daf.warp(images, zparams.theta, 20, antialias=True))


# --------------------------------------------------------------------------- bad input
def test_antialias_with_nearest_is_an_error():
    images = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="antialias"):
        daf.crop(images, torch.tensor([[0.0, 0.0, 8.0, 8.0]]), 4, mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="antialias"):
        daf.warp(images, torch.eye(2, 3).unsqueeze(0), 4, mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="antialias"):
        da.RandomResizedCrop(4, interpolation="nearest", antialias=True)
    # nearest without antialias stays available (labels, masks).
    assert daf.crop(images, torch.tensor([[0.0, 0.0, 8.0, 8.0]]), 4, mode="nearest").shape == (1, 1, 4, 4)


@pytest.mark.parametrize("value", [1, "yes", None, torch.tensor(True)])
def test_antialias_must_be_a_bool(value):
    with pytest.raises(TypeError, match="antialias"):
        daf.warp(torch.rand(1, 1, 8, 8), torch.eye(2, 3).unsqueeze(0), 4, antialias=value)
    if value is not None:  # transforms take None: torchvision's default
        with pytest.raises(TypeError, match="antialias"):
            da.BoxCrop(4, antialias=value)


@pytest.mark.parametrize("cls", [da.RandomResizedCrop, da.Resize, da.BoxCrop])
def test_antialias_none_is_torchvisions_default_on_unless_nearest(cls):
    assert cls(8, antialias=None).antialias is True
    assert cls(8, interpolation="nearest", antialias=None).antialias is False
    assert cls(8, interpolation="nearest", antialias=False).antialias is False
    with pytest.raises(ValueError, match="antialias"):
        cls(8, interpolation="nearest", antialias=True)
    # The defaults: on, as every transform that can shrink (tests/test_signatures.py covers them all).
    assert cls(8).antialias is True
    assert cls(8, interpolation="nearest").antialias is False


# --------------------------------------------------------------------------- helpers
def test_pyramid_depth_follows_static_shapes_and_weights_sum_to_one():
    assert len(pyramid_sizes((448, 448), (224, 224))) == 2
    assert len(pyramid_sizes((64, 64), (64, 64))) == 2  # zoom-outs still get one level
    assert all(width == 1 for _, width in pyramid_sizes((64, 1), (1, 1)))  # levels keep at least one pixel
    assert pyramid_sizes((64, 1), (1, 1))[-1] == (1, 1)
    scale = torch.logspace(-1, 4, 200, base=2.0, dtype=torch.float64)
    weights = level_weights(scale, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(200, dtype=torch.float64))
    assert (weights[scale <= 2**0.55, 0] == 1).all()


def test_amount_of_filtering_grows_continuously_with_the_shrink():
    """The blended level sum_j j w_j is nondecreasing and continuous in s (no jump where level 0
    stops fading, nor where the offset starts or stops growing, at 2x and 2 ** 1.5), and
    2 log2 s - 1.3 from 2.83x on."""
    scale = torch.logspace(0, 4, 4001, base=2.0, dtype=torch.float64)
    mean_level = (level_weights(scale, 8) * torch.arange(9, dtype=torch.float64)).sum(-1)
    steps = mean_level.diff()
    assert (steps >= 0).all() and steps.max() < 0.01
    beyond = (scale >= 2**1.5) & (mean_level < 8)
    torch.testing.assert_close(mean_level[beyond], 2 * torch.log2(scale[beyond]) - 1.3)


@given(st.integers(1, 600), st.integers(1, 600), st.integers(1, 300), st.integers(1, 300))
def test_pyramid_is_deep_enough_for_any_crop_inside_the_image(in_h, in_w, out_h, out_w):
    """A crop inside the image shrinks at most in / out: its level is never clamped by the depth."""
    sizes = pyramid_sizes((in_h, in_w), (out_h, out_w))
    worst = torch.tensor(max(in_h / out_h, in_w / out_w), dtype=torch.float64)
    unclamped = level_weights(worst.view(1), 50)[0]
    assert unclamped[len(sizes) :].sum() == 0


# --------------------------------------------------------------------------- no host sync, torch.compile
@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("per_axis", [False, True])
def test_no_host_sync_forward_and_backward(device, per_axis):
    """The depth comes from static shapes and the weights stay on the device: no value is read."""
    from tests.test_no_sync import no_host_sync

    images = torch.rand(3, 2, 40, 36).to(device).requires_grad_()
    theta = (torch.eye(2, 3).expand(3, 2, 3) * torch.tensor([1.0, 0.6, 0.2]).view(3, 1, 1)).to(device).requires_grad_()
    with no_host_sync(device):
        out = antialiased_sample(images, theta, (8, 9), per_axis=per_axis)
        out.square().sum().backward()
    assert out.shape == (3, 2, 8, 9) and images.grad is not None and theta.grad is not None


@pytest.mark.parametrize("per_axis", [False, True])
def test_compiles_in_one_graph_and_matches_eager(per_axis):
    g = torch.Generator().manual_seed(5)
    images = torch.rand(4, 3, 48, 40, generator=g)
    boxes = torch.tensor([[0.0, 0.0, 40.0, 48.0], [4.0, 2.0, 30.0, 40.0], [10.0, 10.0, 18.0, 16.0], [0.0, 5.0, 40.0, 25.0]])
    theta = daf.boxes_to_theta(boxes, (48, 40))
    compiled = torch.compile(antialiased_sample, fullgraph=True, backend="eager")
    torch.testing.assert_close(
        compiled(images, theta, (12, 10), per_axis=per_axis), antialiased_sample(images, theta, (12, 10), per_axis=per_axis)
    )


def _antialiased_resize_1d(values: np.ndarray, out: int) -> np.ndarray:
    """An antialiased bilinear (tent) resize of the last axis, written from its definition."""
    size = values.shape[-1]
    scale = size / out
    support = max(scale, 1.0)
    result = np.zeros((*values.shape[:-1], out))
    for i in range(out):
        centre = scale * (i + 0.5)
        taps = np.arange(size) + 0.5 - centre
        weights = np.clip(1.0 - np.abs(taps) / support, 0.0, None)
        weights[(taps < -support) | (taps >= support)] = 0.0
        result[..., i] = values @ (weights / weights.sum())
    return result


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 30), st.integers(1, 12), st.integers(2, 15), st.integers(0, 2**31 - 1))
def test_one_pixel_wide_levels_are_resized_along_their_height(height, width, out_h, seed):
    """torch 2.14's CPU antialiased resize gives every row the first row's value when it resizes the
    height of a one-pixel-wide result; the pyramid's levels must not inherit that."""
    from diffaug.functional.antialias import _resize

    images = torch.rand(1, 2, height, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = _antialiased_resize_1d(_antialiased_resize_1d(images.numpy(), 1).swapaxes(-1, -2), out_h).swapaxes(-1, -2)
    np.testing.assert_allclose(_resize(images, (out_h, 1)).numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "make, in_size, filtered",
    [
        (lambda: da.RandomResizedCrop(32), 32, False),  # crops of a 32 image to 32 never shrink
        (lambda: da.RandomResizedCrop(32), 46, False),  # at most 1.44x: under the first level
        (lambda: da.RandomResizedCrop(32), 48, True),  # up to 1.5x
        (lambda: da.Resize(64), 32, False),
        (lambda: da.Resize(16), 32, True),
        (lambda: da.RandomAffine(degrees=30, interpolation="bilinear"), 32, False),  # rotations keep lengths
        (lambda: da.RandomAffine(degrees=0, scale=(0.5, 1.0), interpolation="bilinear"), 32, True),  # up to 2x
        (lambda: da.RandomAffine(degrees=0, shear=10, interpolation="bilinear"), 32, True),  # unbounded: shear
    ],
)
def test_transforms_whose_shapes_bound_the_shrink_skip_the_filter_exactly(monkeypatch, make, in_size, filtered):
    import sys

    warp_module = sys.modules["diffaug.functional.warp"]  # the module (the package exports its warp function)
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return antialiased_sample(*args, **kwargs)

    monkeypatch.setattr(warp_module, "antialiased_sample", counting)
    transform = make()
    assert transform.antialias is True
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, in_size, in_size, generator=g)
    params = transform.make_params(images, generator=g)
    out = transform.transform(images, params)
    assert bool(calls) is filtered
    if not filtered:  # skipping is exact: the plain warp is what the filter would have returned
        filtered_anyway = daf.warp(images, params.theta, params.size, transform.mode, transform.padding_mode, antialias=True)
        torch.testing.assert_close(out, filtered_anyway, rtol=0, atol=0)
