"""Antialiased crops: aliasing, fidelity, time and memory of the candidate methods.

Run from a checkout: ``python benchmarks/antialias.py`` (all tables) or with ``--only``
``aliasing``, ``fidelity``, ``sweep``, ``near3``, ``topband``, ``cost``, ``floor``, ``tried`` or ``memory``.
The numbers go to stdout as Markdown tables
(they are the ones quoted in ``docs/antialias.md``).

Candidates, all per sample, all differentiable in the images and in theta:

* ``mipmap`` (shipped): isotropic pyramid, level from the more shrunk axis, trilinear blend (on the
  CPU, the compiled kernel that builds per sample only what the blend reads, forward and backward);
* ``mipmap_055`` (quality tables only): the same with the previous weights, tents on a constant
  offset ``l = 2 (log2 s - 0.55)`` (the shipped map grows the offset to 0.65 between 2x and
  2.83x and fades level 0 as ``(1 - l) ** 1.5``);
* ``ripmap``: separable pyramid, per-axis level, bilinear blend over the ``(ky, kx)`` grid;
* ``gaussian``: per-sample separable Gaussian prefilter at full resolution (kernel length
  fixed by the static shapes, sigma per sample and axis), then one ``grid_sample``;
* ``supersample``: ``N x N`` taps spread over each output pixel's footprint (``N`` fixed by the
  static shapes, spread per sample: zero where the warp does not shrink), averaged;
* ``octave_box``: one octave per level, each level a bilinear halving of the previous (a
  2 x 2 box: the cheapest level there is), blended on ``log2(s) - 0.5``;
* ``octave_aa``: the same with antialiased halvings (``[1, 3, 3, 1] / 8`` per axis).

References: plain ``grid_sample`` (``antialias=False``), ``F.interpolate(antialias=True)`` /
torchvision's antialiased resize on the integer crop (no gradient with respect to the box), and
Pillow's Lanczos resize of the integer crop (the fidelity reference).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import diffaug.functional.antialias as antialias_module  # noqa: E402
from diffaug import functional as daf  # noqa: E402
from diffaug.functional import _cpu_kernels  # noqa: E402
from diffaug.functional.antialias import antialiased_sample  # noqa: E402
from diffaug.functional.geometry import output_pixel_scale  # noqa: E402

Method = Callable[[Tensor, Tensor, tuple[int, int]], Tensor]


# --------------------------------------------------------------------------- candidates
def plain(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def mipmap(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    return antialiased_sample(images, theta, size)


@contextlib.contextmanager
def _constant_offset(offset: float = 0.55):
    """Swap the kernel's weights for tents on ``l = 2 (log2 s - offset)`` (shipped before), in
    the weights and in the pyramid's depth."""
    shipped = antialias_module.level_weights, antialias_module._level_of

    def weights(scale: Tensor, depth: int) -> Tensor:
        level = (2.0 * (torch.log2(scale.clamp(min=1.0)) - offset)).clamp(min=0.0, max=float(depth))
        js = torch.arange(depth + 1, device=scale.device, dtype=scale.dtype)
        return (1.0 - (level.unsqueeze(-1) - js).abs()).clamp(min=0.0)

    def level_of(shrink: float) -> float:
        return max(0.0, 2.0 * (math.log2(max(shrink, 1.0)) - offset))

    antialias_module.level_weights, antialias_module._level_of = weights, level_of
    try:
        yield
    finally:
        antialias_module.level_weights, antialias_module._level_of = shipped


