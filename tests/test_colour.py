"""Colour transforms against torchvision v2's kernels, their laws, gradients, dtypes and bad input."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import diffaug as da
from diffaug import functional as daf


def _images(batch: int = 4, channels: int = 3, size: int = 12, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    images = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if dtype == torch.uint8:
        return (images * 256).floor().clamp(0, 255).to(torch.uint8)
    return images.to(dtype)


def _per_sample(fn, images: torch.Tensor) -> torch.Tensor:
    return torch.stack([fn(image) for image in images])


# (diffaug transform applying the op with a fixed factor to every sample, torchvision's kernel on one image, tolerance)
SINGLE_OPS = {
    "brightness": (lambda: da.ColorJitter(brightness=(1.3, 1.3)), lambda x: F.adjust_brightness(x, 1.3), 1e-6),
    "brightness-dark": (lambda: da.ColorJitter(brightness=(0.4, 0.4)), lambda x: F.adjust_brightness(x, 0.4), 1e-6),
    "contrast": (lambda: da.ColorJitter(contrast=(0.6, 0.6)), lambda x: F.adjust_contrast(x, 0.6), 1e-6),
    "contrast-strong": (lambda: da.ColorJitter(contrast=(1.8, 1.8)), lambda x: F.adjust_contrast(x, 1.8), 1e-6),
    "saturation": (lambda: da.ColorJitter(saturation=(1.7, 1.7)), lambda x: F.adjust_saturation(x, 1.7), 1e-6),
    "saturation-grey": (lambda: da.ColorJitter(saturation=(0.0, 0.0)), lambda x: F.adjust_saturation(x, 0.0), 1e-6),
    "hue": (lambda: da.ColorJitter(hue=(0.2, 0.2)), lambda x: F.adjust_hue(x, 0.2), 1e-5),
    "hue-negative": (lambda: da.ColorJitter(hue=(-0.45, -0.45)), lambda x: F.adjust_hue(x, -0.45), 1e-5),
    "grayscale": (lambda: da.Grayscale(), lambda x: F.rgb_to_grayscale(x), 1e-6),
    "grayscale-3": (lambda: da.Grayscale(3), lambda x: F.rgb_to_grayscale(x, 3), 1e-6),
    "random-grayscale": (lambda: da.RandomGrayscale(p=1.0), lambda x: F.rgb_to_grayscale(x, 3), 1e-6),
    "invert": (lambda: da.RandomInvert(p=1.0), F.invert, 0.0),
    "normalize": (
        lambda: da.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        lambda x: F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        1e-6,
    ),
    "photometric-all": (
        lambda: da.RandomPhotometricDistort((1.1, 1.1), (0.7, 0.7), (1.4, 1.4), (0.1, 0.1), p=1.0),
        None,  # compared below with torchvision's transform and the same params
        1e-5,
    ),
}


@pytest.mark.parametrize("name", [n for n, (_, ref, _) in SINGLE_OPS.items() if ref is not None])
def test_each_op_alone_matches_torchvision_float64(name: str) -> None:
    build, reference, tolerance = SINGLE_OPS[name]
    images = _images()
    out = build()(images)
    expected = _per_sample(reference, images).to(torch.float64)
    assert out.dtype == torch.float64
    assert (out - expected).abs().max().item() <= tolerance


@pytest.mark.parametrize("name", [n for n, (_, ref, _) in SINGLE_OPS.items() if ref is not None and n != "normalize"])
def test_each_op_alone_matches_torchvision_uint8_within_one_level(name: str) -> None:
    build, reference, _ = SINGLE_OPS[name]
    images = _images(dtype=torch.uint8)
    out = build()(images)
    expected = _per_sample(reference, images)
    assert out.dtype == torch.uint8
    difference = (out.int() - expected.int()).abs().max().item()
    assert difference <= (0 if name == "invert" else 1)


@pytest.mark.parametrize("op", ["brightness", "contrast", "saturation", "hue"])
def test_one_channel_images_follow_torchvision(op: str) -> None:
    images = _images(channels=1)
    factor = {"brightness": 1.3, "contrast": 0.6, "saturation": 1.7, "hue": 0.2}[op]
    bounds = (factor, factor)
    out = da.ColorJitter(**{op: bounds})(images)
    expected = _per_sample(lambda x: getattr(F, f"adjust_{op}")(x, factor), images)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_channel_permutation_rgb_to_dtype_match_torchvision() -> None:
    images = _images()
    permute = da.RandomChannelPermutation()
    params = permute.make_params(images)
    out = permute.transform(images, params)
    expected = torch.stack([F.permute_channels(x, p.tolist()) for x, p in zip(images, params.permutation, strict=True)])
    assert torch.equal(out, expected)
    grey = _images(channels=1)
    assert torch.equal(da.RGB()(grey), F.grayscale_to_rgb(grey))
    assert torch.equal(da.RGB()(images), images)
    small = _images(dtype=torch.uint8)
    torch.testing.assert_close(
        da.ToDtype(torch.float32, scale=True)(small), F.to_dtype(small, torch.float32, scale=True), atol=1e-7, rtol=0
    )
    assert torch.equal(da.ToDtype(torch.float64)(small), F.to_dtype(small, torch.float64))
    back = da.ToDtype(torch.uint8, scale=True)(images)
    assert (back.int() - F.to_dtype(images, torch.uint8, scale=True).int()).abs().max() <= 1


def _torchvision_jitter_params(params: da.JitterParams, index: int) -> dict:
    value = lambda t: None if t is None else float(t[index])  # noqa: E731
    return {
        "fn_idx": params.order[index].tolist(),
        "brightness_factor": value(params.brightness),
        "contrast_factor": value(params.contrast),
        "saturation_factor": value(params.saturation),
        "hue_factor": value(params.hue),
    }


@pytest.mark.parametrize("dtype", [torch.float64, torch.uint8])
@pytest.mark.parametrize("which", [(0.4, 0.4, 0.4, 0.1), (0.5, None, 0.5, 0.2), (0.4, 0.4, 0.4, None)])
def test_color_jitter_equals_torchvision_with_the_same_draws(dtype: torch.dtype, which: tuple) -> None:
    """Per-sample order and clamps after every op, as torchvision's transform replayed one sample at a time."""
    images = _images(batch=8, dtype=dtype)
    jitter = da.ColorJitter(*which)
    params = jitter.make_params(images, generator=torch.Generator().manual_seed(3))
    out = jitter.transform(images, params)
    reference = T.ColorJitter(*which)
    expected = torch.stack([reference.transform(x, _torchvision_jitter_params(params, i)) for i, x in enumerate(images)])
    if dtype == torch.uint8:
        # Each op truncates to uint8 in both; the grey (un-floored here) can move a value by a level per op.
        assert (out.int() - expected.int()).abs().max() <= 3
        assert (out.int() - expected.int()).abs().float().mean() < 0.2
    else:
        assert (out - expected).abs().max().item() <= 1e-5
    assert len({tuple(o) for o in params.order.tolist()}) > 1  # samples draw their own order


