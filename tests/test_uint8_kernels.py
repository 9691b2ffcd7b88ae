"""The fast paths of the policies' kernels give bitwise the values of the arithmetic they replace.

* ``colour.to_uint8`` (the cast through int16) against the direct float -> uint8 cast;
* ``solarize`` on uint8 (integer arithmetic) against ``torch.where(x >= level, ~x, x)``, for
  per-sample and scalar thresholds, thresholds outside ``[0, 255]``, NaN and non-integral ones;
* ``equalize`` on uint8 (identity tables for flat channels): flat channels kept, and the same
  levels as float images binned to them;
* ``adjust_sharpness`` on uint8 (blend written over its own float copy) against the convolution
  formula (within a rounding of the smoothed value) and across memory formats;
* ``apply_colour(diagonal=True)`` (a scale per channel) against the matrix product, for uint8,
  float32 and float64 images in both memory formats;
* ``gather.shift_images`` (row gathers) against the nearest warp of whole-pixel translations, images
  shifted partly or wholly out of the frame included;
* the nearest uint8 warp (cast without rounding when the fill is a whole level) against the float
  warp of the same levels rounded and clamped, for whole, fractional and out-of-range fills.
"""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from diffaug import functional as daf
from diffaug.functional import colour, gather, pixel


def _images(seed: int, batch: int, height: int, width: int, levels: int = 256) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator)
    step = 256 // levels  # few levels: ties, flat channels
    return images if step == 1 else (images.div(step, rounding_mode="floor") * step).to(torch.uint8)


def test_to_uint8_equals_the_direct_cast():
    values = torch.cat([torch.linspace(0, 255, 100_003), torch.tensor([0.0, 0.4999, 0.5, 254.99998, 255.0])])
    assert torch.equal(colour.to_uint8(values), values.to(torch.uint8))
    assert torch.equal(colour.to_uint8(values.double()), values.double().to(torch.uint8))


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 1000),
    st.integers(1, 4),
    st.integers(1, 17),
    st.integers(1, 17),
    st.lists(
        st.one_of(st.floats(-300.0, 600.0), st.just(math.nan), st.just(math.inf), st.just(-math.inf)), min_size=4, max_size=4
    ),
)
def test_uint8_solarize_equals_the_comparison(seed, batch, height, width, thresholds):
    images = _images(seed, batch, height, width)
    level = torch.tensor(thresholds[:batch], dtype=torch.float32)
    expected = torch.where(images >= level.view(-1, 1, 1, 1), images.bitwise_not(), images)
    assert torch.equal(pixel.solarize(images, level), expected)
    number = min(max(thresholds[0], 0.0), 255.0) if not math.isnan(thresholds[0]) else 128.5
    assert torch.equal(pixel.solarize(images, number), torch.where(images >= number, images.bitwise_not(), images))
    assert torch.equal(pixel.solarize(images[0], number), torch.where(images[0] >= number, images[0].bitwise_not(), images[0]))


class _RecordOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.ops.append(func._overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_uint8_solarize_with_a_number_makes_no_tensor_of_it() -> None:
    # A tensor made from a Python number (aten.lift_fresh) is, on a GPU, a synchronous copy to the device on
    # every call: the threshold's first inverted level is found on the host instead, with float32's rounding.
    images = _images(0, 2, 5, 5)
    for level in (0.0, 1e-9, 100.000001, 127.5, 254.99999, 255.0):
        with _RecordOps() as recorded:
            out = pixel.solarize(images, level)
        assert "lift_fresh" not in recorded.ops
        assert torch.equal(out, torch.where(images >= level, images.bitwise_not(), images))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 4), st.integers(1, 20), st.integers(1, 20), st.sampled_from([2, 4, 256]))
def test_uint8_equalize_keeps_flat_channels_and_equals_the_float_binning(seed, batch, height, width, levels):
    images = _images(seed, batch, height, width, levels)
    images[0, 0] = 7  # a flat channel: step 0, kept as it is
    out = pixel.equalize(images)
    assert torch.equal(out[0, 0], images[0, 0])
    # Float images binned to the same levels equalise to the same tables.
    assert torch.equal((pixel.equalize(images.double() / 255) * 255).round().to(torch.uint8), out)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 4), st.integers(1, 20), st.integers(1, 20), st.floats(0.0, 3.0))
