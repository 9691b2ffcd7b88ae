"""RandomResizedCrop, ZoomCrop and BoxCrop: the protocol, replay, layouts and gradients.

The law of RandomResizedCrop against torchvision's sampler is in test_rrc_law.py. Outputs are
compared with :func:`diffaug.functional.crop` of the params' boxes, which test_warp.py checks
against slicing and Kornia; comparisons upsample (output pixels no larger than input pixels) so
that no low-pass filter applies and the two must agree to rounding.
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import functional_call

import diffaug as da
import diffaug.functional as daf


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def image_batch(batch, height, width, channels=2, dtype=torch.float64, seed=0):
    return torch.rand(batch, channels, height, width, dtype=dtype, generator=seeded(seed))


shapes = st.tuples(st.integers(0, 6), st.integers(1, 40), st.integers(1, 40))


def make(kind, size=12, **kwargs):
    if kind == "rrc":
        return da.RandomResizedCrop(size, **kwargs)
    return da.ZoomCrop(size, **kwargs)


# --- the parameters ---------------------------------------------------------------------------


@given(shapes, st.floats(0.01, 1.0), st.floats(0.0, 1.0), st.floats(0.2, 5.0), st.floats(1.0, 5.0), st.integers(0, 2**31 - 1))
def test_rrc_boxes_are_an_allowed_crop_or_torchvisions_centred_fallback(
    shape, scale_low, scale_span, ratio_low, ratio_span, seed
):
    batch, height, width = shape
    scale = (scale_low, scale_low + scale_span * (1 - scale_low))
    ratio = (ratio_low, ratio_low * ratio_span)
    t = da.RandomResizedCrop(8, scale=scale, ratio=ratio)
    params = t.make_params(torch.zeros(1, 1, 1, 1, dtype=torch.float64).expand(batch, 3, height, width), seeded(seed))
    x1, y1, x2, y2 = params.boxes.unbind(-1)
    w, h = x2 - x1, y2 - y1
    eps = 1e-6  # fixed bounds are stored in float32
    inside = (x1 >= -eps) & (y1 >= -eps) & (x2 <= width + eps) & (y2 <= height + eps)
    assert inside.all()
    area = w * h / (height * width)
    allowed = (
        (area >= scale[0] - eps) & (area <= scale[1] + eps) & (w / h >= ratio[0] * (1 - eps)) & (w / h <= ratio[1] * (1 + eps))
    )
    # torchvision's fallback (continuous here): the widest centred crop whose ratio is allowed.
    in_ratio = width / height
    fallback_w = height * ratio[1] if in_ratio > ratio[1] else width
    fallback_h = width / ratio[0] if in_ratio < ratio[0] else height
    fallback = torch.tensor(
        [(width - fallback_w) / 2, (height - fallback_h) / 2, (width + fallback_w) / 2, (height + fallback_h) / 2]
    )
    is_fallback = (params.boxes - fallback.double()).abs().max(dim=-1).values < 1e-6 * max(height, width)
    assert (allowed | is_fallback).all()
    torch.testing.assert_close(params.theta, daf.boxes_to_theta(params.boxes, (height, width)))
    assert params.size == (8, 8) and params.in_size == (height, width) and params.applied.shape == (batch,)


def reference_rrc_boxes(noise, p_noise, height, width, scale, ratio, p, slack=0.0):
    """torchvision's procedure written out per sample in float64 on diffaug's noise layout.

    ``noise`` ``(B, 11, 2)``: tries ``[:, :10]`` as (area fraction, log ratio) uniforms, then the
    position; ``p_noise`` ``(B,)`` decides which samples are cropped (the others are the whole image).
    A try fits when its sides are at most the image's times ``1 + slack``.
    """
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    rows = []
    for sample, u_applied in zip(noise.tolist(), p_noise.tolist(), strict=True):
        if u_applied >= p:
            rows.append([0.0, 0.0, float(width), float(height)])
            continue
        for u_area, u_ratio in sample[:10]:
            area = height * width * (scale[0] + (scale[1] - scale[0]) * u_area)
            aspect = math.exp(log_low + (log_high - log_low) * u_ratio)
            w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
            if w <= width * (1 + slack) and h <= height * (1 + slack):
                u_x, u_y = sample[10]
                break
        else:
            w = height * ratio[1] if width / height > ratio[1] else float(width)
            h = width / ratio[0] if width / height < ratio[0] else float(height)
            u_x = u_y = 0.5
        left, top = u_x * (width - w), u_y * (height - h)
        rows.append([left, top, left + w, top + h])
    return torch.tensor(rows, dtype=torch.float64).view(-1, 4)


@pytest.mark.parametrize("learnable", [False, True])
@pytest.mark.parametrize("p", [1.0, 0.5])
@given(shapes, st.floats(0.05, 1.0), st.floats(0.0, 1.0), st.floats(0.3, 3.0), st.floats(1.0, 4.0), st.integers(0, 2**31 - 1))
def test_rrc_boxes_follow_torchvisions_procedure_on_the_same_noise(
    learnable, p, shape, scale_low, scale_span, ratio_low, ratio_span, seed
):
    """Which noise decides what (tries, first fitting try, position, fallback, p), against a per-sample loop.

    The fixed-range path (few tensor ops) and the learnable path (tensor bounds) must both agree with it.
    """
    batch, height, width = shape
    scale = (scale_low, scale_low + scale_span * (1 - scale_low))
    ratio = (ratio_low, ratio_low * ratio_span)
    t = da.RandomResizedCrop(8, scale=scale, ratio=ratio, p=p, learnable=learnable).double()
    if learnable:  # the learnable bounds sit slightly inside the domain: use the ones it holds
        scale = tuple(float(v.detach()) for v in t.scale.bounds())
        ratio = tuple(float(v.detach()) for v in t.ratio.bounds())
    images = torch.zeros(1, 1, 1, 1, dtype=torch.float64).expand(batch, 3, height, width)
    t.eval()  # a learnable p draws hard (straight-through) samples in eval mode
    boxes = t.make_params(images, seeded(seed)).boxes
    generator = seeded(seed)
    noise = torch.rand(batch, 11, 2, generator=generator, dtype=torch.float64)
    p_noise = torch.rand(batch, generator=generator, dtype=torch.float64)
    if learnable and p < 1.0:
        p_noise = 1 - p_noise  # relaxed Bernoulli in eval mode: applied where u > 1 - p
    p_value = float(torch.as_tensor(t.p).detach())
    # A try whose side lands within rounding of the image's (e.g. a degenerate range making a crop
    # exactly as tall as the image) may go either way: accept the procedure with either rounding.
    candidates = [reference_rrc_boxes(noise, p_noise, height, width, scale, ratio, p_value, s) for s in (-1e-9, 1e-9)]
    close = [torch.allclose(boxes, c, rtol=1e-6, atol=1e-6 * max(height, width)) for c in candidates]
    assert any(close), (boxes, candidates)


def test_rrc_uses_the_fallback_only_when_no_try_fits():
    # A 4:1 image, crops of at least 90% of its area with ratio <= 4/3 never fit: all fall back.
    t = da.RandomResizedCrop(8, scale=(0.9, 1.0))
    boxes = t.make_params(torch.zeros(64, 3, 16, 64), seeded(0)).boxes
    expected = torch.tensor([32 - 16 * 4 / 3 / 2, 0.0, 32 + 16 * 4 / 3 / 2, 16.0]).expand(64, 4)
    torch.testing.assert_close(boxes, expected)
    # A square image with the default law: almost always a try fits, at many places.
    boxes = da.RandomResizedCrop(8).make_params(torch.zeros(256, 3, 32, 32), seeded(0)).boxes
    assert len(torch.unique(boxes[:, 0])) > 200


@given(shapes, st.floats(0.3, 3.0), st.floats(1.0, 3.0), st.booleans(), st.integers(0, 2**31 - 1))
def test_zoom_windows_have_the_image_aspect_and_stay_inside_unless_allowed_out(shape, zoom_low, zoom_span, outside, seed):
    batch, height, width = shape
    zoom_range = (zoom_low, zoom_low * zoom_span)
    t = da.ZoomCrop(8, zoom=zoom_range, allow_outside=outside)
    params = t.make_params(torch.zeros(batch, 1, height, width, dtype=torch.float64), seeded(seed))
    x1, y1, x2, y2 = params.boxes.unbind(-1)
    zoom_x, zoom_y = width / (x2 - x1), height / (y2 - y1)
    torch.testing.assert_close(zoom_x, zoom_y)
    assert ((zoom_x >= zoom_range[0] * (1 - 1e-6)) & (zoom_x <= zoom_range[1] * (1 + 1e-6))).all()  # bounds kept in float32
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    centre_inside = (cx >= 0) & (cx <= width) & (cy >= 0) & (cy <= height)
    if outside:
        assert centre_inside.all()
    else:
        # Windows no larger than the image stay inside it; larger ones contain it.
        fits = zoom_x >= 1
        tol = 1e-9 * max(height, width)
        inside = (x1 >= -tol) & (y1 >= -tol) & (x2 <= width + tol) & (y2 <= height + tol)
        contains = (x1 <= tol) & (y1 <= tol) & (x2 >= width - tol) & (y2 >= height - tol)
        assert torch.where(fits, inside, contains).all()


def test_zoom_given_per_sample_is_used_as_given():
    t = da.ZoomCrop(4)
    zoom = torch.tensor([1.0, 2.0, 4.0, 0.5], dtype=torch.float64)
    center = torch.tensor([[0.0, 0.0], [-0.5, 0.5], [0.75, -1.0], [0.0, 0.25]], dtype=torch.float64)
    params = t.make_params(torch.zeros(4, 1, 10, 20, dtype=torch.float64), zoom=zoom, center=center)
    width, height = 20 / zoom, 10 / zoom
    cx, cy = (center[:, 0] + 1) * 10, (center[:, 1] + 1) * 5
    expected = torch.stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], dim=-1)
    torch.testing.assert_close(params.boxes, expected)


@pytest.mark.parametrize("kind", ["rrc", "zoom"])
def test_probability_leaves_the_others_whole(kind):
    t = make(kind, p=0.3, **({"zoom": (2.0, 3.0)} if kind == "zoom" else {"scale": (0.1, 0.5)}))
    params = t.make_params(torch.zeros(2000, 1, 30, 40), seeded(1))
    whole = torch.tensor([0.0, 0.0, 40.0, 30.0])
    applied = params.applied.bool()
    assert set(params.applied.unique().tolist()) <= {0.0, 1.0}
    assert (params.boxes[~applied] == whole).all()
    assert ((params.boxes[applied] - whole).abs().max(dim=-1).values > 1).all()
    assert abs(applied.double().mean().item() - 0.3) < 0.04  # 4 standard deviations of a Binomial(2000, 0.3)


# --- protocol: replay, per-sample draws, no host sync ---------------------------------------


@pytest.mark.parametrize("kind", ["rrc", "zoom"])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_replay_same_seed_same_params_same_output(kind, p):
    t = make(kind, p=p)
    images = image_batch(8, 10, 9, dtype=torch.float32)
    a, b = t.make_params(images, seeded(7)), t.make_params(images, seeded(7))
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.theta, b.theta) and torch.equal(a.applied, b.applied)
    out = t.transform(images, a)
    assert torch.equal(out, t.transform(images, a)) and torch.equal(out, t.transform(images, b))
    c = t.make_params(images, seeded(8))
    assert not torch.equal(a.boxes, c.boxes)
    # forward == transform(make_params) under the same global seed.
    torch.manual_seed(3)
    forward = t(images)
    torch.manual_seed(3)
    assert torch.equal(forward, t.transform(images, t.make_params(images)))


@pytest.mark.parametrize("kind", ["rrc", "zoom"])
def test_every_sample_gets_its_own_crop(kind):
    t = make(kind)
    boxes = t.make_params(torch.zeros(64, 3, 50, 70), seeded(0)).boxes
    assert len(torch.unique(boxes, dim=0)) == 64


@pytest.mark.parametrize("kind", ["rrc", "zoom"])
def test_params_need_only_shape_dtype_and_device(kind):
    t = make(kind)
    real = image_batch(5, 12, 17, dtype=torch.float32)
    expanded = torch.zeros(1, 1, 1, 1).expand(5, 2, 12, 17)
    a, b = t.make_params(real, seeded(4)), t.make_params(expanded, seeded(4))
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.theta, b.theta)


@pytest.mark.parametrize(
    "t",
    [
        da.RandomResizedCrop(8),
        da.RandomResizedCrop(8, scale=(0.9, 1.0), ratio=(0.5, 0.6), p=0.5),
        da.RandomResizedCrop(8, learnable=True, p=0.5),
        da.ZoomCrop(8, allow_outside=True),
        da.ZoomCrop(8, zoom=(0.5, 3.0), learnable=True, p=0.3),
    ],
    ids=["rrc", "rrc-fallback-p", "rrc-learnable", "zoom-outside", "zoom-learnable"],
)
def test_make_params_never_reads_tensor_values(t):
    """On the meta device any .item()/.tolist()/bool(tensor)/nonzero raises: params and the warp run without them."""
    images = torch.empty(6, 3, 20, 30, device="meta")
    params = t.make_params(images)
    assert params.theta.device.type == "meta" and params.theta.shape == (6, 2, 3)
    assert t.transform(images, params).shape == (6, 3, 8, 8)
    t.eval()
    assert t(images).shape == (6, 3, 8, 8)


def test_box_crop_on_meta_device():
    images = torch.empty(2, 3, 20, 30, device="meta")
    boxes = torch.empty(3, 4, device="meta")
    assert da.BoxCrop(8)(images, boxes, batch_index=torch.zeros(3, dtype=torch.long, device="meta")).shape == (3, 3, 8, 8)


# --- outputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rrc", "zoom"])
@given(shapes, st.integers(0, 2**31 - 1))
def test_output_is_the_crop_of_the_params_boxes(kind, shape, seed):
    batch, height, width = shape
    size = (height + 3, width + 5)  # upsampling: no low-pass filter can apply
    t = make(kind, size=size)
    images = image_batch(batch, height, width, seed=seed)
    params = t.make_params(images, seeded(seed))
    torch.testing.assert_close(t.transform(images, params), daf.crop(images, params.boxes, size), rtol=0, atol=1e-9)


@given(st.integers(1, 4), st.integers(0, 5), st.integers(0, 2**31 - 1))
def test_box_crop_equals_crop_one_per_image_and_with_batch_index(batch, extra, seed):
    images = image_batch(batch, 9, 11, seed=seed)
    generator = seeded(seed)
    count = batch + extra
    corner = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 10 - 1
    boxes = torch.cat([corner, corner + 0.5 + torch.rand(count, 2, generator=generator, dtype=torch.float64) * 8], dim=-1)
    index = torch.randint(0, batch, (count,), generator=generator)
    size = (12, 13)
    t = da.BoxCrop(size)
    torch.testing.assert_close(
        t(images, boxes, batch_index=index), daf.crop(images, boxes, size, batch_index=index), rtol=0, atol=1e-9
    )
    torch.testing.assert_close(t(images, boxes[:batch]), daf.crop(images, boxes[:batch], size), rtol=0, atol=1e-9)
    torch.testing.assert_close(t(images[0], boxes[0]), daf.crop(images[0], boxes[0], size), rtol=0, atol=1e-9)
    params = t.make_params(images, boxes, index)
    assert torch.equal(params.batch_index, index) and torch.equal(params.boxes, boxes)


DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.uint8]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", ["rrc", "zoom", "box"])
def test_dtypes_layouts_and_single_images(kind, dtype):
    images = (image_batch(3, 6, 7) * 255).to(dtype)
    size = (9, 10)  # upsampling
    given_boxes = torch.tensor([[0.5, 0.25, 5.5, 6.0], [1.0, 1.0, 2.0, 2.0], [-1.0, 2.0, 8.0, 4.5]])
    t = da.BoxCrop(size) if kind == "box" else make(kind, size=size)

    def params_of(x):
        if kind == "box":
            return t.make_params(x, given_boxes[: len(x)] if x.ndim == 4 else given_boxes[0])
        return t.make_params(x, seeded(0))

    params = params_of(images)
    assert params.theta.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    out = t.transform(images, params)
    assert out.dtype == dtype and out.shape == (3, 2, *size) and out.device == images.device
    reference = daf.crop(images.double(), params.boxes.double(), size)
    if dtype == torch.uint8:
        assert (out.double() - reference.round()).abs().max() <= 1  # .5 ties may round either way
    else:
        tolerance = {torch.float16: 0.5, torch.bfloat16: 2.0}.get(dtype, 1e-3)  # on values up to 255
        torch.testing.assert_close(out.double(), reference, rtol=0, atol=tolerance)
    channels_last = t.transform(images.contiguous(memory_format=torch.channels_last), params)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channels_last, out, rtol=0, atol=0)
    single = t.transform(images[0], params_of(images[0]))
    assert single.shape == (2, *size)
    torch.testing.assert_close(single, t.transform(images[:1], params_of(images[:1]))[0], rtol=0, atol=0)
    empty = t(images[:0]) if kind != "box" else t(images[:0], given_boxes[:0])
    assert empty.shape == (0, 2, *size) and empty.dtype == dtype


@pytest.mark.parametrize("kind", ["rrc", "zoom"])
def test_one_pixel_images(kind):
    image = torch.full((2, 3, 1, 1), 0.75, dtype=torch.float64)
    t = make(kind, size=(3, 2), padding_mode="border")
    torch.testing.assert_close(t(image), image.expand(2, 3, 3, 2))


# --- learnable parameters and gradients --------------------------------------------------------


def test_learnable_registers_bounds_near_the_given_values():
    t = da.RandomResizedCrop(8, scale=(0.2, 0.9), ratio=(0.5, 2.0), learnable=True, p=0.7)
    names = {name for name, _ in t.named_parameters()}
    assert names == {"scale.raw", "ratio.raw", "p_logit"}
    low, high = t.scale.bounds()
    torch.testing.assert_close(torch.stack([low, high]), torch.tensor([0.2, 0.9]))
    low, high = t.ratio.bounds()
    torch.testing.assert_close(torch.stack([low, high]), torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(t.p, torch.tensor(0.7))
    assert {name for name, _ in da.ZoomCrop(8, learnable=True).named_parameters()} == {"zoom.raw"}
    assert not list(da.RandomResizedCrop(8).parameters())


@given(st.lists(st.floats(-30, 30), min_size=6, max_size=6))
def test_learnable_bounds_stay_valid_for_any_raw_values(raw):
    t = da.RandomResizedCrop(8, learnable=True)
    z = da.ZoomCrop(8, learnable=True)
    with torch.no_grad():
        t.scale.raw.copy_(torch.tensor(raw[:2]))
        t.ratio.raw.copy_(torch.tensor(raw[2:4]))
        z.zoom.raw.copy_(torch.tensor(raw[4:]))
    for (low, high), domain_high in [(t.scale.bounds(), 1.0), (t.ratio.bounds(), math.inf), (z.zoom.bounds(), math.inf)]:
        assert 0 <= low <= high <= domain_high
    boxes = t.make_params(torch.zeros(16, 1, 20, 30), seeded(0)).boxes
    assert torch.isfinite(boxes).all()


def with_fixed_noise(t, names, images, seed=0, **kwargs):
    """The transform's output as a function of its parameters ``names``, the noise fixed by ``seed``."""

    def run(*values):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return functional_call(t, dict(zip(names, values, strict=True)), (images,), kwargs)

    return run


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("p", [1.0, 0.6])
def test_rrc_gradcheck_learnable_bounds(seed, p):
    t = da.RandomResizedCrop((7, 8), scale=(0.3, 0.8), ratio=(0.6, 1.7), learnable=True, p=p).double()
    images = image_batch(3, 5, 6, seed=seed)  # upsampled to (7, 8)
    names = [name for name, _ in t.named_parameters()]
    values = [param.detach().clone().requires_grad_(True) for _, param in t.named_parameters()]
    assert torch.autograd.gradcheck(with_fixed_noise(t, names, images, seed), values)


