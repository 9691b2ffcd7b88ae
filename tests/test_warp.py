"""diffaug.functional.crop / warp against slicing, numpy padding and Kornia; gradients; dtypes and layouts.

Run ``pytest tests/test_warp.py -s -k report`` to print the maximum errors against slicing and
Kornia over a fixed set of random cases.
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from kornia.geometry.transform import warp_affine

import diffaug.functional as daf
from tests._slicing import slices

MODES = ["bilinear", "nearest", "bicubic"]
PADDINGS = ["zeros", "border", "reflection", "reflect"]


@st.composite
def integer_crops(draw, inside=True):
    """Images (B, C, H, W) float64, integer boxes (B, 4) of one size (h, w), that size."""
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if inside:
        h, w = draw(st.integers(1, height)), draw(st.integers(1, width))
        tops = [draw(st.integers(0, height - h)) for _ in range(batch)]
        lefts = [draw(st.integers(0, width - w)) for _ in range(batch)]
    else:
        h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        tops = [draw(st.integers(-25, height + 5)) for _ in range(batch)]
        lefts = [draw(st.integers(-25, width + 5)) for _ in range(batch)]
    seed = draw(st.integers(0, 2**31 - 1))
    images = torch.rand(batch, channels, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    boxes = torch.tensor([[left, top, left + w, top + h] for left, top in zip(lefts, tops, strict=True)], dtype=torch.float64)
    return images, boxes, (h, w)


@given(integer_crops(), st.sampled_from(MODES), st.sampled_from(PADDINGS))
def test_integer_box_at_its_own_size_equals_slicing(case, mode, padding_mode):
    images, boxes, size = case
    out = daf.crop(images, boxes, size, mode=mode, padding_mode=padding_mode)
    torch.testing.assert_close(out, slices(images, boxes, size), rtol=0, atol=1e-9)


@given(integer_crops(inside=False), st.sampled_from(["bilinear", "nearest"]), st.sampled_from(PADDINGS))
def test_integer_boxes_outside_the_image_show_the_documented_padding(case, mode, padding_mode):
    """zeros / border / reflection / reflect == numpy.pad constant 0 / edge / symmetric / reflect, even far outside."""
    images, boxes, size = case
    numpy_mode = {"zeros": "constant", "border": "edge", "reflection": "symmetric", "reflect": "reflect"}[padding_mode]
    pad = 40
    padded = torch.from_numpy(np.pad(images.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=numpy_mode))
    out = daf.crop(images, boxes, size, mode=mode, padding_mode=padding_mode)
    torch.testing.assert_close(out, slices(padded, boxes + pad, size), rtol=0, atol=1e-9)


@given(integer_crops(), st.integers(1, 4))
def test_batch_index_crops_the_gathered_images(case, repeats):
    images, boxes, size = case
    index = torch.arange(len(images)).repeat(repeats).flip(0)
    boxes = boxes[index]
    out = daf.crop(images, boxes, size, batch_index=index)
    torch.testing.assert_close(out, daf.crop(images[index], boxes, size), rtol=0, atol=0)
    torch.testing.assert_close(out, slices(images[index], boxes, size), rtol=0, atol=1e-9)


@st.composite
def fractional_crops(draw, max_side=20, dtype=torch.float64, min_side=1):
    batch, channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    out_h, out_w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rows = []
    for _ in range(batch):
        x1 = draw(st.floats(-0.5 * width - 2, width, allow_nan=False))
        y1 = draw(st.floats(-0.5 * height - 2, height, allow_nan=False))
        bw = draw(st.floats(0.1, 1.5 * width + 2))
        bh = draw(st.floats(0.1, 1.5 * height + 2))
        rows.append([x1, y1, x1 + bw, y1 + bh])
    seed = draw(st.integers(0, 2**31 - 1))
    images = torch.rand(batch, channels, height, width, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    return images, torch.tensor(rows, dtype=dtype), (out_h, out_w)


def kornia_matrix(boxes, size):
    """Kornia's forward matrix (input pixel index -> output pixel index, align_corners=True) of our crop.

    Derived from the convention, not from diffaug: output pixel ``j`` has its centre at
    ``j + 0.5`` in the output and samples input pixel coordinate ``x1 + (j + 0.5) * (x2 - x1) / w``,
    which is index coordinate ``x - 0.5`` (pixel centres at integers, Kornia's convention).
    """
    out_h, out_w = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    sx, sy = (x2 - x1) / out_w, (y2 - y1) / out_h
    backward = torch.zeros(len(boxes), 3, 3, dtype=boxes.dtype)
    backward[:, 0, 0], backward[:, 0, 2] = sx, x1 - 0.5 + 0.5 * sx
    backward[:, 1, 1], backward[:, 1, 2] = sy, y1 - 0.5 + 0.5 * sy
    backward[:, 2, 2] = 1.0
    return torch.linalg.inv(backward)[:, :2]


def kornia_crop(images, boxes, size, mode="bilinear", padding_mode="zeros"):
    matrix = kornia_matrix(boxes.double(), size).to(images.dtype)
    return warp_affine(images, matrix, size, mode=mode, padding_mode=padding_mode, align_corners=True)


def test_kornia_matrix_agrees_with_the_geometry_helpers():
    """The same matrix from diffaug's helpers: pixel matrix, shifted to index coordinates, inverted."""
    boxes = torch.tensor([[1.25, -2.5, 7.75, 3.0], [0.0, 0.0, 5.0, 9.0]], dtype=torch.float64)
    in_size, out_size = (6, 8), (4, 3)
    pixel = daf.pixel_matrix_from_normalized(daf.to_square(daf.boxes_to_theta(boxes, in_size)), in_size, out_size)
    half = torch.tensor(0.5, dtype=torch.float64)
    index = daf.translate_matrix(-half, -half) @ pixel @ daf.translate_matrix(half, half)
    torch.testing.assert_close(daf.to_theta(daf.invert(index)), kornia_matrix(boxes, out_size), rtol=0, atol=1e-12)


# Kornia normalises pixel indices by (side - 1): a 1-pixel axis is degenerate there, so sides >= 2.
@given(fractional_crops(min_side=2), st.sampled_from(["bilinear", "bicubic"]), st.sampled_from(["zeros", "border"]))
def test_fractional_crops_equal_kornia_warp_affine_float64(case, mode, padding_mode):
    images, boxes, size = case
    out = daf.crop(images, boxes, size, mode=mode, padding_mode=padding_mode)
    torch.testing.assert_close(out, kornia_crop(images, boxes, size, mode, padding_mode), rtol=0, atol=1e-9)


@given(fractional_crops(max_side=64, dtype=torch.float32, min_side=2), st.sampled_from(["zeros", "border"]))
def test_fractional_crops_equal_kornia_warp_affine_float32(case, padding_mode):
    images, boxes, size = case
    out = daf.crop(images, boxes, size, padding_mode=padding_mode)
    torch.testing.assert_close(out, kornia_crop(images, boxes, size, "bilinear", padding_mode), rtol=0, atol=1e-4)


def sample_positions(boxes, size):
    """Input pixel coordinates (x, y) the output pixel centres sample."""
    out_h, out_w = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    xs = x1[:, None] + (torch.arange(out_w, dtype=boxes.dtype) + 0.5) * ((x2 - x1) / out_w)[:, None]
    ys = y1[:, None] + (torch.arange(out_h, dtype=boxes.dtype) + 0.5) * ((y2 - y1) / out_h)[:, None]
    return torch.cat([xs.flatten(), ys.flatten()])


def away_from_kinks(boxes, size, margin=1e-3):
    """Bilinear and the padding folds are not differentiable where a sample sits on a pixel centre or edge."""
    frac = torch.remainder(sample_positions(boxes, size), 0.5)
    return bool(((frac > margin) & (frac < 0.5 - margin)).all())


@given(fractional_crops(max_side=6), st.sampled_from(["bilinear", "bicubic"]), st.sampled_from(PADDINGS))
def test_crop_gradcheck_images_and_boxes(case, mode, padding_mode):
    images, boxes, size = case
    assume(away_from_kinks(boxes, size))
    images.requires_grad_(True)
    boxes.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda i, b: daf.crop(i, b, size, mode=mode, padding_mode=padding_mode), (images, boxes))


