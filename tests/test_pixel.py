"""Pixel transforms against torchvision v2: parity per operation, laws, replay, gradients, bad input.

* parity: each operation with fixed values (p=1, degenerate ranges) equals
  ``torchvision.transforms.v2.functional`` per image: float64 to 1e-6, uint8 within one level and
  exactly for posterize, solarize and equalize; half precision, channels_last, single images;
* laws: the per-sample blur sigma is uniform in its range, read off the output images (the ratio of
  two taps of a blurred impulse), and each output equals torchvision's blur at that sigma; noise
  sigma likewise; the probability ``p``; samples of one batch differ;
* gradients: gradcheck / gradgradcheck (float64) through the blur w.r.t. images and sigma;
  finite differences for every learnable range and a learnable ``p``; straight-through gradients
  reach the images; the solarize threshold's surrogate gradient against a finite difference of
  the exact operation;
* early named errors for bad arguments.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import diffaug as da
from diffaug import functional as daf
from diffaug.transforms import pixel as pixel_transforms

NAMES = [name for name in pixel_transforms.__all__ if name != "PixelParams"]  # every pixel transform


def _images(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    if dtype == torch.uint8:
        return (x * 255).round().to(torch.uint8)
    return x.to(dtype)


def _gap(a, b):
    return (a.double() - b.double()).abs().max().item()


# ---------------------------------------------------------------- signatures
@pytest.mark.parametrize("name", NAMES)
def test_positional_parameters_are_torchvisions_and_extras_keyword_only(name):
    ours = inspect.signature(getattr(da, name)).parameters.values()
    theirs = list(inspect.signature(getattr(T, name)).parameters.values())
    positional = [p for p in ours if p.kind is not p.KEYWORD_ONLY]
    assert [p.name for p in positional] == [p.name for p in theirs]
    for mine, tv in zip(positional, theirs, strict=True):
        assert type(mine.default) is type(tv.default) and mine.default == tv.default, (name, mine.name)
    extras = [p.name for p in ours if p.kind is p.KEYWORD_ONLY]
    assert set(extras) <= {"p", "learnable", "temperature"}
    assert ("p" in extras) == ("p" not in [p.name for p in theirs])


# ---------------------------------------------------------------- parity with torchvision
def _pairs(dtype):
    """(diffaug transform with fixed values, torchvision's functional per image)."""
    threshold = 100 if dtype == torch.uint8 else 0.4
    return {
        "blur": (da.GaussianBlur((5, 7), sigma=(1.3, 1.3)), lambda x: TF.gaussian_blur(x, [5, 7], [1.3, 1.3])),
        "blur-square": (da.GaussianBlur(9, sigma=0.6), lambda x: TF.gaussian_blur(x, [9, 9], [0.6, 0.6])),
        "posterize": (da.RandomPosterize(3, p=1.0), lambda x: TF.posterize(x, 3)),
        "posterize-0": (da.RandomPosterize(0, p=1.0), lambda x: TF.posterize(x, 0)),
        "solarize": (da.RandomSolarize(threshold, p=1.0), lambda x: TF.solarize(x, threshold)),
        "sharpness": (da.RandomAdjustSharpness(1.8, p=1.0), lambda x: TF.adjust_sharpness(x, 1.8)),
        "softness": (da.RandomAdjustSharpness(0.3, p=1.0), lambda x: TF.adjust_sharpness(x, 0.3)),
        "autocontrast": (da.RandomAutocontrast(p=1.0), TF.autocontrast),
        "equalize": (da.RandomEqualize(p=1.0), TF.equalize),
    }


EXACT = {"posterize", "posterize-0", "solarize", "equalize"}
OPS = list(_pairs(torch.float64))


def _reference(op, x):
    return torch.stack([op(image) for image in x])  # torchvision one image at a time


@pytest.mark.parametrize("name", OPS)
def test_float64_matches_torchvision(name):
    transform, op = _pairs(torch.float64)[name]
    x = _images((3, 3, 13, 17))
    x[1, :, :2] = 0.55  # a flat patch; autocontrast, equalize see narrower histograms
    assert _gap(transform(x), _reference(op, x)) <= 1e-6


@pytest.mark.parametrize("name", OPS)
def test_uint8_within_one_level_exact_where_torchvision_is_integer(name):
    transform, op = _pairs(torch.uint8)[name]
    x = _images((3, 3, 13, 17), torch.uint8)
    out = transform(x)
    assert out.dtype == torch.uint8
    assert _gap(out, _reference(op, x)) <= (0 if name in EXACT else 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", OPS)
def test_other_float_dtypes_match_torchvision_to_their_precision(name, dtype):
    transform, op = _pairs(dtype)[name]
    x = _images((2, 3, 11, 12), dtype)
    out = transform(x)
    assert out.dtype == dtype
    # torchvision computes half precision in half; here in float32 (one rounding at the end).
    tolerance = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    if name in ("posterize", "posterize-0", "equalize"):
        tolerance = 0.0
    assert _gap(out, _reference(op, x)) <= tolerance


@pytest.mark.parametrize("name", OPS)
def test_channels_last_and_single_images(name):
    transform, _ = _pairs(torch.float32)[name]
    x = _images((2, 3, 10, 9), torch.float32)
    params = transform.make_params(x)
    expected = transform.transform(x, params)
    last = transform.transform(x.contiguous(memory_format=torch.channels_last), params)
    assert last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(last, expected, rtol=0, atol=1e-6)
    single = transform(x[0])
    assert single.shape == x[0].shape
    torch.testing.assert_close(single, expected[0], rtol=0, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(
    sigma=st.lists(st.floats(0.05, 5.0), min_size=3, max_size=3),
    kx=st.sampled_from([1, 3, 5, 11]),
    ky=st.sampled_from([1, 3, 7]),
    height=st.integers(2, 9),
    width=st.integers(2, 9),
)
def test_blur_matches_torchvision_per_sample_sigma(sigma, kx, ky, height, width):
    x = _images((3, 2, height, width), seed=height * 10 + width)
    pad_ok = kx // 2 < width and ky // 2 < height  # torchvision's reflect padding refuses longer kernels
    out = daf.gaussian_blur(x, (kx, ky), torch.tensor(sigma, dtype=torch.float64))
    assert out.shape == x.shape
    if pad_ok:
        expected = torch.stack([TF.gaussian_blur(x[i], [kx, ky], [s, s]) for i, s in enumerate(sigma)])
        assert _gap(out, expected) <= 1e-6
    # The filter is normalised: a constant image stays constant, any kernel length.
    flat = torch.full_like(x, 0.25)
    assert _gap(daf.gaussian_blur(flat, (kx, ky), torch.tensor(sigma, dtype=torch.float64)), flat) <= 1e-12


def test_noise_matches_torchvision_given_its_draws():
    for dtype in (torch.float64, torch.uint8):
        x = _images((2, 3, 8, 8), dtype)
        torch.manual_seed(3)
        expected = TF.gaussian_noise(x, mean=0.1, sigma=0.2)
        torch.manual_seed(3)
        noise = torch.randn(x.shape, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
        out = daf.gaussian_noise(x, noise, mean=0.1, sigma=0.2)
        assert out.dtype == dtype and _gap(out, expected) <= 1e-12
        transform = da.GaussianNoise(0.1, 0.2)
        params = transform.make_params(x)
        torch.testing.assert_close(transform.transform(x, params), daf.gaussian_noise(x, params.noise, 0.1, 0.2), rtol=0, atol=0)
    # clip=False: uint8 wraps around as torchvision's does
    x = torch.full((1, 1, 4, 4), 250, dtype=torch.uint8)
    torch.manual_seed(0)
    expected = TF.gaussian_noise(x, sigma=0.5, clip=False)
    torch.manual_seed(0)
    assert torch.equal(daf.gaussian_noise(x, torch.randn(x.shape), sigma=0.5, clip=False), expected)


# ---------------------------------------------------------------- laws
def _impulse(batch, size=31):
    x = torch.zeros(batch, 1, size, size, dtype=torch.float64)
    x[:, :, size // 2, size // 2] = 1.0
    return x


def _sigma_from_impulse(out):
    """The blur's sigma from the output: w(1) / w(0) = exp(-1 / (2 sigma^2)) on the centre row."""
    centre = out.shape[-1] // 2
    row = out[:, 0, centre]
    ratio = row[:, centre + 1] / row[:, centre]
    return torch.sqrt(-0.5 / torch.log(ratio))


def test_blur_sigma_is_uniform_in_its_range_read_off_the_outputs():
    blur = da.GaussianBlur(23, sigma=(0.1, 2.0))
    images = _impulse(600)
    params = blur.make_params(images, generator=torch.Generator().manual_seed(0))
    out = blur.transform(images, params)
    sigma = _sigma_from_impulse(out)
    torch.testing.assert_close(sigma, params.magnitude, rtol=1e-6, atol=1e-9)
    assert stats.kstest(sigma.numpy(), stats.uniform(0.1, 1.9).cdf).pvalue > 1e-3
    assert stats.kstest(sigma.numpy(), stats.uniform(0.1, 1.7).cdf).pvalue < 1e-3  # the test can fail
    assert len(torch.unique(sigma)) == len(sigma)  # every sample its own sigma
    for i in range(0, 600, 150):  # each output is torchvision's blur at the drawn sigma
        s = float(params.magnitude[i])
        assert _gap(out[i], TF.gaussian_blur(images[i], [23, 23], [s, s])) <= 1e-6


def test_noise_sigma_is_uniform_in_its_range_read_off_the_outputs():
    noise = da.GaussianNoise(sigma=(0.05, 0.3), clip=False)
    images = torch.full((400, 1, 32, 32), 0.5, dtype=torch.float64)
    params = noise.make_params(images, generator=torch.Generator().manual_seed(1))
    out = noise.transform(images, params)
    # The exact sigma of each sample: the added noise over the unit noise kept in the params.
    sigma = ((out - images) * params.noise).sum((1, 2, 3)) / (params.noise**2).sum((1, 2, 3))
    torch.testing.assert_close(sigma, params.magnitude, rtol=1e-9, atol=1e-12)
    assert stats.kstest(sigma.numpy(), stats.uniform(0.05, 0.25).cdf).pvalue > 1e-3
    # The unit noise is standard normal, fresh per sample.
    assert stats.kstest(params.noise[:4].flatten().numpy(), "norm").pvalue > 1e-3
    assert not torch.equal(params.noise[0], params.noise[1])
    # Read off the outputs alone, the per-sample standard deviation follows the same law (roughly: 1024 pixels).
    spread = (out - images).std((1, 2, 3))
    assert stats.kstest(spread.numpy(), stats.uniform(0.05, 0.25).cdf).pvalue > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_probability_p_per_sample(name):
    build = {
        "GaussianBlur": lambda: da.GaussianBlur(3, sigma=(1.0, 2.0), p=0.3),
        "GaussianNoise": lambda: da.GaussianNoise(p=0.3),
        "RandomPosterize": lambda: da.RandomPosterize(2, p=0.3),
        "RandomSolarize": lambda: da.RandomSolarize(0.5, p=0.3),
        "RandomAdjustSharpness": lambda: da.RandomAdjustSharpness(3.0, p=0.3),
        "RandomAutocontrast": lambda: da.RandomAutocontrast(p=0.3),
        "RandomEqualize": lambda: da.RandomEqualize(p=0.3),
    }[name]
    transform = build()
    x = _images((400, 3, 6, 6), torch.float32)
    params = transform.make_params(x, generator=torch.Generator().manual_seed(2))
    out = transform.transform(x, params)
    kept = (out == x).flatten(1).all(1)
    applied = params.applied.bool()
    assert torch.equal(kept, ~applied)  # every applied sample changed, every other kept bit for bit
    assert stats.binomtest(int(applied.sum()), 400, 0.3).pvalue > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_replay_and_generator(name):
    transform = {
        "GaussianBlur": da.GaussianBlur(5),
        "GaussianNoise": da.GaussianNoise(),
        "RandomPosterize": da.RandomPosterize(2),
        "RandomSolarize": da.RandomSolarize(0.5),
        "RandomAdjustSharpness": da.RandomAdjustSharpness(3.0),
        "RandomAutocontrast": da.RandomAutocontrast(),
        "RandomEqualize": da.RandomEqualize(),
    }[name]
    x = _images((6, 3, 8, 8), torch.float32)
    first = transform.make_params(x, generator=torch.Generator().manual_seed(5))
    again = transform.make_params(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(transform.transform(x, first), transform.transform(x, again))
    torch.manual_seed(7)
    forward = transform(x)
    torch.manual_seed(7)
    assert torch.equal(forward, transform.transform(x, transform.make_params(x)))
    # Only the shape, dtype and device are read: an expanded zero tensor draws the same params.
    stand_in = torch.zeros(1, 1, 1, 1).expand(6, 3, 8, 8)
    from_stand_in = transform.make_params(stand_in, generator=torch.Generator().manual_seed(5))
    assert torch.equal(transform.transform(x, from_stand_in), transform.transform(x, first))


def test_targets_pass_through_unchanged_and_compose():
    x = _images((2, 3, 16, 16), torch.float32)
    boxes = torch.tensor([[1.0, 2.0, 9.0, 12.0], [0.0, 0.0, 4.0, 4.0]])
    out = da.GaussianBlur(5, p=1.0)(x, boxes=boxes)
    assert torch.equal(out["boxes"], boxes)
    pipeline = da.Compose([da.RandomHorizontalFlip(p=1.0), da.GaussianBlur(5, sigma=1.0), da.RandomSolarize(0.5, p=1.0)])
    expected = TF.solarize(TF.gaussian_blur(x.flip(-1), [5, 5], [1.0, 1.0]), 0.5)
    assert _gap(pipeline(x), expected) <= 1e-5


# ---------------------------------------------------------------- gradients
def test_gradcheck_blur_images_and_sigma():
    x = _images((2, 2, 6, 5)).requires_grad_()
    sigma = torch.tensor([0.7, 1.6], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s: daf.gaussian_blur(a, (5, 3), s), (x, sigma))
    assert torch.autograd.gradgradcheck(lambda a, s: daf.gaussian_blur(a, (5, 3), s), (x, sigma))


def test_gradcheck_noise_sharpness_solarize_images():
    x = _images((2, 3, 5, 5)).requires_grad_()
    noise = torch.randn(2, 3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.01, 0.02], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, s: daf.gaussian_noise(a, noise, 0.0, s, clip=False), (x, sigma))
    factor = torch.tensor([0.5, 1.7], dtype=torch.float64, requires_grad=True)
    inside = (x.detach() * 0.5 + 0.25).requires_grad_()  # away from the clamp
    assert torch.autograd.gradcheck(lambda a, f: daf.adjust_sharpness(a, f), (inside, factor))
    away = (x.detach() * 0.3 + torch.tensor([0.0, 0.6], dtype=torch.float64).view(2, 1, 1, 1)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: daf.solarize(a, 0.45), (away,))


def _fd_check(module, images, name, seed=0):
    """d sum(output * weights) / d parameter ``name``: autograd against central finite differences (float64)."""
    module = module.double().train()
    weights = torch.rand(images.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    params = dict(module.named_parameters())
    assert name in params, sorted(params)

    def loss(value):
        new = {**params, name: value}
        params_drawn = torch.func.functional_call(module, new, (images,), {"generator": torch.Generator().manual_seed(seed)})
        return (params_drawn * weights).sum()

    value = params[name].detach().clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(value), value)
    eps = 1e-6
    for i in range(value.numel()):
        step = torch.zeros_like(value).view(-1)
        step[i] = eps
        step = step.view_as(value)
        with torch.no_grad():
            numeric = float((loss(value.detach() + step) - loss(value.detach() - step)) / (2 * eps))
        assert abs(float(grad.view(-1)[i]) - numeric) <= 1e-5 * max(1.0, abs(numeric)), (name, i)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: da.GaussianBlur(5, sigma=(0.5, 1.5), learnable=True), "sigma.raw"),
        (lambda: da.GaussianBlur(5, sigma=(0.5, 1.5), p=0.5, learnable=True), "p_logit"),
        (lambda: da.GaussianNoise(sigma=(0.01, 0.05), clip=False, learnable=True), "sigma.raw"),
        (lambda: da.GaussianNoise(sigma=0.02, learnable=True, p=0.6), "p_logit"),
        (lambda: da.RandomAdjustSharpness(1.5, learnable=True), "factor_range.raw"),
        (lambda: da.RandomPosterize(3, p=0.5, learnable=True), "p_logit"),
        (lambda: da.RandomEqualize(p=0.5, learnable=True), "p_logit"),
    ],
    ids=["blur-sigma", "blur-p", "noise-sigma", "noise-p", "sharpness-factor", "posterize-p", "equalize-p"],
)
def test_learnable_ranges_and_p_against_finite_differences(build, name):
    images = _images((4, 3, 7, 7)) * 0.6 + 0.2
    _fd_check(build(), images, name)


@pytest.mark.parametrize(
    "transform",
    [da.RandomPosterize(2, p=0.5), da.RandomAutocontrast(p=0.5), da.RandomEqualize(p=0.5), da.RandomPosterize(2, p=1.0)],
    ids=["posterize", "autocontrast", "equalize", "posterize-always"],
)
def test_straight_through_gradients_reach_the_images(transform):
    x = _images((6, 3, 5, 5)).requires_grad_()
    upstream = torch.rand(6, 3, 5, 5, dtype=torch.float64)
    params = transform.make_params(x, generator=torch.Generator().manual_seed(1))
    out = transform.transform(x, params)
    (out * upstream).sum().backward()
    assert torch.equal(x.grad, upstream)  # identity for applied samples (straight through) and kept ones
    assert torch.equal(out, torch.where(params.applied.bool().view(-1, 1, 1, 1), out, x))


def test_solarize_images_get_plus_minus_one():
    x = _images((2, 3, 5, 5)).requires_grad_()
    out = da.RandomSolarize(0.5, p=1.0)(x)
    out.sum().backward()
    assert torch.equal(x.grad, torch.where(x.detach() >= 0.5, -1.0, 1.0).double())


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_solarize_threshold_gradient_follows_the_exact_operations_slope(t):
    # Pixels spread evenly over [0, 1]: sum(solarize(x, t)) changes at the rate N (2 t - 1) (each pixel
    # crossing the threshold jumps by 1 - 2 x). The surrogate's gradient must match a wide finite
    # difference of the exact operation, while the forward value stays exact.
    n = 4000
    x = ((torch.arange(n, dtype=torch.float64) + 0.5) / n).view(1, 1, 40, 100)
    level = torch.tensor([t], dtype=torch.float64, requires_grad=True)
    out = daf.solarize(x, level) + daf.solarize_surrogate(x, level)
    assert torch.equal(out, TF.solarize(x, t))
    out.sum().backward()
    h = 0.05
    numeric = (TF.solarize(x, t + h).sum() - TF.solarize(x, t - h).sum()) / (2 * h)
    assert abs(float(level.grad) - float(numeric)) <= 0.03 * n
    # The learnable transform: exact forward, and the gradient reaches its threshold range.
    solarize = da.RandomSolarize(t, p=1.0, learnable=True).double()
    out = solarize(x)
    drawn = float(solarize.threshold_range.bounds()[0].detach())
    differs = out != TF.solarize(x, drawn)  # the drawn threshold lies in the range (drawn, drawn + 1e-3)
    assert bool((differs <= ((x - drawn).abs() < 2e-3)).all())
    out.sum().backward()
    assert solarize.threshold_range.raw.grad.abs().sum() > 0


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: da.GaussianBlur(4), ValueError, "kernel_size"),
        (lambda: da.GaussianBlur((3, 0)), ValueError, "kernel_size"),
        (lambda: da.GaussianBlur(-3), ValueError, "kernel_size"),
        (lambda: da.GaussianBlur(3.0), TypeError, "kernel_size"),
        (lambda: da.GaussianBlur(3, sigma=0.0), ValueError, "sigma"),
        (lambda: da.GaussianBlur(3, sigma=(-0.1, 1.0)), ValueError, "sigma"),
        (lambda: da.GaussianBlur(3, sigma=(2.0, 1.0)), ValueError, "sigma"),
        (lambda: da.GaussianNoise(sigma=-0.1), ValueError, "sigma"),
        (lambda: da.GaussianNoise(sigma=(0.3, 0.1)), ValueError, "sigma"),
        (lambda: da.GaussianNoise(clip=1), TypeError, "clip"),
        (lambda: da.RandomPosterize(9), ValueError, "bits"),
        (lambda: da.RandomPosterize(-1), ValueError, "bits"),
        (lambda: da.RandomPosterize(4.0), TypeError, "bits"),
        (lambda: da.RandomSolarize(-0.5), ValueError, "threshold"),
        (lambda: da.RandomSolarize(128)(torch.rand(1, 3, 4, 4)), ValueError, "threshold"),
        (lambda: da.RandomSolarize(256, p=1.0)(torch.zeros(1, 3, 4, 4, dtype=torch.uint8)), ValueError, "threshold"),
        (lambda: da.RandomSolarize(0.5, p=1.0, learnable=True)(torch.zeros(1, 3, 4, 4, dtype=torch.uint8)), ValueError, "float"),
        (lambda: da.RandomSolarize(2.0, learnable=True), ValueError, "threshold"),
        (lambda: da.RandomAdjustSharpness(-1.0), ValueError, "sharpness_factor"),
        (lambda: da.RandomAdjustSharpness(2.0)(torch.rand(1, 4, 5, 5)), TypeError, "channels"),
        (lambda: da.RandomAutocontrast()(torch.rand(1, 2, 5, 5)), TypeError, "channels"),
        (lambda: da.RandomPosterize(3, p=1.0)(torch.rand(3, 5, 5).int()), TypeError, "images"),
        (lambda: da.GaussianBlur(3, p=2.0), ValueError, "p"),
        (
            lambda: da.GaussianBlur(3).transform(torch.rand(2, 3, 5, 5), da.GaussianBlur(3).make_params(torch.rand(3, 3, 5, 5))),
            ValueError,
            "params",
        ),
        (lambda: daf.gaussian_blur(torch.rand(2, 3, 5, 5), 3, torch.ones(3)), ValueError, "sigma"),
        (lambda: daf.gaussian_noise(torch.rand(2, 3, 5, 5), torch.randn(2, 3, 5, 4)), ValueError, "noise"),
    ],
)
def test_bad_input_gets_a_named_error(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_equalize_and_posterize_accept_any_channels_like_torchvision():
    x = _images((2, 5, 6, 6), torch.uint8)
    assert torch.equal(da.RandomEqualize(p=1.0)(x), TF.equalize(x))
    assert torch.equal(da.RandomPosterize(1, p=1.0)(x), TF.posterize(x, 1))
    assert _gap(da.GaussianBlur(3, sigma=0.8)(x), TF.gaussian_blur(x, [3, 3], [0.8, 0.8])) <= 1


def test_blur_kernel_longer_than_the_image_reflects_like_numpy():
    # torchvision's padding refuses kernels longer than the image; here the reflection repeats as numpy's does.
    x = _images((2, 1, 3, 4))
    sigma = (0.9, 3.0)
    out = daf.gaussian_blur(x, (9, 7), torch.tensor(sigma, dtype=torch.float64))
    padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (3, 3), (4, 4)), mode="reflect"))
    for i, s in enumerate(sigma):
        wx = torch.exp(-(torch.arange(-4, 5, dtype=torch.float64) ** 2) / (2 * s * s))
        wy = torch.exp(-(torch.arange(-3, 4, dtype=torch.float64) ** 2) / (2 * s * s))
        kernel = (wy[:, None] * wx[None]) / (wy.sum() * wx.sum())
        expected = torch.nn.functional.conv2d(padded[i : i + 1], kernel[None, None])
        assert _gap(out[i : i + 1], expected) <= 1e-12


