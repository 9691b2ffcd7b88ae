"""The figure of the pixel operations page: docs/images/pixel_ops.png.

Top row: each pixel transform, with fixed values (p=1), on scikit-image's astronaut photo (it ships
with the package, offline). Bottom row: one call of ``GaussianBlur(23, sigma=(0.1, 4.0))`` and one
of ``GaussianNoise(sigma=(0.0, 0.2))`` on a batch of copies of the photo: every sample gets its own
sigma, written above it. Run: ``python docs/scripts/pixel_figures.py`` (a few seconds on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from skimage import data

import diffaug as da

IMAGES = Path(__file__).resolve().parents[1] / "images"


def photo(size: int = 128) -> torch.Tensor:
    """The astronaut's face, ``(3, size, size)`` in ``[0, 1]``."""
    array = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255.0
    face = array[:, 20:270, 120:370]
    return torch.nn.functional.interpolate(face[None], size=(size, size), mode="area")[0]


def main() -> None:
    image = photo()
    dull = image * 0.5 + 0.2  # a low-contrast copy, for autocontrast and equalize to work on
    top = [
        ("input", image),
        ("GaussianBlur(23, sigma=3.0)", da.GaussianBlur(23, sigma=3.0)(image)),
        ("GaussianNoise(sigma=0.1)", da.GaussianNoise(sigma=0.1)(image)),
        ("RandomPosterize(2, p=1)", da.RandomPosterize(2, p=1.0)(image)),
        ("RandomSolarize(0.5, p=1)", da.RandomSolarize(0.5, p=1.0)(image)),
        ("RandomAdjustSharpness(8, p=1)", da.RandomAdjustSharpness(8.0, p=1.0)(image)),
        ("low contrast input", dull),
        ("RandomAutocontrast(p=1)", da.RandomAutocontrast(p=1.0)(dull)),
        ("RandomEqualize(p=1)", da.RandomEqualize(p=1.0)(dull)),
    ]
    generator = torch.Generator().manual_seed(3)
    batch = image.expand(4, -1, -1, -1)
    blur = da.GaussianBlur(23, sigma=(0.1, 4.0))
    blur_params = blur.make_params(batch, generator=generator)
    noise = da.GaussianNoise(sigma=(0.0, 0.2))
    noise_params = noise.make_params(batch, generator=generator)
    blurred, noisy = blur.transform(batch, blur_params), noise.transform(batch, noise_params)
    bottom = [(f"blur, sigma {float(s):.2f}", out) for s, out in zip(blur_params.magnitude, blurred, strict=True)]
    bottom += [(f"noise, sigma {float(s):.2f}", out) for s, out in zip(noise_params.magnitude, noisy, strict=True)]
    columns = max(len(top), len(bottom))
    fig, axes = plt.subplots(2, columns, figsize=(1.9 * columns, 4.9))
    for row, panels in enumerate((top, bottom)):
        for column in range(columns):
            ax = axes[row, column]
            ax.axis("off")
            if column < len(panels):
                title, picture = panels[column]
                ax.imshow(picture.clamp(0, 1).permute(1, 2, 0).numpy())
                ax.set_title(title, fontsize=7)
    fig.suptitle("top: each operation with fixed values; bottom: one call each, a sigma drawn per sample", fontsize=9)
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMAGES / "pixel_ops.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