def test_photometric_distort_equals_torchvision_with_the_same_draws() -> None:
    images = _images(batch=8)
    distort = da.RandomPhotometricDistort()
    params = distort.make_params(images, generator=torch.Generator().manual_seed(1))
    out = distort.transform(images, params)
    reference = T.RandomPhotometricDistort()
    expected = []
    for i, x in enumerate(images):
        drawn = params.op_applied[i].bool().tolist()
        factor = lambda t, k: float(t[i]) if drawn[k] else None  # noqa: E731, B023
        tv_params = {
            "brightness_factor": factor(params.brightness, 0),
            "contrast_factor": factor(params.contrast, 1),
            "saturation_factor": factor(params.saturation, 2),
            "hue_factor": factor(params.hue, 3),
            "contrast_before": bool(params.contrast_before[i]),
            "channel_permutation": params.permutation[i] if drawn[4] else None,
        }
        expected.append(reference.transform(x, tv_params))
    assert (out - torch.stack(expected).double()).abs().max().item() <= 1e-5
    assert params.op_applied.sum(0).min() > 0 and params.op_applied.sum(0).max() < 8  # p = 0.5 per op and sample


# ------------------------------------------------------------------------------------------------ laws
def _constant(value: tuple[float, float, float], batch: int) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64).view(1, 3, 1, 1).expand(batch, 3, 2, 2).contiguous()