def test_uint8_sharpness_equals_the_float_formula(seed, batch, height, width, factor):
    images = _images(seed, batch, height, width)
    factors = torch.linspace(0.0, factor, batch)
    x = images.float()
    expected = x.clone()
    if height > 2 and width > 2:
        kernel = torch.ones(3, 3)
        kernel[1, 1] = 5.0
        smooth = torch.nn.functional.conv2d(x.view(-1, 1, height, width), (kernel / 13).view(1, 1, 3, 3))
        smooth = smooth.view(batch, 3, height - 2, width - 2).round()
        expected[..., 1:-1, 1:-1] = torch.lerp(smooth, x[..., 1:-1, 1:-1], factors.view(-1, 1, 1, 1))
    out = pixel.adjust_sharpness(images, factors)
    # The convolution sums in another order: the smoothed value may differ by a rounding at most.
    assert (out.int() - expected.clamp(0, 255).to(torch.uint8).int()).abs().max() <= 1
    assert torch.equal(pixel.adjust_sharpness(images, 1.0), images)
    channels_last = images.contiguous(memory_format=torch.channels_last)
    assert torch.equal(pixel.adjust_sharpness(channels_last, factors), out)
    assert pixel.adjust_sharpness(channels_last, factors).is_contiguous(memory_format=torch.channels_last)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 1000),
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from([torch.uint8, torch.float32, torch.float64]),
    st.booleans(),
)
def test_diagonal_colour_pass_equals_the_matrix_product(seed, batch, height, width, dtype, channels_last):
    # Brightness, contrast, invert and a per-channel stretch have diagonal linear parts: scaling each
    # channel gives bitwise the product's values (its other terms are exact zeros), layout included.
    images = _images(seed, batch, height, width)
    images = images if dtype == torch.uint8 else images.to(dtype) / 255
    images = images.contiguous(memory_format=torch.channels_last) if channels_last else images
    generator = torch.Generator().manual_seed(seed)
    factor = torch.rand(batch, generator=generator, dtype=torch.float64) * 3
    low = torch.rand(batch, 3, generator=generator)
    gain = 1 / (low + torch.rand(batch, 3, generator=generator) + 1e-3 - low)
    stretch = torch.cat([torch.diag_embed(gain), (-low * gain).unsqueeze(-1)], -1)
    for matrix in (daf.brightness_matrix(factor), daf.contrast_matrix(factor.float()), daf.invert_matrix(batch, 3), stretch):
        expected = daf.apply_colour(images, matrix, clamp=True)
        out = daf.apply_colour(images, matrix, clamp=True, diagonal=True)
        assert torch.equal(out, expected) and out.stride() == expected.stride()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 3), st.integers(1, 20), st.integers(1, 20), st.booleans())
def test_shift_images_equals_the_nearest_warp_of_a_whole_pixel_translation(seed, batch, channels, height, width, far):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, channels, height, width), dtype=torch.uint8, generator=generator)
    reach = 3 if far else 1  # far: samples shifted wholly outside the image too
    dx = torch.randint(-reach * width, reach * width + 1, (batch,), generator=generator)
    dy = torch.randint(-reach * height, reach * height + 1, (batch,), generator=generator)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = -2.0 * dx / width, -2.0 * dy / height
    expected = daf.warp(images.float(), theta, (height, width), "nearest", "zeros").to(torch.uint8)
    assert torch.equal(gather.shift_images(images, torch.stack([dx, dy], 1)), expected)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 1000),
    st.integers(1, 3),
    st.integers(2, 12),
    st.integers(2, 12),
    st.sampled_from([0.0, 7.0, 255.0, 127.5, 300.0, (1.0, 2.0, 250.0), (0.4, 0.0, 3.0)]),
    st.sampled_from(["nearest", "bilinear"]),
)
def test_uint8_warp_equals_the_rounded_float_warp(seed, batch, height, width, fill, mode):
    generator = torch.Generator().manual_seed(seed)
    images = _images(seed, batch, height, width)
    before = images.clone()
    theta = torch.eye(2, 3) + 0.4 * torch.randn(batch, 2, 3, generator=generator)
    out = daf.warp(images, theta, (height, width), mode, fill=fill)
    expected = daf.warp(images.double(), theta.double(), (height, width), mode, fill=fill).round().clamp(0, 255)
    assert out.dtype == torch.uint8 and torch.equal(images, before)
    if mode == "nearest":
        # Sample points off pixel edges almost surely: float32 and float64 pick the same pixels.
        assert torch.equal(out, expected.to(torch.uint8))
    else:
        assert (out.double() - expected).abs().max() <= 1
