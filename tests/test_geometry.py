"""The coordinate convention of diffaug.functional.geometry, checked against its definition.

Expected values come from the written convention (pixel edges at integers, pixel centres at
``+ 0.5``, ``u = 2 x / W - 1``) and from PyTorch's own ``affine_grid``, never from the helpers
under test.
"""

import math

import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

import diffaug.functional as daf

sides = st.integers(1, 64)
coords = st.floats(-50.0, 100.0, allow_nan=False, allow_infinity=False)


@st.composite
def boxes_on_canvas(draw, single=False):
    """(boxes (K, 4) float64 with x1 < x2 and y1 < y2, canvas (H, W))."""
    height, width = draw(sides), draw(sides)
    k = 1 if single else draw(st.integers(1, 4))
    rows = []
    for _ in range(k):
        x1, y1 = draw(coords), draw(coords)
        w, h = draw(st.floats(0.05, 80.0)), draw(st.floats(0.05, 80.0))
        rows.append([x1, y1, x1 + w, y1 + h])
    return torch.tensor(rows, dtype=torch.float64), (height, width)


@given(boxes_on_canvas())
def test_boxes_to_theta_matches_the_written_formula(case):
    boxes, (height, width) = case
    theta = daf.boxes_to_theta(boxes, (height, width))
    for row, box in zip(theta, boxes.tolist(), strict=True):
        u1, u2 = 2 * box[0] / width - 1, 2 * box[2] / width - 1
        v1, v2 = 2 * box[1] / height - 1, 2 * box[3] / height - 1
        expected = torch.tensor([[(u2 - u1) / 2, 0, (u2 + u1) / 2], [0, (v2 - v1) / 2, (v2 + v1) / 2]], dtype=torch.float64)
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-12)


@given(boxes_on_canvas(), st.integers(1, 9), st.integers(1, 9))
def test_theta_samples_the_box_at_output_pixel_centres(case, out_h, out_w):
    """affine_grid(theta) puts output pixel (i, j) at input pixel x1 + (j + 0.5) * box_w / w."""
    boxes, (height, width) = case
    theta = daf.boxes_to_theta(boxes, (height, width))
    grid = F.affine_grid(theta, [len(boxes), 1, out_h, out_w], align_corners=False)
    x_px = (grid[..., 0] + 1) * width / 2
    y_px = (grid[..., 1] + 1) * height / 2
    j = torch.arange(out_w, dtype=torch.float64) + 0.5
    i = torch.arange(out_h, dtype=torch.float64) + 0.5
    x1, y1, x2, y2 = boxes.unbind(-1)
    expected_x = x1[:, None] + j[None] * ((x2 - x1) / out_w)[:, None]
    expected_y = y1[:, None] + i[None] * ((y2 - y1) / out_h)[:, None]
    torch.testing.assert_close(x_px, expected_x[:, None, :].expand_as(x_px), rtol=0, atol=1e-9)
    torch.testing.assert_close(y_px, expected_y[:, :, None].expand_as(y_px), rtol=0, atol=1e-9)


@given(sides, sides, st.sampled_from([torch.float32, torch.float64]))
def test_the_whole_canvas_is_exactly_the_identity(height, width, dtype):
    """No rounding on the identity crop, in any dtype: a crop of the whole image at its size copies it."""
    whole = torch.tensor([[0.0, 0.0, width, height]], dtype=dtype)
    assert torch.equal(daf.boxes_to_theta(whole, (height, width)), torch.eye(2, 3, dtype=dtype).unsqueeze(0))