def test_factor_laws_read_off_the_outputs_follow_torchvision() -> None:
    """Uniform in [max(0, 1 - x), 1 + x] per sample (KS test), read from the images, not the params."""
    batch = 400
    generator = torch.Generator().manual_seed(0)
    # brightness: out / in on a dark constant image (no clamp).
    out = da.ColorJitter(brightness=0.4).make_params(_constant((0.2, 0.2, 0.2), batch), generator)
    images = _constant((0.2, 0.2, 0.2), batch)
    brightness = da.ColorJitter(brightness=0.4).transform(images, out)[:, 0, 0, 0] / 0.2
    # contrast: two grey halves 0.3 / 0.5 (mean 0.4): the difference scales by the factor.
    halves = torch.cat([torch.full((batch, 3, 1, 2), 0.3), torch.full((batch, 3, 1, 2), 0.5)], dim=2).double()
    contrasted = da.ColorJitter(contrast=0.5)(halves)
    contrast = (contrasted[:, 0, 1, 0] - contrasted[:, 0, 0, 0]) / 0.2
    # saturation: R - G of (0.6, 0.3, 0.3) scales by the factor.
    saturated = da.ColorJitter(saturation=(0.2, 1.5))(_constant((0.6, 0.3, 0.3), batch))
    saturation = (saturated[:, 0, 0, 0] - saturated[:, 1, 0, 0]) / 0.3
    # hue: the HSV hue of the output minus the input's (0).
    hued = da.ColorJitter(hue=0.3)(_constant((0.8, 0.2, 0.2), batch))
    hue = torch.remainder(daf.rgb_to_hsv(hued)[:, 0, 0, 0] + 0.5, 1.0) - 0.5
    for values, (low, high) in [(brightness, (0.6, 1.4)), (contrast, (0.5, 1.5)), (saturation, (0.2, 1.5)), (hue, (-0.3, 0.3))]:
        result = stats.kstest(values.numpy(), stats.uniform(loc=low, scale=high - low).cdf)
        assert result.pvalue > 1e-3, (low, high, result)
        assert values.unique().numel() > batch // 2  # samples of one batch differ


def test_order_is_a_uniform_permutation_per_sample() -> None:
    params = da.ColorJitter(0.4, 0.4, 0.4, 0.1).make_params(torch.zeros(2400, 3, 1, 1), torch.Generator().manual_seed(0))
    first = torch.bincount(params.order[:, 0], minlength=4).numpy()
    assert stats.chisquare(first).pvalue > 1e-3
    assert torch.equal(params.order.sort(dim=1).values, torch.arange(4).expand(2400, 4))


def test_probability_gives_identity_to_the_samples_it_skips() -> None:
    images = _images(batch=64)
    jitter = da.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.5)
    params = jitter.make_params(images, torch.Generator().manual_seed(0))
    out = jitter.transform(images, params)
    skipped = params.applied == 0
    assert 10 < int(skipped.sum()) < 54
    assert torch.equal(out[skipped], images[skipped])
    assert not torch.equal(out[~skipped], images[~skipped])


def test_replay_with_a_generator_and_purity() -> None:
    images = _images()
    for t in [da.ColorJitter(0.4, 0.4, 0.4, 0.1), da.RandomPhotometricDistort(fused=True), da.RandomChannelPermutation()]:
        a = t.make_params(images, torch.Generator().manual_seed(5))
        b = t.make_params(images, torch.Generator().manual_seed(5))
        assert torch.equal(t.transform(images, a), t.transform(images, b))


