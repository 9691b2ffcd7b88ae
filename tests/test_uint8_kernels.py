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
  warp of the same levels rounded and clamped, for whole, fractional and out-of-range fills;
* the compiled CPU kernel of the nearest uint8 warp (``_cpu_kernels.warp_nearest_uint8``) against
  ``grid_sample``'s path (``_cpu_kernels.disabled()``): the same pixels for any affine map (rotations,
  shears, points far outside, NaN), fill, shape and memory layout; when the warp routes to it; and
  compiled graphs calling it;
* the compiled CPU kernel of ``equalize`` on uint8 (``_cpu_kernels.equalize_uint8``) against its
  PyTorch ops: the same levels for any image, layout and number of levels, flat channels included;
* the compiled CPU kernel of ``adjust_sharpness`` on uint8 against its PyTorch ops: the same levels
  except, by one, where the blend lies within rounding of a whole level (PyTorch's vectorised lerp
  may fuse its multiply-add), for factors on both sides of lerp's 0.5 switch.
"""

import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from diffaug import functional as daf
from diffaug.functional import _cpu_kernels, colour, gather, pixel
from diffaug.functional.warp import nearest_uint8_levels


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


@st.composite
def nearest_warps(draw: st.DrawFn):
    """uint8 images (contiguous, channels-last or one image expanded), affine thetas of every kind, a whole-level fill."""
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    batch, channels = draw(st.integers(1, 4)), draw(st.sampled_from([1, 3, 4]))
    height, width = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    size = (draw(st.integers(1, 30)), draw(st.integers(1, 30)))
    images = torch.randint(0, 256, (batch, channels, height, width), dtype=torch.uint8, generator=generator)
    layout = draw(st.sampled_from(["contiguous", "channels_last", "expanded"]))
    if layout == "channels_last":
        images = images.contiguous(memory_format=torch.channels_last)
    elif layout == "expanded":
        images = images[:1].expand(batch, -1, -1, -1)
    kind = draw(st.sampled_from(["random", "rotation", "shear", "far", "nan"]))
    theta = torch.eye(2, 3).repeat(batch, 1, 1)
    if kind == "random":
        theta = theta + 0.6 * torch.randn(batch, 2, 3, generator=generator)
    elif kind == "rotation":
        angle = torch.rand(batch, generator=generator) * 2 * math.pi
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    elif kind == "shear":
        theta[:, 0, 1] = torch.rand(batch, generator=generator) * 2 - 1
        theta[:, 0, 2] = theta[:, 0, 1] * (1 - 1 / height)  # about the top-left corner, as the policies shear
    elif kind == "far":
        theta[:, :, 2] = torch.tensor([1e9, -3e38, 2.5, float("inf")])[:batch, None]
    else:
        theta[0, 0, 0] = float("nan")
    fill = draw(st.sampled_from([0.0, 255.0, 7.0, (3.0, 200.0, 0.0, 9.0)[:channels]]))
    return images, theta, size, fill


def _nearest_both(images, theta, size, fill):
    kernel = daf.warp(images, theta, size, "nearest", fill=fill)
    with _cpu_kernels.disabled():
        reference = daf.warp(images, theta, size, "nearest", fill=fill)
    return kernel, reference


@settings(max_examples=120, deadline=None)
@given(nearest_warps())
def test_nearest_uint8_kernel_picks_grid_samples_pixels(case):
    assert _cpu_kernels.kernel() is not None
    images, theta, size, fill = case
    kernel, reference = _nearest_both(images, theta, size, fill)
    assert kernel.dtype == torch.uint8 and torch.equal(kernel, reference)
    assert kernel.stride() == reference.stride()  # channels-last stays channels-last


def test_nearest_uint8_kernel_equals_grid_sample_on_policy_sized_batches():
    # Whole images of the policies' size: every rotation and shear bin of a 224 x 224 batch.
    images = torch.randint(0, 256, (8, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for angle in torch.linspace(-30, 30, 7):
        radians = math.radians(float(angle))
        rotation = torch.tensor([[math.cos(radians), -math.sin(radians), 0.0], [math.sin(radians), math.cos(radians), 0.0]])
        shear = torch.tensor([[1.0, float(angle) / 30, float(angle) / 30 * (1 - 1 / 224)], [0.0, 1.0, 0.0]])
        for theta in (rotation, shear):
            kernel, reference = _nearest_both(images, theta.expand(8, 2, 3), (224, 224), 0.0)
            assert torch.equal(kernel, reference), float(angle)
    # Halving the side puts every sample point exactly between two pixels: ties, rounded half to even.
    kernel, reference = _nearest_both(images, torch.eye(2, 3).expand(8, 2, 3), (112, 112), 0.0)
    assert torch.equal(kernel, reference)


@pytest.mark.parametrize(
    ("dtype", "mode", "padding_mode", "fill", "served"),
    [
        (torch.uint8, "nearest", "zeros", 0.0, True),
        (torch.uint8, "nearest", "zeros", (1.0, 2.0, 255.0), True),
        (torch.uint8, "nearest", "zeros", 127.5, False),  # a fractional fill: rounded by the float path
        (torch.uint8, "nearest", "zeros", 300.0, False),  # beyond uint8: clamped by the float path
        (torch.uint8, "nearest", "border", 0.0, False),
        (torch.uint8, "bilinear", "zeros", 0.0, False),
        (torch.float32, "nearest", "zeros", 0.0, False),
    ],
)
def test_the_warp_routes_to_the_nearest_uint8_kernel_only_where_it_serves(monkeypatch, dtype, mode, padding_mode, fill, served):
    calls = []
    original = _cpu_kernels.warp_nearest_uint8
    monkeypatch.setattr(_cpu_kernels, "warp_nearest_uint8", lambda *args: calls.append(1) or original(*args))
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8).to(dtype)
    theta = torch.eye(2, 3).expand(2, 2, 3) + 0.1
    out = daf.warp(images, theta, 8, mode, padding_mode, fill=fill)
    assert len(calls) == int(served) and out.dtype == dtype
    with _cpu_kernels.disabled():
        assert torch.equal(daf.warp(images, theta, 8, mode, padding_mode, fill=fill), out)
    assert len(calls) == int(served)  # disabled: grid_sample's path


def test_compiled_graphs_call_the_nearest_uint8_kernel():
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    theta = torch.eye(2, 3).expand(3, 2, 3) + 0.2 * torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(3))
    compiled = torch.compile(lambda x, t: daf.warp(x, t, (12, 12), "nearest", fill=5.0), fullgraph=True, backend="eager")
    assert torch.equal(compiled(images, theta), daf.warp(images, theta, (12, 12), "nearest", fill=5.0))


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 3),
    st.integers(1, 64),
    st.integers(1, 64),
    st.sampled_from([256, 17, 2, 1]),
    st.sampled_from(["contiguous", "channels_last", "expanded", "single"]),
)
def test_equalize_uint8_kernel_equals_its_pytorch_ops(seed, batch, height, width, levels, layout):
    # Up to 64 x 64 pixels: steps up to 16, so the table's rounding (step // 2) and the top level's count matter.
    assert _cpu_kernels.kernel() is not None
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, levels, (batch, 3, height, width), generator=generator).mul(255 // max(levels - 1, 1))
    images = images.add(seed % 5).clamp(0, 255).to(torch.uint8)  # 1 level: flat channels, kept as they are
    if layout == "channels_last":
        images = images.contiguous(memory_format=torch.channels_last)
    elif layout == "expanded":
        images = images[:1].expand(batch, -1, -1, -1)
    elif layout == "single":
        images = images[0]
    out = pixel.equalize(images)
    with _cpu_kernels.disabled():
        reference = pixel.equalize(images)
    assert out.dtype == torch.uint8 and torch.equal(out, reference) and out.stride() == reference.stride()


@pytest.mark.parametrize("below_top", [254, 255, 509, 510, 511])
def test_equalize_uint8_kernel_at_the_steps_edges(below_top):
    # step = (pixels below the top level) // 255 changes at multiples of 255: both sides of two edges.
    levels = torch.arange(below_top) % 200
    images = torch.cat([levels, torch.full((3,), 250)]).to(torch.uint8).view(1, 1, 1, -1)
    with _cpu_kernels.disabled():
        reference = pixel.equalize(images)
    assert torch.equal(pixel.equalize(images), reference)


def test_equalize_routes_to_the_kernel_for_uint8_and_compiles(monkeypatch):
    calls = []
    original = _cpu_kernels.equalize_uint8
    monkeypatch.setattr(_cpu_kernels, "equalize_uint8", lambda *args: calls.append(1) or original(*args))
    images = torch.randint(0, 256, (2, 3, 9, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    expected = pixel.equalize(images)
    pixel.equalize(images.float() / 255)
    assert len(calls) == 1  # the uint8 call only
    monkeypatch.setattr(_cpu_kernels, "equalize_uint8", original)
    compiled = torch.compile(pixel.equalize, fullgraph=True, backend="eager")
    assert torch.equal(compiled(images), expected)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 3),
    st.integers(1, 40),
    st.integers(1, 40),
    st.one_of(st.floats(0.0, 3.0), st.just(0.5), st.just(0.49999997), st.just(1.0)),
    st.sampled_from(["number", "per_sample", "channels_last", "single"]),
)
def test_adjust_sharpness_uint8_kernel_equals_its_pytorch_ops(seed, batch, height, width, factor, form):
    assert _cpu_kernels.kernel() is not None
    images = _images(seed, batch, height, width)
    sharpness: float | torch.Tensor = factor
    if form == "per_sample":
        sharpness = torch.rand(batch, generator=torch.Generator().manual_seed(seed)) * 3
    elif form == "channels_last":
        images = images.contiguous(memory_format=torch.channels_last)
    elif form == "single":
        images = images[0]
    out = pixel.adjust_sharpness(images, sharpness)
    with _cpu_kernels.disabled():
        reference = pixel.adjust_sharpness(images, sharpness)
    assert out.dtype == torch.uint8 and out.shape == reference.shape and out.stride() == reference.stride()
    # The blend in float64 (smoothed level rounded half to even, as both compute it): where it lies within
    # rounding of a whole level the two float32 forms may truncate to neighbouring levels.
    batched = images if images.ndim == 4 else images.unsqueeze(0)
    work = batched.double()
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64) / 13
    if height > 2 and width > 2:
        smooth = torch.nn.functional.conv2d(work.flatten(0, 1).unsqueeze(1), kernel.view(1, 1, 3, 3)).view(
            work.shape[0], work.shape[1], height - 2, width - 2
        )
        weight = sharpness.double().view(-1, 1, 1, 1) if isinstance(sharpness, torch.Tensor) else float(sharpness)
        inner = work[..., 1:-1, 1:-1]
        blend = smooth.round() + weight * (inner - smooth.round())
        near_level = torch.zeros_like(work, dtype=torch.bool)
        near_level[..., 1:-1, 1:-1] = (blend - blend.round()).abs() < 1e-3
        near_level = near_level if images.ndim == 4 else near_level[0]
    else:
        near_level = torch.zeros_like(out, dtype=torch.bool)
    diff = (out.int() - reference.int()).abs()
    assert int(diff.max()) <= 1 and bool((diff[~near_level] == 0).all())


def test_adjust_sharpness_routes_to_the_kernel_for_uint8_and_compiles(monkeypatch):
    calls = []
    original = _cpu_kernels.adjust_sharpness_uint8
    monkeypatch.setattr(_cpu_kernels, "adjust_sharpness_uint8", lambda *args: calls.append(1) or original(*args))
    images = _images(5, 2, 9, 7)
    factor = torch.tensor([0.3, 1.7])
    expected = pixel.adjust_sharpness(images, factor)
    pixel.adjust_sharpness(images.float() / 255, factor)
    assert len(calls) == 1  # the uint8 call only
    monkeypatch.setattr(_cpu_kernels, "adjust_sharpness_uint8", original)
    compiled = torch.compile(pixel.adjust_sharpness, fullgraph=True, backend="eager")
    assert torch.equal(compiled(images, factor), expected)


def test_a_fresh_process_compiles_the_uint8_ops_in_one_graph():
    # The kernels load on first use: a graph traced before any eager call must still hold one graph.
    script = (
        "import torch\n"
        "from diffaug import functional as daf\n"
        "from diffaug.functional import pixel\n"
        "images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)\n"
        "theta = torch.eye(2, 3).expand(2, 2, 3) + 0.1\n"
        "for fn, args in [(pixel.equalize, (images,)), (pixel.adjust_sharpness, (images, 1.5)),\n"
        "                 (lambda x, t: daf.warp(x, t, 8, 'nearest'), (images, theta))]:\n"
        "    assert torch.equal(torch.compile(fn, fullgraph=True, backend='eager')(*args), fn(*args))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_nearest_kernel_leaves_sides_of_2_to_the_22_to_grid_sample():
    # Its rounding (adding and subtracting 1.5 * 2^23) is exact only below 2^22.
    wide = torch.randint(0, 256, (1, 1, 1, 2**22 + 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(6))
    assert nearest_uint8_levels(wide, "nearest", "zeros", False, None) is None
    assert nearest_uint8_levels(wide[..., : 2**22 - 1], "nearest", "zeros", False, None) == [0]
    theta = torch.eye(2, 3).unsqueeze(0)
    assert torch.equal(daf.warp(wide, theta, (1, wide.shape[-1]), "nearest"), wide)


def test_the_uint8_kernels_refuse_what_they_cannot_read():
    module = _cpu_kernels.kernel()
    assert module is not None
    empty = torch.empty(1, 1, 0, 0, dtype=torch.uint8)
    terms = torch.zeros(1, 2, 4)
    with pytest.raises(RuntimeError, match="image sides"):
        _cpu_kernels.warp_nearest_uint8(empty, terms, terms, [5])
    with pytest.raises(RuntimeError, match="fill levels"):
        _cpu_kernels.warp_nearest_uint8(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), terms, terms, [300])
    assert _cpu_kernels.adjust_sharpness_uint8(empty, torch.ones(1)).shape == empty.shape
    assert _cpu_kernels.equalize_uint8(empty).shape == empty.shape


def test_uint8_sharpness_with_a_number_under_a_float64_default_dtype():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        images = _images(7, 2, 8, 8)
        out = pixel.adjust_sharpness(images, 1.5)
        with _cpu_kernels.disabled():
            reference = pixel.adjust_sharpness(images, 1.5)
    finally:
        torch.set_default_dtype(before)
    assert out.dtype == torch.uint8 and (out.int() - reference.int()).abs().max() <= 1
