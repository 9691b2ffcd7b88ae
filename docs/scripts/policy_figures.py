"""The figures of the policies page: docs/images/policy_ops.png and docs/images/policy_batch.png.

``policy_ops.png``: every policy operation (rows) at several magnitudes of TrivialAugmentWide's
wide table (columns: bins 0, 10, 20 and 30 of 31, negative sign where the op is signed, then
positive), all drawn in ONE call of ``TrivialAugmentWide.transform`` on a batch of copies of
scikit-image's astronaut photo. ``policy_batch.png``: one call of each policy on eight copies of
the photo: every sample its own operations, written above it. Run:
``python docs/scripts/policy_figures.py`` (a few seconds on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from skimage import data

import diffaug as da
from diffaug.transforms.policies import OPERATIONS, PolicyParams, magnitude_table

IMAGES = Path(__file__).resolve().parents[1] / "images"
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"}


def photo(size: int = 112) -> torch.Tensor:
    """The astronaut's face, ``(3, size, size)`` uint8."""
    array = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float()
    face = array[:, 20:270, 120:370]
    return torch.nn.functional.interpolate(face[None], size=(size, size), mode="area")[0].round().to(torch.uint8)


def operation_grid(image: torch.Tensor) -> None:
    names = OPERATIONS[1:]
    columns = [(-1.0, 30), (-1.0, 20), (-1.0, 10), (1.0, 0), (1.0, 10), (1.0, 20), (1.0, 30)]
    table = magnitude_table("wide", 31, *image.shape[-2:])
    ops, magnitudes, labels = [], [], []
    for name in names:
        for sign, index in columns:
            value = float(table[OPERATIONS.index(name), index])
            value = value * sign if name in SIGNED else value
            ops.append(OPERATIONS.index(name))
            magnitudes.append(value)
            labels.append(f"{value:+.3g}" if name in SIGNED else f"{value:.3g}" if name in ("Posterize", "Solarize") else "")
    op = torch.tensor(ops)[:, None]
    params = PolicyParams(op=op, magnitude=torch.tensor(magnitudes)[:, None])
    # One call for every (operation, magnitude): each sample of the batch its own.
    out = da.TrivialAugmentWide(grouped=False).transform(image.expand(len(ops), -1, -1, -1), params)
    fig, axes = plt.subplots(len(names), len(columns), figsize=(1.45 * len(columns), 1.5 * len(names)))
    for row, name in enumerate(names):
        for column in range(len(columns)):
            index = row * len(columns) + column
            ax = axes[row, column]
            ax.imshow(out[index].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(labels[index], fontsize=7)
            if column == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle("TrivialAugmentWide's operations at bins 30, 20, 10 (negative), 0, 10, 20, 30 of 31", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(IMAGES / "policy_ops.png", dpi=64)
    plt.close(fig)


def policy_batch(image: torch.Tensor) -> None:
    batch = image.expand(8, -1, -1, -1)
    policies = [
        ("TrivialAugmentWide()", da.TrivialAugmentWide()),
        ("RandAugment()", da.RandAugment()),
        ("AutoAugment(IMAGENET)", da.AutoAugment()),
        ("AugMix()", da.AugMix()),
    ]
    fig, axes = plt.subplots(len(policies), 8, figsize=(13, 1.9 * len(policies)))
    for row, (title, policy) in enumerate(policies):
        params = policy.make_params(batch, generator=torch.Generator().manual_seed(row))
        out = policy.transform(batch, params)
        for column in range(8):
            ax = axes[row, column]
            ax.imshow(out[column].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            steps = [OPERATIONS[int(o)] for o in params.op[column] if int(o) != 0] or ["Identity"]
            text = ", ".join(steps) if len(steps) <= 2 else f"{len(steps)} ops"
            ax.set_title(text, fontsize=7)
            if column == 0:
                ax.set_ylabel(title, fontsize=8)
    fig.suptitle("One call per row: every sample draws its own operations and magnitudes", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "policy_batch.png", dpi=72)
    plt.close(fig)


def main() -> None:
    image = photo()
    operation_grid(image)
    policy_batch(image)


if __name__ == "__main__":
    main()