# ------------------------------------------------------------------------------------------- gradients
def _jitter_function(jitter: da.ColorJitter, params: da.JitterParams):
    def run(images, brightness, contrast, saturation, hue):
        replaced = dataclasses.replace(params, brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)
        if jitter.fused:
            replaced.colour = jitter._fused_matrix([brightness, contrast, saturation, hue], params.order, 3, params.applied)
        return jitter.transform(images, replaced)

    return run


@pytest.mark.parametrize("fused", [False, True])
def test_gradcheck_through_a_colour_chain(fused: bool) -> None:
    """Images and the four factors, float64; values kept off the clamps and HSV's sector edges."""
    images = (0.3 + 0.4 * _images(batch=2, size=3)).requires_grad_()
    jitter = da.ColorJitter((0.9, 1.1), (0.9, 1.1), (0.9, 1.1), (-0.02, 0.02), fused=fused)
    params = jitter.make_params(images.detach(), torch.Generator().manual_seed(0))
    factors = [params.brightness, params.contrast, params.saturation, params.hue]
    inputs = (images, *[f.detach().clone().requires_grad_() for f in factors])
    assert torch.autograd.gradcheck(_jitter_function(jitter, params), inputs)


def test_gradcheck_through_normalize_grayscale_invert_pipeline() -> None:
    images = _images(batch=2, size=3).requires_grad_()
    pipe = da.Compose([da.RandomGrayscale(p=1.0), da.RandomInvert(p=1.0), da.Normalize([0.5], [0.2])])
    params = pipe.make_params(images.detach())
    assert torch.autograd.gradcheck(lambda x: pipe.transform(x, params), (images,))
    assert torch.autograd.gradgradcheck(lambda x: pipe.transform(x, params), (images,))


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation", "hue", "p"])
@pytest.mark.parametrize("fused", [False, True])
def test_learnable_ranges_match_finite_differences(name: str, fused: bool) -> None:
    jitter = da.ColorJitter((0.8, 1.2), (0.8, 1.2), (0.8, 1.2), (-0.05, 0.05), p=0.7, fused=fused, learnable=True).double()
    images = 0.3 + 0.4 * _images(batch=3, size=4)
    weights = torch.rand(images.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    parameter = jitter.p_logit if name == "p" else getattr(jitter, name).raw

    def loss() -> torch.Tensor:  # the same noise every call: a smooth function of the parameters
        params = jitter.make_params(images, torch.Generator().manual_seed(2))
        return (jitter.transform(images, params) * weights).sum()

    loss().backward()
    analytic = parameter.grad.clone()
    assert analytic.abs().max() > 0
    eps = 1e-6
    with torch.no_grad():
        for index in range(parameter.numel()):
            flat = parameter.view(-1)
            flat[index] += eps
            up = loss()
            flat[index] -= 2 * eps
            down = loss()
            flat[index] += eps
            numeric = (up - down) / (2 * eps)
            torch.testing.assert_close(analytic.view(-1)[index], numeric, rtol=1e-4, atol=1e-6)


# -------------------------------------------------------------------------------------- dtypes, layout
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("fused", [False, True])
def test_dtypes_and_channels_last(dtype: torch.dtype, fused: bool) -> None:
    images = _images(dtype=torch.float32)
    jitter = da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=fused)
    params = jitter.make_params(images, torch.Generator().manual_seed(0))
    reference = jitter.transform(images, params)
    low = images.to(dtype).contiguous(memory_format=torch.channels_last)
    out = jitter.transform(low, params)
    assert out.dtype == dtype and out.shape == images.shape
    tolerance = {torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.float32: 1e-6}[dtype]
    assert (out.float() - reference).abs().max() <= tolerance
    plain = da.Normalize([0.5] * 3, [0.25] * 3)(low)
    assert plain.is_contiguous(memory_format=torch.channels_last)


def test_targets_pass_through_unchanged() -> None:
    images = _images()
    boxes = torch.tensor([[1.0, 2.0, 8.0, 9.0]]).expand(4, 1, 4)
    result = da.ColorJitter(0.4, 0.4)(images, boxes=boxes)
    assert torch.equal(result["boxes"], boxes)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.0, 3.0), st.floats(0.0, 3.0), st.floats(-0.5, 0.5), st.integers(0, 1000))
