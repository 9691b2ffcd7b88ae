"""The coordinate convention, in one place. Everything else in diffaug derives from here.

Pixel coordinates
    A continuous point ``(x, y)`` in pixels. Pixel ``(i, j)`` (row ``i``, column ``j``) is the
    unit square ``[j, j + 1) x [i, i + 1)``; its centre is ``(j + 0.5, i + 0.5)``. An image of
    size ``(H, W)`` covers ``[0, W) x [0, H)``.

Boxes
    ``(x1, y1, x2, y2)`` in pixel coordinates with exclusive ends, as torchvision's XYXY
    ``BoundingBoxes``: the integer box ``(l, t, l + w, t + h)`` covers ``img[..., t:t+h, l:l+w]``.
    Boxes are float tensors; they may be fractional and partly (or wholly) outside the image.

Normalised coordinates (``align_corners=False``)
    ``u = 2 x / W - 1`` and ``v = 2 y / H - 1``: ``-1`` and ``+1`` are the outer *edges* of the
    image, not the centres of its corner pixels. They do not depend on the pixel size, so a
    matrix in normalised coordinates can be composed across canvases of different sizes.

theta
    A ``(..., 2, 3)`` matrix mapping *output* normalised coordinates to *input* normalised
    coordinates, as :func:`torch.nn.functional.affine_grid` expects with
    ``align_corners=False``. For a crop whose normalised corners are ``(u1, v1)`` and
    ``(u2, v2)``::

        theta = [[(u2 - u1) / 2, 0,             (u2 + u1) / 2],
                 [0,             (v2 - v1) / 2, (v2 + v1) / 2]]

    Derivation: the output's left edge (normalised ``-1``) must land on ``u1`` and its right
    edge (``+1``) on ``u2``. The affine map ``u -> s u + t`` with ``t - s = u1`` and
    ``t + s = u2`` gives ``s = (u2 - u1) / 2`` and ``t = (u2 + u1) / 2``; likewise in ``v``.
    Because ``align_corners=False`` puts ``-1``/``+1`` on pixel edges, an integer box with the
    output size equal to its own size samples exactly the pixel centres: it equals slicing.

Square matrices
    Geometric transforms compose as ``(..., 3, 3)`` matrices in the same direction (output to
    input), multiplied right to left in the order the transforms are applied:
    ``M_total = M_first @ M_second @ ... @ M_last``. :func:`normalized_from_pixel_matrix` converts
    a pixel-space matrix (built where angles and shears are defined, since normalised
    coordinates stretch non-square images) into this space, :func:`pixel_matrix_from_normalized`
    back.

Nothing in diffaug uses ``align_corners=True``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffaug.functional import _constants

__all__ = [
    "boxes_to_theta",
    "theta_to_boxes",
    "boxes_to_normalized",
    "normalized_to_boxes",
    "to_square",
    "to_theta",
    "compose_theta",
    "pipeline_theta",
    "identity",
    "normalized_from_pixel_matrix",
    "pixel_matrix_from_normalized",
    "translate_matrix",
    "scale_matrix",
    "rotate_matrix",
    "shear_matrix",
    "flip_matrix",
    "invert",
    "apply_to_points",
    "output_pixel_scale",
    "sampling_grid",
    "reflect_grid",
    "reflect_index",
]


def boxes_to_normalized(boxes: Tensor, size: Sequence[int]) -> Tensor:
    """Pixel XYXY boxes ``(..., 4)`` on a canvas ``(H, W)`` -> normalised corners ``(..., 4)``.

    Examples:
        >>> import torch
        >>> boxes_to_normalized(torch.tensor([0.0, 0.0, 4.0, 2.0]), (4, 8))  # top-left quarter
        tensor([-1., -1.,  0.,  0.])
    """
    height, width = size
    scale = boxes.new_tensor([2.0 / width, 2.0 / height, 2.0 / width, 2.0 / height])
    return boxes * scale - 1.0


def normalized_to_boxes(corners: Tensor, size: Sequence[int]) -> Tensor:
    """Normalised corners ``(..., 4)`` -> pixel XYXY boxes on a canvas ``(H, W)``.

    Examples:
        >>> import torch
        >>> normalized_to_boxes(torch.tensor([-1.0, -1.0, 0.0, 0.0]), (4, 8))
        tensor([0., 0., 4., 2.])
    """
    height, width = size
    scale = corners.new_tensor([width / 2.0, height / 2.0, width / 2.0, height / 2.0])
    return (corners + 1.0) * scale


def boxes_to_theta(boxes: Tensor, size: Sequence[int]) -> Tensor:
    """Crop boxes -> the ``theta`` that samples them.

    Args:
        boxes: ``(..., 4)`` float XYXY pixel boxes (exclusive ends) on the input canvas.
        size: input canvas ``(H, W)``.

    Returns:
        ``(..., 2, 3)`` theta for ``affine_grid(..., align_corners=False)``; differentiable
        with respect to ``boxes``.

    Examples:
        >>> import torch
        >>> boxes_to_theta(torch.tensor([0.0, 0.0, 8.0, 4.0]), (4, 8))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    height, width = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    # The formula above with u = 2 x / W - 1: (u2 - u1) / 2 = (x2 - x1) / W and (u2 + u1) / 2 = (x1 + x2) / W - 1.
    scale_x, shift_x = (x2 - x1) / width, (x1 + x2) / width - 1.0
    scale_y, shift_y = (y2 - y1) / height, (y1 + y2) / height - 1.0
    zero = torch.zeros_like(scale_x)
    return torch.stack([scale_x, zero, shift_x, zero, scale_y, shift_y], dim=-1).unflatten(-1, (2, 3))


