"""Figures of the erasing and mixing page: docs/images/mixing_*.png.

Run: ``python docs/scripts/mixing_figures.py`` (a few seconds on a CPU). The photos are
scikit-image's (shipped inside its wheel, read offline); everything else is diffaug's own code.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data
from torch import Tensor

import diffaug as da
from diffaug import functional as daf

IMAGES = Path(__file__).resolve().parents[1] / "images"
# Display name -> scikit-image loader; each photo is one class.
LOADERS = {
    "astronaut": "astronaut",
    "coffee": "coffee",
    "cat": "chelsea",
    "rocket": "rocket",
    "galaxies": "hubble_deep_field",
    "cells": "immunohistochemistry",
}
NAMES = list(LOADERS)
SIZE = 128


def photos() -> Tensor:
    """``(6, 3, 128, 128)`` float images in [0, 1], one per class."""
    batch = []
    for name in NAMES:
        array = getattr(data, LOADERS[name])()
        image = torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1).float() / 255
        side = min(image.shape[-2:])
        top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
        square = image[:, top : top + side, left : left + side].unsqueeze(0)
        batch.append(F.interpolate(square, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(batch)


def label_text(row: Tensor) -> str:
    """The two largest weights of a soft label as 'name weight'."""
    weights, classes = row.topk(2)
    parts = [f"{NAMES[int(c)]} {float(w):.2f}" for w, c in zip(weights, classes, strict=True) if float(w) > 0.005]
    return "\n".join(parts)


def show(ax: plt.Axes, image: Tensor, title: str) -> None:
    ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def examples_figure() -> None:
    images = photos()
    labels = torch.arange(len(NAMES))
    generator = torch.Generator().manual_seed(4)
    erasing = da.RandomErasing(p=1.0, value=(0.485, 0.456, 0.406))  # the ImageNet mean per channel
    mixup, cutmix = da.MixUp(num_classes=len(NAMES)), da.CutMix(num_classes=len(NAMES))
    erased = erasing.transform(images, erasing.make_params(images, generator=generator))
    mix_params, cut_params = mixup.make_params(images, generator=generator), cutmix.make_params(images, generator=generator)
    rows = [
        ("input", images, [NAMES[k] for k in labels]),
        ("RandomErasing\n(value: mean)", erased, [NAMES[k] for k in labels]),
        ("MixUp", mixup.transform(images, mix_params), [label_text(r) for r in mixup.transform_labels(labels, mix_params)]),
        ("CutMix", cutmix.transform(images, cut_params), [label_text(r) for r in cutmix.transform_labels(labels, cut_params)]),
    ]
    fig, axes = plt.subplots(len(rows), len(NAMES), figsize=(1.9 * len(NAMES), 2.25 * len(rows)))
    for row, (name, batch, titles) in enumerate(rows):
        for col in range(len(NAMES)):
            show(axes[row, col], batch[col], titles[col])
        axes[row, 0].text(-0.12, 0.5, name, transform=axes[row, 0].transAxes, rotation=90, va="center", ha="right", fontsize=10)
    fig.suptitle("One call per row: every sample draws its own box, lambda and partner (titles: the soft labels)", fontsize=10)
    fig.tight_layout()
    path = IMAGES / "mixing_examples.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    # Photos make a large PNG: a 256-colour palette keeps the page light and the content readable.
    Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def soft_edge_figure() -> None:
    image = torch.full((1, 1, 8, 8), 0.9)
    boxes = [(2.0, 2.0, 6.0, 5.0), (1.5, 2.25, 5.75, 5.5)]
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    for ax, box in zip(axes, boxes, strict=True):
        out = daf.erase(image, torch.tensor([box]), 0.0)[0, 0]
        ax.imshow(out.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest", extent=(0, 8, 8, 0))
        x1, y1, x2, y2 = box
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="tab:red", linewidth=1.5))
        ax.set_title(f"box {box}", fontsize=9)
        ax.set_xticks(range(9))
        ax.set_yticks(range(9))
        ax.grid(color="tab:blue", linewidth=0.4)
    fig.suptitle("Each pixel is erased by the part of its square inside the box: exact for integer corners", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "mixing_soft_edge.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    examples_figure()
    soft_edge_figure()