def test_crop_gradcheck_with_batch_index_and_single_image():
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(2, 2, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    boxes = torch.tensor([[0.3, 0.2, 4.1, 3.3], [1.1, -0.7, 6.9, 5.2], [2.3, 1.3, 3.4, 2.45]], dtype=torch.float64)
    boxes.requires_grad_(True)
    index = torch.tensor([1, 0, 1])
    assert away_from_kinks(boxes.detach(), (3, 2))
    assert torch.autograd.gradcheck(lambda i, b: daf.crop(i, b, (3, 2), batch_index=index), (images, boxes))
    assert torch.autograd.gradcheck(lambda i, b: daf.crop(i[0], b[0], (3, 2)), (images, boxes))


FLOAT_TOLERANCE = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}


@given(fractional_crops(max_side=16), st.sampled_from(list(FLOAT_TOLERANCE)), st.sampled_from(MODES[:1] + MODES[2:]))
def test_half_and_single_precision_follow_float64(case, dtype, mode):
    images, boxes, size = case
    out = daf.crop(images.to(dtype), boxes.to(dtype), size, mode=mode)
    assert out.dtype == dtype
    reference = daf.crop(images.to(dtype).double(), boxes.to(dtype).double(), size, mode=mode)
    torch.testing.assert_close(out.double(), reference, rtol=0, atol=FLOAT_TOLERANCE[dtype] * (4 if mode == "bicubic" else 1))


