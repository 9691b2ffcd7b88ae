"""Antialiased resampling: a pyramid sampled between levels, per sample, differentiable.

``grid_sample`` reads 4 input pixels per output pixel whatever the zoom, so a warp that shrinks
aliases. Here the images are first resized (antialiased, ``F.interpolate``) into a pyramid whose
levels are half an octave apart: level ``j`` is ``2 ** (j / 2)`` times smaller (odd levels after a
half-band filter that zeroes 0.5 cycles/pixel, see :data:`_HALFBAND`). Every level
covers the image's extent, so with ``align_corners=False`` one normalised coordinate names the
same point in every level and one sampling grid serves them all.

Each sample's footprint comes from its Jacobian (:func:`diffaug.functional.output_pixel_scale`):
an output pixel spans ``s`` input pixels; the output blends the two levels around
``l = 2 (log2(s) - 0.55)``, an offset that grows to 0.65 between 2x and 2.83x (see
:func:`level_weights`; a tent in ``l``, level 0 fading a little faster, so the weights, and
through them the amount of filtering, are differentiable with respect to ``theta``). The blend
is a chain of in-place ``lerp`` (one elementwise op per level); where ``s`` is at most about
1.46 the weight of level 0 is exactly 1 and the result is bit for bit the plain warp: nothing
changes when the warp does not shrink.

Only shapes decide how many levels are built (no host synchronisation): enough for an output
pixel to cover a crop inside the image (shrink ``in / out``), and at least one. Shrinking further
(a zoom-out showing the image smaller than the output) is filtered as the deepest level allows.
The level is chosen from the more shrunk axis by default (one level set, never aliases along
either axis, blurs the less shrunk axis of an anisotropic warp a little more than needed);
``per_axis=True`` builds separable levels (a rip-map) and blends them with a weight per axis,
exact per axis at the cost of ``(depth + 1) ** 2`` reads instead of ``depth + 1``.
The choice of method, half-octave spacing and level offset were measured: see the
antialiasing page of the documentation and ``benchmarks/antialias.py``.

On the CPU, when no gradient is needed, the levels are blended by a compiled kernel
(:mod:`diffaug.functional._cpu_kernels`) that builds per sample only the levels, and the parts
of them, that sample reads: the same values to rounding, at a fraction of the time. Everything
else (gradients, other devices, bicubic, ``"reflection"`` padding, ``per_axis``) runs the pyramid
in PyTorch ops below (:func:`blend_levels_`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from diffaug.functional import _cpu_kernels
from diffaug.functional.geometry import output_pixel_scale, sampling_grid

__all__ = ["antialiased_sample", "blend_levels_", "pyramid_sizes", "level_weights", "filters_shrink"]

# Half an octave between levels: level j is 2**(j / 2) times smaller than the input.
_STEP = 0.5
# Level 2 ** (j / 2) ~ s / 2 ** _BIAS matches an antialiased resize's spread (see level_weights).
_BIAS = 0.55
# Past 2x the offset grows by _SHARPEN (over half an octave, up to 2 ** 1.5 ~ 2.83x): sharper where
# the blend no longer involves the unfiltered level 0 (measured, see level_weights).
_SHARPEN = 0.1


def pyramid_sizes(in_size: Sequence[int], out_size: Sequence[int]) -> list[tuple[int, int]]:
    """Sizes ``(h, w)`` of the pyramid levels for a warp ``in_size -> out_size`` (level 0 first).

    Level ``j`` is ``2 ** (j / 2)`` times smaller than the input (at least one pixel). The depth
    depends on shapes only: enough levels for a crop inside the image (shrink up to
    ``in / out``), and at least one, so zoom-outs up to about 2x are fully filtered even when the
    output is as large as the input (further ones get the deepest level's filtering).

    Examples:
        >>> pyramid_sizes((448, 448), (224, 224))
        [(448, 448), (317, 317)]
        >>> len(pyramid_sizes((512, 512), (64, 64)))
        6
    """
    worst = max(n_in / n_out for n_in, n_out in zip(in_size, out_size, strict=True))
    depth = max(1, math.ceil(_level_of(worst) - 1e-9))
    return [tuple(max(1, round(n / 2 ** (j * _STEP))) for n in in_size) for j in range(depth + 1)]  # type: ignore[misc]


def filters_shrink(shrink: float) -> bool:
    """Whether output pixels spanning ``shrink`` input pixels get any filtering (above about 1.46).

    Below it the antialiased warp is bit for bit the plain one, so a transform whose shapes bound
    every sample's shrink under it can skip the filter's work.

    Examples:
        >>> filters_shrink(1.0), filters_shrink(1.4), filters_shrink(1.5)
        (False, False, True)
    """
    return _level_of(shrink) > 0


def _level_of(shrink: float) -> float:
    """:func:`_level` on a Python float (static shapes: no tensor, nothing for torch.compile to trace)."""
    octaves = math.log2(max(shrink, 1.0))
    return max(0.0, (octaves - _BIAS - 2.0 * _SHARPEN * min(max(octaves - 1.0, 0.0), 0.5)) / _STEP)


def _level(scale: Tensor) -> Tensor:
    """Continuous level ``l(s) = 2 (log2 s - 0.55) - 0.4 clamp(log2 s - 1, 0, 0.5)``, at least 0."""
    octaves = torch.log2(scale.clamp(min=1.0))
    offset = _BIAS + 2.0 * _SHARPEN * (octaves - 1.0).clamp(min=0.0, max=0.5)
    return ((octaves - offset) / _STEP).clamp(min=0.0)


def level_weights(scale: Tensor, depth: int) -> Tensor:
    """Blend weights ``(..., depth + 1)`` of the levels for shrinks ``scale`` ``(...)``.

    A level ``2 ** (j / 2)`` smaller, read bilinearly with steps of ``s / 2 ** (j / 2)`` level
    pixels, spreads an input pixel over about as much as a resize with antialiasing at shrink
    ``s`` when ``2 ** (j / 2) = s / sqrt(2)`` (the variances of the two tents add up). Up to 2x
    the continuous level is ``l = 2 (log2(s) - 0.55)`` (0.55 rather than 0.5: measured, it trades
    a little sharpness for less aliasing where the blend leaks the unfiltered level 0); from 2x to
    ``2 ** 1.5`` (about 2.83x) the offset grows to 0.65 and stays there, i.e.
    ``l = 2 (log2(s) - 0.55) - 0.4 clamp(log2(s) - 1, 0, 0.5)``: between two filtered levels the
    sharper offset keeps the aliasing bar and gains 0.5-1 dB against a Lanczos resize (see the
    antialiasing page). ``l`` is clamped to ``[0, depth]``; level ``j`` gets the tent
    ``max(0, 1 - |l - j|)``, except that level 0, the only unfiltered one, fades faster:
    ``(1 - l) ** 1.5`` instead of ``1 - l`` for ``l < 1``, the rest going to level 1 (measured:
    the zone plate at 2x went from 1.99x to 1.90x the resize's residual, and from 1.6x to 2x the
    aliasing fell while the photo stayed within 1 dB of torchvision). Differentiable in
    ``scale``; exactly level 0 (no filtering) for ``s <= 2 ** 0.55``, about 1.46.

    Examples:
        >>> level_weights(torch.tensor([0.5, 1.0, 2.0, 4.0]), 3)
        tensor([[1.0000, 0.0000, 0.0000, 0.0000],
                [1.0000, 0.0000, 0.0000, 0.0000],
                [0.0316, 0.9684, 0.0000, 0.0000],
                [0.0000, 0.0000, 0.3000, 0.7000]])
    """
    level = _level(scale).clamp(max=float(depth))
    js = torch.arange(depth + 1, device=scale.device, dtype=scale.dtype)
    tent = (1.0 - (level.unsqueeze(-1) - js).abs()).clamp(min=0.0)
    if depth == 0:
        return tent
    # Level 0 keeps (1 - l) ** 1.5 and level 1 takes the rest (nothing moves for l = 0 or l >= 1,
    # so the unfiltered case stays exactly level 0: 1 ** 1.5 == 1).
    first = tent[..., 0] ** 1.5
    second = tent[..., 1] + (tent[..., 0] - first)
    return torch.cat([first.unsqueeze(-1), second.unsqueeze(-1), tent[..., 2:]], dim=-1)


def _resize(image: Tensor, size: Sequence[int]) -> Tensor:
    """Antialiased bilinear resize to ``size``; the level covers the image's extent exactly.

    ``F.interpolate`` with a target size maps pixel centres with the ratio of the sizes, so
    normalised coordinates (``align_corners=False``) name the same point in every level.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if size[1] == 1 and size[0] > 1:
        # PyTorch's CPU kernel (2.14) resizes the height of a one-column image wrongly (every row
        # comes out as the first), and it narrows the width first: resize the transposed image.
        transposed = F.interpolate(image.transpose(-1, -2), size=(1, size[0]), mode="bilinear", antialias=True)
        return transposed.transpose(-1, -2)
    return F.interpolate(image, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)


# Odd levels are first filtered by this half-band filter (per axis, edge pixels repeated): it zeroes
# 0.5 cycles/pixel. The tent of an antialiased resize by 2 ** (j / 2), j odd, a non-integer support,
# keeps about a fifth of the band just under 0.5 c/px, which folds back when the level is read; by
# whole factors (even levels) the tent already zeroes it. Measured: docs, "The top band".
_HALFBAND = (-1 / 16, 4 / 16, 10 / 16, 4 / 16, -1 / 16)


def _halfband(image: Tensor, along_y: bool = True, along_x: bool = True) -> Tensor:
    """``image`` filtered by :data:`_HALFBAND` along the chosen axes, edge pixels repeated."""
    if along_x:
        image = _halfband_along(image, -1)
    if along_y:
        image = _halfband_along(image, -2)
    return image


def _halfband_along(image: Tensor, dim: int) -> Tensor:
    """One axis of :func:`_halfband`, as shifted slices (a 1 x 5 ``conv2d`` on the CPU took 30x longer)."""
    n = image.shape[dim]
    padded = F.pad(image, (2, 2, 0, 0) if dim == -1 else (0, 0, 2, 2), mode="replicate")

    def shifted(k: int) -> Tensor:
        return padded.narrow(dim, k, n)

    outer, inner, centre = _HALFBAND[0], _HALFBAND[1], _HALFBAND[2]
    return (shifted(1) + shifted(3)).mul_(inner).add_(shifted(2), alpha=centre).add_(shifted(0) + shifted(4), alpha=outer)


def _level_image(images: Tensor, j: int, size: Sequence[int]) -> Tensor:
    """Level ``j`` of ``images`` at ``size``: the antialiased resize, after the half-band filter if ``j`` is odd."""
    return _resize(_halfband(images) if j % 2 else images, size)


def _chain(base: Tensor, sizes: Sequence[Sequence[int]], along_y: bool = True, along_x: bool = True) -> list[Tensor]:
    """Levels of ``sizes``, each one antialiased resize of ``base`` (level 0 is ``base`` itself);
    odd ones after the half-band filter along the axes the levels shrink (``along_y``, ``along_x``).

    Resizing every level from the base keeps its blur that of one resize. Building level ``j``
    from level ``j - 2`` (an octave step from a smaller image, cheaper) adds up the blurs and was
    measured worse: the zone plate at 8x went past twice the resize's residual, and the photo lost
    about 1 dB at 4x-6x. (For the 448 -> 224 crops that set the cost budget there is one level,
    so it would not change that cost.)
    """
    return [base] + [_resize(_halfband(base, along_y, along_x) if j % 2 else base, size) for j, size in enumerate(sizes[1:], 1)]


def _lerp_weights(weights: Tensor) -> Tensor:
    """Lerp weights ``(..., n)`` that blend ``n`` samples by ``weights`` one after the other.

    After sample ``j``, ``out = sum_{i<=j} w_i S_i / sum_{i<=j} w_i``: sample ``j`` enters with
    ``w_j / sum_{i<=j} w_i``. Where nothing is accumulated yet the lerp weight is 0/0: 0, with a clamped
    denominator (no NaN gradient).
    """
    running = weights.cumsum(-1)
    return torch.where(running > 0, weights / running.clamp(min=torch.finfo(weights.dtype).tiny), 0.0)


def _cpu_kernel_route(images: Tensor, theta: Tensor, grid: Tensor, mode: str, padding_mode: str) -> str | None:
    """How the compiled CPU kernel serves this call: ``"forward"`` (no gradient needed: in place),
    ``"gradient"`` (the whole warp as one op, with the kernel's backward), or ``None`` (the pyramid: other modes and
    paddings, other devices and dtypes). Both routes are custom ops, so compiled graphs call the
    same kernels as eager code. Shapes, dtypes and flags only."""
    if mode != "bilinear" or padding_mode not in ("zeros", "border") or type(images) is not Tensor:
        return None
    if _cpu_kernels.is_disabled():
        return None
    if images.device.type != "cpu" or images.dtype not in (torch.float32, torch.float64) or not images.is_contiguous():
        return None
    grads = torch.is_grad_enabled() and (images.requires_grad or theta.requires_grad or grid.requires_grad)
    return "gradient" if grads else "forward"


def antialiased_sample(
    images: Tensor,
    theta: Tensor,
    size: Sequence[int],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    per_axis: bool = False,
    grid: Tensor | None = None,
) -> Tensor:
    """``grid_sample`` of ``images`` through ``theta``, low-pass filtered where the warp shrinks.

    The kernel behind ``diffaug.functional.warp(..., antialias=True)``; arguments are not checked
    here (``warp`` does that).

    Args:
        images: ``(B, C, H, W)`` floating point.
        theta: ``(B, 2, 3)`` output -> input normalised coordinates, same dtype as ``images``.
        size: output ``(h, w)``.
        mode: ``"bilinear"`` or ``"bicubic"`` (how each level is read).
        padding_mode: ``"zeros"`` | ``"border"`` | ``"reflection"``, applied at every level.
        per_axis: separable levels (a rip-map) blended with a weight per axis: each axis gets
            its own amount of filtering, for ``(depth + 1) ** 2`` reads instead of ``depth + 1``.
            The default picks one level per sample from the more shrunk axis.
        grid: the sampling grid of ``theta`` when the caller has already built it, e.g. folded
            by :func:`~diffaug.functional.reflect_grid` for ``"reflect"`` padding (folded for
            level 0's pixels; a smaller level clamps to its border within one of its pixels of
            the edge). Default: ``sampling_grid(theta, size)``.

    Returns:
        ``(B, C, h, w)``; gradients reach ``images`` and ``theta`` (also through the amount of
        filtering). Equal to the plain ``grid_sample`` for samples that do not shrink.

    Examples:
        >>> import torch
        >>> stripes = torch.arange(64.0).remainder(2).expand(1, 1, 64, 64)  # 0.5 cycles/pixel
        >>> theta = torch.eye(2, 3).unsqueeze(0)
        >>> out = antialiased_sample(stripes, theta, (16, 16))
        >>> bool(out.std() < 0.02), round(out.mean().item(), 2)
        (True, 0.5)
    """
    in_size = tuple(images.shape[-2:])
    out_size = tuple(size)
    sizes = pyramid_sizes(in_size, out_size)
    depth = len(sizes) - 1
    shrink = output_pixel_scale(theta, in_size, out_size)  # (B, 2) as (x, y)
    # One grid serves every level: normalised coordinates do not depend on the level's size.
    # The plain warp's own grid, so that level 0 matches it bit for bit.
    grid = sampling_grid(theta, out_size) if grid is None else grid

    if per_axis:
        weights_x = level_weights(shrink[:, 0], depth)
        weights_y = level_weights(shrink[:, 1], depth)
        columns = _chain(images, [(in_size[0], w) for _, w in sizes], along_y=False)
        taps: list[tuple[Tensor, Tensor]] = []
        for jx, column in enumerate(columns):
            rows = _chain(column, [(h, sizes[jx][1]) for h, _ in sizes], along_x=False)
            taps += [(level, weights_y[:, jy] * weights_x[:, jx]) for jy, level in enumerate(rows)]
        lerp_weights = _lerp_weights(torch.stack([weight for _, weight in taps], dim=-1).to(images.dtype))
        out = F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
        return _lerp_levels(out, [level for level, _ in taps[1:]], grid, lerp_weights, mode, padding_mode)

    lerp_weights = _lerp_weights(level_weights(shrink.amax(dim=-1), depth).to(images.dtype))
    route = _cpu_kernel_route(images, theta, grid, mode, padding_mode)
    if route == "gradient":  # on the CPU: the whole warp as one op, with the kernel's backward
        return _cpu_kernels.warp_levels(images, *_kernel_arguments(grid, lerp_weights, sizes, padding_mode))
    out = F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    if route == "forward":
        # On the CPU the compiled kernel builds per sample only the levels (and the parts of them)
        # its blend reads, and lerps them into the plain sample in place.
        _cpu_kernels.blend_levels_(out, images, *_kernel_arguments(grid, lerp_weights, sizes, padding_mode))
        return out
    return blend_levels_(out, images, grid, lerp_weights, sizes, mode, padding_mode)


def _kernel_arguments(
    grid: Tensor, lerp_weights: Tensor, sizes: Sequence[Sequence[int]], padding_mode: str
) -> tuple[Tensor, Tensor, list[int], list[int], bool]:
    """The kernel's arguments after the images: the grid as ``(B, 2, h, w)`` planes (sampling_grid's
    own layout: no copy), the lerp weights, the level heights and widths, and border padding."""
    planes = grid.permute(0, 3, 1, 2).contiguous()
    return planes, lerp_weights.contiguous(), [h for h, _ in sizes], [w for _, w in sizes], padding_mode == "border"


def blend_levels_(
    out: Tensor,
    images: Tensor,
    grid: Tensor,
    lerp_weights: Tensor,
    sizes: Sequence[Sequence[int]],
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> Tensor:
    """Lerp the pyramid's levels ``1 ..`` of ``images`` into ``out``, level 0's sample, in place.

    The pyramid in PyTorch ops (differentiable): level ``j`` (``sizes[j]``, an antialiased resize
    of ``images``, after the half-band filter for odd ``j``) is read through ``grid`` and enters
    with the lerp weight ``lerp_weights[:, j]``. After level ``j``,
    ``out = sum_{i<=j} w_i S_i / sum_{i<=j} w_i``; ``lerp(a, b, 0)`` is exactly ``a``, so where
    level 0 gets all the weight ``out`` stays bit for bit the plain warp.
    """
    levels = (_level_image(images, j, size) for j, size in enumerate(sizes[1:], 1))
    return _lerp_levels(out, levels, grid, lerp_weights, mode, padding_mode)


def _lerp_levels(
    out: Tensor, levels: Iterable[Tensor], grid: Tensor, lerp_weights: Tensor, mode: str, padding_mode: str
) -> Tensor:
    """Read each of ``levels`` (levels ``1 ..``) through ``grid`` and lerp it into ``out`` by ``lerp_weights[:, j]``.

    In place: ``out`` is the caller's own buffer (``grid_sample`` does not keep its output for
    backward; autograd keeps what ``lerp``'s gradient needs), and a fresh one costs page faults.
    """
    for j, level in enumerate(levels, start=1):
        sample = F.grid_sample(level, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
        out = out.lerp_(sample, lerp_weights[:, j].view(-1, 1, 1, 1))
    return out