def test_large_images_take_grouped_convolutions_with_the_same_result():
    from diffaug.functional import pixel

    side = pixel.MATRIX_SIDE + 8
    x = _images((2, 1, side, side - 20))
    sigma = torch.tensor([0.8, 2.5], dtype=torch.float64)
    out = daf.gaussian_blur(x, (7, 5), sigma)
    expected = torch.stack([TF.gaussian_blur(x[i], [7, 5], [float(s), float(s)]) for i, s in enumerate(sigma)])
    assert _gap(out, expected) <= 1e-6


def test_grouped_route_gradients(monkeypatch):
    from diffaug.functional import pixel

    monkeypatch.setattr(pixel, "MATRIX_SIDE", 4)  # route these small images through the convolutions
    x = _images((2, 2, 6, 7)).requires_grad_()
    sigma = torch.tensor([0.7, 1.6], dtype=torch.float64, requires_grad=True)
    expected = torch.stack([TF.gaussian_blur(x[i].detach(), [3, 5], [float(s), float(s)]) for i, s in enumerate(sigma.detach())])
    assert _gap(daf.gaussian_blur(x, (3, 5), sigma), expected) <= 1e-12
    assert torch.autograd.gradcheck(lambda a, s: daf.gaussian_blur(a, (3, 5), s), (x, sigma))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_learnable_transforms_run_on_every_dtype_and_single_images(dtype):
    builds = [
        lambda: da.GaussianBlur(5, p=0.5, learnable=True),
        lambda: da.GaussianNoise(sigma=(0.0, 0.1), p=0.5, learnable=True),
        lambda: da.RandomPosterize(3, learnable=True),
        lambda: da.RandomAdjustSharpness(2.0, learnable=True),
        lambda: da.RandomAutocontrast(learnable=True),
        lambda: da.RandomEqualize(learnable=True),
    ]
    if dtype != torch.uint8:
        builds.append(lambda: da.RandomSolarize(0.5, learnable=True))
    x = _images((4, 3, 9, 8), dtype)
    for build in builds:
        for mode in ("train", "eval"):
            transform = build().train(mode == "train")
            for images in (x, x[0], x.contiguous(memory_format=torch.channels_last)):
                out = transform(images)
                assert out.dtype == dtype and out.shape == images.shape
                assert torch.isfinite(out.double()).all()
                bound = 255 if dtype == torch.uint8 else 1  # blends of in-range images stay in range
                assert out.double().min() >= -1e-3 and out.double().max() <= bound + 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_empty_batches_and_one_pixel_images(name):
    transform = {
        "GaussianBlur": da.GaussianBlur(5),
        "GaussianNoise": da.GaussianNoise(),
        "RandomPosterize": da.RandomPosterize(2, p=1.0),
        "RandomSolarize": da.RandomSolarize(0.5, p=1.0),
        "RandomAdjustSharpness": da.RandomAdjustSharpness(2.0, p=1.0),
        "RandomAutocontrast": da.RandomAutocontrast(p=1.0),
        "RandomEqualize": da.RandomEqualize(p=1.0),
    }[name]
    for shape in [(0, 3, 8, 8), (2, 3, 1, 1), (2, 1, 1, 7)]:
        x = _images(shape, torch.float32)
        assert transform(x).shape == x.shape
    if name == "GaussianBlur":  # one pixel: every tap reads it, the normalised kernel gives it back
        x = _images((2, 3, 1, 1), torch.float32)
        torch.testing.assert_close(transform(x), x)