def theta_to_boxes(theta: Tensor, size: Sequence[int]) -> Tensor:
    """Inverse of :func:`boxes_to_theta` for axis-aligned ``theta`` ``(..., 2, 3)``.

    Off-diagonal terms are ignored; a negative diagonal (a flip) gives ``x1 > x2``.

    Examples:
        >>> import torch
        >>> boxes = torch.tensor([1.5, 2.0, 7.0, 3.25])
        >>> theta_to_boxes(boxes_to_theta(boxes, (4, 8)), (4, 8))
        tensor([1.5000, 2.0000, 7.0000, 3.2500])
    """
    sx, tx = theta[..., 0, 0], theta[..., 0, 2]
    sy, ty = theta[..., 1, 1], theta[..., 1, 2]
    corners = torch.stack([tx - sx, ty - sy, tx + sx, ty + sy], dim=-1)
    return normalized_to_boxes(corners, size)


def to_square(theta: Tensor) -> Tensor:
    """``(..., 2, 3)`` -> ``(..., 3, 3)`` by appending the row ``[0, 0, 1]``.

    Examples:
        >>> import torch
        >>> to_square(torch.eye(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    last = _constants.memo("projective_row", theta, lambda: theta.new_tensor([[0.0, 0.0, 1.0]]))
    return torch.cat([theta, last.expand(*theta.shape[:-2], 1, 3)], dim=-2)


def compose_theta(first: Tensor, second: Tensor) -> Tensor:
    """``to_theta(to_square(first) @ to_square(second))`` for ``(..., 2, 3)`` thetas, without 3x3 products.

    The matrix of applying the transform of ``first`` and then that of ``second`` (see "Square
    matrices" above: ``M_first @ M_second``): ``A x + a`` composed with ``B x + b`` is
    ``A B x + (A b + a)``. Written as two broadcast ``addcmul`` (no batched matmul: tiny ``bmm``
    run OpenMP regions on CPU, and small batches cost per op).

    Examples:
        >>> import torch
        >>> a = boxes_to_theta(torch.tensor([[2.0, 0.0, 6.0, 4.0]]), (4, 8))
        >>> b = to_theta(flip_matrix(torch.ones(1), torch.zeros(1)))
        >>> torch.allclose(compose_theta(a, b), to_theta(to_square(a) @ to_square(b)))
        True
    """
    a_x, a_y, a_shift = first.unsqueeze(-1).unbind(-2)  # columns of the first, each (..., 2, 1)
    b_x, b_y = second.unsqueeze(-2).unbind(-3)  # rows of the second, each (..., 1, 3)
    shift = F.pad(a_shift, (2, 0))  # (..., 2, 3) rows [0, 0, a_shift]
    return torch.addcmul(torch.addcmul(shift, a_x, b_x), a_y, b_y)


def pipeline_theta(thetas: Sequence[Tensor]) -> Tensor:
    """The ``theta`` of steps applied in order: :func:`compose_theta` folded left to right (``M_first @ ... @ M_last``).

    Raises:
        ValueError: no ``thetas``.

    Examples:
        >>> import torch
        >>> crop = boxes_to_theta(torch.tensor([[2.0, 0.0, 6.0, 4.0]]), (4, 8))
        >>> flip = to_theta(flip_matrix(torch.ones(1), torch.zeros(1)))
        >>> torch.equal(pipeline_theta([crop, flip, crop]), compose_theta(compose_theta(crop, flip), crop))
        True
    """
    if len(thetas) == 0:
        raise ValueError("pipeline_theta needs at least one theta")
    return functools.reduce(compose_theta, thetas)


def to_theta(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` -> ``(..., 2, 3)`` (drops the projective row).

    Examples:
        >>> import torch
        >>> to_theta(torch.eye(3).expand(5, 3, 3)).shape
        torch.Size([5, 2, 3])
    """
    return matrix[..., :2, :]


def identity(batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """``(batch, 3, 3)`` identity matrices.

    Examples:
        >>> identity(2).shape
        torch.Size([2, 3, 3])
    """
    return torch.eye(3, device=device, dtype=dtype).expand(batch, 3, 3)


def _pixel_from_normalized(size: Sequence[int], like: Tensor) -> Tensor:
    """3x3 matrix taking normalised coordinates of a ``(H, W)`` canvas to its pixels."""
    height, width = size
    return like.new_tensor([[width / 2.0, 0.0, width / 2.0], [0.0, height / 2.0, height / 2.0], [0.0, 0.0, 1.0]])


def _normalized_from_pixel(size: Sequence[int], like: Tensor) -> Tensor:
    height, width = size
    return like.new_tensor([[2.0 / width, 0.0, -1.0], [0.0, 2.0 / height, -1.0], [0.0, 0.0, 1.0]])


def normalized_from_pixel_matrix(matrix: Tensor, in_size: Sequence[int], out_size: Sequence[int]) -> Tensor:
    """Pixel-space ``(..., 3, 3)`` (output pixel -> input pixel) -> normalised-space matrix.

    ``in_size`` and ``out_size`` are the ``(H, W)`` of the input and output canvases.

    Examples:
        >>> import torch
        >>> two = torch.tensor(2.0)
        >>> normalized_from_pixel_matrix(scale_matrix(two, two), (4, 8), (4, 8))  # u -> 2 (u + 1) - 1
        tensor([[2., 0., 1.],
                [0., 2., 1.],
                [0., 0., 1.]])
    """
    return _normalized_from_pixel(in_size, matrix) @ matrix @ _pixel_from_normalized(out_size, matrix)


def pixel_matrix_from_normalized(matrix: Tensor, in_size: Sequence[int], out_size: Sequence[int]) -> Tensor:
    """Normalised-space ``(..., 3, 3)`` -> pixel-space matrix (output pixel -> input pixel).

    The inverse of :func:`normalized_from_pixel_matrix` for the same sizes.

    Examples:
        >>> import torch
        >>> theta = boxes_to_theta(torch.tensor([2.0, 1.0, 6.0, 3.0]), (4, 8))  # a 4 x 2 box
        >>> pixel_matrix_from_normalized(to_square(theta), (4, 8), (2, 4))     # a 2 x 4 output: shift only
        tensor([[1., 0., 2.],
                [0., 1., 1.],
                [0., 0., 1.]])
    """
    return _pixel_from_normalized(in_size, matrix) @ matrix @ _normalized_from_pixel(out_size, matrix)


def _affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, e: Tensor, f: Tensor) -> Tensor:
    """Stack six broadcastable tensors into ``(..., 3, 3)`` ``[[a, b, c], [d, e, f], [0, 0, 1]]``."""
    a, b, c, d, e, f = torch.broadcast_tensors(a, b, c, d, e, f)
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], dim=-1).unflatten(-1, (3, 3))