def test_boxes_to_theta_on_views_and_in_several_dtypes_and_sizes_in_turn():
    """Per-canvas constants are kept across calls: they must follow the canvas, dtype and layout of each call."""
    boxes = torch.tensor([[1.0, 2.0, 5.0, 4.0], [0.5, 0.0, 3.0, 8.0]], dtype=torch.float64)
    for size in [(4, 8), (8, 4), (4, 8)]:
        for dtype in (torch.float64, torch.float32, torch.float16):
            theta = daf.boxes_to_theta(boxes.to(dtype), size)
            assert theta.dtype == dtype and theta.shape == (2, 2, 3)
            u = boxes[:, 0::2] * 2 / size[1] - 1
            v = boxes[:, 1::2] * 2 / size[0] - 1
            zero = torch.zeros(2, dtype=torch.float64)
            expected = torch.stack(
                [
                    torch.stack([(u[:, 1] - u[:, 0]) / 2, zero, u.mean(1)], -1),
                    torch.stack([zero, (v[:, 1] - v[:, 0]) / 2, v.mean(1)], -1),
                ],
                -2,
            )
            torch.testing.assert_close(theta.double(), expected, rtol=0, atol=1e-3 if dtype == torch.float16 else 1e-6)
    # Non-contiguous boxes (every other row, a transposed layout) and a leading batch of batches.
    wide = torch.rand(4, 4, 3, dtype=torch.float64).mul(8)[..., 0].t()
    torch.testing.assert_close(daf.boxes_to_theta(wide, (8, 8)), daf.boxes_to_theta(wide.contiguous(), (8, 8)), rtol=0, atol=0)
    stacked = daf.boxes_to_theta(boxes.expand(3, 2, 4), (4, 8))
    assert stacked.shape == (3, 2, 2, 3) and torch.equal(stacked[1], daf.boxes_to_theta(boxes, (4, 8)))


def test_constants_made_in_inference_mode_do_not_reach_autograd():
    """A crop first run under torch.inference_mode must still train afterwards (its kept constants are per mode)."""
    import diffaug as da

    crop = da.RandomResizedCrop((5, 7), scale=(0.31, 0.77), learnable=True)
    images = torch.rand(2, 3, 11, 13)
    with torch.inference_mode():
        crop(images)
    out = crop(images.requires_grad_())
    out.sum().backward()
    assert images.grad is not None and crop.scale.raw.grad is not None


@given(boxes_on_canvas())
def test_theta_to_boxes_inverts_boxes_to_theta(case):
    boxes, size = case
    torch.testing.assert_close(daf.theta_to_boxes(daf.boxes_to_theta(boxes, size), size), boxes, rtol=0, atol=1e-9)


@given(boxes_on_canvas())
def test_normalized_corners_round_trip_and_put_edges_at_minus_one_and_one(case):
    boxes, (height, width) = case
    corners = daf.boxes_to_normalized(boxes, (height, width))
    torch.testing.assert_close(daf.normalized_to_boxes(corners, (height, width)), boxes, rtol=0, atol=1e-9)
    whole = torch.tensor([0.0, 0.0, width, height], dtype=torch.float64)
    edges = torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(daf.boxes_to_normalized(whole, (height, width)), edges)


@given(boxes_on_canvas(single=True), st.integers(1, 9), st.integers(1, 9))
def test_pixel_matrix_of_a_crop_is_scale_then_offset(case, out_h, out_w):
    """In pixel coordinates (edges at integers) a crop maps x_out to x1 + x_out * box_w / w."""
    boxes, in_size = case
    x1, y1, x2, y2 = boxes[0].tolist()
    expected = torch.tensor(
        [[(x2 - x1) / out_w, 0, x1], [0, (y2 - y1) / out_h, y1], [0, 0, 1]],
        dtype=torch.float64,
    )
    square = daf.to_square(daf.boxes_to_theta(boxes[0], in_size))
    pixel = daf.pixel_matrix_from_normalized(square, in_size, (out_h, out_w))
    torch.testing.assert_close(pixel, expected, rtol=0, atol=1e-9)
    torch.testing.assert_close(daf.normalized_from_pixel_matrix(pixel, in_size, (out_h, out_w)), square, rtol=0, atol=1e-9)
    scale = daf.output_pixel_scale(daf.to_theta(square), in_size, (out_h, out_w))
    expected_scale = torch.tensor([(x2 - x1) / out_w, (y2 - y1) / out_h], dtype=torch.float64)
    torch.testing.assert_close(scale, expected_scale, rtol=1e-6, atol=1e-6)


affine_entries = st.lists(st.floats(-3.0, 3.0), min_size=6, max_size=6)


@given(affine_entries)
def test_invert_matches_linalg_inverse(entries):
    matrix = torch.tensor([entries[:3], entries[3:], [0.0, 0.0, 1.0]], dtype=torch.float64)
    det = entries[0] * entries[4] - entries[1] * entries[3]
    assume(abs(det) > 1e-2)  # well-conditioned matrices only
    torch.testing.assert_close(daf.invert(matrix), torch.linalg.inv(matrix), rtol=1e-9, atol=1e-9)