def test_fused_matrix_is_the_product_of_the_op_matrices(brightness: float, saturation: float, hue: float, seed: int) -> None:
    """Without clamping, fused = the ops' matrices applied one after the other (in the drawn order)."""
    images = _images(batch=2, size=4, seed=seed)
    jitter = da.ColorJitter((brightness, brightness), None, (saturation, saturation), (hue, hue), fused=True)
    params = jitter.make_params(images, torch.Generator().manual_seed(seed))
    out = daf.apply_colour(images, params.colour)
    expected = []
    for i in range(2):
        x = images[i : i + 1]
        for op in params.order[i].tolist():
            factor = torch.tensor([[brightness, 1.0, saturation, hue][op]], dtype=torch.float64)
            build = [daf.brightness_matrix, daf.contrast_matrix, daf.saturation_matrix, daf.hue_matrix][op]
            x = daf.apply_colour(x, build(factor, 3)) if op != 1 else x
        expected.append(x)
    torch.testing.assert_close(out, torch.cat(expected), atol=1e-9, rtol=1e-9)


def test_compose_colour_with_a_mean_part_is_the_sequential_application() -> None:
    images = _images()
    factors = torch.tensor([0.3, 1.7, 0.9, 1.2], dtype=torch.float64)
    first, second = daf.contrast_matrix(factors, 3), daf.saturation_matrix(factors.flip(0), 3)
    third = daf.contrast_matrix(factors + 0.1, 3)
    product = daf.compose_colour(daf.compose_colour(first, second, 3), third, 3)
    sequential = daf.apply_colour(daf.apply_colour(daf.apply_colour(images, first), second), third)
    torch.testing.assert_close(daf.apply_colour(images, product), sequential, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: da.ColorJitter(brightness=-0.1), ValueError, "brightness"),
        (lambda: da.ColorJitter(contrast=(1.5, 0.5)), ValueError, "contrast"),
        (lambda: da.ColorJitter(saturation=(-1.0, 1.0)), ValueError, "saturation"),
        (lambda: da.ColorJitter(hue=0.6), ValueError, "hue"),
        (lambda: da.ColorJitter(hue=(-0.7, 0.1)), ValueError, "hue"),
        (lambda: da.ColorJitter(brightness="a"), TypeError, "brightness"),
        (lambda: da.Normalize([0.5, 0.5, 0.5], [0.2, 0.0, 0.2]), ValueError, "std"),
        (lambda: da.Normalize([0.5, 0.5], [0.2, 0.2, 0.2]), ValueError, "same length"),
        (lambda: da.Grayscale(2), ValueError, "num_output_channels"),
        (lambda: da.ToDtype({torch.Tensor: torch.float32}), TypeError, "dtype"),
        (lambda: da.ToDtype(torch.int32), TypeError, "dtype"),
        (lambda: da.RandomPhotometricDistort(brightness=(1.2, 0.8)), ValueError, "brightness"),
    ],
)
def test_bad_arguments_fail_early_with_a_named_error(build, error, match: str) -> None:
    with pytest.raises(error, match=match):
        build()