@given(fractional_crops(max_side=16), st.sampled_from(MODES))
def test_uint8_comes_back_uint8_rounded_and_clamped(case, mode):
    images, boxes, size = case
    # nearest picks either pixel when a sample sits on a pixel edge; float32 and float64 may disagree there.
    assume(mode != "nearest" or away_from_kinks(boxes, size))
    images = (images * 255).round()
    # A checkerboard of 0 and 255 makes bicubic overshoot below 0 and above 255.
    images[..., ::2, ::2] = 255.0
    images[..., 1::2, 1::2] = 0.0
    out = daf.crop(images.to(torch.uint8), boxes.float(), size, mode=mode)
    assert out.dtype == torch.uint8
    reference = daf.crop(images, boxes, size, mode=mode)  # float64 on the same values
    expected = reference.round().clamp(0, 255)
    # float32 sampling can land on the other side of a .5 tie; elsewhere the result is exact.
    near_tie = (reference - reference.floor() - 0.5).abs() < 1e-3
    diff = (out.double() - expected).abs()
    assert diff.max() <= 1
    assert (diff[~near_tie] == 0).all()


@given(fractional_crops(max_side=12, dtype=torch.float32), st.sampled_from(MODES))
def test_channels_last_input_gives_channels_last_output_with_the_same_values(case, mode):
    images, boxes, size = case
    channels_last = images.contiguous(memory_format=torch.channels_last)
    out = daf.crop(channels_last, boxes, size, mode=mode)
    torch.testing.assert_close(out, daf.crop(images, boxes, size, mode=mode), rtol=0, atol=1e-6)
    # With one channel or one pixel both layouts have the same strides: nothing to keep.
    if not channels_last.is_contiguous():
        assert out.is_contiguous(memory_format=torch.channels_last)


@given(fractional_crops(max_side=12))
def test_single_image_comes_back_unbatched(case):
    images, boxes, size = case
    single = daf.crop(images[0], boxes[0], size)
    assert single.shape == (images.shape[1], *size)
    torch.testing.assert_close(single, daf.crop(images[:1], boxes[:1], size)[0], rtol=0, atol=0)
    # (K, 4) boxes on one image: K crops of it.
    many = daf.crop(images[0], boxes, size)
    torch.testing.assert_close(many, daf.crop(images[:1].expand(len(boxes), -1, -1, -1), boxes, size), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_empty_batch(dtype):
    images = torch.zeros(0, 3, 8, 8, dtype=dtype)
    boxes = torch.zeros(0, 4, requires_grad=True)
    out = daf.crop(images, boxes, (4, 5))
    assert out.shape == (0, 3, 4, 5) and out.dtype == dtype
    if dtype.is_floating_point:
        out.sum().backward()
        assert boxes.grad is not None and boxes.grad.shape == (0, 4)
    full = torch.rand(2, 3, 8, 8)
    assert daf.crop(full, torch.zeros(0, 4), 4, batch_index=torch.zeros(0, dtype=torch.long)).shape == (0, 3, 4, 4)
    assert daf.warp(images, torch.zeros(0, 2, 3), 4).shape == (0, 3, 4, 4)


@given(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.floats(0.01, 5.0), st.sampled_from(MODES))
def test_one_pixel_images_with_border_padding_stay_constant(channels, out_h, out_w, extent, mode):
    image = torch.rand(2, channels, 1, 1, dtype=torch.float64)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [-extent, 0.5 - extent, extent, 0.5 + extent]], dtype=torch.float64)
    out = daf.crop(image, boxes, (out_h, out_w), mode=mode, padding_mode="border")
    torch.testing.assert_close(out, image.expand(-1, -1, out_h, out_w), rtol=0, atol=1e-9)