@pytest.mark.parametrize("seed", [0, 1])
def test_zoom_gradcheck_learnable_bounds_and_given_zoom_and_center(seed):
    t = da.ZoomCrop((7, 8), zoom=(0.7, 2.5), learnable=True, p=0.6).double()
    images = image_batch(3, 5, 6, seed=seed)
    names = [name for name, _ in t.named_parameters()]
    values = [param.detach().clone().requires_grad_(True) for _, param in t.named_parameters()]
    assert torch.autograd.gradcheck(with_fixed_noise(t, names, images, seed), values)
    generator = seeded(seed)
    zoom = (0.8 + torch.rand(3, generator=generator, dtype=torch.float64)).requires_grad_(True)
    center = (torch.rand(3, 2, generator=generator, dtype=torch.float64) - 0.5).requires_grad_(True)
    fixed = da.ZoomCrop((7, 8)).double()
    assert torch.autograd.gradcheck(lambda z, c, x: fixed(x, zoom=z, center=c), (zoom, center, images.requires_grad_(True)))


def test_box_crop_gradcheck_boxes_and_images():
    images = image_batch(2, 5, 6, seed=3).requires_grad_(True)
    boxes = torch.tensor([[0.3, 0.2, 4.1, 3.3], [1.1, -0.7, 6.9, 5.2], [2.3, 1.3, 3.4, 2.45]], dtype=torch.float64)
    boxes.requires_grad_(True)
    index = torch.tensor([1, 0, 1])
    t = da.BoxCrop((3, 4))
    assert torch.autograd.gradcheck(lambda b, x: t(x, b, batch_index=index), (boxes, images))
    assert torch.autograd.gradcheck(lambda b, x: t(x, b[:2]), (boxes, images))