def mipmap_055(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    """The shipped kernel with the previous, constant level offset (quality comparison only)."""
    with _constant_offset(0.55):
        return antialiased_sample(images, theta, size)


def ripmap(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    return antialiased_sample(images, theta, size, per_axis=True)


def gaussian(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    """Separable Gaussian per sample and axis, variance matched to the tent of an antialiased resize."""
    count, channels, height, width = images.shape
    shrink = output_pixel_scale(theta, (height, width), size)  # (B, 2) as (x, y)
    # Tent of half-width s has variance s^2 / 6; bilinear sampling already adds 1 / 6.
    sigma = torch.sqrt((shrink.square() - 1.0).clamp(min=0.0) / 6.0 + 1e-12)
    out = images
    for axis, (n_in, n_out) in enumerate(((width, size[1]), (height, size[0]))):
        sigma_max = math.sqrt(max((n_in / n_out) ** 2 - 1.0, 0.0) / 6.0)
        radius = max(1, math.ceil(3.0 * sigma_max))
        taps = torch.arange(-radius, radius + 1, dtype=images.dtype)
        kernel = torch.exp(-0.5 * (taps / sigma[:, axis : axis + 1]).square())
        kernel = kernel / kernel.sum(-1, keepdim=True)  # (B, K)
        weight = kernel.repeat_interleave(channels, dim=0)  # (B*C, K)
        flat = out.reshape(1, count * channels, height, width)
        if axis == 0:
            flat = F.conv2d(
                F.pad(flat, (radius, radius, 0, 0), mode="replicate"),
                weight.view(-1, 1, 1, 2 * radius + 1),
                groups=count * channels,
            )
        else:
            flat = F.conv2d(
                F.pad(flat, (0, 0, radius, radius), mode="replicate"),
                weight.view(-1, 1, 2 * radius + 1, 1),
                groups=count * channels,
            )
        out = flat.view(count, channels, height, width)
    return plain(out, theta, size)


def supersample(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    """N x N sub-pixel taps per output pixel, spread over the footprint beyond one input pixel."""
    height, width = images.shape[-2:]
    taps_n = max(1, math.ceil(max(height / size[0], width / size[1])))
    shrink = output_pixel_scale(theta, (height, width), size)
    # Spread (fraction of an output pixel covered by the taps) grows from 0 at shrink 1 to the
    # whole output pixel at shrink 2 and beyond: no change where the warp does not shrink.
    spread = (shrink.amax(-1) - 1.0).clamp(0.0, 1.0).view(-1, 1)
    out = None
    for i in range(taps_n):
        for j in range(taps_n):
            dx = ((j + 0.5) / taps_n - 0.5) * 2.0 / size[1]
            dy = ((i + 0.5) / taps_n - 0.5) * 2.0 / size[0]
            offset = torch.cat([dx * spread, dy * spread], dim=-1)  # output normalised units
            shifted = theta.clone()
            shifted[:, :, 2] = theta[:, :, 2] + (theta[:, :, :2] @ offset.unsqueeze(-1)).squeeze(-1)
            sample = plain(images, shifted, size)
            out = sample if out is None else out + sample
    return out / taps_n**2


def _octave(images: Tensor, theta: Tensor, size: tuple[int, int], halve: Callable[[Tensor], Tensor], bias: float = 0.5) -> Tensor:
    """Pyramid one octave per level, each level ``halve`` of the previous, blended on ``l = log2(s) - bias``."""
    in_size = tuple(images.shape[-2:])
    worst = max(n_in / n_out for n_in, n_out in zip(in_size, size, strict=True))
    depth = max(1, math.ceil(max(0.0, math.log2(worst) - bias) - 1e-9))
    levels = [images]
    for _ in range(depth):
        levels.append(halve(levels[-1]))
    shrink = output_pixel_scale(theta, in_size, size).amax(-1)
    level = (torch.log2(shrink.clamp(min=1.0)) - bias).clamp(0.0, float(depth))
    weights = (1.0 - (level.unsqueeze(-1) - torch.arange(depth + 1, dtype=level.dtype)).abs()).clamp(min=0.0)
    running = weights.cumsum(-1)
    ratios = torch.where(running > 0, weights / running.clamp(min=1e-30), 0.0)
    grid = daf.sampling_grid(theta, size)
    out = F.grid_sample(images, grid, align_corners=False)
    for j in range(1, depth + 1):
        out = torch.lerp(out, F.grid_sample(levels[j], grid, align_corners=False), ratios[:, j].view(-1, 1, 1, 1))
    return out


def _half(image: Tensor, antialias: bool) -> Tensor:
    height, width = image.shape[-2:]
    size = (max(1, height // 2), max(1, width // 2))
    return F.interpolate(image, size=size, mode="bilinear", antialias=antialias, align_corners=False)


def octave_box(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    """The cheapest pyramid: levels by a non-antialiased bilinear halving (a 2 x 2 box)."""
    return _octave(images, theta, size, lambda image: _half(image, False))


def octave_aa(images: Tensor, theta: Tensor, size: tuple[int, int]) -> Tensor:
    """Octave levels by an antialiased halving (a [1, 3, 3, 1] / 8 filter per axis), each from the previous."""
    return _octave(images, theta, size, lambda image: _half(image, True))


CANDIDATES: dict[str, Method] = {
    "mipmap": mipmap,
    "mipmap_055": mipmap_055,
    "ripmap": ripmap,
    "gaussian": gaussian,
    "supersample": supersample,
    "octave_box": octave_box,
    "octave_aa": octave_aa,
}
# Same cost as the shipped kernel: left out of the time and memory tables.
QUALITY_ONLY = ("mipmap_055",)
TIMED = tuple(name for name in CANDIDATES if name not in QUALITY_ONLY)


# --------------------------------------------------------------------------- test images
def sinusoid(n: int, frequency: float = 0.3, phase: float = 0.0, angle: float = 0.0) -> Tensor:
    """``0.5 + 0.5 sin(...)``, ``frequency`` in cycles per pixel, ``(1, 1, n, n)`` float64."""
    y, x = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    along = x * math.cos(angle) + y * math.sin(angle)
    return (0.5 + 0.5 * torch.sin(2 * math.pi * frequency * along + phase)).double().view(1, 1, n, n)


def zone_plate(n: int, low: float = 0.25, high: float = 0.5) -> Tensor:
    """Rings whose local frequency grows with the radius from ``low`` to ``high`` cycles/pixel.

    Every frequency of the ring is above the Nyquist limit of any output shrunk 2x or more,
    so the ideal result is the flat mean 0.5 and anything else is aliasing.
    """
    y, x = torch.meshgrid(torch.arange(n) + 0.5 - n / 2, torch.arange(n) + 0.5 - n / 2, indexing="ij")
    r = torch.sqrt(x * x + y * y)
    radius = n / math.sqrt(2)
    # phase'(r) = 2 pi f(r), f(r) = low + (high - low) r / radius
    phase = 2 * math.pi * (low * r + (high - low) * r * r / (2 * radius))
    return (0.5 + 0.5 * torch.cos(phase)).double().view(1, 1, n, n)


def residual(out: Tensor, margin: int = 2) -> float:
    """Standard deviation around the ideal 0.5, away from the border."""
    inner = out[..., margin:-margin, margin:-margin]
    return (inner - 0.5).square().mean().sqrt().item()


def whole(n: int) -> Tensor:
    return torch.eye(2, 3, dtype=torch.float64).unsqueeze(0)


# --------------------------------------------------------------------------- tables
def aliasing_table() -> str:
    n = 512
    rows = [
        "| image | shrink | plain | F.interpolate(antialias) | " + " | ".join(CANDIDATES) + " |",
        "|" + "---|" * (4 + len(CANDIDATES)),
    ]
    for name, image in (("sinusoid 0.3 c/px", sinusoid(n)), ("zone plate 0.25-0.5 c/px", zone_plate(n))):
        for factor in (2, 3, 4, 8):
            out_n = n // factor
            size = (out_n, out_n)
            values = [
                residual(plain(image, whole(n), size)),
                residual(F.interpolate(image, size=size, mode="bilinear", antialias=True)),
            ]
            values += [residual(method(image, whole(n), size)) for method in CANDIDATES.values()]
            rows.append(f"| {name} | {factor}x | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(rows)


def photo() -> Tensor:
    from skimage import data

    return torch.from_numpy(data.astronaut()).permute(2, 0, 1).unsqueeze(0).double() / 255.0


def psnr(a: Tensor, b: Tensor) -> float:
    return (10 * torch.log10(1.0 / (a - b).square().mean())).item()


def fidelity_table() -> str:
    """PSNR against Pillow's Lanczos of the same integer crop (astronaut, 512 x 512)."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    image = photo()
    pil = Image.fromarray((image[0].permute(1, 2, 0) * 255).round().byte().numpy())
    out = 56
    header = "| shrink | crop | plain | torchvision antialias | " + " | ".join(CANDIDATES) + " |"
    rows = [header, "|" + "---|" * (4 + len(CANDIDATES))]
    for factor in (2, 3, 4, 5, 6, 8):
        side = out * factor
        left, top = (512 - side) // 3, (512 - side) // 2
        box = (left, top, left + side, top + side)
        reference = torch.from_numpy(__import__("numpy").asarray(pil.crop(box).resize((out, out), Image.LANCZOS)).copy()).permute(
            2, 0, 1
        )
        reference = reference.unsqueeze(0).double() / 255.0
        theta = daf.boxes_to_theta(torch.tensor([box], dtype=torch.float64), (512, 512))
        crop = image[..., top : top + side, left : left + side]
        values = [psnr(plain(image, theta, (out, out)), reference)]
        values.append(psnr(TF.resize(crop, [out, out], antialias=True), reference))
        values += [psnr(method(image, theta, (out, out)), reference) for method in CANDIDATES.values()]
        rows.append(f"| {factor}x | {side} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    return "\n".join(rows)


def _crop_fidelity(image: Tensor, pil: object, factor: float, left: int, top: int, out: int = 56) -> dict[str, float]:
    """PSNR against Pillow's Lanczos of one integer crop ``round(out * factor)`` wide, for
    torchvision's antialiased resize and the two mipmap level maps."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    side = round(out * factor)
    box = (left, top, left + side, top + side)
    reference = torch.from_numpy(np.asarray(pil.crop(box).resize((out, out), Image.LANCZOS)).copy())  # type: ignore[attr-defined]
    reference = reference.permute(2, 0, 1).unsqueeze(0).double() / 255.0
    theta = daf.boxes_to_theta(torch.tensor([box], dtype=torch.float64), tuple(image.shape[-2:]))
    crop = image[..., top : top + side, left : left + side]
    return {
        "torchvision": psnr(TF.resize(crop, [out, out], antialias=True), reference),
        "mipmap": psnr(mipmap(image, theta, (out, out)), reference),
        "mipmap_055": psnr(mipmap_055(image, theta, (out, out)), reference),
    }


def _photo_and_pil() -> tuple[Tensor, object]:
    from PIL import Image

    image = photo()
    return image, Image.fromarray((image[0].permute(1, 2, 0) * 255).round().byte().numpy())


def near_three_table() -> str:
    """Fidelity around 3x and 5x: at odd integer shrinks both references sample on input pixel centres."""
    image, pil = _photo_and_pil()
    rows = [
        "| shrink | crop | torchvision | mipmap | mipmap - torchvision | mipmap_055 - torchvision |",
        "|---|---|---|---|---|---|",
    ]
    for factor in (2.9, 2.95, 3.0, 3.05, 3.1, 4.9, 4.95, 5.0, 5.05, 5.1):
        side = round(56 * factor)
        v = _crop_fidelity(image, pil, factor, (512 - side) // 3, (512 - side) // 2)
        rows.append(
            f"| {factor:g}x | {side} | {v['torchvision']:.2f} | {v['mipmap']:.2f} | {v['mipmap'] - v['torchvision']:+.2f} | "
            f"{v['mipmap_055'] - v['torchvision']:+.2f} |"
        )
    return "\n".join(rows)


def sweep_table() -> str:
    """Both level maps over fractional shrinks: zone plate residual / resize's, the sinusoid
    against the tests' bound (at most 1 passes), and the worst PSNR gap to torchvision over
    three crop positions (the fidelity table's, the top-left corner, and (101, 37))."""
    n = 512
    image, pil = _photo_and_pil()
    zone, wave = zone_plate(n), sinusoid(n)
    rows = [
        "| shrink | zone plate / resize: 0.55 -> shipped | sinusoid / bound: 0.55 -> shipped | "
        "worst dB vs torchvision: 0.55 -> shipped |",
        "|---|---|---|---|",
    ]

    def resized(image: Tensor, size: tuple[int, int]) -> float:
        return residual(F.interpolate(image, size=size, mode="bilinear", antialias=True))

    for factor in (1.6, 1.8, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4, 4.5, 5, 5.5, 6, 7, 8):
        out_n = round(n / factor)
        size, exact = (out_n, out_n), n / out_n
        bound = 2 * resized(wave, size) + 0.3 * residual(plain(wave, whole(n), size)) * 2 / exact
        zone_cell = " -> ".join(f"{residual(m(zone, whole(n), size)) / resized(zone, size):.2f}" for m in (mipmap_055, mipmap))
        wave_cell = " -> ".join(f"{residual(m(wave, whole(n), size)) / bound:.2f}" for m in (mipmap_055, mipmap))
        cells = [zone_cell, wave_cell]
        side = round(56 * factor)
        gaps = {"mipmap": [], "mipmap_055": []}
        for left, top in (((512 - side) // 3, (512 - side) // 2), (0, 0), (101, 37)):
            v = _crop_fidelity(image, pil, factor, left, top)
            for key in gaps:
                gaps[key].append(v[key] - v["torchvision"])
        cells.append(f"{min(gaps['mipmap_055']):+.2f} -> {min(gaps['mipmap']):+.2f}")
        rows.append(f"| {factor:g}x | " + " | ".join(cells) + " |")
    return "\n".join(rows)


TOP_BAND_SHRINKS = (1.5, 2, 2.5, 3, 4, 5, 6, 8)


def top_band_frequencies(shrink: float, count: int = 6) -> list[float]:
    """``count`` frequencies (cycles/pixel) spread over ``(0.5 / shrink, 0.5]``: all fold back once shrunk."""
    nyquist = 0.5 / shrink
    return [nyquist + k * (0.5 - nyquist) / count for k in range(1, count + 1)]


def top_band_ratios(method: Callable[[Tensor, Tensor, tuple[int, int]], Tensor], n: int = 240) -> dict[float, float]:
    """Per shrink, the worst residual of ``method`` over the top band, as a fraction of the bound
    ``2 * F.interpolate(antialias=True) + 0.005`` (at most 1 passes); whole ``n x n`` sinusoids."""
    worst: dict[float, float] = {}
    for factor in TOP_BAND_SHRINKS:
        size = (round(n / factor),) * 2
        ratios = []
        for frequency in top_band_frequencies(n / size[0]):
            wave = sinusoid(n, frequency, 0.3)
            bound = 2 * residual(F.interpolate(wave, size=size, mode="bilinear", antialias=True)) + 0.005
            ratios.append(residual(method(wave, whole(n), size)) / bound)
        worst[factor] = max(ratios)
    return worst


@contextlib.contextmanager
def _level_map(shift: float = 0.0, cubic: bool = False):
    """The pyramid with its level moved ``shift`` levels deeper wherever it filters, and/or levels
    built by an antialiased bicubic resize (a cubic of twice the tent's support) instead of the
    tent, on top of the shipped levels (odd ones after the half-band filter): other ways to remove
    more of the top band. Pure PyTorch pyramid (the kernel builds tents)."""
    shipped = antialias_module._level, antialias_module._level_of, antialias_module._resize

    def level(scale: Tensor) -> Tensor:
        octaves = torch.log2(scale.clamp(min=1.0))
        offset = antialias_module._BIAS + 2.0 * antialias_module._SHARPEN * (octaves - 1.0).clamp(min=0.0, max=0.5)
        raw = (octaves - offset) / antialias_module._STEP
        return torch.where(raw > 0, raw + shift, 0.0)

    def level_of(shrink: float) -> float:
        raw = shipped[1](shrink)
        return raw + shift if raw > 0 else 0.0

    def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
        if tuple(image.shape[-2:]) == tuple(size):
            return image
        return F.interpolate(image, size=tuple(size), mode="bicubic", antialias=True, align_corners=False)

    antialias_module._level, antialias_module._level_of = level, level_of
    if cubic:
        antialias_module._resize = resize
    try:
        with _cpu_kernels.disabled():
            yield
    finally:
        antialias_module._level, antialias_module._level_of, antialias_module._resize = shipped


def top_band_table() -> str:
    """The top band's residual against the fidelity bar, for the shipped map and deeper or cubic variants."""
    image, pil = _photo_and_pil()
    variants = {
        "shipped": {},
        "level + 0.25": {"shift": 0.25},
        "level + 0.5": {"shift": 0.5},
        "level + 1": {"shift": 1.0},
        "cubic levels": {"cubic": True},
        "cubic levels, level + 0.5": {"cubic": True, "shift": 0.5},
    }
    factors = (1.6, 2, 2.5, 3, 4, 6, 8)
    header = "| level map | " + " | ".join(f"top band {s:g}x" for s in TOP_BAND_SHRINKS) + " | worst dB vs torchvision (shrink) |"
    rows = [header, "|" + "---|" * (len(TOP_BAND_SHRINKS) + 2)]
    for name, options in variants.items():
        with _level_map(**options):
            worst = top_band_ratios(mipmap)
            gaps = {}
            for factor in factors:
                side = round(56 * factor)
                v = _crop_fidelity(image, pil, factor, (512 - side) // 3, (512 - side) // 2)
                gaps[factor] = v["mipmap"] - v["torchvision"]
        low = min(gaps, key=gaps.__getitem__)
        cells = [f"{worst[s]:.2f}" for s in TOP_BAND_SHRINKS] + [f"{gaps[low]:+.2f} ({low:g}x)"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def rrc_thetas(batch: int, in_size: int, generator: torch.Generator) -> Tensor:
    """Boxes of diffaug's RandomResizedCrop law (torchvision's), as theta."""
    import diffaug as da

    images = torch.empty(batch, 3, in_size, in_size)
    return da.RandomResizedCrop(224).make_params(images, generator=generator).theta


def _median_ms(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def cost_table(repeats: int = 7, batch: int = 64, in_size: int = 448, out: int = 224, backward: bool = False) -> str:
    """Median time of a (batch, 3, in, in) -> out random resized crop per method, interleaved."""
    result = antialias_case(repeats=repeats, batch=batch, in_size=in_size, out=out, backward=backward)
    base = result["plain"]
    rows = [
        f"| method ({batch}, 3, {in_size}, {in_size}) -> {out}{' fwd+bwd' if backward else ''} | median ms | x plain |",
        "|---|---|---|",
    ]
    rows += [f"| {name} | {ms:.0f} | {ms / base:.2f} |" for name, ms in result.items() if "/" not in name]
    rows += [f"| {name} | | {ratio:.2f} |" for name, ratio in result.items() if "/" in name]
    return "\n".join(rows)


def antialias_case(
    repeats: int = 7,
    batch: int = 64,
    in_size: int = 448,
    out: int = 224,
    backward: bool = False,
    methods: tuple[str, ...] = TIMED,
) -> dict[str, float]:
    """Median milliseconds per method for random resized crops; methods run interleaved.

    The shipped path is measured through ``daf.warp`` (``plain`` = ``antialias=False``,
    ``mipmap`` = ``antialias=True``: the compiled CPU kernel, forward and backward; also the
    pure PyTorch pyramid alone, for comparison); the other candidates through this file's functions.
    """
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, in_size, in_size, generator=generator, requires_grad=backward)
    theta = rrc_thetas(batch, in_size, generator)
    size = (out, out)

    def through_warp(antialias: bool) -> Callable[[], object]:
        return lambda: daf.warp(images, theta, size, antialias=antialias)

    def through_pyramid() -> object:
        with _cpu_kernels.disabled():
            return daf.warp(images, theta, size, antialias=True)

    fns: dict[str, Callable[[], object]] = {"plain": through_warp(False), "mipmap": through_warp(True)}
    fns["mipmap, pure PyTorch pyramid"] = through_pyramid
    for name in methods:
        if name != "mipmap":
            fns[name] = (lambda m: lambda: m(images, theta, size))(CANDIDATES[name])
    if backward:
        fns = {name: _with_backward(fn) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name] += _median_ms(fn, 1)
    result = {name: statistics.median(values) for name, values in times.items()}
    # Under a fluctuating load the ratio within a round (methods run back to back) is steadier
    # than the ratio of medians: report its median too.
    for name in fns:
        if name != "plain":
            result[f"{name} / plain (median of per-round ratios)"] = statistics.median(
                a / b for a, b in zip(times[name], times["plain"], strict=True)
            )
    return result


def _pieces_table(pieces: dict[str, Callable[[], object]], repeats: int, header: str) -> tuple[str, dict[str, float]]:
    """Time ``pieces`` interleaved (median ms) with the minor page faults of each call.

    Page faults are counted because on this machine a fresh full-size buffer costs about as much
    in faults as in arithmetic, and whether a call gets fresh pages depends on what ran before it.
    """
    times: dict[str, list[float]] = {name: [] for name in pieces}
    faults: dict[str, list[int]] = {name: [] for name in pieces}
    for fn in pieces.values():  # warm-up (and compilation)
        fn()
    for _ in range(repeats):
        for name, fn in pieces.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times[name] += _median_ms(fn, 1)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = next(iter(medians.values()))
    rows = [f"| {header} | median ms | x plain | page faults per call |", "|---|---|---|---|"]
    rows += [f"| {name} | {ms:.0f} | {ms / base:.2f} | {statistics.median(faults[name]):.0f} |" for name, ms in medians.items()]
    return "\n".join(rows), medians


def _with_backward(fn: Callable[[], Tensor]) -> Callable[[], object]:
    return lambda: fn().sum().backward()


def floor_table(repeats: int = 7, batch: int = 64, in_size: int = 448, out: int = 224) -> str:
    """Median time of the pieces a pyramid is made of, for the crop case of ``cost_table``.

    Any pyramid that keeps the plain warp bit for bit where nothing shrinks pays the plain
    ``grid_sample`` on the input, one level built from the whole input, one more ``grid_sample``
    and a blend: the sum over the cheapest pieces is a lower bound on its cost.
    """
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, in_size, in_size, generator=generator)
    theta = rrc_thetas(batch, in_size, generator)
    size = (out, out)
    grid = daf.sampling_grid(theta, size)
    half = (in_size // 2, in_size // 2)
    third = (round(in_size / 2**0.5),) * 2
    level_half = F.interpolate(images, size=half, mode="bilinear", antialias=True)
    level_third = F.interpolate(images, size=third, mode="bilinear", antialias=True)
    first = F.grid_sample(images, grid, align_corners=False)
    weight = torch.rand(batch, 1, 1, 1, generator=generator)
    blend = first.clone()
    pieces: dict[str, Callable[[], object]] = {
        "plain warp (antialias=False)": lambda: daf.warp(images, theta, size),
        "grid_sample on the input": lambda: F.grid_sample(images, grid, align_corners=False),
        f"level {third[0]} (antialiased resize, the shipped first level)": lambda: F.interpolate(
            images, size=third, mode="bilinear", antialias=True
        ),
        f"level {half[0]} (antialiased resize)": lambda: F.interpolate(images, size=half, mode="bilinear", antialias=True),
        f"level {half[0]} (bilinear halving: 2 x 2 box, the cheapest)": lambda: F.interpolate(
            images, size=half, mode="bilinear", antialias=False
        ),
        f"level {half[0]} (avg_pool2d 2 x 2)": lambda: F.avg_pool2d(images, 2),
        f"grid_sample on the {third[0]} level": lambda: F.grid_sample(level_third, grid, align_corners=False),
        f"grid_sample on the {half[0]} level": lambda: F.grid_sample(level_half, grid, align_corners=False),
        # In place, as the shipped kernel blends (a fresh output would add its page faults).
        "lerp of two samples (the blend, in place)": lambda: blend.lerp_(first, weight),
        # What a pass over the input costs: reading it (a sum) against writing a fresh copy.
        "read the input once (sum)": lambda: images.sum(),
        "write a fresh full-size copy (images * 2)": lambda: images * 2,
    }
    table, medians = _pieces_table(pieces, repeats, f"piece ({batch}, 3, {in_size}, {in_size}) -> {out}")
    base = medians["plain warp (antialias=False)"]
    names = list(medians)
    levelless = medians[names[1]] + medians[names[7]] + medians[names[8]]
    bound = levelless + medians[names[4]]
    rows = [
        table,
        f"| input sample + {half[0]}-level sample + lerp (a pyramid whose level is free) "
        f"| {levelless:.0f} | {levelless / base:.2f} | |",
        f"| lower bound: the same + the box level | {bound:.0f} | {bound / base:.2f} | |",
    ]
    return "\n".join(rows)


def tried_table(repeats: int = 7, batch: int = 64, in_size: int = 448, out: int = 224) -> str:
    """Ways around the floor that were measured and not kept, timed against the same plain warp.

    * the shipped kernel compiled with ``torch.compile`` (inductor's CPU code), and the plain warp
      compiled too;
    * the first level, or the whole pyramid, run a few samples at a time (smaller buffers that the
      allocator reuses instead of fresh pages: a loop over the batch in chunks);
    * for comparison, the compiled CPU kernel that ships;
    * the antialiased resize on ``uint8`` images (its vectorised integer path; no gradient, and
      not the float images the warp takes), for scale.
    """
    from diffaug.functional.antialias import antialiased_sample

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, in_size, in_size, generator=generator)
    theta = rrc_thetas(batch, in_size, generator)
    size = (out, out)
    third = (round(in_size / 2**0.5),) * 2
    compiled_aa = torch.compile(lambda x, t: antialiased_sample(x, t, size), fullgraph=True)
    compiled_plain = torch.compile(lambda x, t: F.grid_sample(x, daf.sampling_grid(t, size), align_corners=False), fullgraph=True)
    as_bytes = (images * 255).to(torch.uint8)

    def level_in_chunks(chunk: int) -> Callable[[], object]:
        def build() -> Tensor:
            level = images.new_empty(batch, 3, *third)
            for start in range(0, batch, chunk):
                part = images[start : start + chunk]
                level[start : start + chunk] = F.interpolate(part, size=third, mode="bilinear", antialias=True)
            return level

        return build

    def warp_in_chunks(chunk: int) -> Callable[[], object]:
        """The pure PyTorch pyramid run ``chunk`` samples at a time into one output (same values)."""

        def run() -> Tensor:
            result = images.new_empty(batch, 3, *size)
            with _cpu_kernels.disabled():
                for start in range(0, batch, chunk):
                    part = slice(start, start + chunk)
                    result[part] = antialiased_sample(images[part], theta[part], size)
            return result

        return run

    def pyramid() -> Tensor:
        with _cpu_kernels.disabled():
            return daf.warp(images, theta, size, antialias=True)

    pieces: dict[str, Callable[[], object]] = {
        "plain warp (antialias=False)": lambda: daf.warp(images, theta, size),
        "antialiased warp, pure PyTorch pyramid": pyramid,
        "antialiased warp, pyramid 8 samples at a time": warp_in_chunks(8),
        "antialiased warp, compiled CPU kernel (shipped)": lambda: daf.warp(images, theta, size, antialias=True),
        "plain warp, torch.compile": lambda: compiled_plain(images, theta),
        "antialiased warp, torch.compile": lambda: compiled_aa(images, theta),
        f"level {third[0]}, whole batch (the pyramid's)": lambda: F.interpolate(
            images, size=third, mode="bilinear", antialias=True
        ),
        f"level {third[0]}, 8 samples at a time": level_in_chunks(8),
        f"level {third[0]}, 16 samples at a time": level_in_chunks(16),
        f"level {third[0]} of uint8 images (no gradient)": lambda: F.interpolate(
            as_bytes, size=third, mode="bilinear", antialias=True
        ),
    }
    return _pieces_table(pieces, repeats, f"tried ({batch}, 3, {in_size}, {in_size}) -> {out}")[0]


def memory_table(batch: int = 64, in_size: int = 448, out: int = 224) -> str:
    """Peak resident memory of a fresh process running one forward + backward per method."""
    rows = [f"| method ({batch}, 3, {in_size}, {in_size}) -> {out} | peak RSS fwd+bwd (MB) | over plain (MB) |", "|---|---|---|"]
    peaks = {}
    for name in ("plain", *TIMED):
        command = [sys.executable, __file__, "--peak", name, "--batch", str(batch), "--in-size", str(in_size), "--out", str(out)]
        peaks[name] = float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())
    rows += [f"| {name} | {mb:.0f} | {mb - peaks['plain']:.0f} |" for name, mb in peaks.items()]
    return "\n".join(rows)


def _peak(name: str, batch: int, in_size: int, out: int) -> float:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, in_size, in_size, generator=generator, requires_grad=True)
    theta = rrc_thetas(batch, in_size, generator).requires_grad_()
    method = plain if name == "plain" else CANDIDATES[name]
    method(images, theta, (out, out)).sum().backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ("aliasing", "fidelity", "sweep", "near3", "topband", "cost", "floor", "tried", "memory")
    parser.add_argument("--only", choices=sections, action="append")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--peak", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--in-size", type=int, default=448)
    parser.add_argument("--out", type=int, default=224)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peak:
        print(_peak(args.peak, args.batch, args.in_size, args.out))
        return
    only = args.only or list(sections)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    if "aliasing" in only:
        print("Residual std around the ideal flat 0.5 (whole 512 x 512 image shrunk):\n")
        print(aliasing_table() + "\n")
    if "fidelity" in only:
        print("PSNR (dB) against Pillow's Lanczos resize of the integer crop, astronaut -> 56 x 56:\n")
        print(fidelity_table() + "\n")
    if "sweep" in only:
        print("Level maps over fractional shrinks (whole 512 x 512 image; photo crops -> 56 x 56):\n")
        print(sweep_table() + "\n")
    if "near3" in only:
        print("PSNR (dB) against Pillow's Lanczos around 3x and 5x (astronaut -> 56 x 56):\n")
        print(near_three_table() + "\n")
    if "topband" in only:
        print("Top band (every frequency from the new Nyquist to 0.5 c/px; worst residual / (2 x resize + 0.005),")
        print("at most 1 passes) against the photo's worst PSNR gap to torchvision (1.6x-8x):\n")
        print(top_band_table() + "\n")
    if "cost" in only:
        print(cost_table(args.repeats, args.batch, args.in_size, args.out) + "\n")
        print(cost_table(max(3, args.repeats // 2), args.batch, args.in_size, args.out, backward=True) + "\n")
    if "floor" in only:
        print("Where a pyramid's time goes (pieces timed alone, interleaved):\n")
        print(floor_table(args.repeats, args.batch, args.in_size, args.out) + "\n")
    if "tried" in only:
        print("Measured and not kept (interleaved with the plain warp):\n")
        print(tried_table(args.repeats, args.batch, args.in_size, args.out) + "\n")
    if "memory" in only:
        print(memory_table(args.batch, args.in_size, args.out) + "\n")


if __name__ == "__main__":
    main()
