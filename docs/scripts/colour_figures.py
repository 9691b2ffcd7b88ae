"""Colour page: exact vs fused ColorJitter measured on photos, and a figure of the colour transforms.

Run: ``python docs/scripts/colour_figures.py`` (about a minute on a CPU). Prints the Markdown
tables quoted in ``docs/colour.md`` and writes ``docs/images/colour_transforms.png`` and
``docs/images/colour_fused.png``. Photos: scikit-image's bundled samples (astronaut, coffee,
chelsea, rocket), resized to 256 on the short side.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from skimage import data as samples
from torch import Tensor

import diffaug as da

DOCS = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DRAWS = 64  # per photo and setting


def photo(name: str, short: int = 256) -> Tensor:
    """A scikit-image sample as ``(3, H, W)`` float64 in ``[0, 1]``."""
    image = torch.from_numpy(getattr(samples, name)()).permute(2, 0, 1).double() / 255
    scale = short / min(image.shape[-2:])
    size = (round(image.shape[-2] * scale), round(image.shape[-1] * scale))
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def exact_and_fused(jitter: da.ColorJitter, images: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    """The same draws (factors and order) through the exact and the fused mode."""
    params = jitter.make_params(images, torch.Generator().manual_seed(seed))
    exact = jitter.transform(images, params)
    jitter.fused = True
    try:
        fused = jitter.transform(images, jitter.make_params(images, torch.Generator().manual_seed(seed)))
    finally:
        jitter.fused = False
    return exact, fused


SETTINGS = {
    "ColorJitter(0.4, 0.4, 0.4, 0.1)": lambda: da.ColorJitter(0.4, 0.4, 0.4, 0.1),
    "ColorJitter(0.4, 0.4, 0.4)": lambda: da.ColorJitter(0.4, 0.4, 0.4),
    "ColorJitter(0.8, 0.8, 0.8, 0.2)": lambda: da.ColorJitter(0.8, 0.8, 0.8, 0.2),
    "ColorJitter(hue=0.1)": lambda: da.ColorJitter(hue=0.1),
    "ColorJitter(hue=0.5)": lambda: da.ColorJitter(hue=0.5),
    "RandomPhotometricDistort()": lambda: da.RandomPhotometricDistort(p=1.0),
}


def differences() -> None:
    """Mean and 99th-percentile |exact - fused| in 8-bit levels, over photos and draws."""
    print("| setting | mean abs. difference (levels of 255) | 99th percentile | pixels off by > 10 levels |")
    print("| --- | ---: | ---: | ---: |")
    for label, build in SETTINGS.items():
        errors = []
        for index, name in enumerate(PHOTOS):
            images = photo(name)[None].expand(DRAWS, -1, -1, -1)
            jitter = build()
            exact, fused = (
                exact_and_fused(jitter, images, seed=index) if isinstance(jitter, da.ColorJitter) else _distort(images, index)
            )
            errors.append(((exact - fused).abs() * 255).flatten())
        error = torch.cat(errors).float()
        sample = error[torch.randperm(error.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]]
        print(f"| `{label}` | {error.mean():.2f} | {sample.quantile(0.99):.1f} | {100 * (error > 10).double().mean():.2f} % |")


def _distort(images: Tensor, seed: int) -> tuple[Tensor, Tensor]:
    exact = da.RandomPhotometricDistort(p=1.0)
    fused = da.RandomPhotometricDistort(p=1.0, fused=True)
    params = exact.make_params(images, torch.Generator().manual_seed(seed))
    fused_params = fused.make_params(images, torch.Generator().manual_seed(seed))
    return exact.transform(images, params), fused.transform(images, fused_params)


def figure_transforms() -> None:
    image = photo("astronaut", 128)[None].expand(6, -1, -1, -1).float()
    rows = {
        "ColorJitter(0.4, 0.4, 0.4, 0.1)": da.ColorJitter(0.4, 0.4, 0.4, 0.1),
        "... fused=True, same draws": None,
        "RandomPhotometricDistort()": da.RandomPhotometricDistort(),
        "RandomChannelPermutation()": da.RandomChannelPermutation(),
        "RandomGrayscale(p=0.5)": da.RandomGrayscale(p=0.5),
        "RandomInvert()": da.RandomInvert(),
    }
    outputs = {}
    for label, module in rows.items():
        if module is None:
            continue
        if isinstance(module, da.ColorJitter):
            exact, fused = exact_and_fused(module, image, seed=0)
            outputs[label], outputs["... fused=True, same draws"] = exact, fused
        else:
            outputs[label] = module.transform(image, module.make_params(image, torch.Generator().manual_seed(0)))
    fig, axes = plt.subplots(len(rows), 6, figsize=(9, 1.6 * len(rows)))
    for row, label in enumerate(rows):
        for column in range(6):
            axes[row, column].imshow(outputs[label][column].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(DOCS / "images" / "colour_transforms.png", dpi=90)
    plt.close(fig)


def figure_fused() -> None:
    """Exact vs fused for one strong draw, and the difference."""
    image = photo("coffee", 192)[None].expand(4, -1, -1, -1)
    exact, fused = exact_and_fused(da.ColorJitter(0.8, 0.8, 0.8, 0.2), image, seed=3)
    fig, axes = plt.subplots(3, 4, figsize=(9, 5.4))
    for column in range(4):
        for row, (label, picture) in enumerate(
            [("exact", exact[column]), ("fused", fused[column]), ("|difference| x 4", (exact[column] - fused[column]).abs() * 4)]
        ):
            axes[row, column].imshow(picture.permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if column == 0:
                axes[row, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "images" / "colour_fused.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    torch.set_num_threads(1)
    differences()
    figure_transforms()
    figure_fused()