@given(affine_entries, st.lists(st.floats(-20.0, 20.0), min_size=2, max_size=10).filter(lambda v: len(v) % 2 == 0))
def test_apply_to_points_is_the_homogeneous_product(entries, flat):
    matrix = torch.tensor([entries[:3], entries[3:], [0.0, 0.0, 1.0]], dtype=torch.float64)
    points = torch.tensor(flat, dtype=torch.float64).reshape(-1, 2)
    homogeneous = torch.cat([points, torch.ones(len(points), 1, dtype=torch.float64)], dim=1)
    expected = (homogeneous @ matrix.T)[:, :2]
    torch.testing.assert_close(daf.apply_to_points(matrix, points), expected, rtol=1e-12, atol=1e-12)


@given(st.floats(-math.pi, math.pi), st.floats(-math.pi, math.pi))
def test_rotations_compose_preserve_area_and_turn_counter_clockwise_on_screen(a, b):
    ra, rb = daf.rotate_matrix(torch.tensor(a, dtype=torch.float64)), daf.rotate_matrix(torch.tensor(b, dtype=torch.float64))
    torch.testing.assert_close(ra @ rb, daf.rotate_matrix(torch.tensor(a + b, dtype=torch.float64)), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(ra), torch.tensor(1.0, dtype=torch.float64))
    # y points down: a quarter turn counter-clockwise on screen takes +x (right) to -y (up).
    quarter = daf.rotate_matrix(torch.tensor(math.pi / 2, dtype=torch.float64))
    right, up = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(daf.apply_to_points(quarter, right), up)


@given(st.floats(-5, 5), st.floats(-5, 5), st.floats(0.1, 4), st.floats(0.1, 4), st.floats(-0.7, 0.7), st.floats(-0.7, 0.7))
def test_elementary_matrices_act_as_documented(tx, ty, sx, sy, hx, hy):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    point = t([[2.0, -3.0]])
    torch.testing.assert_close(daf.apply_to_points(daf.translate_matrix(t(tx), t(ty)), point), t([[2.0 + tx, -3.0 + ty]]))
    torch.testing.assert_close(daf.apply_to_points(daf.scale_matrix(t(sx), t(sy)), point), t([[2.0 * sx, -3.0 * sy]]))
    sheared = daf.apply_to_points(daf.shear_matrix(t(hx), t(hy)), point)
    torch.testing.assert_close(sheared, t([[2.0 + math.tan(hx) * -3.0, -3.0 + math.tan(hy) * 2.0]]))
    torch.testing.assert_close(daf.apply_to_points(daf.flip_matrix(t(1.0), t(0.0)), point), t([[-2.0, -3.0]]))
    torch.testing.assert_close(daf.apply_to_points(daf.flip_matrix(t(0.0), t(1.0)), point), t([[2.0, 3.0]]))
    torch.testing.assert_close(daf.identity(2, dtype=torch.float64), torch.eye(3, dtype=torch.float64).expand(2, 3, 3))


@given(affine_entries, affine_entries, st.integers(0, 3))
def test_compose_theta_is_the_product_of_the_square_matrices(first, second, batch):
    """The fused theta of two steps, written without 3x3 products, is ``M_first @ M_second``."""
    a = torch.tensor(first, dtype=torch.float64).view(2, 3).expand(batch, 2, 3)
    b = torch.tensor(second, dtype=torch.float64).view(2, 3).expand(batch, 2, 3)
    square = lambda v: torch.cat([v, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(batch, 1, 3)], 1)  # noqa: E731
    expected = (square(a) @ square(b))[:, :2]
    torch.testing.assert_close(daf.compose_theta(a, b), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(daf.compose_theta(a[:1].float(), b[:1].float()), expected[:1].float())


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5), st.floats(0.0, 1.0))
def test_flip_matrix_blends_per_sample_and_broadcasts(flips_x, flip_y):
    """Relaxed flips (fractions) scale each axis by 1 - 2 f exactly; a 0-d flip broadcasts against a batch."""
    fx = torch.tensor(flips_x, dtype=torch.float64)
    fy = torch.tensor(flip_y, dtype=torch.float64)
    matrices = daf.flip_matrix(fx, fy)
    assert matrices.shape == (len(flips_x), 3, 3)
    for matrix, value in zip(matrices, flips_x, strict=True):
        expected = torch.diag(torch.tensor([1 - 2 * value, 1 - 2 * flip_y, 1.0], dtype=torch.float64))
        assert torch.equal(matrix, expected)