def test_loss_gradient_with_respect_to_scale_bounds_matches_finite_differences():
    """d loss / d (scale low, high): autograd through the learnable bounds vs central differences of fixed-bound crops."""
    low, high, step = 0.25, 0.75, 2.0**-12  # all exact in float32, the dtype fixed bounds are stored in
    images = image_batch(4, 12, 16, seed=5)
    target = image_batch(4, 12, 16, seed=6)

    def loss(t):
        out = t.transform(images, t.make_params(images, seeded(11)))
        return ((out - target) ** 2).mean()

    # Crops no larger than the image, resized to the image size: upsampling, no low-pass filter.
    learnable = da.RandomResizedCrop((12, 16), scale=(low, high), learnable=True).double()
    grad_raw = torch.autograd.grad(loss(learnable), learnable.scale.raw)[0]
    bound_low, bound_high = learnable.scale.bounds()
    jacobian = torch.stack(
        [torch.autograd.grad(bound, learnable.scale.raw, retain_graph=True)[0] for bound in (bound_low, bound_high)]
    )
    grad_bounds = torch.linalg.solve(jacobian.T, grad_raw)  # chain rule: grad_raw = J^T grad_bounds

    def fixed_loss(lo, hi):
        return loss(da.RandomResizedCrop((12, 16), scale=(lo, hi)).double()).item()

    finite = torch.tensor(
        [
            (fixed_loss(low + step, high) - fixed_loss(low - step, high)) / (2 * step),
            (fixed_loss(low, high + step) - fixed_loss(low, high - step)) / (2 * step),
        ],
        dtype=torch.float64,
    )
    assert finite.abs().min() > 1e-4  # both bounds matter to this loss
    torch.testing.assert_close(grad_bounds, finite, rtol=1e-3, atol=1e-6)