def test_bad_images_fail_with_a_named_error() -> None:
    with pytest.raises(TypeError, match="1 or 3 channels"):
        da.ColorJitter(0.4)(torch.rand(2, 4, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        da.Normalize([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])(torch.rand(2, 1, 5, 5))
    with pytest.raises(TypeError, match="floating point"):
        da.Normalize([0.5], [0.2])(torch.zeros(2, 3, 5, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="num_output_channels"):
        da.Grayscale(1, p=0.5)(torch.rand(2, 3, 5, 5))
    jitter = da.ColorJitter(0.4)
    with pytest.raises(ValueError, match="make_params"):
        jitter.transform(torch.rand(3, 3, 5, 5), jitter.make_params(torch.rand(2, 3, 5, 5)))


def test_single_image_and_uint8_fused_pass() -> None:
    image = _images(batch=1, dtype=torch.uint8)[0]
    jitter = da.ColorJitter(0.4, 0.4, 0.4, 0.1, fused=True)
    out = jitter(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
    params = jitter.make_params(image[None], torch.Generator().manual_seed(0))
    batched = jitter.transform(image[None], params)
    floats = jitter.transform(image[None].double() / 255, params)
    # uint8 out: truncation of the float result (as torchvision's uint8 kernels), from the same matrix.
    assert torch.equal(batched.int(), (floats * 255 + 1e-9).floor().clamp(0, 255).int())


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation", "hue", "p"])
def test_photometric_distort_learnable_ranges_match_finite_differences(name: str) -> None:
    distort = da.RandomPhotometricDistort(p=0.6, learnable=True).double()
    images = 0.3 + 0.4 * _images(batch=4, size=4)
    weights = torch.rand(images.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    parameter = distort.p_logit if name == "p" else getattr(distort, name).raw

    def loss() -> torch.Tensor:
        params = distort.make_params(images, torch.Generator().manual_seed(4))
        return (distort.transform(images, params) * weights).sum()

    loss().backward()
    analytic = parameter.grad.clone()
    assert analytic.abs().max() > 0
    eps = 1e-6
    with torch.no_grad():
        flat = parameter.view(-1)
        for index in range(parameter.numel()):
            flat[index] += eps
            up = loss()
            flat[index] -= 2 * eps
            down = loss()
            flat[index] += eps
            torch.testing.assert_close(analytic.view(-1)[index], (up - down) / (2 * eps), rtol=1e-4, atol=1e-6)


# diffaug's additions, keyword-only, per transform; everything positional must be torchvision's.
COLOUR_EXTRAS = {
    "ColorJitter": ["p", "fused", "learnable", "temperature"],
    "RandomPhotometricDistort": ["fused", "learnable", "temperature"],
    "RandomChannelPermutation": ["p", "learnable", "temperature"],
    "Grayscale": ["p", "learnable", "temperature"],
    "RandomGrayscale": ["learnable", "temperature"],
    "RGB": ["p"],
    "RandomInvert": ["learnable", "temperature"],
    "Normalize": ["p", "learnable", "temperature"],
    "ToDtype": ["p"],
}


@pytest.mark.parametrize("name", sorted(COLOUR_EXTRAS))
def test_signatures_are_torchvisions_plus_keyword_only_extras(name: str) -> None:
    ours = inspect.signature(getattr(da, name)).parameters.values()
    theirs = inspect.signature(getattr(T, name)).parameters.values()
    positional = [(p.name, p.default) for p in ours if p.kind is not p.KEYWORD_ONLY]
    assert positional == [(p.name, p.default) for p in theirs]
    assert [p.name for p in ours if p.kind is p.KEYWORD_ONLY] == COLOUR_EXTRAS[name]


@pytest.mark.parametrize(
    "make",
    [
        lambda: da.ColorJitter(0.4, 0.4, 0.4, 0.1),
        lambda: da.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        lambda: da.ColorJitter(0.4, 0.4, 0.4),
        lambda: da.RandomPhotometricDistort(p=0.7),
    ],
)
def test_exact_pass_recycling_its_intermediates_changes_nothing(make) -> None:
    """Without gradients the exact pass writes each step into a spent intermediate (``out=``); with
    them it allocates. Both give the same values, bit for bit, and the input is left alone."""
    transform = make()
    images = torch.rand(6, 3, 16, 16)
    before = images.clone()
    params = transform.make_params(images, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        recycled = transform.transform(images, params)
    allocated = transform.transform(images.clone().requires_grad_(), params)
    assert torch.equal(recycled, allocated.detach()) and torch.equal(images, before)


def test_out_needs_float_images() -> None:
    with pytest.raises(ValueError, match="out="):
        daf.adjust_hue(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.zeros(1), out=torch.empty(1, 3, 2, 2))
    with pytest.raises(ValueError, match="out="):
        daf.apply_colour(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), daf.colour_identity(1, 3), out=torch.empty(1, 3, 2, 2))