@given(integer_crops(), st.sampled_from(MODES))
def test_one_pixel_boxes_pick_one_pixel_and_tiny_boxes_stay_finite(case, mode):
    images, boxes, _ = case
    height, width = images.shape[-2:]
    left = boxes[:, 0].clamp(max=width - 1)
    top = boxes[:, 1].clamp(max=height - 1)
    unit = torch.stack([left, top, left + 1, top + 1], dim=-1)
    out = daf.crop(images, unit, 1, mode=mode)
    expected = torch.stack([img[:, y, x] for img, y, x in zip(images, top.long(), left.long(), strict=True)])
    torch.testing.assert_close(out[..., 0, 0], expected, rtol=0, atol=1e-9)
    # A box a thousandth of a pixel wide (centred on the pixel) upsampled shows that one pixel,
    # up to the 5e-4 pixel its samples reach towards the neighbours.
    tiny = torch.stack([left + 0.4995, top + 0.4995, left + 0.5005, top + 0.5005], dim=-1)
    tiny_out = daf.crop(images, tiny, (3, 4), mode=mode, padding_mode="border")
    torch.testing.assert_close(tiny_out, expected[..., None, None].expand(-1, -1, 3, 4), rtol=0, atol=2e-3)


@pytest.mark.parametrize("padding_mode", PADDINGS)
def test_box_wholly_outside(padding_mode):
    image = torch.arange(12.0, dtype=torch.float64).reshape(1, 1, 3, 4)
    # Right of the image, one pixel wide, rows 0..2: zeros -> 0, border -> last column, reflection -> mirrored
    # columns (6 -> 1), reflect -> mirrored about the last column's centre (4 -> 2, 5 -> 1, 6 -> 0).
    box = torch.tensor([[6.0, 0.0, 7.0, 3.0]], dtype=torch.float64)
    out = daf.crop(image, box, (3, 1), padding_mode=padding_mode)[0, 0, :, 0]
    expected = {
        "zeros": torch.zeros(3),
        "border": image[0, 0, :, 3],
        "reflection": image[0, 0, :, 1],
        "reflect": image[0, 0, :, 0],
    }[padding_mode]
    torch.testing.assert_close(out, expected.to(torch.float64), rtol=0, atol=1e-12)


def test_warp_identity_and_flip_match_torch():
    images = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    identity = torch.eye(2, 3, dtype=torch.float64).expand(2, 2, 3)
    torch.testing.assert_close(daf.warp(images, identity, (5, 7)), images, rtol=0, atol=1e-12)
    flip = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64).expand(2, 2, 3)
    torch.testing.assert_close(daf.warp(images, flip, (5, 7)), images.flip(-1), rtol=0, atol=1e-12)


def test_report_max_errors_against_slicing_and_kornia():
    """Prints the maximum errors over 300 random cases each (``-s`` shows them); asserts the bounds."""
    generator = torch.Generator().manual_seed(0)

    def randint(low, high):
        return int(torch.randint(low, high, (1,), generator=generator))

    def max_err(a, b):
        return (a - b).abs().max().item()

    slicing_err = kornia64_err = kornia32_err = 0.0
    for _ in range(300):
        height, width = randint(2, 64), randint(2, 64)
        h, w = randint(1, height + 1), randint(1, width + 1)
        images = torch.rand(4, 3, height, width, dtype=torch.float64, generator=generator)
        lefts = torch.randint(0, width - w + 1, (4,), generator=generator)
        tops = torch.randint(0, height - h + 1, (4,), generator=generator)
        boxes = torch.stack([lefts, tops, lefts + w, tops + h], dim=-1).double()
        slicing_err = max(slicing_err, max_err(daf.crop(images, boxes, (h, w)), slices(images, boxes, (h, w))))
        # Fractional boxes reaching up to 20% outside the image on each side.
        extent = torch.tensor([width, height], dtype=torch.float64)
        corner = (torch.rand(4, 2, generator=generator, dtype=torch.float64) * 1.4 - 0.2) * extent
        side = torch.rand(4, 2, generator=generator, dtype=torch.float64) * extent + 0.1
        frac = torch.cat([corner, corner + side], dim=-1)
        out_size = (randint(1, 48), randint(1, 48))
        kornia64_err = max(kornia64_err, max_err(daf.crop(images, frac, out_size), kornia_crop(images, frac, out_size)))
        images32, frac32 = images.float(), frac.float()
        kornia32_err = max(kornia32_err, max_err(daf.crop(images32, frac32, out_size), kornia_crop(images32, frac32, out_size)))
    print(f"\nmax |crop - slicing| float64: {slicing_err:.3g}")
    print(f"max |crop - kornia warp_affine| float64: {kornia64_err:.3g}, float32: {kornia32_err:.3g}")
    assert slicing_err <= 1e-9 and kornia64_err <= 1e-9 and kornia32_err <= 1e-4
