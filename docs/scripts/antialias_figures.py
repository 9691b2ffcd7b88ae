"""Figures of the antialiasing page: docs/images/antialias_*.png.

Run: ``python docs/scripts/antialias_figures.py`` (about half a minute on a CPU). Everything is
computed with diffaug's own code, torch and torchvision; the photo is scikit-image's astronaut
(shipped inside its wheel, read offline).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from diffaug import functional as daf
from diffaug.functional.antialias import level_weights

IMAGES = Path(__file__).resolve().parents[1] / "images"


def zone_plate(n: int) -> Tensor:
    """Classic zone plate: local frequency grows linearly from 0 at the centre to 0.5 cycles/pixel at the edge."""
    y, x = torch.meshgrid(torch.arange(n) + 0.5 - n / 2, torch.arange(n) + 0.5 - n / 2, indexing="ij")
    return (0.5 + 0.5 * torch.cos(math.pi * (x * x + y * y) / n)).double().view(1, 1, n, n)


def sinusoid(n: int, frequency: float, phase: float) -> Tensor:
    x = torch.arange(n) + 0.5
    return (0.5 + 0.5 * torch.sin(2 * math.pi * frequency * x + phase)).double().view(1, 1, 1, n).expand(1, 1, n, n)


def show(ax: plt.Axes, image: Tensor, title: str) -> None:
    array = image[0].clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def zone_plate_figure() -> None:
    n, out = 512, 128
    image = zone_plate(n)
    box = torch.tensor([[0.0, 0.0, float(n), float(n)]], dtype=torch.float64)
    panels = [
        (image, f"input {n} x {n}"),
        (daf.crop(image, box, out), "grid_sample (antialias=False)"),
        (daf.crop(image, box, out, antialias=True), "diffaug antialias=True"),
        (F.interpolate(image, size=(out, out), mode="bilinear", antialias=True), "F.interpolate(antialias=True)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, (picture, title) in zip(axes, panels, strict=True):
        show(ax, picture, title)
    fig.suptitle("Zone plate shrunk 4x: every ring past the centre third is above the output's Nyquist limit", fontsize=10)
    fig.tight_layout()
    fig.savefig(IMAGES / "antialias_zone_plate.png", dpi=110)
    plt.close(fig)


def photo_figure() -> None:
    from PIL import Image
    from skimage import data

    array = data.astronaut()
    image = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0).double() / 255.0
    out, side, left, top = 64, 192, 150, 40  # 3x: the references sample on input pixel centres there, the pyramid cannot
    box = torch.tensor([[left, top, left + side, top + side]], dtype=torch.float64)
    crop = image[..., top : top + side, left : left + side]
    lanczos = Image.fromarray(array).crop((left, top, left + side, top + side)).resize((out, out), Image.LANCZOS)
    panels = [
        (daf.crop(image, box, out), "grid_sample (antialias=False)"),
        (daf.crop(image, box, out, antialias=True), "diffaug antialias=True"),
        (TF.resize(crop, [out, out], antialias=True), "torchvision resize (antialias)"),
        (torch.from_numpy(__import__("numpy").asarray(lanczos).copy()).permute(2, 0, 1).unsqueeze(0) / 255.0, "Pillow Lanczos"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, (picture, title) in zip(axes, panels, strict=True):
        show(ax, picture, title)
    fig.suptitle(f"A {side} x {side} crop of a photo shrunk 3x to {out} x {out}", fontsize=10)
    fig.tight_layout()
    fig.savefig(IMAGES / "antialias_photo.png", dpi=110)
    plt.close(fig)


def curves_figure() -> None:
    """Residual of a 0.3 cycles/pixel sinusoid against the shrink factor, and the level weights."""
    n, out = 512, 32
    factors = torch.linspace(1.0, 8.0, 57)
    rows: dict[str, list[float]] = {"grid_sample": [], "diffaug antialias": [], "F.interpolate(antialias)": []}
    for factor in factors.tolist():
        side = out * factor
        values = {"grid_sample": 0.0, "diffaug antialias": 0.0, "F.interpolate(antialias)": 0.0}
        for phase in (0.0, 1.0, 2.0, 3.0):
            image = sinusoid(n, 0.3, phase)
            box = torch.tensor([[4.0, 4.0, 4.0 + side, 4.0 + side]], dtype=torch.float64)
            s = round(side)
            window = image[..., 4 : 4 + s, 4 : 4 + s]
            picks = {
                "grid_sample": daf.crop(image, box, out),
                "diffaug antialias": daf.crop(image, box, out, antialias=True),
                "F.interpolate(antialias)": F.interpolate(window, size=(out, out), mode="bilinear", antialias=True),
            }
            for name, result in picks.items():
                values[name] += (result[..., 1:-1, 1:-1] - 0.5).square().mean().item() / 4
        for name in rows:
            rows[name].append(math.sqrt(values[name]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, values in rows.items():
        left.semilogy(factors, values, label=name)
    left.set_xlabel("shrink factor (input pixels per output pixel)")
    left.set_ylabel("residual std (ideal: 0)")
    left.set_title("0.3 cycles/pixel sinusoid, mean over 4 phases", fontsize=10)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    scale = torch.linspace(0.5, 8.0, 400, dtype=torch.float64)
    weights = level_weights(scale, 5)
    for j in range(weights.shape[-1]):
        right.plot(scale, weights[:, j], label=f"level {j} (1/{2 ** (j / 2):.2f})")
    right.set_xlabel("shrink factor s")
    right.set_ylabel("weight")
    right.set_title("blend weights of the half-octave levels", fontsize=10)
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(IMAGES / "antialias_curves.png", dpi=110)
    plt.close(fig)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    zone_plate_figure()
    photo_figure()
    curves_figure()


if __name__ == "__main__":
    main()