def translate_matrix(tx: Tensor, ty: Tensor) -> Tensor:
    """``(..., 3, 3)`` matrix of ``p -> p + (tx, ty)``; ``tx``, ``ty`` broadcastable tensors.

    Examples:
        >>> import torch
        >>> translate_matrix(torch.tensor(3.0), torch.tensor(-1.0))
        tensor([[ 1.,  0.,  3.],
                [ 0.,  1., -1.],
                [ 0.,  0.,  1.]])
    """
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(one, zero, tx, zero, one, ty)


def scale_matrix(sx: Tensor, sy: Tensor) -> Tensor:
    """``(..., 3, 3)`` matrix of ``(x, y) -> (sx x, sy y)``.

    Examples:
        >>> import torch
        >>> scale_matrix(torch.tensor([2.0]), torch.tensor([0.5]))[0, :2]
        tensor([[2.0000, 0.0000, 0.0000],
                [0.0000, 0.5000, 0.0000]])
    """
    zero = torch.zeros_like(sx)
    return _affine(sx, zero, zero, zero, sy, zero)


def rotate_matrix(angle: Tensor) -> Tensor:
    """``(..., 3, 3)`` rotation by ``angle`` radians, counter-clockwise on screen (y points down).

    Examples:
        >>> import math, torch
        >>> point = apply_to_points(rotate_matrix(torch.tensor(math.pi / 2)), torch.tensor([[1.0, 0.0]]))
        >>> torch.allclose(point, torch.tensor([[0.0, -1.0]]), atol=1e-6)  # right -> up on screen
        True
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(angle)
    return _affine(cos, sin, zero, -sin, cos, zero)


def shear_matrix(shear_x: Tensor, shear_y: Tensor) -> Tensor:
    """``(..., 3, 3)`` shear ``(x, y) -> (x + tan(sx) y, y + tan(sy) x)``, angles in radians.

    Examples:
        >>> import math, torch
        >>> shear_matrix(torch.tensor(math.pi / 4), torch.tensor(0.0))[:2]
        tensor([[1., 1., 0.],
                [0., 1., 0.]])
    """
    zero, one = torch.zeros_like(shear_x), torch.ones_like(shear_x)
    return _affine(one, torch.tan(shear_x), zero, torch.tan(shear_y), one, zero)


def flip_matrix(flip_x: Tensor, flip_y: Tensor) -> Tensor:
    """Normalised-space flip: ``u -> -u`` where ``flip_x`` is 1, identity where 0.

    ``flip_x``/``flip_y`` are float tensors in ``[0, 1]`` (a relaxed value blends the matrix).

    Examples:
        >>> import torch
        >>> flip_matrix(torch.tensor(1.0), torch.tensor(0.0))[:2]
        tensor([[-1., 0., 0.],
                [ 0., 1., 0.]])
    """
    # The identity plus -2 flip on each diagonal entry: two addcmul with kept constants (every flip calls this).
    identity, x_term, y_term = _constants.memo("flip_matrix", flip_x, lambda: _flip_terms(flip_x))
    flip_x, flip_y = flip_x.view(*flip_x.shape, 1, 1), flip_y.view(*flip_y.shape, 1, 1)
    return torch.addcmul(torch.addcmul(identity, flip_x, x_term), flip_y, y_term)


def _flip_terms(like: Tensor) -> tuple[Tensor, ...]:
    identity = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    x_term = ((-2.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    y_term = ((0.0, 0.0, 0.0), (0.0, -2.0, 0.0), (0.0, 0.0, 0.0))
    return like.new_tensor((identity, x_term, y_term)).unbind(0)


def invert(matrix: Tensor) -> Tensor:
    """Inverse of affine ``(..., 3, 3)`` matrices in closed form (no LAPACK call, compile-friendly).

    A singular matrix gives ``inf``/``nan`` entries (not checked: that would read the values).

    Examples:
        >>> import torch
        >>> m = translate_matrix(torch.tensor(3.0), torch.tensor(-1.0)) @ rotate_matrix(torch.tensor(0.3))
        >>> torch.allclose(invert(m) @ m, torch.eye(3), atol=1e-6)
        True
    """
    a, b, c = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 0, 2]
    d, e, f = matrix[..., 1, 0], matrix[..., 1, 1], matrix[..., 1, 2]
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return _affine(ia, ib, -(ia * c + ib * f), id_, ie, -(id_ * c + ie * f))


def apply_to_points(matrix: Tensor, points: Tensor) -> Tensor:
    """Apply ``(..., 3, 3)`` affine matrices to points ``(..., N, 2)`` -> ``(..., N, 2)``.

    Examples:
        >>> import torch
        >>> apply_to_points(translate_matrix(torch.tensor(3.0), torch.tensor(-1.0)), torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
        tensor([[ 3., -1.],
                [ 4.,  1.]])
    """
    linear = matrix[..., :2, :2]
    shift = matrix[..., :2, 2]
    return points @ linear.transpose(-1, -2) + shift.unsqueeze(-2)


def output_pixel_scale(theta: Tensor, in_size: Sequence[int], out_size: Sequence[int]) -> Tensor:
    """How many input pixels one output pixel spans along each input axis: ``(..., 2)`` = (x, y).

    The length of the pixel-space Jacobian's rows: ``> 1`` means the warp shrinks along that
    axis (and aliases without a prefilter).

    Examples:
        >>> import torch
        >>> theta = boxes_to_theta(torch.tensor([0.0, 0.0, 64.0, 32.0]), (64, 64))
        >>> output_pixel_scale(theta, (64, 64), (16, 16))  # 64 px -> 16 across, 32 px -> 16 down
        tensor([4., 2.])
    """
    in_h, in_w = in_size
    out_h, out_w = out_size
    jac = theta[..., :2, :2]
    # d(x_in px)/d(x_out px) = (W_in / 2) * theta * (2 / W_out) for each column.
    col_scale = theta.new_tensor([1.0 / out_w, 1.0 / out_h])
    row_scale = theta.new_tensor([float(in_w), float(in_h)])
    pixel_jac = jac * col_scale * row_scale.unsqueeze(-1)
    return torch.sqrt(pixel_jac.square().sum(-1) + 1e-12)


def sampling_grid(theta: Tensor, size: Sequence[int]) -> Tensor:
    """The ``grid_sample`` grid of ``theta``: ``F.affine_grid(theta, (B, C, h, w), align_corners=False)``, faster.

    Output pixel ``(i, j)`` has its centre at normalised ``x_j = (2 j + 1) / w - 1``,
    ``y_i = (2 i + 1) / h - 1`` and samples ``theta @ (x_j, y_i, 1)``. The grid is built by
    broadcasting (``theta[:, :, 0] x_j + (theta[:, :, 1] y_i + theta[:, :, 2])``) as a
    ``(B, 2, h, w)`` tensor and returned as its ``(B, h, w, 2)`` view: a few elementwise ops
    instead of ``affine_grid``'s batched matrix product, and a layout (x and y each contiguous
    along a row) that ``grid_sample`` reads as fast as a contiguous grid. Its backward is two
    reductions. Values agree with ``affine_grid`` to float rounding.

    Args:
        theta: ``(B, 2, 3)`` output -> input normalised coordinates, floating point.
        size: output ``(h, w)``.

    Returns:
        ``(B, h, w, 2)`` (a non-contiguous view), differentiable with respect to ``theta``.

    Examples:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> theta = torch.tensor([[[0.5, 0.1, 0.2], [-0.1, 0.8, 0.0]]])
        >>> grid = sampling_grid(theta, (3, 4))
        >>> grid.shape, torch.allclose(grid, F.affine_grid(theta, [1, 1, 3, 4], align_corners=False), atol=1e-6)
        (torch.Size([1, 3, 4, 2]), True)
    """
    columns, rows = grid_terms(theta, size)
    return (columns + rows).permute(0, 2, 3, 1)  # (B, 2, h, w) viewed as (B, h, w, 2)


def grid_terms(theta: Tensor, size: Sequence[int]) -> tuple[Tensor, Tensor]:
    """The two terms whose sum is :func:`sampling_grid`'s grid (before its permute).

    ``columns`` ``(B, 2, 1, w)`` is ``theta[:, :, 0] x_j``; ``rows`` ``(B, 2, h, 1)`` is
    ``theta[:, :, 1] y_i + theta[:, :, 2]``. A kernel that adds them itself samples the same
    float points without the full grid in memory.

    Examples:
        >>> import torch
        >>> theta = torch.tensor([[[0.5, 0.1, 0.2], [-0.1, 0.8, 0.0]]])
        >>> columns, rows = grid_terms(theta, (3, 4))
        >>> columns.shape, rows.shape, torch.equal((columns + rows).permute(0, 2, 3, 1), sampling_grid(theta, (3, 4)))
        (torch.Size([1, 2, 1, 4]), torch.Size([1, 2, 3, 1]), True)
    """
    height, width = size
    xs, ys = _constants.memo(("sampling_grid", height, width), theta, lambda: _pixel_centres(size, theta))
    scale_x, scale_y, shift = theta.view(theta.shape[0], 2, 3, 1, 1).unbind(2)  # each (B, 2, 1, 1)
    # Small products first, one full-size add last: a broadcasting addcmul of the full (B, 2, h, w) took
    # 3x the add's time on CPU (not vectorised for that pattern).
    return scale_x * xs, torch.addcmul(shift, scale_y, ys)


def _pixel_centres(size: Sequence[int], like: Tensor) -> tuple[Tensor, Tensor]:
    """Normalised centres of the output pixels: columns ``(1, 1, 1, w)`` and rows ``(1, 1, h, 1)``."""
    height, width = size
    xs = torch.linspace(-1.0 + 1.0 / width, 1.0 - 1.0 / width, width, device=like.device, dtype=like.dtype)
    ys = torch.linspace(-1.0 + 1.0 / height, 1.0 - 1.0 / height, height, device=like.device, dtype=like.dtype)
    return xs.view(1, 1, 1, width), ys.view(1, 1, height, 1)


def reflect_grid(grid: Tensor, size: Sequence[int]) -> Tensor:
    """Fold a ``grid_sample`` grid into the image by mirroring it about the edge pixels' centres.

    This is ``numpy.pad(mode="reflect")`` / torchvision's ``padding_mode="reflect"`` (the edge
    pixel is not repeated: ``... 2 1 | 0 1 2 ... W-1 | W-2 W-3 ...``), which ``grid_sample``
    lacks: its ``"reflection"`` mirrors about the image's outer edges and repeats the edge pixel
    (numpy's ``"symmetric"``). In pixel-index space (``i = ((u + 1) W - 1) / 2``) the fold is a
    triangle wave of period ``2 (W - 1)``; its corners sit on pixel centres, so bilinear sampling
    of the folded grid equals bilinear sampling of the reflect-padded image, however far outside.
    Sample the result with ``padding_mode="border"``. Gradients pass through (one-sided on the
    mirror lines themselves, like bilinear sampling at integer positions).

    Args:
        grid: ``(..., 2)`` normalised ``(u, v)`` sample positions (e.g. from :func:`sampling_grid`).
        size: the sampled image's ``(H, W)``.

    Returns:
        The folded grid, same shape, inside the centres of the edge pixels.

    Examples:
        >>> import torch
        >>> centres = (2 * torch.tensor([-2.0, -1.0, 0.0, 3.0, 4.0, 5.0]) + 1) / 4 - 1  # pixel centres of a W=4 row
        >>> folded = reflect_grid(torch.stack([centres, torch.zeros(6)], -1), (1, 4))
        >>> ((folded[:, 0] + 1) * 4 - 1) / 2  # pixel indices -2, -1, 0, 3, 4, 5 -> 2, 1, 0, 3, 2, 1
        tensor([2., 1., 0., 3., 2., 1.])
    """
    height, width = size
    half = grid.new_tensor([width / 2.0, height / 2.0])
    last = grid.new_tensor([width - 1.0, height - 1.0])
    # Period 2 (W - 1); a one-pixel axis gets any period (its only pixel is read with border padding).
    period = grid.new_tensor([2.0 * max(width - 1, 1), 2.0 * max(height - 1, 1)])
    index = torch.addcmul(last / 2.0, grid, half)  # ((u + 1) W - 1) / 2
    return (_mirror(index, last, period) - last / 2.0) / half


def reflect_index(index: Tensor, length: int) -> Tensor:
    """Pixel indices -> the indices ``numpy.pad(mode="reflect")`` reads there, for an axis of ``length`` pixels.

    The fold of :func:`reflect_grid` on indices (integer or not): ``-1 -> 1``, ``length -> length - 2``.

    Examples:
        >>> import torch
        >>> reflect_index(torch.arange(-3, 7), 4)
        tensor([3, 2, 1, 0, 1, 2, 3, 2, 1, 0])
    """
    if length == 1:
        return torch.zeros_like(index)
    return _mirror(index, length - 1, 2 * (length - 1))


def _mirror(index: Tensor, last: Tensor | int, period: Tensor | int) -> Tensor:
    """The triangle wave of reflect padding: mirror lines at index 0 and ``last``, period ``2 last``."""
    return last - (index.remainder(period) - last).abs()
