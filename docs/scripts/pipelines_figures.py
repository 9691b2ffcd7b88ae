"""Draw the pictures of docs/pipelines.md and docs/targets.md and print the numbers quoted there.

Every image is the package's own test card (``diffaug._testcard.test_card``) sent through
diffaug; the script only lays the results out. Run: ``python docs/scripts/pipelines_figures.py``.
It writes ``docs/images/pipelines_*.png`` and ``docs/images/targets_*.png`` and prints:

* fusion sharpness: a chain of four warps that ends at the identity, fused (one resample) and
  step by step (four), on uniform noise: mean absolute error against the input and the share
  of high-frequency energy kept;
* fusion equivalence: fused against step by step on a band-limited image;
* inverse round trip: ``pipeline.inverse(pipeline(x))`` against ``x`` on a band-limited image.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Polygon, Rectangle

import diffaug as da
from diffaug._testcard import test_card

OUT = Path(__file__).resolve().parents[1] / "images"


def step_by_step(pipe: da.Compose, images: torch.Tensor, params: da.ComposeParams) -> torch.Tensor:
    """The unfused reference: every step resamples its own input."""
    out = images
    for step, step_params in zip(pipe, params.steps, strict=True):
        out = step.transform(out, step_params) if step_params is not None else step(out)
    return out


def identity_chain() -> da.Compose:
    return da.Compose(
        [
            da.RandomRotation((30, 30), interpolation="bilinear"),
            da.RandomAffine(0, scale=(1.3, 1.3), interpolation="bilinear"),
            da.RandomAffine(0, scale=(1 / 1.3, 1 / 1.3), interpolation="bilinear"),
            da.RandomRotation((-30, -30), interpolation="bilinear"),
        ]
    )


def band_limited(height: int, width: int) -> torch.Tensor:
    y = (torch.arange(height, dtype=torch.float64) + 0.5)[:, None] / height
    x = (torch.arange(width, dtype=torch.float64) + 0.5)[None, :] / width
    planes = [
        torch.sin(2 * math.pi * (1.1 * x + 0.6 * y) + c) + torch.cos(2 * math.pi * (0.5 * x - 0.9 * y) + 2 * c) for c in range(3)
    ]
    return torch.stack(planes)


def high_frequency_share(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Energy above 0.25 cycles/pixel, relative to the reference's."""

    def energy(x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.fft2(x - x.mean((-2, -1), keepdim=True)).abs().square()
        fy = torch.fft.fftfreq(x.shape[-2]).abs()[:, None]
        fx = torch.fft.fftfreq(x.shape[-1]).abs()[None, :]
        return spectrum[..., (fy > 0.25) | (fx > 0.25)].sum()

    return float(energy(images) / energy(reference))


def measure() -> dict[str, float]:
    numbers: dict[str, float] = {}
    torch.manual_seed(0)
    noise = torch.rand(8, 3, 128, 128, dtype=torch.float64)
    pipe = identity_chain()
    params = pipe.make_params(noise)
    fused, sequential = pipe.transform(noise, params), step_by_step(pipe, noise, params)
    centre = (Ellipsis, slice(32, 96), slice(32, 96))
    numbers["noise: fused mean abs error"] = float((fused - noise)[centre].abs().mean())
    numbers["noise: step-by-step mean abs error"] = float((sequential - noise)[centre].abs().mean())
    numbers["noise: fused high-frequency energy kept"] = high_frequency_share(fused[centre], noise[centre])
    numbers["noise: step-by-step high-frequency energy kept"] = high_frequency_share(sequential[centre], noise[centre])

    smooth = band_limited(96, 128)[None].expand(8, -1, -1, -1)
    pipe = da.Compose(
        [
            da.RandomAffine(25, (0.05, 0.05), (0.9, 1.2), 8, "bilinear", antialias=False),
            da.RandomHorizontalFlip(),
            da.RandomRotation(20, interpolation="bilinear"),
            da.Resize((80, 104), antialias=False),
            da.CenterCrop((64, 80)),
        ]
    )
    params = pipe.make_params(smooth, generator=torch.Generator().manual_seed(0))
    fused, sequential = pipe.transform(smooth, params), step_by_step(pipe, smooth, params)
    inside = step_by_step(pipe, torch.ones_like(smooth), params) > 1 - 1e-9
    numbers["band-limited: fused vs step-by-step max abs difference"] = float((fused - sequential)[inside].abs().max())
    numbers["band-limited: fused vs step-by-step mean abs difference"] = float((fused - sequential)[inside].abs().mean())

    pipe = da.Compose(
        [
            da.RandomAffine(30, (0.05, 0.05), (1.0, 1.3), 5, "bilinear", antialias=False),
            da.RandomHorizontalFlip(),
            da.RandomResizedCrop((80, 96), scale=(0.6, 1.0), antialias=False),
        ]
    )
    params = pipe.make_params(smooth, generator=torch.Generator().manual_seed(0))
    back = pipe.inverse(pipe.transform(smooth, params), params)
    inside = pipe.inverse(pipe.transform(torch.ones_like(smooth), params), params) > 1 - 1e-9
    numbers["round trip: band-limited mean abs error"] = float((back - smooth)[inside].abs().mean())
    numbers["round trip: band-limited max abs error"] = float((back - smooth)[inside].abs().max())
    card = test_card(96, 128).double()[None].expand(8, -1, -1, -1)
    back = pipe.inverse(pipe.transform(card, params), params)
    numbers["round trip: test card mean abs error"] = float((back - card)[inside].abs().mean())
    return numbers


def save(fig: plt.Figure, name: str, tight: bool = True) -> Path:
    """Write ``fig`` to ``docs/images/name`` and close it."""
    if tight:
        fig.tight_layout()
    path = OUT / name
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def show(ax: plt.Axes, image: torch.Tensor, title: str) -> None:
    ax.imshow(image.detach().clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def figure_fusion() -> Path:
    card = test_card(192, 256)[None]
    pipe = identity_chain()
    params = pipe.make_params(card)
    fused, sequential = pipe.transform(card, params)[0], step_by_step(pipe, card, params)[0]
    window = (slice(None), slice(48, 144), slice(112, 240))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    show(axes[0], card[0][window], "input (zone plate and circles)")
    show(axes[1], fused[window], "fused: one warp for four steps")
    show(axes[2], sequential[window], "step by step: four warps")
    fig.suptitle("rotate 30°, zoom 1.3, zoom 1/1.3, rotate -30°: a chain that ends at the identity", fontsize=10)
    return save(fig, "pipelines_fusion.png")


def figure_samples() -> Path:
    card = test_card(192, 256)[None].expand(8, -1, -1, -1)
    pipe = da.Compose(
        [
            da.RandomResizedCrop((96, 128), scale=(0.3, 1.0)),
            da.RandomHorizontalFlip(),
            da.RandomAffine(degrees=15, interpolation="bilinear"),
        ]
    )
    out = pipe(card, generator=torch.Generator().manual_seed(4))
    fig, axes = plt.subplots(2, 4, figsize=(12, 4.8))
    for i, ax in enumerate(axes.flat):
        show(ax, out[i], f"sample {i}")
    fig.suptitle("Compose([RandomResizedCrop, RandomHorizontalFlip, RandomAffine(degrees=15)]): one warp per sample", fontsize=10)
    return save(fig, "pipelines_samples.png")


def figure_multicrop() -> Path:
    card = test_card(192, 256)[None]
    mc = da.MultiCrop.dino(global_size=96, local_size=48, n_local=4)
    views, _ = mc(card, generator=torch.Generator().manual_seed(2))
    # Same scale for every view: a global view spans 2x2 cells, a local one a single cell.
    fig = plt.figure(figsize=(12, 4.6))
    grid = fig.add_gridspec(2, 6)
    for v in range(2):
        show(fig.add_subplot(grid[:, 2 * v : 2 * v + 2]), views["global"][v, 0], f"global {v} (96 px)")
    for v in range(4):
        show(fig.add_subplot(grid[v // 2, 4 + v % 2]), views["local"][v, 0], f"local {v} (48 px)")
    fig.suptitle("MultiCrop.dino: 2 global + 4 local views, one warp per group", fontsize=10)
    return save(fig, "pipelines_multicrop.png", tight=False)


def figure_targets() -> Path:
    card = test_card(192, 256)[None]
    boxes = torch.tensor([[[20.0, 30.0, 110.0, 90.0], [150.0, 60.0, 230.0, 140.0]]])
    keypoints = torch.tensor([[[192.0, 96.0], [60.0, 150.0], [240.0, 20.0]]])
    pipe = da.Compose(
        [
            da.RandomAffine(degrees=(25, 25), scale=(0.9, 0.9), translate=(0.05, 0.05), interpolation="bilinear"),
            da.RandomHorizontalFlip(p=1.0),
        ]
    )
    params = pipe.make_params(card, generator=torch.Generator().manual_seed(1))
    out = pipe.transform(card, params)
    moved = pipe.transform_targets(params, boxes=boxes, keypoints=keypoints)
    # The exact image of each box: its four corners through the same matrix.
    x1, y1, x2, y2 = boxes.unbind(-1)
    corners = torch.stack([torch.stack(c, -1) for c in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], -2)
    quads = da.functional.transform_points(corners.flatten(1, 2), params.theta, params.in_size, params.size).view(1, 2, 4, 2)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    show(axes[0], card[0], "input with boxes and keypoints")
    show(axes[1], out[0], "rotated 25°, zoomed 0.9, flipped")
    for b in range(2):
        bx = boxes[0, b].tolist()
        axes[0].add_patch(Rectangle(bx[:2], bx[2] - bx[0], bx[3] - bx[1], fill=False, ec="tab:red", lw=2))
        mx = moved["boxes"][0, b].tolist()
        axes[1].add_patch(Rectangle(mx[:2], mx[2] - mx[0], mx[3] - mx[1], fill=False, ec="tab:red", lw=2))
        axes[1].add_patch(Polygon(quads[0, b].numpy(), closed=True, fill=False, ec="tab:orange", lw=1.2, ls="--"))
    axes[0].scatter(keypoints[0, :, 0], keypoints[0, :, 1], s=40, c="tab:cyan", edgecolors="k", zorder=3)
    visible = moved["keypoints_visible"][0]
    kp = moved["keypoints"][0][visible]
    axes[1].scatter(kp[:, 0], kp[:, 1], s=40, c="tab:cyan", edgecolors="k", zorder=3)
    axes[1].text(2, 188, "red: enclosing box (clipped); dashed: the box's exact image", fontsize=8, color="w")
    return save(fig, "targets_boxes.png")


def figure_inverse() -> Path:
    card = test_card(192, 256)[None]
    pipe = da.Compose(
        [
            da.RandomAffine(degrees=(20, 20), scale=(1.2, 1.2), interpolation="bilinear"),
            da.RandomResizedCrop((96, 128), scale=(0.5, 0.5)),
        ]
    )
    params = pipe.make_params(card, generator=torch.Generator().manual_seed(3))
    out = pipe.transform(card, params)
    back = pipe.inverse(out, params)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    show(axes[0], card[0], "input")
    show(axes[1], out[0], "pipeline output")
    show(axes[2], back[0], "pipeline.inverse(output, params)")
    return save(fig, "targets_inverse.png")


def figure_padding() -> Path:
    """What shows outside the image, for each padding mode, and the expanded rotation canvas."""
    card = test_card(96, 128)[None]
    shrink = da.RandomAffine(degrees=(25, 25), scale=(0.55, 0.55), interpolation="bilinear")
    params = shrink.make_params(card)
    settings = [
        ("zeros", {}),
        ("zeros, fill=(0.9, 0.6, 0.2)", {"fill": (0.9, 0.6, 0.2)}),
        ("border", {"padding_mode": "border"}),
        ("reflection (symmetric)", {"padding_mode": "reflection"}),
        ("reflect", {"padding_mode": "reflect"}),
    ]
    rotate = da.RandomRotation(degrees=(-60, 60), expand=True, fill=0.5, interpolation="bilinear")
    batch = card.expand(5, -1, -1, -1)
    rotation = rotate.make_params(batch, generator=torch.Generator().manual_seed(1))
    turned = rotate.transform(batch, rotation)
    fig, axes = plt.subplots(2, 5, figsize=(14, 5.6), gridspec_kw={"height_ratios": [96, 150]})
    for ax, (title, kwargs) in zip(axes[0], settings, strict=True):
        show(ax, da.functional.warp(card, params.theta, (96, 128), **kwargs)[0], title)
    for i, ax in enumerate(axes[1]):
        show(ax, turned[i], f"{float(rotation.angle[i]):.0f} deg on {turned.shape[-2]}x{turned.shape[-1]}")
    fig.suptitle(
        "Top: RandomAffine(degrees=25, scale=0.55) with each padding mode. "
        "Bottom: RandomRotation(degrees=(-60, 60), expand=True, fill=0.5): one canvas for the whole range",
        fontsize=10,
    )
    return save(fig, "pipelines_padding.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for path in (figure_fusion(), figure_samples(), figure_multicrop(), figure_padding(), figure_targets(), figure_inverse()):
        print(f"wrote {path.relative_to(OUT.parents[1])}")
    for name, value in measure().items():
        print(f"{name}: {value:.3g}")


if __name__ == "__main__":
    main()
